// The login callback's pages after a login: a fresh "Log in again" link where a new login can help (never for a
// state this service did not sign), and a signed status link on success. And `kite-token status-url`, whose link
// the callback takes.
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handler, type LoginCallbackResult } from '../../functions/login-callback.ts';
import { resetLambdaContext } from '../../lib/lambda/context.ts';
import { buildLoginLink } from '../../lib/login/link.ts';
import { loginStateKey, verifyLoginState } from '../../lib/login/state.ts';
import { statusLinkKey, verifyStatusToken } from '../../lib/login/status-link.ts';
import { cleanEnv } from '../../testing/clean-env.ts';
import { API_KEY, leakedTokens, type SandboxFixture, seedConfig, startSandbox } from '../support/fixtures.ts';
import { buttonLinks, functionUrlEvent, openOnCallback, STRICT_HEADERS } from '../support/function-url.ts';
import { lambdaContextFor } from '../support/lambda-context.ts';

const CALLBACK = 'https://abc123.lambda-url.ap-south-1.on.aws/';

let fx: SandboxFixture;
const saved = { ...process.env };

beforeEach(async () => {
  fx = await startSandbox({ issueRefreshTokens: false, redirectUrl: CALLBACK, userId: 'XX0000' });
  process.env.KITE_API_SECRET = fx.appSecret;
  resetLambdaContext();
});

afterEach(async () => {
  process.env = { ...saved };
  resetLambdaContext();
  await fx.sandbox.close();
});

/** Writes <name>.json per account in one folder and points BROKER_CONFIG_URI at all of them. */
async function seedAccounts(...names: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kite-pages-'));
  const paths = names.map((name) => join(dir, `${name}.json`));
  for (const path of paths) {
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000' });
    await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  }
  process.env.BROKER_CONFIG_URI = paths.join(',');
}

const loginLink = (options: { account?: string; now?: Date; appSecret?: string } = {}) =>
  buildLoginLink({
    apiKey: API_KEY,
    appSecret: options.appSecret ?? fx.appSecret,
    loginRoot: fx.sandbox.url,
    ...options,
  });

/** Follows a login link through the sandbox's login; returns where Kite sends the browser back to. */
async function kiteRedirect(link: string): Promise<URL> {
  const response = await fetch(link, { redirect: 'manual' });
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location') ?? '');
}

/** The account a login link's state names, when the state verifies with the deployment's key. */
function linkAccount(link: string): string | undefined | false {
  const params = new URLSearchParams(new URL(link).searchParams.get('redirect_params') ?? '');
  const check = verifyLoginState(loginStateKey(fx.appSecret), params.get('state'));
  return check.ok ? check.account : false;
}

