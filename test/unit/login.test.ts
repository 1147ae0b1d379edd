import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { toIsoIst } from '../../lib/engine/expiry.ts';
import { localRescuePath } from '../../lib/engine/kept-tokens.ts';
import { completeLogin, exchangeRequestToken, type LoginDeps } from '../../lib/login/exchange.ts';
import { buildLoginLink, loginRootFor } from '../../lib/login/link.ts';
import { describeValidity, LoginError } from '../../lib/login/outcome.ts';
import { LoginAttempts, MAX_FAILED_ATTEMPTS, usedStates, withStateUsed } from '../../lib/login/single-use.ts';
import {
  createLoginState,
  LOGIN_STATE_TTL_MS,
  loginStateKey,
  verifyLoginState,
} from '../../lib/login/state.ts';
import type { ConfigStore } from '../../lib/store/config-store.ts';
import { FileStore } from '../../lib/store/file-store.ts';
import {
  API_KEY,
  captureLog,
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
  writeTempConfig,
} from '../support/fixtures.ts';

const CALLBACK = 'https://abc123.lambda-url.ap-south-1.on.aws/';
const MINUTE = 60_000;

/** Follows the login link to the sandbox's login page and returns where Kite sends the browser back to. */
async function kiteRedirect(link: string): Promise<URLSearchParams> {
  const response = await fetch(link, { redirect: 'manual' });
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location') ?? '').searchParams;
}

/** The state with one character of its signature changed. */
function flipOne(state: string): string {
  const at = state.length - 10;
  return `${state.slice(0, at)}${state[at] === 'A' ? 'B' : 'A'}${state.slice(at + 1)}`;
}

async function loginFailure(promise: Promise<unknown>): Promise<LoginError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LoginError);
  return error as LoginError;
}

