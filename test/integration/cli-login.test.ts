import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../lib/cli/cli.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { loginStateKey, verifyLoginState } from '../../lib/login/state.ts';
import { cleanEnv } from '../../testing/clean-env.ts';
import {
  API_KEY,
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
  writeTempConfig,
} from '../support/fixtures.ts';

const REDIRECT = 'http://127.0.0.1:9/kite-redirect';

let fx: SandboxFixture;

async function startKite(userId = 'XX0000') {
  fx = await startSandbox({ issueRefreshTokens: false, redirectUrl: REDIRECT, userId });
  process.env.KITE_API_SECRET = fx.appSecret;
}

beforeEach(async () => {
  await startKite();
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

async function seed(extra: Partial<BrokerConfig> = {}) {
  const path = await writeTempConfig(
    seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000', ...extra }),
  );
  return { path, bytes: await readFile(path, 'utf8') };
}

/** Opens the link like a browser and returns the address Kite sends it to: the redirect URL with its query. */
async function redirectAddress(link: string): Promise<string> {
  const response = await fetch(link, { redirect: 'manual' });
  expect(response.status).toBe(302);
  return response.headers.get('location') ?? '';
}

/** Opens the link like a browser and returns the query Kite puts on the redirect URL. */
async function logInThrough(link: string): Promise<URLSearchParams> {
  return new URL(await redirectAddress(link)).searchParams;
}

/** kite-token as a child process, as a person runs it, with only the app secret set. */
async function cliProcess(...argv: string[]) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['bin/kite-token.ts', ...argv], {
      env: cleanEnv({ KITE_API_SECRET: fx.appSecret }),
    });
    return { code: 0, stdout, stderr };
  } catch (e: unknown) {
    const failed = e as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

describe('kite-token login-url', () => {
  it('prints a login link with a valid state, and how to register the callback, but never a token', async () => {
    const { path } = await seed();

    const run = await cli('login-url', '--config', path);

    expect(run.code).toBe(EXIT.ok);
    const link = new URL(run.stdout.trim());
    expect(link.href.startsWith(`${fx.sandbox.url}/connect/login?`)).toBe(true);
    expect(link.searchParams.get('api_key')).toBe(API_KEY);
    const state = new URLSearchParams(link.searchParams.get('redirect_params') ?? '').get('state');
    expect(verifyLoginState(loginStateKey(fx.appSecret), state).ok).toBe(true);
    expect(run.stderr).toMatch(/redirect URL registered for this app .*Kite developer console/s);
    expect(run.stderr).toContain("kite-token exchange --url '<that address>'");
    expect(leakedTokens(fx.sandbox, run.stdout + run.stderr)).toEqual([]);
    expect(run.stdout + run.stderr).not.toContain(fx.appSecret);
  });

  it('exits 2 when the Kite app secret is not configured', async () => {
    const { path } = await seed();
    delete process.env.KITE_API_SECRET;
    expect((await cli('login-url', '--config', path)).code).toBe(EXIT.badInput);
  });
});

describe('kite-token exchange', () => {
  it('stores the token of a login started with login-url, checking its state', async () => {
    const { path } = await seed();
    const link = (await cli('login-url', '--config', path)).stdout.trim();
    const query = await logInThrough(link);

    const run = await cli(
      'exchange',
      '--config',
      path,
      '--request-token',
      query.get('request_token') ?? '',
      '--state',
      query.get('state') ?? '',
    );

    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toMatch(
      /^Logged in as XX0000 — valid until 06:00 IST (today|tomorrow) \(\d{4}-\d{2}-\d{2} 06:00:00 IST\)\n$/,
    );
    expect(run.stderr).toContain('✅ Logged in as XX0000');
    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    const status = await cli('status', '--config', path);
    expect(status.stdout).toContain('Refresh due:   no');
    expect(leakedTokens(fx.sandbox, run.stdout + run.stderr + status.stdout)).toEqual([]);
  });

  it('accepts a request token without a state, since the person at the terminal started the login', async () => {
    const { path } = await seed();
    const run = await cli('exchange', '--config', path, '--request-token', fx.sandbox.issueRequestToken());
    expect(run.code).toBe(EXIT.ok);
  });

  it('enforces the pinned user_id and writes nothing for another account', async () => {
    await fx.sandbox.close();
    await startKite('YY1111');
    const { path, bytes } = await seed({ user_id: 'XX0000' });

    const run = await cli('exchange', '--config', path, '--request-token', fx.sandbox.issueRequestToken());

    expect(run.code).toBe(EXIT.badInput);
    expect(run.stderr).toMatch(/^login failed: You logged in to Kite as YY1111, .*XX0000/m);
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expect(leakedTokens(fx.sandbox, run.stdout + run.stderr)).toEqual([]);
  });

  it('refuses a tampered state and a used request token, writing nothing', async () => {
    const { path, bytes } = await seed();
    const query = await logInThrough((await cli('login-url', '--config', path)).stdout.trim());
    const token = query.get('request_token') ?? '';

    const tampered = await cli(
      'exchange',
      '--config',
      path,
      '--request-token',
      token,
      '--state',
      'v1.1.600.x.y',
    );
    expect(tampered.code).toBe(EXIT.badInput);
    expect(tampered.stderr).toMatch(/^login failed: /);

    await fx.kite.generateSession(token);
    const used = await cli('exchange', '--config', path, '--request-token', token);
    expect(used.code).toBe(EXIT.badInput);
    expect(used.stderr).toMatch(/^login failed: Kite no longer accepts this request token/);

    expect(await readFile(path, 'utf8')).toBe(bytes);
    expect(leakedTokens(fx.sandbox, tampered.stderr + used.stderr)).toEqual([]);
  });

  it('pins the account on a first login at the terminal, since whoever runs it can set user_id anyway', async () => {
    const { path } = await seed({ user_id: undefined });

    const run = await cli('exchange', '--config', path, '--request-token', fx.sandbox.issueRequestToken());

    expect(run.code).toBe(EXIT.ok);
    expect((JSON.parse(await readFile(path, 'utf8')) as BrokerConfig).user_id).toBe('XX0000');
  });

  it('refuses a state that already completed a login, writing nothing', async () => {
    const { path } = await seed();
    const link = (await cli('login-url', '--config', path)).stdout.trim();
    const first = await logInThrough(link);
    const exchange = (query: URLSearchParams) =>
      cli(
        'exchange',
        '--config',
        path,
        '--request-token',
        query.get('request_token') ?? '',
        '--state',
        query.get('state') ?? '',
      );
    expect((await exchange(first)).code).toBe(EXIT.ok);
    const after = await readFile(path, 'utf8');

    const again = await exchange(await logInThrough(link));

    expect(again.code).toBe(EXIT.badInput);
    expect(again.stderr).toMatch(/^login failed: This login link was already used/m);
    expect(fx.sandbox.calls['POST /session/token']).toBe(1);
    expect(await readFile(path, 'utf8')).toBe(after);
  });

  it('mints and checks states for the stage named by --stage or LOGIN_STATE_SCOPE', async () => {
    const { path, bytes } = await seed();
    const link = (await cli('login-url', '--config', path, '--stage', 'prod')).stdout.trim();
    const state = new URLSearchParams(new URL(link).searchParams.get('redirect_params') ?? '').get('state');
    expect(verifyLoginState(loginStateKey(fx.appSecret, 'prod'), state).ok).toBe(true);
    expect(verifyLoginState(loginStateKey(fx.appSecret), state).ok).toBe(false);
    const query = await logInThrough(link);
    const args = ['--request-token', query.get('request_token') ?? '', '--state', query.get('state') ?? ''];

    const elsewhere = await cli('exchange', '--config', path, '--stage', 'dev', ...args);
    expect(elsewhere.code).toBe(EXIT.badInput);
    expect(elsewhere.stderr).toMatch(/^login failed: The login link’s state is not one this service issued/m);
    expect(await readFile(path, 'utf8')).toBe(bytes);

    process.env.LOGIN_STATE_SCOPE = 'prod';
    try {
      expect((await cli('exchange', '--config', path, ...args)).code).toBe(EXIT.ok);
    } finally {
      delete process.env.LOGIN_STATE_SCOPE;
    }
    expect((await cli('status', '--config', path, '--stage', 'prod')).code).toBe(EXIT.badInput);
    expect((await cli('login-url', '--config', path, '--stage', 'no spaces')).code).toBe(EXIT.badInput);
  });

  it('exits 1 when Kite cannot be reached', async () => {
    const { path, bytes } = await seed({ base_url: 'http://127.0.0.1:9' });
    const run = await cli('exchange', '--config', path, '--request-token', fx.sandbox.issueRequestToken());
    expect(run.code).toBe(EXIT.failed);
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it('exits 2 without --request-token, and for login options on other commands', async () => {
    const { path } = await seed();
    expect((await cli('exchange', '--config', path)).code).toBe(EXIT.badInput);
    expect((await cli('refresh', '--config', path, '--state', 'x')).code).toBe(EXIT.badInput);
  });
});

describe('kite-token exchange --url', () => {
  it('stores the token from the whole address the browser ended on, without echoing its request token', async () => {
    const { path } = await seed();
    const address = await redirectAddress((await cli('login-url', '--config', path)).stdout.trim());

    const run = await cliProcess('exchange', '--config', path, '--url', address);

    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toMatch(/^Logged in as XX0000 — valid until 06:00 IST/);
    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    expect(stored.login_states_used).toHaveLength(1);
    expect(leakedTokens(fx.sandbox, run.stdout + run.stderr)).toEqual([]);
  });

  it('takes an address whose "&" came out HTML-escaped, as copied from a page or a mail', async () => {
    const { path } = await seed();
    const address = await redirectAddress((await cli('login-url', '--config', path)).stdout.trim());

    const run = await cliProcess('exchange', '--config', path, '--url', address.replaceAll('&', '&amp;'));

    expect(run.code).toBe(EXIT.ok);
    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
  });

  it('checks the state the address carries: a tampered one is refused and nothing is written', async () => {
    const { path, bytes } = await seed();
    const address = new URL(await redirectAddress((await cli('login-url', '--config', path)).stdout.trim()));
    address.searchParams.set('state', `${address.searchParams.get('state')}x`);

    const run = await cliProcess('exchange', '--config', path, '--url', address.href);

    expect(run.code).toBe(EXIT.badInput);
    expect(run.stderr).toMatch(/^login failed: The login link’s state is not one this service issued/);
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it.each([
    [
      'a malformed address',
      'request_token=abc&status=success',
      /^bad input: --url is not a web address: paste/,
    ],
    [
      'no request_token',
      'http://127.0.0.1/?action=login&status=success',
      /^bad input: --url is not where a Kite login ended \(The login callback carried no request_token\): paste/,
    ],
    [
      'a cancelled login',
      'http://127.0.0.1/?action=login&status=cancelled&request_token=TOKEN',
      /^bad input: --url is not from a successful Kite login \(status=cancelled\): log in again$/m,
    ],
    [
      'no status',
      'http://127.0.0.1/?action=login&request_token=TOKEN',
      /^bad input: --url is not where a Kite login ended \(The login callback carried no status from Kite\): paste/,
    ],
    [
      'two request tokens',
      'http://127.0.0.1/?status=success&request_token=TOKEN&request_token=TOKEN',
      /^bad input: --url is not where a Kite login ended \(The login callback carried "request_token" more than once\)/,
    ],
    [
      'an address that is no Kite login',
      'http://127.0.0.1/?status=success&request_token=TOKEN',
      /^bad input: --url is not where a Kite login ended \(The login callback is not a Kite login \(action\)\)/,
    ],
  ])(
    'refuses %s with one line and exit 2, asking Kite nothing and echoing no token',
    async (_case, template, message) => {
      const { path, bytes } = await seed();
      const requestToken = fx.sandbox.issueRequestToken();

      const run = await cliProcess(
        'exchange',
        '--config',
        path,
        '--url',
        template.replaceAll('TOKEN', requestToken),
      );

      expect(run.code).toBe(EXIT.badInput);
      expect(run.stderr).toMatch(message);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).not.toContain(requestToken);
      expect(fx.sandbox.calls['POST /session/token']).toBeUndefined();
      expect(await readFile(path, 'utf8')).toBe(bytes);
    },
  );

  it('refuses --url together with --request-token or --state, and on other commands', async () => {
    const { path } = await seed();
    const address = 'http://127.0.0.1/?action=login&status=success&request_token=abcdefghijklmnop';

    const both = await cli(
      'exchange',
      '--config',
      path,
      '--url',
      address,
      '--request-token',
      'abcdefghijklmnop',
    );
    const other = await cli('status', '--config', path, '--url', address);

    expect(both).toMatchObject({ code: EXIT.badInput, stderr: expect.stringMatching(/not both/) });
    expect(other).toMatchObject({
      code: EXIT.badInput,
      stderr: expect.stringMatching(/belong to the exchange/),
    });
  });
});

describe('kite-token --help', () => {
  it('lists the login commands', async () => {
    const run = await cli('--help');
    expect(run.stdout).toContain('login-url');
    expect(run.stdout).toContain('exchange --request-token');
    expect(run.stdout).toContain('exchange --url ADDRESS');
  });
});