describe('the login callback’s failure pages', () => {
  it('offers "Log in again" with a fresh link for the same account when the link has expired', async () => {
    await seedAccounts('alice', 'bob');
    const expired = loginLink({ account: 'bob', now: new Date(Date.now() - 11 * 60_000) });

    const page = await openOnCallback(await kiteRedirect(expired));

    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('The login link has expired');
    expect(page.body).toContain('>Log in again</a>');
    const [retry, ...more] = buttonLinks(page.body);
    expect(more).toEqual([]);
    expect(linkAccount(retry ?? '')).toBe('bob');
    expect(page.headers).toMatchObject(STRICT_HEADERS);

    // The fresh link works: it logs bob in.
    const again = await openOnCallback(await kiteRedirect(retry ?? ''));
    expect(again.statusCode).toBe(200);
    expect(again.body).toContain('Logged in as XX0000 (account bob)');
    expect(leakedTokens(fx.sandbox, page.body + again.body)).toEqual([]);
  });

  it('never lets a chain of "Log in again" links outlive the first link by more than three hours', async () => {
    await seedAccounts('alice');
    const issued = Date.now() - 2 * 60 * 60_000;
    const first = loginLink({ account: 'alice', now: new Date(issued) });
    const cancelled = (link: string) => {
      const state = new URLSearchParams(new URL(link).searchParams.get('redirect_params') ?? '').get('state');
      return `${CALLBACK}?status=cancelled&state=${encodeURIComponent(state ?? '')}`;
    };

    const page = await openOnCallback(cancelled(first));
    const [retry] = buttonLinks(page.body);
    const params = new URLSearchParams(new URL(retry ?? '').searchParams.get('redirect_params') ?? '');
    const check = verifyLoginState(loginStateKey(fx.appSecret), params.get('state'));

    // The fresh link keeps the first one's issue time: usable for 10 minutes from now, no longer.
    expect(check).toMatchObject({ ok: true, issuedAt: new Date(issued) });
    expect(check.ok && check.expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(10 * 60_000);
    // Made 2 h 56 min ago, a link earns no fresh one: too little of its three hours is left.
    const old = loginLink({ account: 'alice', now: new Date(Date.now() - 176 * 60_000) });
    expect(buttonLinks((await openOnCallback(cancelled(old))).body)).toEqual([]);
  });

  it('offers a fresh link for the only document when a used link is opened again', async () => {
    await seedAccounts('broker-config');
    const redirect = await kiteRedirect(loginLink());
    expect((await openOnCallback(redirect)).statusCode).toBe(200);

    const replay = await openOnCallback(redirect);

    expect(replay.statusCode).toBe(410);
    const [retry] = buttonLinks(replay.body);
    // A single document's links name no account, as before.
    expect(linkAccount(retry ?? '')).toBeUndefined();
  });

  it('offers a fresh link when Kite refuses the request token', async () => {
    await seedAccounts('alice', 'bob');
    const redirect = await kiteRedirect(loginLink({ account: 'alice' }));
    redirect.searchParams.set('request_token', 'a'.repeat(32));

    const page = await openOnCallback(redirect);

    expect(page.statusCode).toBe(410);
    expect(page.body).toContain('request_token_used');
    expect(buttonLinks(page.body).map(linkAccount)).toEqual(['alice']);
  });

  it.each([
    [
      'a tampered state',
      (url: URL) => {
        const state = url.searchParams.get('state') ?? '';
        const at = state.length - 10;
        url.searchParams.set(
          'state',
          `${state.slice(0, at)}${state[at] === 'A' ? 'B' : 'A'}${state.slice(at + 1)}`,
        );
      },
    ],
    ['no state at all', (url: URL) => url.searchParams.delete('state')],
  ])('gives %s no fresh link: 403 or 400 stays a dead end', async (_what, spoil) => {
    await seedAccounts('alice', 'bob');
    const redirect = await kiteRedirect(loginLink({ account: 'alice' }));
    spoil(redirect);

    const page = await openOnCallback(redirect);

    expect([400, 403]).toContain(page.statusCode);
    expect(page.body).not.toContain('class="button"');
    expect(page.body).not.toContain('Log in again');
  });

  it('gives a state signed with another app secret no fresh link, even when it has merely expired', async () => {
    await seedAccounts('alice', 'bob');
    const forged = loginLink({
      account: 'alice',
      appSecret: 'not-the-app-secret',
      now: new Date(Date.now() - 3_600_000),
    });

    const page = await openOnCallback(await kiteRedirect(forged));

    expect(page.statusCode).toBe(403);
    expect(buttonLinks(page.body)).toEqual([]);
  });
});

describe('the login callback’s success page', () => {
  it('links the status page with a fresh signed link for this Function URL, which the callback takes', async () => {
    await seedAccounts('alice', 'bob');

    const page = await openOnCallback(await kiteRedirect(loginLink({ account: 'alice' })));

    expect(page.statusCode).toBe(200);
    const [status, ...more] = buttonLinks(page.body);
    expect(more).toEqual([]);
    const url = new URL(status ?? '');
    expect(`${url.origin}${url.pathname}`).toBe(`${CALLBACK}status`);
    const check = verifyStatusToken(statusLinkKey(fx.appSecret), url.searchParams.get('s'));
    expect(check.ok).toBe(true);
    const statusPage = await openOnCallback(url);
    expect(statusPage.statusCode).toBe(200);
    expect(statusPage.body).toContain('<h2>alice <small>(XX0000)</small></h2>');
    expect(leakedTokens(fx.sandbox, page.body + statusPage.body)).toEqual([]);
  });
});

describe('the status link on a deployed Function URL', () => {
  it('stays https whatever x-forwarded-proto a request carries, unless the host is loopback', async () => {
    await seedAccounts('alice');
    const redirect = new URL(await kiteRedirect(loginLink({ account: 'alice' })));
    const event = functionUrlEvent(redirect);
    event.headers['x-forwarded-proto'] = 'http';

    const page = (await handler(event, lambdaContextFor('loginCallback', 15_000))) as LoginCallbackResult;

    expect(page.statusCode).toBe(200);
    expect(buttonLinks(page.body)[0]).toMatch(
      /^https:\/\/abc123\.lambda-url\.ap-south-1\.on\.aws\/status\?s=/,
    );
  });
});

describe('kite-token status-url', () => {
  function statusUrl(args: string[], env: Record<string, string>) {
    return spawnSync(process.execPath, ['bin/kite-token.ts', 'status-url', ...args], {
      encoding: 'utf8',
      env: cleanEnv(env),
    });
  }

  it('prints a link for --callback-url and --stage that the callback takes, and one to refuse elsewhere', async () => {
    await seedAccounts('alice', 'bob');
    process.env.LOGIN_STATE_SCOPE = 'prod';

    const run = statusUrl(['--callback-url', CALLBACK, '--stage', 'prod'], { KITE_API_SECRET: fx.appSecret });

    expect(run.status).toBe(0);
    const link = run.stdout.trim();
    expect(link).toMatch(/^https:\/\/abc123\.lambda-url\.ap-south-1\.on\.aws\/status\?s=s1\.\d+\.[\w-]{43}$/);
    expect(run.stderr).toContain('the link works until');
    const page = await openOnCallback(link);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<h2>bob');

    process.env.LOGIN_STATE_SCOPE = 'dev';
    resetLambdaContext();
    expect((await openOnCallback(link)).statusCode).toBe(403);
  });

  it('takes the callback URL from KITE_REDIRECT_URL and the lifetime from --hours', () => {
    const before = Date.now();

    const run = statusUrl(['--hours', '1'], { KITE_API_SECRET: fx.appSecret, KITE_REDIRECT_URL: CALLBACK });

    expect(run.status).toBe(0);
    const token = new URL(run.stdout.trim()).searchParams.get('s');
    const check = verifyStatusToken(statusLinkKey(fx.appSecret), token);
    expect(check.ok && check.expiresAt.getTime() - before).toBeGreaterThan(3_590_000);
    expect(check.ok && check.expiresAt.getTime() - before).toBeLessThan(3_610_000);
  });

  it('exits 2 without a callback URL, with a plain-http one, or without the app secret', () => {
    expect(statusUrl([], { KITE_API_SECRET: fx.appSecret }).status).toBe(2);
    expect(
      statusUrl(['--callback-url', 'http://example.com/'], { KITE_API_SECRET: fx.appSecret }).status,
    ).toBe(2);
    expect(statusUrl(['--callback-url', CALLBACK], {}).status).toBe(2);
    expect(
      statusUrl(['--callback-url', CALLBACK, '--hours', '1000'], { KITE_API_SECRET: fx.appSecret }).status,
    ).toBe(2);
  });
});
