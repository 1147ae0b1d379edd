import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler, type LoginCallbackResult } from '../../functions/login-callback.ts';
import { runCli } from '../../lib/cli/cli.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { logger, resetLambdaContext } from '../../lib/lambda/context.ts';
import { buildLoginLink } from '../../lib/login/link.ts';
import { escapeHtml } from '../../lib/login/pages.ts';
import { createLoginState, loginStateKey } from '../../lib/login/state.ts';
import {
  API_KEY,
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
  writeTempConfig,
} from '../support/fixtures.ts';
import { functionUrlEvent } from '../support/function-url.ts';

const CALLBACK = 'https://abc123.lambda-url.ap-south-1.on.aws/';

let fx: SandboxFixture;
let output: string[];

function context(): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'kite-token-refresh-test-loginCallback',
    functionVersion: '$LATEST',
    invokedFunctionArn:
      'arn:aws:lambda:ap-south-1:123456789012:function:kite-token-refresh-test-loginCallback',
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/kite-token-refresh-test-loginCallback',
    logStreamName: '2025/11/07/[$LATEST]test',
    getRemainingTimeInMillis: () => 15_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

async function callback(url: URL, method = 'GET'): Promise<LoginCallbackResult> {
  return (await handler(functionUrlEvent(url, method), context())) as LoginCallbackResult;
}

/** Follows a login link to the sandbox's login page; returns where Kite sends the browser back to. */
async function kiteRedirect(link: string): Promise<URL> {
  const response = await fetch(link, { redirect: 'manual' });
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location') ?? '');
}

const loginLink = (now = new Date()) =>
  buildLoginLink({ apiKey: API_KEY, appSecret: fx.appSecret, now, loginRoot: fx.sandbox.url });

async function seed(extra: Partial<BrokerConfig> = {}) {
  const path = await writeTempConfig(
    seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000', ...extra }),
  );
  process.env.BROKER_CONFIG_URI = path;
  return { path, bytes: await readFile(path, 'utf8') };
}

async function startKite(userId = 'XX0000') {
  fx = await startSandbox({ issueRefreshTokens: false, redirectUrl: CALLBACK, userId });
  process.env.KITE_API_SECRET = fx.appSecret;
}

function expectNoLeaks(...pages: LoginCallbackResult[]) {
  const seen = [...output, ...pages.map((p) => p.body)].join('\n');
  expect(leakedTokens(fx.sandbox, seen)).toEqual([]);
}

