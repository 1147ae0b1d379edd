import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../lib/cli/cli.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { loginStateKey, verifyLoginState } from '../../lib/login/state.ts';
import { type SandboxFixture, seedConfig, startSandbox } from '../support/fixtures.ts';

const REDIRECT = 'http://127.0.0.1:9/kite-redirect';

let fx: SandboxFixture;
let dir: string;

beforeEach(async () => {
  // The sandbox logs everyone in as XX0000.
  fx = await startSandbox({ issueRefreshTokens: false, redirectUrl: REDIRECT });
  process.env.KITE_API_SECRET = fx.appSecret;
  delete process.env.BROKER_CONFIG_URI;
  delete process.env.LOGIN_STATE_SCOPE;
  dir = await mkdtemp(join(tmpdir(), 'kite-token-accounts-'));
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

/** Writes <name>.json for each account and returns the comma-separated --config naming them all. */
async function seedAccounts(accounts: Record<string, Partial<BrokerConfig>>): Promise<string> {
  const paths: string[] = [];
  for (const [name, extra] of Object.entries(accounts)) {
    const path = join(dir, `${name}.json`);
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '', ...extra });
    await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    paths.push(path);
  }
  return paths.join(',');
}

const bytesOf = (name: string) => readFile(join(dir, `${name}.json`), 'utf8');

async function logInThrough(link: string): Promise<URLSearchParams> {
  const response = await fetch(link, { redirect: 'manual' });
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location') ?? '').searchParams;
}

function stateOf(link: string): string | null {
  return new URLSearchParams(new URL(link).searchParams.get('redirect_params') ?? '').get('state');
}

describe('kite-token login-url with several accounts', () => {
  it('prints a link whose signed state names the account, and exchange stores its token there only', async () => {
    const config = await seedAccounts({ alice: { user_id: 'XX0000' }, bob: { user_id: 'XX0000' } });
    const bob = await bytesOf('bob');

    const url = await cli('login-url', '--config', config, '--account', 'alice');
    expect(url.code).toBe(EXIT.ok);
    const link = url.stdout.trim();
    expect(verifyLoginState(loginStateKey(fx.appSecret), stateOf(link))).toMatchObject({
      ok: true,
      account: 'alice',
    });
    expect(url.stderr).toContain('log in to Kite as XX0000 (account alice)');

    const query = await logInThrough(link);
    const run = await cli(
      'exchange',
      '--config',
      config,
      '--request-token',
      query.get('request_token') ?? '',
      '--state',
      query.get('state') ?? '',
    );

    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toMatch(/^Logged in as XX0000 \(account alice\) — valid until 06:00 IST/);
    const alice = JSON.parse(await bytesOf('alice')) as BrokerConfig;
    expect(fx.sandbox.isAccessTokenValid(alice.api_secret)).toBe(true);
    expect(await bytesOf('bob')).toBe(bob);
  });

  it('takes an account’s user_id for --account and signs the account’s name', async () => {
    const config = await seedAccounts({ alice: { user_id: 'AB1234' }, bob: { user_id: 'XX0000' } });

    const run = await cli('login-url', '--config', config, '--account', 'AB1234');

    expect(run.code).toBe(EXIT.ok);
    expect(verifyLoginState(loginStateKey(fx.appSecret), stateOf(run.stdout.trim()))).toMatchObject({
      account: 'alice',
    });
  });

  it('asks for --account when the config holds several, and names an account it does not hold', async () => {
    const config = await seedAccounts({ alice: { user_id: 'XX0000' }, bob: { user_id: 'YY1111' } });

    const none = await cli('login-url', '--config', config);
    expect(none.code).toBe(EXIT.badInput);
    expect(none.stderr).toMatch(/holds 2 accounts: pass --account NAME \(one of alice, bob\)/);

    const unknown = await cli('login-url', '--config', config, '--account', 'carol');
    expect(unknown.code).toBe(EXIT.badInput);
    expect(unknown.stderr).toMatch(/^not found: no account "carol" .*alice, bob/);
    expect(none.stdout + unknown.stdout).toBe('');
  });

  it('prints a link that names no account for a single document, as before, even with --account', async () => {
    const config = await seedAccounts({ alice: { user_id: 'XX0000' } });

    const plain = await cli('login-url', '--config', config);
    const named = await cli('login-url', '--config', config, '--account', 'alice');

    expect(stateOf(plain.stdout.trim())).toMatch(/^v1\./);
    expect(plain.stderr).not.toContain('(account');
    // Asked for by name, the link names it: a deployment may keep this document among others.
    expect(verifyLoginState(loginStateKey(fx.appSecret), stateOf(named.stdout.trim()))).toMatchObject({
      account: 'alice',
    });
  });
});

