// token_source: where the stored token came from (a login or a renewal), written with the token and shown by status.
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../lib/cli/cli.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { type SandboxFixture, seedConfig, startSandbox, writeTempConfig } from '../support/fixtures.ts';

let fx: SandboxFixture;

beforeEach(async () => {
  fx = await startSandbox();
  process.env.KITE_API_SECRET = fx.appSecret;
  delete process.env.BROKER_CONFIG_URI;
  delete process.env.LOGIN_STATE_SCOPE;
});

afterEach(async () => {
  delete process.env.KITE_API_SECRET;
  await fx.sandbox.close();
});

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const stored = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;

describe('token_source', () => {
  it('records renewal when a refresh token renews the token, and status says it may only read', async () => {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'expired'));

    expect((await cli('refresh', '--config', path)).code).toBe(EXIT.ok);

    expect(await stored(path)).toMatchObject({ token_source: 'renewal', strategy_id: 'momentum-7' });
    const status = await cli('status', '--config', path);
    expect(status.stdout).toContain("Token from:    renewal (read-only by Kite's description;");
  });

  it('records login when the daily login stores the token, and status says so', async () => {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'expired', { refresh_token: '' }));

    const run = await cli('exchange', '--config', path, '--request-token', fx.sandbox.issueRequestToken());

    expect(run.code).toBe(EXIT.ok);
    expect(await stored(path)).toMatchObject({ token_source: 'login' });
    expect((await cli('status', '--config', path)).stdout).toContain('Token from:    daily login\n');
  });

  it('turns login into renewal when a logged-in account later renews with its refresh token', async () => {
    const path = await writeTempConfig(
      seedConfig(fx.sandbox, 'expired', { token_source: 'login' } as Partial<BrokerConfig>),
    );

    expect((await cli('refresh', '--config', path, '--force')).code).toBe(EXIT.ok);

    expect((await stored(path)).token_source).toBe('renewal');
  });

  it('shows unknown for a token stored before the source was recorded', async () => {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'fresh'));

    const status = await cli('status', '--config', path);

    expect(status.stdout).toContain('Token from:    unknown (stored before the source was recorded)');
  });
});