describe('login state', () => {
  const key = loginStateKey('app-secret-one');
  const at = new Date('2025-11-07T08:00:00+05:30');

  it('accepts a state it signed and says when it was issued', () => {
    const state = createLoginState(key, at);
    expect(state).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(verifyLoginState(key, state, new Date(at.getTime() + 9 * MINUTE))).toEqual({
      ok: true,
      issuedAt: at,
      expiresAt: new Date(at.getTime() + LOGIN_STATE_TTL_MS),
      nonce: state.split('.')[3],
    });
  });

  it('refuses a state signed with another app secret', () => {
    const state = createLoginState(loginStateKey('app-secret-two'), at);
    expect(verifyLoginState(key, state, at)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses a state whose timestamp was changed', () => {
    const state = createLoginState(key, at);
    const [version, issued, ...rest] = state.split('.');
    const moved = [version, String(Number(issued) + 3_600_000), ...rest].join('.');
    expect(verifyLoginState(key, moved, new Date(at.getTime() + 3_600_000))).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('refuses a state whose signature was changed', () => {
    expect(verifyLoginState(key, flipOne(createLoginState(key, at)), at)).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('refuses a state older than ten minutes', () => {
    const state = createLoginState(key, at);
    expect(verifyLoginState(key, state, new Date(at.getTime() + 10 * MINUTE)).ok).toBe(true);
    expect(verifyLoginState(key, state, new Date(at.getTime() + 10 * MINUTE + 1))).toEqual({
      ok: false,
      reason: 'expired',
    });
  });

  it('refuses a state dated more than two minutes ahead of the clock', () => {
    const state = createLoginState(key, new Date(at.getTime() + 5 * MINUTE));
    expect(verifyLoginState(key, state, at)).toEqual({ ok: false, reason: 'from_the_future' });
    const skewed = createLoginState(key, new Date(at.getTime() + MINUTE));
    expect(verifyLoginState(key, skewed, at).ok).toBe(true);
  });

  it('calls an absent state missing and a garbled one malformed', () => {
    expect(verifyLoginState(key, undefined, at)).toEqual({ ok: false, reason: 'missing' });
    expect(verifyLoginState(key, '', at)).toEqual({ ok: false, reason: 'missing' });
    expect(verifyLoginState(key, 'v1.abc', at)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyLoginState(key, `${createLoginState(key, at)}x`, at)).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });

  it('honours a longer lifetime signed into the state, unless maxAgeMs is shorter', () => {
    const state = createLoginState(key, at, 2 * 60 * MINUTE);
    const later = new Date(at.getTime() + 119 * MINUTE);
    expect(verifyLoginState(key, state, later).ok).toBe(true);
    expect(verifyLoginState(key, state, later, 10 * MINUTE)).toEqual({ ok: false, reason: 'expired' });
  });

  it('caps every state at three hours, even one signed with a longer lifetime by an earlier release', () => {
    expect(() => createLoginState(key, at, 12 * 60 * MINUTE)).toThrow(RangeError);
    // What an earlier release minted for a reminder: a twelve-hour lifetime, signed.
    const payload = `v1.${at.getTime()}.43200.${randomBytes(12).toString('base64url')}`;
    const twelveHours = `${payload}.${createHmac('sha256', key).update(payload).digest('base64url')}`;
    expect(verifyLoginState(key, twelveHours, new Date(at.getTime() + 3 * 60 * MINUTE)).ok).toBe(true);
    expect(verifyLoginState(key, twelveHours, new Date(at.getTime() + 3 * 60 * MINUTE + 1))).toEqual({
      ok: false,
      reason: 'expired',
    });
  });

  it('derives a different key for each scope, and the unscoped key of earlier releases without one', () => {
    const state = createLoginState(loginStateKey('app-secret-one', 'prod'), at);
    expect(verifyLoginState(loginStateKey('app-secret-one', 'prod'), state, at).ok).toBe(true);
    expect(verifyLoginState(loginStateKey('app-secret-one', 'dev'), state, at)).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
    expect(verifyLoginState(key, state, at)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(loginStateKey('app-secret-one', '').equals(key)).toBe(true);
    expect(() => loginStateKey('app-secret-one', 'a stage with spaces')).toThrow(RangeError);
  });

  it('signs the account into a v2 state and reads it back, URL-safe', () => {
    for (const account of ['alice.json', 'accounts/family/ravi.json', 'prod/kite-मुख्य', 'a'.repeat(256)]) {
      const state = createLoginState(key, at, LOGIN_STATE_TTL_MS, account);
      expect(state).toMatch(/^v2\.[A-Za-z0-9._-]+$/);
      expect(verifyLoginState(key, state, at)).toEqual({
        ok: true,
        issuedAt: at,
        expiresAt: new Date(at.getTime() + LOGIN_STATE_TTL_MS),
        nonce: state.split('.')[3],
        account,
      });
    }
  });

  it('refuses a state whose account was swapped for another, as a bad signature', () => {
    const state = createLoginState(key, at, LOGIN_STATE_TTL_MS, 'alice.json');
    const fields = state.split('.');
    fields[4] = Buffer.from('bob.json').toString('base64url');
    expect(verifyLoginState(key, fields.join('.'), at)).toEqual({ ok: false, reason: 'bad_signature' });
    // Nor can the account be dropped to pass the state off as a v1 one for the deployment's only document.
    const dropped = ['v1', ...fields.slice(1, 4), fields[5]].join('.');
    expect(verifyLoginState(key, dropped, at)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('keeps verifying v1 states, which name no account', () => {
    const state = createLoginState(key, at);
    expect(state.startsWith('v1.')).toBe(true);
    const check = verifyLoginState(key, state, at);
    expect(check.ok).toBe(true);
    expect(check).not.toHaveProperty('account');
  });

  it('refuses to sign an account name that is empty, too long or holds a control character', () => {
    for (const account of ['', 'a'.repeat(257), 'é'.repeat(129), 'alice\n.json', '\ud800']) {
      expect(() => createLoginState(key, at, LOGIN_STATE_TTL_MS, account)).toThrow(RangeError);
    }
  });

  it('calls a v2 state with an over-long account malformed before checking its signature', () => {
    const payload = `v2.${at.getTime()}.600.${randomBytes(12).toString('base64url')}.${'QUFB'.repeat(100)}`;
    const state = `${payload}.${createHmac('sha256', key).update(payload).digest('base64url')}`;
    expect(verifyLoginState(key, state, at)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('derives a different key from a different app secret', () => {
    expect(loginStateKey('a').equals(loginStateKey('b'))).toBe(false);
    expect(loginStateKey('a')).toHaveLength(32);
  });
});

describe('used login states in the document', () => {
  const now = new Date('2025-11-07T08:00:00+05:30');
  const base = { type: 'kite', api_key: 'k', api_secret: '' } as BrokerConfig;
  const state = (nonce: string, minutes: number) => ({
    nonce,
    expiresAt: new Date(now.getTime() + minutes * MINUTE),
  });

  it('records a state until it would expire anyway, and drops expired and odd entries on the next write', () => {
    const once = withStateUsed(
      {
        ...base,
        login_states_used: [{ nonce: 'old', until: '2025-11-06T10:00:00+05:30' }, 'junk'],
      } as BrokerConfig,
      state('aaaaaaaaaaaaaaaa', 120),
      now,
    );
    expect((once as Record<string, unknown>).login_states_used).toEqual([
      { nonce: 'aaaaaaaaaaaaaaaa', until: '2025-11-07T10:00:00+05:30' },
    ]);
    expect(usedStates(once, new Date(now.getTime() + 121 * MINUTE))).toEqual([]);
  });

  it('keeps at most the sixteen newest entries', () => {
    let config = base;
    for (let i = 0; i < 20; i++)
      config = withStateUsed(config, state(`nonce${String(i).padStart(11, '0')}`, 60), now);
    const kept = usedStates(config, now).map((entry) => entry.nonce);
    expect(kept).toHaveLength(16);
    expect(kept[15]).toBe('nonce00000000019');
    expect(kept).not.toContain('nonce00000000003');
  });
});

describe('buildLoginLink', () => {
  it('points at Kite’s login page with the api key and a signed state in redirect_params', () => {
    const now = new Date();
    const link = new URL(buildLoginLink({ apiKey: 'myapikey', appSecret: 'secret', now }));
    expect(link.origin + link.pathname).toBe('https://kite.zerodha.com/connect/login');
    expect(link.searchParams.get('v')).toBe('3');
    expect(link.searchParams.get('api_key')).toBe('myapikey');
    const state = new URLSearchParams(link.searchParams.get('redirect_params') ?? '').get('state');
    expect(verifyLoginState(loginStateKey('secret'), state, now).ok).toBe(true);
  });

  it('sends the login to the sandbox when the config’s base_url is a loopback sandbox', () => {
    expect(loginRootFor({ base_url: 'http://127.0.0.1:4010' })).toBe('http://127.0.0.1:4010');
    expect(loginRootFor({ base_url: 'https://kite.zerodha.com' })).toBe('https://kite.zerodha.com');
    expect(loginRootFor({})).toBe('https://kite.zerodha.com');
  });
});

describe('describeValidity', () => {
  it('names the 06:00 IST expiry relative to the IST day of the login', () => {
    const expiry = new Date('2025-11-08T06:00:00+05:30');
    expect(describeValidity(expiry, new Date('2025-11-07T08:30:00+05:30'))).toBe(
      '06:00 IST tomorrow (2025-11-08 06:00:00 IST)',
    );
    expect(describeValidity(expiry, new Date('2025-11-08T05:10:00+05:30'))).toBe(
      '06:00 IST today (2025-11-08 06:00:00 IST)',
    );
  });
});

describe('completeLogin', () => {
  let fx: SandboxFixture;
  let rescueDir: string;

  beforeEach(async () => {
    fx = await startSandbox({ issueRefreshTokens: false, redirectUrl: CALLBACK });
    rescueDir = await mkdtemp(join(tmpdir(), 'kite-login-rescue-'));
  });

  afterEach(async () => {
    vi.useRealTimers();
    await fx.sandbox.close();
    await rm(rescueDir, { recursive: true, force: true });
  });

  async function setup(extra: Partial<BrokerConfig> = {}, store?: (path: string) => ConfigStore) {
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000', ...extra });
    const path = await writeTempConfig(config);
    const log = captureLog();
    const deps: LoginDeps = {
      store: store ? store(path) : new FileStore({ path }),
      kite: () => fx.kite,
      appSecret: fx.appSecret,
      log,
      rescueDir,
      writeRetry: { attempts: 3, baseDelayMs: 1 },
    };
    const bytes = await readFile(path, 'utf8');
    return { config, path, log, deps, bytes };
  }

  const link = (now = new Date()) =>
    buildLoginLink({ apiKey: API_KEY, appSecret: fx.appSecret, now, loginRoot: fx.sandbox.url });
  const exchanges = () => fx.sandbox.calls['POST /session/token'] ?? 0;

  it('stores the tokens of a login started from its link and keeps every other field', async () => {
    const { deps, path, config, log } = await setup({
      login_reminder: { for_day: '2025-11-07', for_expiry: 'x', sent: 1, last_sent_at: 'x' },
      refresh_lease: { owner: 'someone', until: new Date(Date.now() + 60_000).toISOString() },
    });
    const before = Date.now();

    const result = await completeLogin({ ...deps, query: await kiteRedirect(link()) });

    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    expect(stored.api_secret).not.toBe(config.api_secret);
    expect(stored).toMatchObject({
      type: 'kite',
      api_key: API_KEY,
      refresh_token: '',
      base_url: fx.sandbox.url,
      rate_limit: config.rate_limit,
      strategy_id: 'momentum-7',
      user_id: 'XX0000',
    });
    expect(stored).not.toHaveProperty('login_reminder');
    expect(stored).not.toHaveProperty('refresh_lease');
    expect(stored.access_token_expires_at).toMatch(/T06:00:00\+05:30$/);
    expect(Date.parse(stored.refreshed_at ?? '')).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(result).toMatchObject({ userId: 'XX0000', pinned: false });
    expect(toIsoIst(result.expiresAt)).toBe(stored.access_token_expires_at);
    expect(log.lines.map((l) => l.message)).toContain('✅ Logged in as XX0000');
    expect(leakedTokens(fx.sandbox, log.text())).toEqual([]);
    expect(((await stat(path)).mode & 0o777).toString(8)).toBe('600');
  });

  it('sets the expiry from Kite’s login_time by the 06:00 IST rule when Kite’s clock is close to ours', async () => {
    // Kite says the login happened at 05:59:30 IST, this machine says 06:00:30: the session dies at Kite's flush,
    // 06:00 that same morning.
    vi.setSystemTime(new Date('2025-11-07T06:00:30+05:30'));
    await fx.sandbox.close();
    fx = await startSandbox({
      issueRefreshTokens: false,
      redirectUrl: CALLBACK,
      now: () => new Date('2025-11-07T05:59:30+05:30'),
    });
    const { deps, path } = await setup();

    const result = await completeLogin({ ...deps, query: await kiteRedirect(link()) });

    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(stored.access_token_expires_at).toBe('2025-11-07T06:00:00+05:30');
    expect(result.expiresAt).toEqual(new Date('2025-11-07T06:00:00+05:30'));
  });

  it('ignores a login_time far from this machine’s clock, which would put the expiry a day off or years away', async () => {
    vi.setSystemTime(new Date('2025-11-07T10:00:00+05:30'));
    await fx.sandbox.close();
    fx = await startSandbox({
      issueRefreshTokens: false,
      redirectUrl: CALLBACK,
      now: () => new Date('2025-11-06T10:00:00+05:30'),
    });
    const { deps, path } = await setup();

    await completeLogin({ ...deps, query: await kiteRedirect(link()) });

    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(stored.access_token_expires_at).toBe('2025-11-08T06:00:00+05:30');
  });

  it('keeps the configured refresh token when Kite issues none, and stores Kite’s when it does', async () => {
    const { deps, path } = await setup({ refresh_token: 'kept-refresh-token-value' });
    await completeLogin({ ...deps, query: await kiteRedirect(link()) });
    expect((JSON.parse(await readFile(path, 'utf8')) as BrokerConfig).refresh_token).toBe(
      'kept-refresh-token-value',
    );

    const approved = await startSandbox({ redirectUrl: CALLBACK });
    try {
      const config = seedConfig(approved.sandbox, 'expired', { user_id: 'XX0000' });
      const otherPath = await writeTempConfig(config);
      const approvedLink = buildLoginLink({
        apiKey: API_KEY,
        appSecret: approved.appSecret,
        loginRoot: approved.sandbox.url,
      });
      await completeLogin({
        store: new FileStore({ path: otherPath }),
        kite: () => approved.kite,
        appSecret: approved.appSecret,
        query: await kiteRedirect(approvedLink),
      });
      const stored = JSON.parse(await readFile(otherPath, 'utf8')) as BrokerConfig;
      expect(stored.refresh_token).not.toBe(config.refresh_token);
      expect(approved.sandbox.issuedTokens()).toContain(stored.refresh_token);
    } finally {
      await approved.sandbox.close();
    }
  });

  it('pins user_id on the first login when the config has none and the deployment allows it', async () => {
    const { deps, path } = await setup({ user_id: undefined });
    const result = await completeLogin({
      ...deps,
      allowFirstLoginPin: true,
      query: await kiteRedirect(link()),
    });
    expect(result.pinned).toBe(true);
    expect((JSON.parse(await readFile(path, 'utf8')) as BrokerConfig).user_id).toBe('XX0000');
  });

  it('refuses a first login when the config names no account, logs that session out and writes nothing', async () => {
    const { deps, path, bytes } = await setup({ user_id: undefined });

    const error = await loginFailure(completeLogin({ ...deps, query: await kiteRedirect(link()) }));

    expect(error).toMatchObject({ code: 'account_not_pinned', status: 403 });
    expect(error.message).toContain('"user_id": "XX0000"');
    expect(error.message).toContain('allowFirstLoginPin');
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expect(fx.sandbox.calls['DELETE /session/token']).toBe(1);
    expect(fx.sandbox.issuedTokens().filter((token) => fx.sandbox.isAccessTokenValid(token))).toEqual([]);
  });

  it('refuses a login as another account, logs that session out and writes nothing', async () => {
    await fx.sandbox.close();
    fx = await startSandbox({ issueRefreshTokens: false, redirectUrl: CALLBACK, userId: 'YY1111' });
    const { deps, path, bytes } = await setup({ user_id: 'XX0000' });

    const error = await loginFailure(completeLogin({ ...deps, query: await kiteRedirect(link()) }));

    expect(error).toMatchObject({ code: 'wrong_account', status: 403 });
    expect(error.message).toContain('YY1111');
    expect(error.message).toContain('XX0000');
    expect(await readFile(path, 'utf8')).toBe(bytes);
    expect(fx.sandbox.calls['DELETE /session/token']).toBe(1);
    // The seeded token is long expired, so no live session is left behind.
    expect(fx.sandbox.issuedTokens().filter((token) => fx.sandbox.isAccessTokenValid(token))).toEqual([]);
  });

  it('answers 410 to a replayed callback, without asking Kite, and writes nothing more', async () => {
    const { deps, path } = await setup();
    const query = await kiteRedirect(link());
    await completeLogin({ ...deps, query });
    const after = await readFile(path, 'utf8');

    const error = await loginFailure(completeLogin({ ...deps, query }));

    expect(error).toMatchObject({ code: 'state_used', status: 410 });
    expect(error.message).toMatch(/already completed/);
    expect(exchanges()).toBe(1);
    expect(await readFile(path, 'utf8')).toBe(after);
  });

  it('takes one login per link: a second login with the same link is refused in any container, without asking Kite', async () => {
    const { deps, path } = await setup();
    const reused = link();
    await completeLogin({ ...deps, attempts: new LoginAttempts(), query: await kiteRedirect(reused) });
    const after = await readFile(path, 'utf8');
    const stored = JSON.parse(after) as Record<string, unknown>;
    expect(stored.login_states_used).toEqual([
      { nonce: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/), until: expect.stringMatching(/\+05:30$/) },
    ]);

    // The same link, opened again (a forwarded mail, a shared screen): Kite logs in and redirects with a new
    // request token and the same state, to a container that never saw the first login.
    const error = await loginFailure(
      completeLogin({ ...deps, attempts: new LoginAttempts(), query: await kiteRedirect(reused) }),
    );

    expect(error).toMatchObject({ code: 'state_used', status: 410 });
    expect(exchanges()).toBe(1);
    expect(await readFile(path, 'utf8')).toBe(after);
  });

  it('stops reading the store and asking Kite after three failed exchanges with one link', async () => {
    const counted = (file: string): ConfigStore => {
      const store = new FileStore({ path: file });
      return {
        location: store.location,
        read: () => {
          reads += 1;
          return store.read();
        },
        write: (config, expected) => store.write(config, expected),
        saveRescue: (tokens) => store.saveRescue(tokens),
        loadRescue: () => store.loadRescue(),
        clearRescue: () => store.clearRescue(),
      };
    };
    let reads = 0;
    const { deps, path, bytes } = await setup({}, counted);
    const attempts = new LoginAttempts();
    const query = await kiteRedirect(link());
    const codes: string[] = [];

    for (let i = 0; i < 200; i++) {
      query.set('request_token', randomBytes(16).toString('hex'));
      codes.push((await loginFailure(completeLogin({ ...deps, attempts, query }))).code);
    }

    expect(exchanges()).toBe(MAX_FAILED_ATTEMPTS);
    expect(reads).toBe(MAX_FAILED_ATTEMPTS);
    expect(codes.slice(0, 3)).toEqual(['request_token_used', 'request_token_used', 'request_token_used']);
    expect(new Set(codes.slice(3))).toEqual(new Set(['too_many_attempts']));
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it('refuses a link minted for another stage without asking Kite, and takes one minted for its own', async () => {
    const { deps, path, bytes } = await setup();
    const minted = (scope: string) =>
      buildLoginLink({ apiKey: API_KEY, appSecret: fx.appSecret, loginRoot: fx.sandbox.url, scope });

    for (const query of [await kiteRedirect(minted('dev')), await kiteRedirect(link())]) {
      const error = await loginFailure(completeLogin({ ...deps, stateScope: 'prod', query }));
      expect(error).toMatchObject({ code: 'bad_state', status: 403 });
    }
    expect(exchanges()).toBe(0);
    expect(await readFile(path, 'utf8')).toBe(bytes);

    const result = await completeLogin({
      ...deps,
      stateScope: 'prod',
      query: await kiteRedirect(minted('prod')),
    });
    expect(result.userId).toBe('XX0000');
  });

  it('keeps the request token and the state out of every message, detail and log line', async () => {
    const { deps, log } = await setup();
    const query = await kiteRedirect(link());
    const requestToken = query.get('request_token') ?? '';
    const state = query.get('state') ?? '';
    // An exchanger whose failure quotes what it was given, as an HTTP client's error might.
    const echoing = {
      generateSession: async (token: string) => {
        throw new Error(`POST /session/token request_token=${token} failed`);
      },
    };

    const error = await loginFailure(completeLogin({ ...deps, kite: () => echoing, query }));

    const seen = [error.message, error.detail, String(error.cause ?? ''), log.text()].join(' ');
    expect(error.code).toBe('kite_unavailable');
    expect(seen).not.toContain(requestToken);
    expect(seen).not.toContain(state);
    expect(error.detail).toContain(`${requestToken.slice(0, 4)}…`);
  });

  it('answers 410 to a request token Kite no longer accepts', async () => {
    const { deps, path, bytes } = await setup();
    const query = await kiteRedirect(link());
    query.set('request_token', fx.sandbox.issueRequestToken());
    await fx.kite.generateSession(query.get('request_token') ?? '');

    const error = await loginFailure(completeLogin({ ...deps, query }));

    expect(error).toMatchObject({ code: 'request_token_used', status: 410 });
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it('refuses a cancelled login without calling Kite', async () => {
    const { deps, path, bytes } = await setup();
    const query = await kiteRedirect(link());
    query.set('status', 'cancelled');

    const error = await loginFailure(completeLogin({ ...deps, query }));

    expect(error).toMatchObject({ code: 'cancelled', status: 400 });
    expect(error.message).toContain('status=cancelled');
    expect(exchanges()).toBe(0);
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it('refuses a missing, tampered, foreign or expired state without calling Kite', async () => {
    const { deps, path, bytes } = await setup();
    const cases: Array<[(q: URLSearchParams) => void | Promise<void>, string, number]> = [
      [(q) => q.delete('state'), 'missing_state', 400],
      [(q) => q.set('state', flipOne(q.get('state') ?? '')), 'bad_state', 403],
      [
        (q) => q.set('state', createLoginState(loginStateKey('another app secret'), new Date())),
        'bad_state',
        403,
      ],
      [
        (q) =>
          q.set('state', createLoginState(loginStateKey(fx.appSecret), new Date(Date.now() - 11 * MINUTE))),
        'expired_state',
        403,
      ],
    ];
    for (const [tamper, code, status] of cases) {
      const query = await kiteRedirect(link());
      await tamper(query);
      const error = await loginFailure(completeLogin({ ...deps, query }));
      expect(error).toMatchObject({ code, status });
    }
    expect(exchanges()).toBe(0);
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it('refuses a missing, malformed or repeated request_token and a foreign action', async () => {
    const { deps, bytes, path } = await setup();
    const cases: Array<(q: URLSearchParams) => void> = [
      (q) => q.delete('request_token'),
      (q) => q.set('request_token', 'not a token; DROP'),
      (q) => q.append('request_token', fx.sandbox.issueRequestToken()),
      (q) => q.set('action', 'basket'),
      (q) => q.delete('status'),
    ];
    for (const tamper of cases) {
      const query = await kiteRedirect(link());
      tamper(query);
      expect(await loginFailure(completeLogin({ ...deps, query }))).toMatchObject({
        code: 'bad_request',
        status: 400,
      });
    }
    expect(exchanges()).toBe(0);
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it('answers 502 when Kite is down and writes nothing', async () => {
    const { deps, path, bytes } = await setup();
    const query = await kiteRedirect(link());
    fx.sandbox.failNext({ endpoint: 'POST /session/token', times: 10, status: 503 });

    const error = await loginFailure(completeLogin({ ...deps, query }));

    expect(error).toMatchObject({ code: 'kite_unavailable', status: 502 });
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it('answers 502 when Kite refuses the exchange itself (a wrong app secret)', async () => {
    const { deps, path, bytes } = await setup();
    const query = await kiteRedirect(link());
    const { KiteClient } = await import('../../lib/kite/client.ts');
    const misconfigured = new KiteClient({
      apiKey: API_KEY,
      apiSecret: 'wrong-secret',
      baseUrl: fx.sandbox.url,
    });

    const error = await loginFailure(completeLogin({ ...deps, kite: () => misconfigured, query }));

    expect(error).toMatchObject({ code: 'kite_refused', status: 502 });
    expect(error.detail).toMatch(/InputException/);
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });

  it('writes through a concurrent edit, keeping that edit', async () => {
    const { deps, path } = await setup({}, (file) => {
      const store = new FileStore({ path: file });
      const trader = new FileStore({ path: file });
      let edited = false;
      // The trading system rewrites the document between this login's read and its write.
      return {
        location: store.location,
        read: () => store.read(),
        async write(config: BrokerConfig, expected: string | null) {
          if (!edited) {
            edited = true;
            const current = await trader.read();
            await trader.write({ ...current.config, strategy_id: 'mean-revert-3' }, current.version);
          }
          return store.write(config, expected);
        },
        saveRescue: (tokens) => store.saveRescue(tokens),
        loadRescue: () => store.loadRescue(),
        clearRescue: () => store.clearRescue(),
      };
    });

    await completeLogin({ ...deps, query: await kiteRedirect(link()) });

    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(stored.strategy_id).toBe('mean-revert-3');
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
  });

  it('keeps the tokens in the rescue slots when the document cannot be written, and a later login clears them', async () => {
    const { deps, path, bytes } = await setup();
    // A live writer (this process) holds the file's lock for longer than the store waits.
    await writeFile(`${path}.lock`, `${process.pid}\n`);

    const error = await loginFailure(
      completeLogin({ ...deps, writeRetry: { attempts: 1 }, query: await kiteRedirect(link()) }),
    );

    expect(error).toMatchObject({ code: 'not_stored', status: 500 });
    expect(await readFile(path, 'utf8')).toBe(bytes);
    const slot = JSON.parse(await readFile(`${path}.rescue.json`, 'utf8')) as { access_token: string };
    expect(fx.sandbox.isAccessTokenValid(slot.access_token)).toBe(true);
    const local = JSON.parse(await readFile(localRescuePath(path, rescueDir), 'utf8')) as {
      access_token: string;
    };
    expect(local.access_token).toBe(slot.access_token);
    expect(leakedTokens(fx.sandbox, `${error.message} ${error.detail}`)).toEqual([]);

    await rm(`${path}.lock`);
    await completeLogin({ ...deps, query: await kiteRedirect(link()) });
    await expect(stat(`${path}.rescue.json`)).rejects.toThrow();
    await expect(stat(localRescuePath(path, rescueDir))).rejects.toThrow();
  });
});

describe('exchangeRequestToken', () => {
  let fx: SandboxFixture;

  beforeEach(async () => {
    fx = await startSandbox({ issueRefreshTokens: false });
  });

  afterEach(async () => {
    await fx.sandbox.close();
  });

  it('stores a request token pasted without a state, and checks a state when one is given', async () => {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'expired', { refresh_token: '' }));
    const deps = { store: new FileStore({ path }), kite: () => fx.kite, appSecret: fx.appSecret };

    const result = await exchangeRequestToken({
      ...deps,
      allowFirstLoginPin: true,
      requestToken: fx.sandbox.issueRequestToken(),
    });
    expect(result.userId).toBe('XX0000');
    const bytes = await readFile(path, 'utf8');

    const error = await loginFailure(
      exchangeRequestToken({
        ...deps,
        requestToken: fx.sandbox.issueRequestToken(),
        state: randomBytes(8).toString('hex'),
      }),
    );
    expect(error).toMatchObject({ code: 'bad_state', status: 403 });
    expect(await readFile(path, 'utf8')).toBe(bytes);
  });
});
