import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../lib/cli/cli.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { leakedTokens, type SandboxFixture, seedConfig, startSandbox } from '../support/fixtures.ts';

let fx: SandboxFixture;
let dir: string;

beforeEach(async () => {
  fx = await startSandbox();
  process.env.KITE_API_SECRET = fx.appSecret;
  delete process.env.BROKER_CONFIG_URI;
  dir = await mkdtemp(join(tmpdir(), 'kite-token-verify-'));
});

afterEach(async () => {
  delete process.env.KITE_API_SECRET;
  await fx.sandbox.close();
  await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

async function writeAccount(name: string, config: BrokerConfig): Promise<string> {
  const path = join(dir, `${name}.json`);
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return path;
}

const fresh = (extra: Partial<BrokerConfig> = {}) => seedConfig(fx.sandbox, 'fresh', extra);

describe('kite-token verify', () => {
  it('exits 0 and prints the user id when Kite accepts the stored token', async () => {
    const path = await writeAccount('me', fresh());

    const run = await cli('verify', '--config', path);

    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toBe(`${fx.sandbox.userId}\n`);
    expect(fx.sandbox.calls['GET /user/profile']).toBe(1);
  });

  it('exits 3 with a one-line reason once Kite flushes every token, whatever the stored expiry says', async () => {
    const path = await writeAccount('me', fresh());
    fx.sandbox.flushAll();

    const run = await cli('verify', '--config', path);

    expect(run.code).toBe(EXIT.loginRequired);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^dead: Kite rejected the token .*log in \(kite-token login-url\)/);
  });

  it('exits 3 when Kite revokes the stored token, as a login elsewhere with the same app does', async () => {
    const config = fresh();
    const path = await writeAccount('me', config);
    fx.sandbox.revokeAccessToken(config.api_secret);

    expect((await cli('verify', '--config', path)).code).toBe(EXIT.loginRequired);
  });

  it('exits 3 without asking Kite when no access token is stored', async () => {
    const path = await writeAccount('me', fresh({ api_secret: '' }));

    const run = await cli('verify', '--config', path);

    expect(run.code).toBe(EXIT.loginRequired);
    expect(run.stderr).toMatch(/^dead: no access token is stored/);
    expect(fx.sandbox.calls['GET /user/profile']).toBeUndefined();
  });

  it('exits 1, not 3, when Kite cannot be reached', async () => {
    const path = await writeAccount('me', fresh({ base_url: 'http://127.0.0.1:9' }));

    const run = await cli('verify', '--config', path);

    expect(run.code).toBe(EXIT.failed);
    expect(run.stderr).toMatch(/^unknown: Kite could not be asked/);
  });

  it('exits 1, not 3, when Kite answers 503 on every retry', async () => {
    const path = await writeAccount('me', fresh());
    fx.sandbox.failNext({ endpoint: 'GET /user/profile', times: 50, status: 503 });

    const run = await cli('verify', '--config', path);

    expect(run.code).toBe(EXIT.failed);
    expect(run.stderr).toMatch(/^unknown: .*503/);
    expect(fx.sandbox.calls['GET /user/profile']).toBeGreaterThan(1);
  });

  it('writes nothing and prints no token, whatever the verdict', async () => {
    const config = fresh();
    const path = await writeAccount('me', config);
    const before = await readFile(path, 'utf8');

    const valid = await cli('verify', '--config', path);
    fx.sandbox.flushAll();
    const dead = await cli('verify', '--config', path);

    expect([valid.code, dead.code]).toEqual([EXIT.ok, EXIT.loginRequired]);
    expect(await readFile(path, 'utf8')).toBe(before);
    expect(leakedTokens(fx.sandbox, valid.stdout + valid.stderr + dead.stdout + dead.stderr)).toEqual([]);
  });
});

describe('kite-token verify with several accounts', () => {
  it('checks every account, a line each, and exits 3 when one token is dead', async () => {
    const bob = fresh({ user_id: 'YY1111' });
    const config = [
      await writeAccount('alice', fresh({ user_id: fx.sandbox.userId })),
      await writeAccount('bob', bob),
    ].join(',');
    fx.sandbox.revokeAccessToken(bob.api_secret);

    const run = await cli('verify', '--config', config);

    expect(run.code).toBe(EXIT.loginRequired);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(`alice (alice): valid (Kite accepts the token of ${fx.sandbox.userId})`);
    expect(lines[1]).toMatch(/^bob \(bob\): dead: Kite rejected the token/);
    expect(leakedTokens(fx.sandbox, run.stdout + run.stderr)).toEqual([]);
  });

  it('exits 1 when Kite cannot be reached for one account, even if another is dead', async () => {
    const bob = fresh({ user_id: 'YY1111' });
    const config = [
      await writeAccount('alice', fresh({ base_url: 'http://127.0.0.1:9' })),
      await writeAccount('bob', bob),
    ].join(',');
    fx.sandbox.revokeAccessToken(bob.api_secret);

    const run = await cli('verify', '--config', config);

    expect(run.code).toBe(EXIT.failed);
    expect(run.stdout).toMatch(/^alice \(.*\): unknown: /m);
    expect(run.stdout).toMatch(/^bob \(bob\): dead: /m);
  });

  it('says which document could not be read, and still checks the others', async () => {
    const config = `${await writeAccount('alice', fresh())},${join(dir, 'missing.json')}`;

    const run = await cli('verify', '--config', config);

    expect(run.code).toBe(EXIT.failed);
    expect(run.stdout).toMatch(/^alice \(.*\): valid /m);
    expect(run.stdout).toMatch(/^missing \(missing\): failed: /m);
  });

  it('checks only the account --account names, printing its user id', async () => {
    const bob = fresh({ user_id: 'YY1111' });
    const config = [await writeAccount('alice', fresh()), await writeAccount('bob', bob)].join(',');
    fx.sandbox.flushAll();
    const alive = fresh({ user_id: 'YY1111' });
    await writeAccount('bob', alive);

    const run = await cli('verify', '--config', config, '--account', 'bob');

    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toBe(`${fx.sandbox.userId}\n`);
    expect(fx.sandbox.calls['GET /user/profile']).toBe(1);
  });
});
