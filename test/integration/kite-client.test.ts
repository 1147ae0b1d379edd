// KiteClient against the loopback Kite sandbox: token exchange, renewal, error mapping, retry policy, and that no
// token or secret ever reaches an error. The official kiteconnect package serves as the checksum oracle.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { KiteConnect } from 'kiteconnect';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checksum,
  type KiteCallInfo,
  KiteClient,
  type KiteClientOptions,
  loginUrl,
} from '../../lib/kite/client.ts';
import { ConfigError, KiteApiError, KiteNetworkError } from '../../lib/shared/errors.ts';
import { type KiteSandbox, type KiteSandboxOptions, startKiteSandbox } from '../../testing/kite-sandbox.ts';

const API_KEY = 'kite_test_key';
const API_SECRET = 'app-secret-9f8e7d6c5b4a';

let sandbox: KiteSandbox;

async function restartSandbox(options: Partial<KiteSandboxOptions> = {}): Promise<KiteSandbox> {
  await sandbox?.close();
  sandbox = await startKiteSandbox({ apiKey: API_KEY, apiSecret: API_SECRET, ...options });
  return sandbox;
}

function client(options: Partial<KiteClientOptions> = {}): KiteClient {
  return new KiteClient({
    apiKey: API_KEY,
    apiSecret: API_SECRET,
    baseUrl: sandbox.url,
    timeoutMs: 2000,
    ...options,
    retry: { baseDelayMs: 1, maxDelayMs: 5, ...options.retry },
  });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error: unknown) {
    return error;
  }
  throw new Error('expected the call to fail');
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

beforeEach(async () => {
  await restartSandbox();
});

afterEach(async () => {
  await sandbox.close();
});

describe('checksum', () => {
  it('is the hex SHA-256 of api_key + token + api_secret', () => {
    const expected = createHash('sha256').update(`${API_KEY}req-token-123${API_SECRET}`).digest('hex');

    expect(checksum(API_KEY, 'req-token-123', API_SECRET)).toBe(expected);
    expect(KiteClient.checksum(API_KEY, 'req-token-123', API_SECRET)).toBe(expected);
  });

  it('equals the checksum the official kiteconnect client computes and sends', async () => {
    const requireFromKite = createRequire(createRequire(import.meta.url).resolve('kiteconnect'));
    const cryptoJsSha256 = requireFromKite('crypto-js/sha256') as (text: string) => { toString(): string };
    const kc = new KiteConnect({ api_key: API_KEY, root: sandbox.url });
    const sentBodies: string[] = [];
    (
      kc as unknown as {
        requestInstance: { interceptors: { request: { use(f: (c: { data?: unknown }) => unknown): void } } };
      }
    ).requestInstance.interceptors.request.use((config) => {
      if (typeof config.data === 'string') sentBodies.push(config.data);
      return config;
    });
    const requestToken = sandbox.issueRequestToken();

    const session = await kc.generateSession(requestToken, API_SECRET);
    const renewed = await kc.renewAccessToken(session.refresh_token, API_SECRET);

    expect(renewed.access_token).toHaveLength(32);
    expect(new URLSearchParams(sentBodies[0]).get('checksum')).toBe(
      checksum(API_KEY, requestToken, API_SECRET),
    );
    expect(new URLSearchParams(sentBodies[1]).get('checksum')).toBe(
      checksum(API_KEY, session.refresh_token, API_SECRET),
    );
    expect(cryptoJsSha256(API_KEY + requestToken + API_SECRET).toString()).toBe(
      checksum(API_KEY, requestToken, API_SECRET),
    );
  });
});

describe('loginUrl', () => {
  it('builds the v3 login URL with the api key', () => {
    expect(loginUrl('abc123')).toBe('https://kite.zerodha.com/connect/login?v=3&api_key=abc123');
  });

  it('URL-encodes redirect_params as one query-string value', () => {
    const url = new URL(loginUrl('abc123', { state: 'x y', next: '/a&b' }));

    expect(url.searchParams.get('redirect_params')).toBe('state=x+y&next=%2Fa%26b');
    expect(url.search).toContain('redirect_params=state%3Dx%2By%26next%3D%252Fa%2526b');
  });
});