beforeEach(async () => {
  resetLambdaContext();
  output = [];
  // Powertools writes JSON lines to stdout and stderr; capture them to sweep for tokens.
  const capture = (chunk: unknown) => {
    output.push(String(chunk));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  logger.setLogLevel('DEBUG');
  await startKite();
});

afterEach(async () => {
  logger.setLogLevel('SILENT');
  vi.restoreAllMocks();
  delete process.env.BROKER_CONFIG_URI;
  delete process.env.KITE_API_SECRET;
  delete process.env.LOGIN_ALLOW_FIRST_PIN;
  delete process.env.LOGIN_STATE_SCOPE;
  resetLambdaContext();
  await fx.sandbox.close();
});

describe('login-callback handler', () => {
  it('completes the round trip: link, Kite login, callback, and a stored token that works', async () => {
    const { path } = await seed();

    const page = await callback(await kiteRedirect(loginLink()));

    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(
      /Logged in as XX0000 — valid until 06:00 IST (today|tomorrow) \(\d{4}-\d{2}-\d{2} 06:00:00 IST\)\./,
    );
    expect(page.headers).toMatchObject({
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    });
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-/);
    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    expect(stored.user_id).toBe('XX0000');

    let status = '';
    await runCli(['status', '--config', path], {
      stdout: (t) => (status += t),
      stderr: (t) => (status += t),
    });
    expect(status).toContain('User:          XX0000');
    expect(status).toContain('Access token:  present');
    expect(status).toContain('Refresh due:   no');

    const logged = output.join('');
    expect(logged).toContain('✅ Logged in as XX0000');
    expect(logged).toContain('"LoginSucceeded"');
    expectNoLeaks(page);
    expect(leakedTokens(fx.sandbox, status)).toEqual([]);
  });

  it('answers a replayed callback with 410 and leaves the file byte for byte', async () => {
    const { path } = await seed();
    const redirect = await kiteRedirect(loginLink());
    const first = await callback(redirect);
    expect(first.statusCode).toBe(200);
    const after = await readFile(path, 'utf8');

    const replay = await callback(redirect);

    expect(replay.statusCode).toBe(410);
    expect(replay.body).toContain('already completed');
    expect(await readFile(path, 'utf8')).toBe(after);
    expectNoLeaks(first, replay);
  });

  it('refuses a second login with the same link with 410, without asking Kite or writing', async () => {
    const { path } = await seed();
    const link = loginLink();
    expect((await callback(await kiteRedirect(link))).statusCode).toBe(200);
    const after = await readFile(path, 'utf8');

    // The link opened again: Kite logs in and sends a new request token with the same state.
    const again = await callback(await kiteRedirect(link));

    expect(again.statusCode).toBe(410);
    expect(again.body).toContain('This login link was already used');
    expect(fx.sandbox.calls['POST /session/token']).toBe(1);
    expect(await readFile(path, 'utf8')).toBe(after);
    expectNoLeaks(again);
  });

  it('asks Kite at most three times for one link, however many request tokens are invented for it', async () => {
    const { path, bytes } = await seed();
    const redirect = await kiteRedirect(loginLink());
    const statuses: number[] = [];

    for (let i = 0; i < 200; i++) {
      redirect.searchParams.set('request_token', randomUUID().replaceAll('-', ''));
      statuses.push((await callback(redirect)).statusCode);
    }

    expect(fx.sandbox.calls['POST /session/token']).toBe(3);
    expect(statuses.slice(0, 3)).toEqual([410, 410, 410]);
    expect(new Set(statuses.slice(3))).toEqual(new Set([429]));
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it('refuses a first login with 403 when broker-config.json names no account, logging that session out', async () => {
    const { path, bytes } = await seed({ user_id: undefined });

    const page = await callback(await kiteRedirect(loginLink()));

    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('names no account (user_id)');
    expect(page.body).toContain(escapeHtml('"user_id": "XX0000"'));
    expect(fx.sandbox.calls['DELETE /session/token']).toBe(1);
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expectNoLeaks(page);
  });

  it('pins the first login when the deployment sets LOGIN_ALLOW_FIRST_PIN=true', async () => {
    const { path } = await seed({ user_id: undefined });
    process.env.LOGIN_ALLOW_FIRST_PIN = 'true';

    const page = await callback(await kiteRedirect(loginLink()));

    expect(page.statusCode).toBe(200);
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ user_id: 'XX0000' });
    expectNoLeaks(page);
  });

  it('takes only links minted for its own stage when LOGIN_STATE_SCOPE names one', async () => {
    const { path, bytes } = await seed();
    process.env.LOGIN_STATE_SCOPE = 'prod';
    const minted = (scope?: string) =>
      buildLoginLink({ apiKey: API_KEY, appSecret: fx.appSecret, loginRoot: fx.sandbox.url, scope });

    const otherStage = await callback(await kiteRedirect(minted('dev')));
    const unscoped = await callback(await kiteRedirect(minted()));

    expect([otherStage.statusCode, unscoped.statusCode]).toEqual([403, 403]);
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expect(fx.sandbox.calls['POST /session/token'] ?? 0).toBe(0);

    const own = await callback(await kiteRedirect(minted('prod')));

    expect(own.statusCode).toBe(200);
    expectNoLeaks(otherStage, unscoped, own);
  });

  it('refuses a tampered state with 403 and writes nothing', async () => {
    const { path, bytes } = await seed();
    const redirect = await kiteRedirect(loginLink());
    const state = redirect.searchParams.get('state') ?? '';
    const at = state.length - 10;
    redirect.searchParams.set(
      'state',
      `${state.slice(0, at)}${state[at] === 'A' ? 'B' : 'A'}${state.slice(at + 1)}`,
    );

    const page = await callback(redirect);

    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('not one this service issued');
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expect(fx.sandbox.calls['POST /session/token'] ?? 0).toBe(0);
    expectNoLeaks(page);
  });

  it('refuses an expired state with 403 and writes nothing', async () => {
    const { path, bytes } = await seed();

    const page = await callback(await kiteRedirect(loginLink(new Date(Date.now() - 11 * 60_000))));

    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('The login link has expired');
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expectNoLeaks(page);
  });

  it('refuses a callback without a state with 400 and writes nothing', async () => {
    const { path, bytes } = await seed();
    fx.sandbox.setRedirectUrl(CALLBACK);

    // A login started from Kite's bare login page, not from this service's link.
    const page = await callback(await kiteRedirect(fx.sandbox.loginUrl()));

    expect(page.statusCode).toBe(400);
    expect(page.body).toContain('carried no state');
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expectNoLeaks(page);
  });

  it('refuses a login as another account with 403 and writes nothing', async () => {
    await fx.sandbox.close();
    await startKite('YY1111');
    const { path, bytes } = await seed({ user_id: 'XX0000' });

    const page = await callback(await kiteRedirect(loginLink()));

    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('You logged in to Kite as YY1111');
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expectNoLeaks(page);
  });

  it('answers a cancelled login with 400 and writes nothing', async () => {
    const { path, bytes } = await seed();
    const redirect = await kiteRedirect(loginLink());
    redirect.searchParams.set('status', 'cancelled');

    const page = await callback(redirect);

    expect(page.statusCode).toBe(400);
    expect(page.body).toContain('cancelled');
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expectNoLeaks(page);
  });

  it('escapes what it echoes and does not echo an odd status at all', async () => {
    await seed();
    const redirect = await kiteRedirect(loginLink());
    redirect.searchParams.set('status', '<script>alert(1)</script>');

    const page = await callback(redirect);

    expect(page.statusCode).toBe(400);
    expect(page.body).not.toContain('<script>');
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('refuses anything but GET without spending the request token', async () => {
    const { path } = await seed();
    const redirect = await kiteRedirect(loginLink());

    const head = await callback(redirect, 'HEAD');
    const post = await callback(redirect, 'POST');

    expect([head.statusCode, post.statusCode]).toEqual([405, 405]);
    expect(post.headers.allow).toBe('GET');
    expect(fx.sandbox.calls['POST /session/token'] ?? 0).toBe(0);
    expect((await callback(redirect)).statusCode).toBe(200);
    expect(
      fx.sandbox.isAccessTokenValid((JSON.parse(await readFile(path, 'utf8')) as BrokerConfig).api_secret),
    ).toBe(true);
  });

  it('answers 500 with a page, and writes nothing, when the app secret is not configured', async () => {
    const { path, bytes } = await seed();
    delete process.env.KITE_API_SECRET;
    const state = createLoginState(loginStateKey(fx.appSecret));
    const url = new URL(CALLBACK);
    url.search = new URLSearchParams({
      action: 'login',
      type: 'login',
      status: 'success',
      request_token: fx.sandbox.issueRequestToken(),
      state,
    }).toString();

    const page = await callback(url);

    expect(page.statusCode).toBe(500);
    expect(page.body).toContain('not configured correctly');
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expectNoLeaks(page);
  });
});

describe('login-callback handler with several accounts', () => {
  /** Writes <name>.json per account in one folder and points BROKER_CONFIG_URI at all of them. */
  async function seedAccounts(accounts: Record<string, Partial<BrokerConfig>>) {
    const dir = await mkdtemp(join(tmpdir(), 'kite-login-accounts-'));
    const paths: Record<string, string> = {};
    for (const [name, extra] of Object.entries(accounts)) {
      paths[name] = join(dir, `${name}.json`);
      const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '', ...extra });
      await writeFile(paths[name], `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    }
    process.env.BROKER_CONFIG_URI = Object.values(paths).join(',');
    const bytes = async (name: string) => readFile(paths[name] ?? '', 'utf8');
    return { paths, bytes };
  }

  const accountLink = (account?: string) =>
    buildLoginLink({ apiKey: API_KEY, appSecret: fx.appSecret, loginRoot: fx.sandbox.url, account });

  it('stores the token in the account the link names and says which on the page', async () => {
    const { bytes } = await seedAccounts({ alice: { user_id: 'XX0000' }, bob: { user_id: 'XX0000' } });
    const bob = await bytes('bob');

    const page = await callback(await kiteRedirect(accountLink('alice')));

    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Logged in as XX0000 (account alice)');
    expect(fx.sandbox.isAccessTokenValid((JSON.parse(await bytes('alice')) as BrokerConfig).api_secret)).toBe(
      true,
    );
    expect(await bytes('bob')).toBe(bob);
    expectNoLeaks(page);
  });

  it('never writes a login for account A into account B, even when the login is B’s pinned user', async () => {
    const { bytes } = await seedAccounts({ alice: { user_id: 'YY1111' }, bob: { user_id: 'XX0000' } });
    const before = [await bytes('alice'), await bytes('bob')];

    const page = await callback(await kiteRedirect(accountLink('alice')));

    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('wrong_account');
    expect([await bytes('alice'), await bytes('bob')]).toEqual(before);
    expectNoLeaks(page);
  });

  it('answers a valid link for an account it does not keep with a refusal page, without asking Kite', async () => {
    const { bytes } = await seedAccounts({ alice: { user_id: 'XX0000' }, bob: { user_id: 'XX0000' } });
    const before = [await bytes('alice'), await bytes('bob')];

    const page = await callback(await kiteRedirect(accountLink('carol')));

    expect(page.statusCode).toBe(404);
    expect(page.body).toContain(
      'This login link is for account &quot;carol&quot;, which this service does not keep.',
    );
    expect(page.body).toContain('Error 404 (unknown_account)');
    expect(fx.sandbox.calls['POST /session/token'] ?? 0).toBe(0);
    expect([await bytes('alice'), await bytes('bob')]).toEqual(before);
  });

  it('refuses a link that names no account, as an earlier release made them, when it keeps several', async () => {
    await seedAccounts({ alice: { user_id: 'XX0000' }, bob: { user_id: 'XX0000' } });

    const page = await callback(await kiteRedirect(accountLink()));

    expect(page.statusCode).toBe(400);
    expect(page.body).toContain('account_required');
    expect(fx.sandbox.calls['POST /session/token'] ?? 0).toBe(0);
  });
});
