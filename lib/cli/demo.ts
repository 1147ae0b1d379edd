// `npm start`: the trading system docs' "Testing Token Refresh" recipe, made runnable. Starts the bundled Kite
// sandbox, writes a throwaway broker-config.json with an expired token, and runs the scheduled refresh on it.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKiteSandbox } from '../../testing/kite-sandbox.ts';
import { createAccountRegistry } from '../accounts/registry.ts';
import { NO_METRICS, tickAccounts } from '../accounts/tick.ts';
import { type BrokerConfig, parseConfig } from '../engine/broker-config.ts';
import { formatIst, toIsoIst } from '../engine/expiry.ts';
import { KiteClient } from '../kite/client.ts';
import { createConsoleLog } from '../shared/log.ts';
import { maskToken } from '../shared/mask.ts';
import type { CliIo } from './io.ts';

/** Runs the demo; true when the token was refreshed and Kite (the sandbox) accepts the new one. */
export async function runDemo(io: CliIo): Promise<boolean> {
  const say = (line = '') => io.stdout(`${line}\n`);
  const apiKey = 'sandboxkey';
  const appSecret = randomBytes(16).toString('hex');
  const sandbox = await startKiteSandbox({ apiKey, apiSecret: appSecret });
  const dir = await mkdtemp(join(tmpdir(), 'kite-token-demo-'));
  try {
    const path = join(dir, 'broker-config.json');
    const expired = sandbox.mintSession({ expired: true });
    const seed: BrokerConfig = {
      type: 'kite',
      api_key: apiKey,
      api_secret: expired.accessToken,
      refresh_token: expired.refreshToken,
      base_url: sandbox.url,
      rate_limit: { requests_per_second: 10, burst_size: 20 },
      access_token_expires_at: toIsoIst(expired.expiresAt),
    };
    await writeFile(path, `${JSON.stringify(seed, null, 2)}\n`, { mode: 0o600 });

    say(`Kite sandbox:  ${sandbox.url} (answers like api.kite.trade; no Kite account needed)`);
    say(`Config:        ${path}`);
    say(`Access token:  ${maskToken(seed.api_secret)} expired at ${formatIst(expired.expiresAt)}`);
    say();

    const log = createConsoleLog({ write: (line) => io.stdout(`${line}\n`) });
    // The scheduled function's tick, as Lambda runs it hourly; in a terminal its metrics go nowhere.
    const accounts = createAccountRegistry({ uri: path, appSecret, log });
    const tick = await tickAccounts({ accounts, log, metrics: NO_METRICS, concurrency: 1 });

    const stored = parseConfig(await readFile(path, 'utf8'), path);
    const mode = ((await stat(path)).mode & 0o777).toString(8).padStart(4, '0');
    const kite = new KiteClient({ apiKey, apiSecret: appSecret, baseUrl: sandbox.url });
    const profile = await kite.getProfile(stored.api_secret);
    say();
    say(
      `File updated:  api_secret ${maskToken(seed.api_secret)} → ${maskToken(stored.api_secret)}, mode ${mode}`,
    );
    say(`Expires at:    ${stored.access_token_expires_at} (next 06:00 IST flush)`);
    say(`Kite check:    GET /user/profile with the new token → ${profile.userId}`);
    say(`Kite calls:    ${JSON.stringify(sandbox.calls)}`);
    return (
      tick.accounts[0]?.status === 'refreshed' && stored.api_secret !== seed.api_secret && mode === '0600'
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
    await sandbox.close();
  }
}