describe('kite-token exchange with several accounts', () => {
  it('refuses a state made for one account when --account names another, writing nothing', async () => {
    const config = await seedAccounts({ alice: { user_id: 'XX0000' }, bob: { user_id: 'XX0000' } });
    const before = [await bytesOf('alice'), await bytesOf('bob')];
    const query = await logInThrough(
      (await cli('login-url', '--config', config, '--account', 'alice')).stdout.trim(),
    );

    const run = await cli(
      'exchange',
      '--config',
      config,
      '--account',
      'bob',
      '--request-token',
      query.get('request_token') ?? '',
      '--state',
      query.get('state') ?? '',
    );

    expect(run.code).toBe(EXIT.badInput);
    expect(run.stderr).toMatch(/^login failed: The login link was made for account "alice", not "bob"/);
    expect([await bytesOf('alice'), await bytesOf('bob')]).toEqual(before);
    expect(fx.sandbox.calls['POST /session/token'] ?? 0).toBe(0);
  });

  it('stores a token pasted without a state in the account --account names, and asks for one otherwise', async () => {
    const config = await seedAccounts({ alice: { user_id: 'XX0000' }, bob: { user_id: 'XX0000' } });
    const alice = await bytesOf('alice');

    const none = await cli('exchange', '--config', config, '--request-token', fx.sandbox.issueRequestToken());
    expect(none.code).toBe(EXIT.badInput);
    expect(none.stderr).toMatch(/^login failed: This login names no account, and this service keeps several/);

    const run = await cli(
      'exchange',
      '--config',
      config,
      '--account',
      'bob',
      '--request-token',
      fx.sandbox.issueRequestToken(),
    );
    expect(run.code).toBe(EXIT.ok);
    expect(await bytesOf('alice')).toBe(alice);
    expect(fx.sandbox.isAccessTokenValid((JSON.parse(await bytesOf('bob')) as BrokerConfig).api_secret)).toBe(
      true,
    );
  });
});

