import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../lib/cli/cli.ts';
import { refreshToken } from '../../lib/engine/refresh-engine.ts';
import { FileStore } from '../../lib/store/file-store.ts';
import { cleanEnv } from '../../testing/clean-env.ts';
import {
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
  writeTempConfig,
} from '../support/fixtures.ts';

let fx: SandboxFixture;

beforeEach(async () => {
  fx = await startSandbox();
  process.env.KITE_API_SECRET = fx.appSecret;
});

afterEach(async () => {
  delete process.env.KITE_API_SECRET;
  delete process.env.BROKER_CONFIG_URI;
  await fx.sandbox.close();
});

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('kite-token refresh', () => {
  it('refreshes an expired token and exits 0', async () => {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'expired'));
    const run = await cli('refresh', '--config', path);
    expect(run.code).toBe(EXIT.ok);
    expect(run.stderr).toContain('✅ Token refreshed successfully');
    expect(run.stderr).toMatch(/Expires at: \d{4}-\d{2}-\d{2} 06:00:00 IST/);
    expect(leakedTokens(fx.sandbox, run.stdout + run.stderr)).toEqual([]);
  });

  it('reads the location from BROKER_CONFIG_URI when --config is absent', async () => {
    process.env.BROKER_CONFIG_URI = `file://${await writeTempConfig(seedConfig(fx.sandbox, 'expired'))}`;
    expect((await cli('refresh')).code).toBe(EXIT.ok);
  });

  it('exits 3 with a one-line reason when no refresh token is configured', async () => {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'expired', { refresh_token: '' }));
    const run = await cli('refresh', '--config', path);
    expect(run.code).toBe(EXIT.loginRequired);
    expect(run.stderr).toContain('⚠️  No refresh token configured');
    expect(run.stderr.trim().split('\n').at(-1)).toMatch(/^login required: /);
  });

  it('exits 3 when Kite rejects the refresh token, and leaves the file as it was', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const path = await writeTempConfig(config);
    fx.sandbox.revokeRefreshTokens();
    const run = await cli('refresh', '--config', path);
    expect(run.code).toBe(EXIT.loginRequired);
    expect(run.stderr).toContain('❌ Token refresh failed');
    expect(run.stderr).toMatch(/Status: 403/);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(config);
  });

  it('exits 1 naming the network when Kite cannot be reached', async () => {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'expired', { base_url: 'http://127.0.0.1:9' }));
    const run = await cli('refresh', '--config', path);
    expect(run.code).toBe(EXIT.failed);
    expect(run.stderr.trim().split('\n').at(-1)).toMatch(/^network: /);
  });

  it('exits 2 naming the field for a malformed config, and writes nothing', async () => {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'expired'));
    await writeFile(path, '{"type": "kite", "api_secret": "x"}');
    const run = await cli('refresh', '--config', path);
    expect(run.code).toBe(EXIT.badInput);
    expect(run.stderr).toBe(`bad input: ${path}: missing required field "api_key"\n`);
    expect(await readFile(path, 'utf8')).toBe('{"type": "kite", "api_secret": "x"}');
  });

  it('exits 2 when the Kite app secret is not configured', async () => {
    delete process.env.KITE_API_SECRET;
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'expired'));
    const run = await cli('refresh', '--config', path);
    expect(run.code).toBe(EXIT.badInput);
    expect(run.stderr).toMatch(/KITE_API_SECRET/);
  });

  it('exits 2 for an unknown command or option', async () => {
    expect((await cli('renew')).code).toBe(EXIT.badInput);
    expect((await cli('refresh', '--frce')).code).toBe(EXIT.badInput);
  });
});

describe('kite-token status', () => {
  it('shows expiry, mode and due state but never the token', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const path = await writeTempConfig(config);
    const run = await cli('status', '--config', path);
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toContain('Mode:          auto-renew (refresh token present)');
    expect(run.stdout).toMatch(/Expires at: +\d{4}-\d{2}-\d{2} 06:00:00 IST \(expired\)/);
    expect(run.stdout).toContain('Refresh due:   yes (expired)');
    expect(leakedTokens(fx.sandbox, run.stdout + run.stderr)).toEqual([]);
  });

  it('says plainly when the account is in daily-login mode', async () => {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'fresh', { refresh_token: '' }));
    const run = await cli('status', '--config', path);
    expect(run.stdout).toMatch(/Mode: +daily login/);
  });
});

describe('kite-token demo', () => {
  it('refreshes an expired token in a throwaway file through the scheduled tick, and shows the file updated', async () => {
    const run = await cli('demo');
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toContain('✅ Token refreshed successfully');
    expect(run.stdout).toContain('Mode: auto-renew (refresh token present)');
    expect(run.stdout).toMatch(/File updated: +api_secret \S{1,4}… → \S{1,4}…, mode 0600/);
    expect(run.stdout).toContain('"POST /session/refresh_token":1');
  });
});

describe('the kite-token bin', () => {
  it('runs as a command and returns the exit code', () => {
    const child = spawnSync(
      process.execPath,
      ['bin/kite-token.ts', 'status', '--config', '/nonexistent/broker-config.json'],
      { encoding: 'utf8', env: cleanEnv() },
    );
    expect(child.status).toBe(EXIT.badInput);
    expect(child.stderr).toMatch(/^not found: .*does not exist\n$/);
  });

  it('on SIGTERM while Kite is renewing, exits only once the new token is kept, and the next run stores it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-sigterm-'));
    const path = join(dir, 'broker-config.json');
    await writeFile(path, `${JSON.stringify(seedConfig(fx.sandbox, 'expired'), null, 2)}\n`, { mode: 0o600 });
    fx.sandbox.setLatency(1_000);
    const child = spawn(process.execPath, ['bin/kite-token.ts', 'refresh', '--config', path], {
      env: cleanEnv({ KITE_API_SECRET: fx.appSecret, TMPDIR: dir }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    while (!fx.sandbox.calls['POST /session/refresh_token']) await new Promise((r) => setTimeout(r, 10));

    child.kill('SIGTERM');
    const { code, signal } = await exited;

    expect({ code, signal }).toEqual({ code: 143, signal: null });
    fx.sandbox.setLatency(0);
    const store = new FileStore({ path });
    const next = await refreshToken({ store, kite: () => fx.kite, rescueDir: dir });
    expect(next).toMatchObject({ status: 'refreshed', kiteCalls: 0 });
    expect(fx.sandbox.calls['POST /session/refresh_token']).toBe(1);
    expect(fx.sandbox.isAccessTokenValid((await store.read()).config.api_secret)).toBe(true);
    expect(leakedTokens(fx.sandbox, output)).toEqual([]);
  }, 30_000);
});