describe('KiteClient', () => {
  it('exchanges a request token for a session', async () => {
    const kite = client();

    const session = await kite.generateSession(sandbox.issueRequestToken());

    expect(session.userId).toBe('XX0000');
    expect(session.accessToken).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(session.refreshToken).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(session.publicToken).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(session.loginTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    expect(session.apiKey).toBe(API_KEY);
    expect(sandbox.isAccessTokenValid(session.accessToken)).toBe(true);
  });

  it('sends X-Kite-Version 3 and a form-encoded body, and refuses redirects', async () => {
    const seen: { headers: Headers; body: unknown; redirect: unknown }[] = [];
    const recordingFetch: typeof fetch = (input, init) => {
      seen.push({ headers: new Headers(init?.headers), body: init?.body, redirect: init?.redirect });
      return fetch(input, init);
    };
    const kite = client({ fetch: recordingFetch });

    await kite.generateSession(sandbox.issueRequestToken());

    const [request] = seen;
    expect(request?.headers.get('x-kite-version')).toBe('3');
    expect(request?.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    expect(typeof request?.body).toBe('string');
    expect(new URLSearchParams(String(request?.body)).get('api_key')).toBe(API_KEY);
    expect(request?.redirect).toBe('manual');
  });

  it('returns an empty refresh token for an ordinary app', async () => {
    await restartSandbox({ issueRefreshTokens: false });

    const session = await client().generateSession(sandbox.issueRequestToken());

    expect(session.refreshToken).toBe('');
  });

  it('renews with a refresh token when Kite answers the full session object', async () => {
    const seed = sandbox.mintSession();

    const renewed = await client().renewAccessToken(seed.refreshToken);

    expect(renewed.accessToken).not.toBe(seed.accessToken);
    expect(renewed.refreshToken).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(renewed.userName).toBe('Kite Sandbox');
    expect(sandbox.isAccessTokenValid(renewed.accessToken)).toBe(true);
  });

  it('renews when Kite answers the minimal {user_id, access_token, refresh_token} shape', async () => {
    await restartSandbox({ renewResponse: 'minimal' });
    const seed = sandbox.mintSession();

    const renewed = await client().renewAccessToken(seed.refreshToken);

    expect(renewed).toEqual({
      userId: 'XX0000',
      accessToken: renewed.accessToken,
      refreshToken: renewed.refreshToken,
    });
    expect(sandbox.isAccessTokenValid(renewed.accessToken)).toBe(true);
  });

  it('reads the profile with a live access token', async () => {
    const seed = sandbox.mintSession();

    const profile = await client().getProfile(seed.accessToken);

    expect(profile).toEqual({ userId: 'XX0000', userName: 'Kite Sandbox', email: 'sandbox@example.invalid' });
  });

  it('gets 403 TokenException on the profile once the 06:00 IST flush has passed', async () => {
    let clock = new Date('2026-03-02T15:00:00+05:30');
    await restartSandbox({ now: () => clock });
    const session = await client().generateSession(sandbox.issueRequestToken());
    await client().getProfile(session.accessToken);

    clock = new Date('2026-03-03T06:00:01+05:30');
    const error = await rejection(client().getProfile(session.accessToken));

    expect(error).toBeInstanceOf(KiteApiError);
    expect(error).toMatchObject({ status: 403, errorType: 'TokenException' });
    expect((error as Error).message).toBe('Incorrect `api_key` or `access_token`.');
    expect(sandbox.calls['GET /user/profile']).toBe(2);
  });

  it('gets 403 TokenException on the profile for a seeded expired token', async () => {
    const stale = sandbox.mintSession({ expired: true });

    const error = await rejection(client().getProfile(stale.accessToken));

    expect(error).toMatchObject({ status: 403, errorType: 'TokenException' });
  });

  it('rejects a request token used a second time, without retrying', async () => {
    const requestToken = sandbox.issueRequestToken();
    const kite = client();
    await kite.generateSession(requestToken);

    const error = await rejection(kite.generateSession(requestToken));

    expect(error).toBeInstanceOf(KiteApiError);
    expect(error).toMatchObject({ status: 403, errorType: 'TokenException', retryable: false });
    expect((error as Error).message).toBe('Token is invalid or has expired.');
    expect(sandbox.calls['POST /session/token']).toBe(2);
  });

  it('maps a revoked refresh token to 403 TokenException and does not retry', async () => {
    const seed = sandbox.mintSession();
    sandbox.revokeRefreshTokens();

    const error = await rejection(client().renewAccessToken(seed.refreshToken));

    expect(error).toBeInstanceOf(KiteApiError);
    expect(error).toMatchObject({ status: 403, errorType: 'TokenException' });
    expect(sandbox.calls['POST /session/refresh_token']).toBe(1);
  });

  it('maps a wrong app secret to 400 InputException "Invalid `checksum`." and does not retry', async () => {
    const seed = sandbox.mintSession();

    const error = await rejection(
      client({ apiSecret: 'not-the-secret' }).renewAccessToken(seed.refreshToken),
    );

    expect(error).toBeInstanceOf(KiteApiError);
    expect(error).toMatchObject({ status: 400, errorType: 'InputException' });
    expect((error as Error).message).toBe('Invalid `checksum`.');
    expect(sandbox.calls['POST /session/refresh_token']).toBe(1);
  });

  it('retries 429 NetworkException up to maxAttempts, then throws it', async () => {
    const seed = sandbox.mintSession();
    sandbox.failNext({ endpoint: 'POST /session/refresh_token', times: 10, status: 429 });

    const error = await rejection(client({ retry: { maxAttempts: 3 } }).renewAccessToken(seed.refreshToken));

    expect(error).toBeInstanceOf(KiteApiError);
    expect(error).toMatchObject({ status: 429, errorType: 'NetworkException', retryable: true });
    expect((error as Error).message).toBe('Too many requests');
    expect(sandbox.calls['POST /session/refresh_token']).toBe(3);
  });

  it('recovers from a 503 on the next attempt and reports each attempt to onCall', async () => {
    const seed = sandbox.mintSession();
    sandbox.failNext({ endpoint: 'POST /session/refresh_token', times: 1, status: 503 });
    const reported: KiteCallInfo[] = [];

    const renewed = await client({ onCall: (info) => reported.push(info) }).renewAccessToken(
      seed.refreshToken,
    );

    expect(renewed.accessToken).toHaveLength(32);
    expect(reported.map(({ endpoint, status, attempt }) => ({ endpoint, status, attempt }))).toEqual([
      { endpoint: 'POST /session/refresh_token', status: 503, attempt: 1 },
      { endpoint: 'POST /session/refresh_token', status: 200, attempt: 2 },
    ]);
    expect(reported.every((info) => info.durationMs >= 0)).toBe(true);
  });

  it('maps a persistent 503 to KiteApiError 503 NetworkException after maxAttempts', async () => {
    sandbox.failNext({ times: 10, status: 503 });

    const error = await rejection(client().getProfile('whatever-token'));

    expect(error).toMatchObject({ status: 503, errorType: 'NetworkException' });
    expect((error as Error).message).toBe('Service unavailable');
    expect(sandbox.calls['GET /user/profile']).toBe(4);
  });

  it('maps a non-JSON 502 page to KiteApiError NetworkException and retries it', async () => {
    sandbox.failNext({ times: 10, status: 502, rawBody: '<html><body>502 Bad Gateway</body></html>' });

    const error = await rejection(client({ retry: { maxAttempts: 2 } }).getProfile('whatever-token'));

    expect(error).toBeInstanceOf(KiteApiError);
    expect(error).toMatchObject({ status: 502, errorType: 'NetworkException' });
    expect((error as Error).message).toContain('non-JSON body (text/html)');
    expect((error as Error).message).not.toContain('<html>');
    expect(sandbox.calls['GET /user/profile']).toBe(2);
  });

  it('maps a non-JSON 4xx to GeneralException and does not retry it', async () => {
    sandbox.failNext({ times: 10, status: 404, rawBody: 'not here' });

    const error = await rejection(client().getProfile('whatever-token'));

    expect(error).toMatchObject({ status: 404, errorType: 'GeneralException' });
    expect(sandbox.calls['GET /user/profile']).toBe(1);
  });

  it('maps a closed port to KiteNetworkError after retrying', async () => {
    const port = await closedPort();
    const reported: KiteCallInfo[] = [];
    const kite = client({ baseUrl: `http://127.0.0.1:${port}`, onCall: (info) => reported.push(info) });

    const error = await rejection(kite.getProfile('whatever-token'));

    expect(error).toBeInstanceOf(KiteNetworkError);
    expect(error).toMatchObject({ timedOut: false });
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect(reported.map((info) => info.status)).toEqual(['network', 'network', 'network', 'network']);
  });

  it('maps a request that never answers to KiteNetworkError with timedOut', async () => {
    sandbox.hang('GET /user/profile', 10);

    const error = await rejection(
      client({ timeoutMs: 50, retry: { maxAttempts: 2 } }).getProfile('t0ken-value'),
    );

    expect(error).toBeInstanceOf(KiteNetworkError);
    expect(error).toMatchObject({ timedOut: true });
    expect(sandbox.calls['GET /user/profile']).toBe(2);
  });

  it('stops retrying when the total budget is spent', async () => {
    sandbox.hang('GET /user/profile', 100);
    const kite = client({ timeoutMs: 100, retry: { maxAttempts: 50, totalBudgetMs: 250 } });
    const started = Date.now();

    const error = await rejection(kite.getProfile('whatever-token'));

    expect(error).toBeInstanceOf(KiteNetworkError);
    expect(Date.now() - started).toBeLessThan(600);
    expect(sandbox.calls['GET /user/profile']).toBeLessThanOrEqual(3);
  });

  it('shortens the per-attempt timeout to what is left of the budget', async () => {
    sandbox.hang('GET /user/profile', 100);
    const kite = client({ timeoutMs: 5000, retry: { totalBudgetMs: 150 } });
    const started = Date.now();

    const error = await rejection(kite.getProfile('whatever-token'));

    expect(error).toMatchObject({ timedOut: true });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('asks about a profile within a shorter budget when the caller gives one, never a longer one', async () => {
    sandbox.hang('GET /user/profile', 100);
    const kite = client({ timeoutMs: 5000, retry: { totalBudgetMs: 20_000 } });
    const started = Date.now();

    const error = await rejection(kite.getProfile('whatever-token', { budgetMs: 150 }));

    expect(error).toMatchObject({ timedOut: true });
    expect(Date.now() - started).toBeLessThan(1000);
    const short = client({ timeoutMs: 100, retry: { maxAttempts: 50, totalBudgetMs: 250 } });
    const startedShort = Date.now();
    await rejection(short.getProfile('whatever-token', { budgetMs: 60_000 }));
    expect(Date.now() - startedShort).toBeLessThan(600);
  });

  it('keeps an earlier lost response as the cause when the retry finds the refresh token used up', async () => {
    const seed = sandbox.mintSession();
    sandbox.dropNextResponse('POST /session/refresh_token', 1);

    const error = await rejection(client().renewAccessToken(seed.refreshToken));

    expect(error).toMatchObject({ status: 403, errorType: 'TokenException' });
    expect((error as Error).cause).toBeInstanceOf(KiteNetworkError);
    expect(sandbox.calls['POST /session/refresh_token']).toBe(2);
  });

  it('treats a success body without access_token as a KiteApiError, not a crash', async () => {
    const kite = client({
      fetch: async () => jsonResponse({ status: 'success', data: { user_id: 'XX0000' } }),
    });

    const error = await rejection(kite.generateSession('some-request-token'));

    expect(error).toBeInstanceOf(KiteApiError);
    expect(error).toMatchObject({ status: 200, errorType: 'DataException' });
    expect((error as Error).message).toContain('access_token');
  });

  it('treats a 200 that is not Kite JSON as a DataException', async () => {
    const kite = client({ fetch: async () => new Response('<html>login</html>', { status: 200 }) });

    const error = await rejection(kite.getProfile('whatever-token'));

    expect(error).toMatchObject({ status: 200, errorType: 'DataException' });
  });

  it('treats a Kite error body sent with HTTP 200 as that error', async () => {
    const body = {
      status: 'error',
      message: 'Invalid session credentials',
      data: null,
      error_type: 'TokenException',
    };
    const kite = client({ fetch: async () => jsonResponse(body) });

    const error = await rejection(kite.getProfile('whatever-token'));

    expect(error).toMatchObject({ status: 200, errorType: 'TokenException', retryable: false });
  });

  it('logs a session out and invalidates a refresh token', async () => {
    const seed = sandbox.mintSession();
    const kite = client();

    const loggedOut = await kite.invalidateAccessToken(seed.accessToken);
    const dropped = await kite.invalidateRefreshToken(seed.refreshToken);

    expect(loggedOut).toBe(true);
    expect(dropped).toBe(true);
    expect(sandbox.isAccessTokenValid(seed.accessToken)).toBe(false);
    await expect(kite.renewAccessToken(seed.refreshToken)).rejects.toMatchObject({ status: 403 });
  });

  it('ignores an onCall hook that throws', async () => {
    const seed = sandbox.mintSession();
    const kite = client({
      onCall: () => {
        throw new Error('metrics backend down');
      },
    });

    const profile = await kite.getProfile(seed.accessToken);

    expect(profile.userId).toBe('XX0000');
  });

  it('refuses a plain-http API root that is not loopback', () => {
    expect(
      () => new KiteClient({ apiKey: API_KEY, apiSecret: API_SECRET, baseUrl: 'http://api.kite.trade' }),
    ).toThrow(ConfigError);
  });

  it('never puts a token, checksum or the secret in an error', async () => {
    const seed = sandbox.mintSession();
    const usedRequestToken = sandbox.issueRequestToken();
    await client().generateSession(usedRequestToken);
    const port = await closedPort();
    const errors: unknown[] = [];
    // A Kite message that quotes the token back must come out masked.
    sandbox.failNext({
      endpoint: 'GET /user/profile',
      times: 1,
      status: 403,
      message: `bad ${seed.accessToken}`,
    });
    errors.push(await rejection(client().getProfile(seed.accessToken)));
    errors.push(await rejection(client().generateSession(usedRequestToken)));
    errors.push(
      await rejection(client({ apiSecret: 'wrong-secret-value' }).renewAccessToken(seed.refreshToken)),
    );
    errors.push(
      await rejection(
        client({ baseUrl: `http://127.0.0.1:${port}` }).invalidateAccessToken(seed.accessToken),
      ),
    );
    sandbox.hang('POST /session/refresh_token', 10);
    errors.push(
      await rejection(
        client({ timeoutMs: 30, retry: { maxAttempts: 2 } }).renewAccessToken(seed.refreshToken),
      ),
    );
    sandbox.revokeRefreshTokens();
    sandbox.dropNextResponse('POST /session/token', 1);
    errors.push(await rejection(client().generateSession(sandbox.issueRequestToken())));
    const secrets = [
      ...sandbox.issuedTokens(),
      API_SECRET,
      'wrong-secret-value',
      checksum(API_KEY, seed.refreshToken, API_SECRET),
      checksum(API_KEY, usedRequestToken, API_SECRET),
    ];

    expect(errors).toHaveLength(6);
    for (const error of errors) {
      const renderings = [
        String(error),
        (error as Error).message,
        JSON.stringify(error),
        inspect(error, { depth: 10, showHidden: true }),
      ];
      for (const text of renderings) {
        for (const secret of secrets) expect(text).not.toContain(secret);
      }
    }
    expect((errors[0] as Error).message).toBe(`bad ${seed.accessToken.slice(0, 4)}…`);
  });
});