describe('kite-token status with several accounts', () => {
  it('prints one row per account: name, user, mode, expiry and whether a refresh is due', async () => {
    const fresh = seedConfig(fx.sandbox, 'fresh');
    const config = await seedAccounts({
      alice: { user_id: 'XX0000' },
      bob: {
        user_id: 'YY1111',
        api_secret: fresh.api_secret,
        refresh_token: 'a'.repeat(32),
        access_token_expires_at: fresh.access_token_expires_at,
      },
      carol: { user_id: undefined, api_secret: '' },
    });

    const run = await cli('status', '--config', config);

    expect(run.code).toBe(EXIT.ok);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^ACCOUNT +USER +MODE +TOKEN FROM +EXPIRES +KITE SAYS +DUE$/);
    expect(lines[1]).toMatch(
      /^alice +XX0000 +daily-login +unknown +\d{4}-\d{2}-\d{2} 06:00:00 IST \(expired\) +not asked +yes \(expired\)$/,
    );
    expect(lines[2]).toMatch(
      /^bob +YY1111 +auto-renew +unknown +\d{4}-\d{2}-\d{2} 06:00:00 IST +not asked +no$/,
    );
    expect(lines[3]).toMatch(/^carol +\(unknown\) +daily-login +- +no token +not asked +yes/);
    // Columns line up.
    expect(new Set(lines.map((line) => line.indexOf(line.split(/ {2,}/)[1] ?? '')))).toHaveProperty(
      'size',
      1,
    );
    expect(fx.sandbox.issuedTokens().filter((token) => run.stdout.includes(token))).toEqual([]);
  });

  it('prints one account’s full status with --account, as for a single document', async () => {
    const config = await seedAccounts({ alice: { user_id: 'XX0000' }, bob: { user_id: 'YY1111' } });

    const run = await cli('status', '--config', config, '--account', 'YY1111');

    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toContain(`Config:        ${join(dir, 'bob.json')}`);
    expect(run.stdout).toContain('User:          YY1111');
  });

  it('marks an account whose document cannot be read and exits 1, still listing the others', async () => {
    const config = await seedAccounts({ alice: { user_id: 'XX0000' } });

    const run = await cli('status', '--config', `${config},${join(dir, 'missing.json')}`);

    expect(run.code).toBe(EXIT.failed);
    expect(run.stdout).toMatch(/^alice +XX0000 /m);
    expect(run.stdout).toMatch(/^missing +- +- +- +- +- +unreadable: /m);
  });

  it('needs no Kite app secret', async () => {
    const config = await seedAccounts({ alice: { user_id: 'XX0000' }, bob: { user_id: 'YY1111' } });
    delete process.env.KITE_API_SECRET;
    expect((await cli('status', '--config', config)).code).toBe(EXIT.ok);
  });

  it('refuses --account on commands that do not take it', async () => {
    const config = await seedAccounts({ alice: { user_id: 'XX0000' } });
    expect((await cli('demo', '--config', config, '--account', 'alice')).code).toBe(EXIT.badInput);
  });
});

describe('kite-token refresh with several accounts', () => {
  beforeEach(async () => {
    // This sandbox issues refresh tokens, so an account can renew without a login.
    await fx.sandbox.close();
    fx = await startSandbox({ redirectUrl: REDIRECT });
    process.env.KITE_API_SECRET = fx.appSecret;
  });

  /** alice renews with her refresh token; bob has none and needs a login; carol's token is still fresh. */
  async function seedThree(): Promise<string> {
    const alice = join(dir, 'alice.json');
    await writeFile(alice, JSON.stringify(seedConfig(fx.sandbox, 'expired', { user_id: 'XX0000' })), {
      mode: 0o600,
    });
    const others = await seedAccounts({ bob: { user_id: 'YY1111' } });
    const carol = join(dir, 'carol.json');
    await writeFile(carol, JSON.stringify(seedConfig(fx.sandbox, 'fresh', { user_id: 'ZZ2222' })), {
      mode: 0o600,
    });
    return [alice, others, carol].join(',');
  }

  it('serves every account in turn, a line each, and exits 3 when one needs a login', async () => {
    const config = await seedThree();
    const before = JSON.parse(await bytesOf('alice')).api_secret;

    const run = await cli('refresh', '--config', config);

    expect(run.stdout).toMatch(/^alice \(XX0000\): refreshed \(expires .+\)$/m);
    expect(run.stdout).toMatch(/^bob \(YY1111\): login required$/m);
    expect(run.stdout).toMatch(/^carol \(ZZ2222\): fresh \(expires .+\)$/m);
    expect(run.code).toBe(EXIT.loginRequired);
    expect(JSON.parse(await bytesOf('alice')).api_secret).not.toBe(before);
    expect(fx.sandbox.calls['POST /session/refresh_token']).toBe(1);
  });

  it('serves only the account --account names', async () => {
    const config = await seedThree();

    const run = await cli('refresh', '--config', config, '--account', 'XX0000');

    expect(run.stdout.trim()).toMatch(/^alice \(XX0000\): refreshed/);
    expect(run.code).toBe(EXIT.ok);
  });
});
