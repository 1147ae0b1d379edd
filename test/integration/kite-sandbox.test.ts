// The Kite sandbox speaks Kite's session API over raw HTTP: bodies shaped like the official samples, Kite's error
// bodies and statuses, token lifetimes (06:00 IST flush, one-shot request tokens) and its test control surface.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanEnv } from '../../testing/clean-env.ts';
import { type KiteSandbox, type KiteSandboxOptions, startKiteSandbox } from '../../testing/kite-sandbox.ts';

const API_KEY = 'sandbox_test_key';
const API_SECRET = 'sandbox-test-secret';
const TOKEN = /^[A-Za-z0-9]{32}$/;

// Keys of the official mock bodies (zerodha/kiteconnect-mocks generate_session.json and profile.json).
const SESSION_KEYS = [
  'access_token',
  'api_key',
  'avatar_url',
  'broker',
  'email',
  'enctoken',
  'exchanges',
  'login_time',
  'meta',
  'order_types',
  'products',
  'public_token',
  'refresh_token',
  'silo',
  'user_id',
  'user_name',
  'user_shortname',
  'user_type',
];
const PROFILE_KEYS = [
  'avatar_url',
  'broker',
  'email',
  'exchanges',
  'meta',
  'order_types',
  'products',
  'user_id',
  'user_name',
  'user_shortname',
  'user_type',
];

let sandbox: KiteSandbox;

async function restart(options: Partial<KiteSandboxOptions> = {}): Promise<KiteSandbox> {
  await sandbox?.close();
  sandbox = await startKiteSandbox({ apiKey: API_KEY, apiSecret: API_SECRET, ...options });
  return sandbox;
}

function sign(token: string, secret = API_SECRET): string {
  return createHash('sha256')
    .update(API_KEY + token + secret)
    .digest('hex');
}

interface Answer {
  status: number;
  contentType: string;
  body: Record<string, unknown>;
}

