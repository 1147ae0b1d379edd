// Shared test wiring: a Kite sandbox, a config seeded from one of its sessions, and a log that captures lines.
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { toIsoIst } from '../../lib/engine/expiry.ts';
import { KiteClient } from '../../lib/kite/client.ts';
import type { Log, LogFields } from '../../lib/shared/log.ts';
import { type KiteSandbox, type KiteSandboxOptions, startKiteSandbox } from '../../testing/kite-sandbox.ts';

export const API_KEY = 'testapikey';

export interface SandboxFixture {
  sandbox: KiteSandbox;
  appSecret: string;
  /** A Kite client with tiny retry delays, pointed at the sandbox. */
  kite: KiteClient;
}

export async function startSandbox(options: Partial<KiteSandboxOptions> = {}): Promise<SandboxFixture> {
  const appSecret = options.apiSecret ?? randomBytes(12).toString('hex');
  const sandbox = await startKiteSandbox({ apiKey: API_KEY, ...options, apiSecret: appSecret });
  const kite = new KiteClient({
    apiKey: API_KEY,
    apiSecret: appSecret,
    baseUrl: sandbox.url,
    timeoutMs: 2_000,
    retry: { baseDelayMs: 2, maxDelayMs: 10 },
  });
  return { sandbox, appSecret, kite };
}

/** A broker-config.json whose token is expired, fresh (issued now) or absent, with a strategy field it must keep. */
export function seedConfig(
  sandbox: KiteSandbox,
  state: 'expired' | 'fresh' = 'expired',
  extra: Partial<BrokerConfig> = {},
): BrokerConfig {
  const session = sandbox.mintSession({ expired: state === 'expired' });
  return {
    type: 'kite',
    api_key: API_KEY,
    api_secret: session.accessToken,
    refresh_token: session.refreshToken,
    base_url: sandbox.url,
    rate_limit: { requests_per_second: 10, burst_size: 20 },
    access_token_expires_at: toIsoIst(session.expiresAt),
    strategy_id: 'momentum-7',
    ...extra,
  };
}

export async function writeTempConfig(config: BrokerConfig): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kite-token-test-'));
  const path = join(dir, 'broker-config.json');
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return path;
}

export interface CapturedLog extends Log {
  lines: Array<{ level: string; message: string; fields?: LogFields }>;
  text(): string;
}

/** Captures every line and field, so tests can assert on messages and sweep for leaked tokens. */
export function captureLog(): CapturedLog {
  const lines: CapturedLog['lines'] = [];
  const at = (level: string) => (message: string, fields?: LogFields) => {
    lines.push({ level, message, ...(fields ? { fields } : {}) });
  };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    text: () => lines.map((l) => `${l.message} ${JSON.stringify(l.fields ?? {})}`).join('\n'),
  };
}

/** Every whole token the sandbox ever issued that appears in `text`. */
export function leakedTokens(sandbox: KiteSandbox, text: string): string[] {
  return sandbox.issuedTokens().filter((token) => text.includes(token));
}

/** Sends everything this process writes to stdout and stderr (Powertools' log lines) to `append` instead. */
export function captureStdio(append: (chunk: string) => void): void {
  const capture = (chunk: string | Uint8Array) => {
    append(String(chunk));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
}