async function call(
  method: string,
  path: string,
  options: { form?: Record<string, string>; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { 'X-Kite-Version': '3', ...options.headers };
  let body: string | undefined = options.rawBody;
  if (options.form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(options.form).toString();
  }
  const response = await fetch(sandbox.url + path, { method, headers, body });
  const text = await response.text();
  const contentType = response.headers.get('content-type') ?? '';
  return {
    status: response.status,
    contentType,
    body: contentType.includes('json') ? JSON.parse(text) : { text },
  };
}

function exchange(requestToken: string, secret = API_SECRET): Promise<Answer> {
  return call('POST', '/session/token', {
    form: { api_key: API_KEY, request_token: requestToken, checksum: sign(requestToken, secret) },
  });
}

function renew(refreshToken: string): Promise<Answer> {
  return call('POST', '/session/refresh_token', {
    form: { api_key: API_KEY, refresh_token: refreshToken, checksum: sign(refreshToken) },
  });
}

function profile(accessToken: string): Promise<Answer> {
  return call('GET', '/user/profile', { headers: { Authorization: `token ${API_KEY}:${accessToken}` } });
}

function kiteError(status: number, errorType: string, message: string) {
  return { status, body: { status: 'error', message, data: null, error_type: errorType } };
}

beforeEach(async () => {
  await restart();
});

afterEach(async () => {
  await sandbox.close();
});

describe('startKiteSandbox', () => {
  it('answers POST /session/token with the official session shape and fresh 32-char tokens', async () => {
    const clock = new Date('2026-03-02T16:15:14+05:30');
    await restart({ now: () => clock });

    const answer = await exchange(sandbox.issueRequestToken());

    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('application/json');
    expect(answer.body.status).toBe('success');
    const data = answer.body.data as Record<string, unknown>;
    expect(Object.keys(data).sort()).toEqual(SESSION_KEYS);
    expect(data.access_token).toMatch(TOKEN);
    expect(data.refresh_token).toMatch(TOKEN);
    expect(data.public_token).toMatch(TOKEN);
    expect(data.login_time).toBe('2026-03-02 16:15:14');
    expect(data).toMatchObject({ user_id: 'XX0000', api_key: API_KEY });
  });

  it('gives an ordinary app an empty refresh_token and refuses renewal', async () => {
    await restart({ issueRefreshTokens: false });

    const answer = await exchange(sandbox.issueRequestToken());
    const renewal = await renew('A'.repeat(32));

    expect((answer.body.data as Record<string, unknown>).refresh_token).toBe('');
    expect(renewal).toMatchObject(kiteError(403, 'TokenException', 'Token is invalid or has expired.'));
  });

  it('exchanges a request token only once', async () => {
    const requestToken = sandbox.issueRequestToken();
    await exchange(requestToken);

    const second = await exchange(requestToken);

    expect(second).toMatchObject(kiteError(403, 'TokenException', 'Token is invalid or has expired.'));
  });

  it('lets a request token expire after requestTokenTtlMs', async () => {
    let clock = new Date('2026-03-02T10:00:00+05:30');
    await restart({ now: () => clock, requestTokenTtlMs: 60_000 });
    const requestToken = sandbox.issueRequestToken();

    clock = new Date(clock.getTime() + 61_000);
    const answer = await exchange(requestToken);

    expect(answer).toMatchObject(kiteError(403, 'TokenException', 'Token is invalid or has expired.'));
  });

  it('rejects a wrong checksum with 400 InputException', async () => {
    const answer = await exchange(sandbox.issueRequestToken(), 'wrong-secret');

    expect(answer).toMatchObject(kiteError(400, 'InputException', 'Invalid `checksum`.'));
  });

  it('rejects a request without X-Kite-Version: 3', async () => {
    const answer = await call('GET', '/user/profile', { headers: { 'X-Kite-Version': '2' } });

    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ status: 'error', error_type: 'InputException' });
  });

  it('ignores a JSON body the way Kite does: the api_key is missing', async () => {
    const requestToken = sandbox.issueRequestToken();
    const json = JSON.stringify({
      api_key: API_KEY,
      request_token: requestToken,
      checksum: sign(requestToken),
    });

    const answer = await call('POST', '/session/token', {
      headers: { 'Content-Type': 'application/json' },
      rawBody: json,
    });

    expect(answer).toMatchObject(
      kiteError(400, 'InputException', '`api_key` should be minimum 6 characters in length.'),
    );
  });

  it('rejects an unknown api_key', async () => {
    const answer = await call('POST', '/session/token', {
      form: { api_key: 'other_app_key', request_token: 'x', checksum: 'y' },
    });

    expect(answer).toMatchObject(kiteError(400, 'InputException', 'Invalid `api_key`.'));
  });

  it('answers GET /user/profile with the official profile shape for a live token', async () => {
    const seed = sandbox.mintSession();

    const answer = await profile(seed.accessToken);

    expect(answer.status).toBe(200);
    expect(Object.keys(answer.body.data as object).sort()).toEqual(PROFILE_KEYS);
    expect(answer.body.data).toMatchObject({ user_id: 'XX0000' });
  });

  it('answers 403 TokenException on the profile after the 06:00 IST flush', async () => {
    let clock = new Date('2026-03-02T21:00:00+05:30');
    await restart({ now: () => clock });
    const seed = sandbox.mintSession();

    clock = new Date('2026-03-03T05:59:59+05:30');
    const before = await profile(seed.accessToken);
    clock = new Date('2026-03-03T06:00:00+05:30');
    const after = await profile(seed.accessToken);

    expect(seed.expiresAt.toISOString()).toBe('2026-03-03T00:30:00.000Z');
    expect(before.status).toBe(200);
    expect(after).toMatchObject(kiteError(403, 'TokenException', 'Incorrect `api_key` or `access_token`.'));
    expect(sandbox.isAccessTokenValid(seed.accessToken)).toBe(false);
  });

  it('mints sessions that are live or, on request, already expired', () => {
    const live = sandbox.mintSession();
    const stale = sandbox.mintSession({ expired: true });

    expect(sandbox.isAccessTokenValid(live.accessToken)).toBe(true);
    expect(sandbox.isAccessTokenValid(stale.accessToken)).toBe(false);
    expect(stale.expiresAt.getTime()).toBeLessThan(Date.now());
  });

  it('renews into new tokens, retiring the old refresh token but not the old access token', async () => {
    const seed = sandbox.mintSession();

    const answer = await renew(seed.refreshToken);
    const again = await renew(seed.refreshToken);

    const data = answer.body.data as Record<string, string>;
    expect(answer.status).toBe(200);
    expect(data.access_token).toMatch(TOKEN);
    expect(data.access_token).not.toBe(seed.accessToken);
    expect(data.refresh_token).not.toBe(seed.refreshToken);
    expect(again.status).toBe(403);
    expect(sandbox.isAccessTokenValid(seed.accessToken)).toBe(true);
    expect(sandbox.isAccessTokenValid(data.access_token ?? '')).toBe(true);
  });

  it('can retire the old access token on renewal and keep the old refresh token', async () => {
    await restart({ renewRevokesOldAccessToken: true, renewRevokesOldRefreshToken: false });
    const seed = sandbox.mintSession();

    await renew(seed.refreshToken);
    const again = await renew(seed.refreshToken);

    expect(sandbox.isAccessTokenValid(seed.accessToken)).toBe(false);
    expect(again.status).toBe(200);
  });

  it('answers the minimal renew shape when asked to', async () => {
    await restart({ renewResponse: 'minimal' });
    const seed = sandbox.mintSession();

    const answer = await renew(seed.refreshToken);

    expect(Object.keys(answer.body.data as object).sort()).toEqual([
      'access_token',
      'refresh_token',
      'user_id',
    ]);
  });

  it('logs out an access token given in the query string, as the official clients send it', async () => {
    const seed = sandbox.mintSession();

    const answer = await call('DELETE', `/session/token?api_key=${API_KEY}&access_token=${seed.accessToken}`);

    expect(answer).toMatchObject({ status: 200, body: { status: 'success', data: true } });
    expect(sandbox.isAccessTokenValid(seed.accessToken)).toBe(false);
  });

  it('invalidates a refresh token given in a form body', async () => {
    const seed = sandbox.mintSession();

    const answer = await call('DELETE', '/session/token', {
      form: { api_key: API_KEY, refresh_token: seed.refreshToken },
    });
    const renewal = await renew(seed.refreshToken);

    expect(answer.body).toEqual({ status: 'success', data: true });
    expect(renewal.status).toBe(403);
  });

  it('redirects the login page to the redirect URL with a request token and the redirect_params', async () => {
    await restart({ redirectUrl: 'http://127.0.0.1:9/callback?app=demo' });

    const response = await fetch(sandbox.loginUrl({ state: 'a b', next: '/x&y' }), { redirect: 'manual' });

    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location') ?? '');
    expect(location.origin + location.pathname).toBe('http://127.0.0.1:9/callback');
    expect(Object.fromEntries(location.searchParams)).toMatchObject({
      app: 'demo',
      action: 'login',
      type: 'login',
      status: 'success',
      state: 'a b',
      next: '/x&y',
    });
    const requestToken = location.searchParams.get('request_token') ?? '';
    expect(requestToken).toMatch(TOKEN);
    expect((await exchange(requestToken)).status).toBe(200);
  });

  it('with loginPage, shows a login page that names the app and user, asks for no password and issues nothing', async () => {
    await restart({ redirectUrl: 'http://127.0.0.1:9/callback', loginPage: true, userId: 'AB1234' });

    const response = await fetch(sandbox.loginUrl({ state: 's' }), { redirect: 'manual' });
    const html = await response.text();

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toMatch(
      /^default-src 'none'; style-src 'sha256-[^']+'; form-action 'self' http:\/\/127\.0\.0\.1:9; /,
    );
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(html).toContain('<h1>Login to Kite</h1>');
    expect(html).toContain(API_KEY);
    expect(html).toContain('Log in as AB1234</button>');
    expect(html).toContain('local Kite sandbox');
    expect(html).not.toMatch(/<input|<script|password"|totp"/i);
    expect(sandbox.issuedTokens()).toEqual([]);
  });

  it('with loginPage, redirects only when the button posts the same query to /connect/login/approve', async () => {
    await restart({ redirectUrl: 'http://127.0.0.1:9/callback', loginPage: true });
    const page = await (await fetch(sandbox.loginUrl({ state: 'a b' }))).text();
    const action = /<form method="post" action="([^"]+)">/.exec(page)?.[1]?.replaceAll('&amp;', '&') ?? '';

    const response = await fetch(sandbox.url + action, { method: 'POST', redirect: 'manual' });

    expect(action.startsWith('/connect/login/approve?v=3&api_key=')).toBe(true);
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location') ?? '');
    expect(location.origin + location.pathname).toBe('http://127.0.0.1:9/callback');
    expect(Object.fromEntries(location.searchParams)).toMatchObject({
      action: 'login',
      status: 'success',
      state: 'a b',
    });
    expect((await exchange(location.searchParams.get('request_token') ?? '')).status).toBe(200);
  });

  it('refuses the login page for another api_key', async () => {
    await restart({ redirectUrl: 'http://127.0.0.1:9/callback' });

    const response = await fetch(`${sandbox.url}/connect/login?v=3&api_key=someone_else`, {
      redirect: 'manual',
    });

    expect(response.status).toBe(400);
  });

  it('fails the next calls to one endpoint as told, counting every call', async () => {
    const seed = sandbox.mintSession();
    sandbox.failNext({ endpoint: 'GET /user/profile', times: 2, status: 429 });

    const first = await profile(seed.accessToken);
    const other = await renew(seed.refreshToken);
    const second = await profile(seed.accessToken);
    const third = await profile(seed.accessToken);

    expect(first).toMatchObject(kiteError(429, 'NetworkException', 'Too many requests'));
    expect(other.status).toBe(200);
    expect(second.status).toBe(429);
    expect(third.status).toBe(200);
    expect(sandbox.calls).toEqual({ 'GET /user/profile': 3, 'POST /session/refresh_token': 1 });
  });

  it('serves a raw non-JSON failure body', async () => {
    sandbox.failNext({ times: 1, status: 502, rawBody: '<html>bad gateway</html>' });

    const answer = await call('GET', '/user/profile');

    expect(answer).toMatchObject({
      status: 502,
      contentType: 'text/html',
      body: { text: '<html>bad gateway</html>' },
    });
  });

  it('resets its call counts', async () => {
    await call('GET', '/user/profile');

    sandbox.resetCalls();

    expect(sandbox.calls).toEqual({});
  });

  it('delays answers by the configured latency', async () => {
    sandbox.setLatency(80);
    const started = Date.now();

    await call('GET', '/user/profile');

    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
  });

  it('leaves a hung request unanswered', async () => {
    sandbox.hang('GET /user/profile', 1);

    const hung = fetch(`${sandbox.url}/user/profile`, {
      headers: { 'X-Kite-Version': '3' },
      signal: AbortSignal.timeout(100),
    });

    await expect(hung).rejects.toMatchObject({ name: 'TimeoutError' });
    expect((await call('GET', '/user/profile')).status).toBe(403);
  });

  it('processes a request whose answer it then drops', async () => {
    const requestToken = sandbox.issueRequestToken();
    sandbox.dropNextResponse('POST /session/token', 1);

    await expect(exchange(requestToken)).rejects.toThrow();
    const retry = await exchange(requestToken);

    expect(retry.status).toBe(403);
  });

  it('revokes tokens on command: refresh tokens, one access token, or all of them', async () => {
    const a = sandbox.mintSession();
    const b = sandbox.mintSession();
    const c = sandbox.mintSession();

    sandbox.revokeRefreshTokens();
    sandbox.revokeAccessToken(a.accessToken);
    const afterOne = [a, b, c].map((s) => sandbox.isAccessTokenValid(s.accessToken));
    sandbox.flushAll();
    const afterAll = [a, b, c].map((s) => sandbox.isAccessTokenValid(s.accessToken));

    expect((await renew(b.refreshToken)).status).toBe(403);
    expect(afterOne).toEqual([false, true, true]);
    expect(afterAll).toEqual([false, false, false]);
  });

  it('lists every secret value it issued', async () => {
    const requestToken = sandbox.issueRequestToken();
    const answer = await exchange(requestToken);
    const data = answer.body.data as Record<string, string>;

    const issued = sandbox.issuedTokens();

    for (const value of [
      requestToken,
      data.access_token,
      data.refresh_token,
      data.public_token,
      data.enctoken,
    ]) {
      expect(issued).toContain(value);
    }
    expect(issued.every((token) => TOKEN.test(token))).toBe(true);
  });

  it('runs as a command that prints its URL and api key', async () => {
    const script = fileURLToPath(new URL('../../scripts/kite-sandbox.ts', import.meta.url));
    const child = spawn(process.execPath, [script], {
      env: cleanEnv({ PORT: '0', KITE_API_KEY: 'cli_demo_key' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';

    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('Ctrl+C')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`sandbox exited with ${code}`)));
      });
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
      const answer = await fetch(`${url}/user/profile`, { headers: { 'X-Kite-Version': '3' } });

      expect(output).toContain('cli_demo_key');
      expect(answer.status).toBe(403);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
