import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import {
  type AccountResolver,
  completeLogin,
  exchangeRequestToken,
  type LoginAccount,
  type LoginDeps,
} from '../../lib/login/exchange.ts';
import { buildLoginLink } from '../../lib/login/link.ts';
import { LoginError } from '../../lib/login/outcome.ts';
import { LoginAttempts } from '../../lib/login/single-use.ts';
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

async function kiteRedirect(link: string): Promise<URLSearchParams> {
  const response = await fetch(link, { redirect: 'manual' });
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location') ?? '').searchParams;
}

async function loginFailure(promise: Promise<unknown>): Promise<LoginError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LoginError);
  return error as LoginError;
}

interface Account {
  path: string;
  bytes: string;
  read(): Promise<BrokerConfig>;
}

describe('completeLogin with several accounts', () => {
  let fx: SandboxFixture;
  let rescueDir: string;
  let accounts: Map<string, LoginAccount>;
  let lookups: Array<string | undefined>;

  beforeEach(async () => {
    // The sandbox logs everyone in as XX0000.
    fx = await startSandbox({ issueRefreshTokens: false, redirectUrl: CALLBACK });
    rescueDir = await mkdtemp(join(tmpdir(), 'kite-login-rescue-'));
    accounts = new Map();
    lookups = [];
  });

  afterEach(async () => {
    await fx.sandbox.close();
    await rm(rescueDir, { recursive: true, force: true });
  });

  async function account(name: string, extra: Partial<BrokerConfig>): Promise<Account> {
    const path = await writeTempConfig(seedConfig(fx.sandbox, 'expired', { refresh_token: '', ...extra }));
    accounts.set(name, { name, store: new FileStore({ path }), kite: () => fx.kite });
    const bytes = await readFile(path, 'utf8');
    return { path, bytes, read: async () => JSON.parse(await readFile(path, 'utf8')) as BrokerConfig };
  }

  /** Finds accounts the way a registry does: by name, or the only one when none is named. */
  const resolveAccount: AccountResolver = async (name) => {
    lookups.push(name);
    if (name === undefined) return accounts.size === 1 ? [...accounts.values()][0] : undefined;
    return accounts.get(name);
  };

  function deps(extra: Partial<LoginDeps> = {}): LoginDeps {
    return {
      resolveAccount,
      appSecret: fx.appSecret,
      attempts: new LoginAttempts(),
      log: captureLog(),
      rescueDir,
      writeRetry: { attempts: 3, baseDelayMs: 1 },
      ...extra,
    } as LoginDeps;
  }

  const link = (account?: string) =>
    buildLoginLink({ apiKey: API_KEY, appSecret: fx.appSecret, loginRoot: fx.sandbox.url, account });
  const exchanges = () => fx.sandbox.calls['POST /session/token'] ?? 0;

  it('stores a login in the document of the account its link names and leaves the other account untouched', async () => {
    const a = await account('alice.json', { user_id: 'XX0000' });
    const b = await account('bob.json', { user_id: 'YY1111' });
    const log = captureLog();

    const result = await completeLogin({ ...deps({ log }), query: await kiteRedirect(link('alice.json')) });

    expect(result).toMatchObject({ userId: 'XX0000', account: 'alice.json', pinned: false });
    const stored = await a.read();
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    expect(stored.login_states_used).toHaveLength(1);
    expect(await readFile(b.path, 'utf8')).toBe(b.bytes);
    expect(lookups).toEqual(['alice.json']);
    expect(log.lines.find((l) => l.message.startsWith('✅ Logged in'))?.fields).toMatchObject({
      account: 'alice.json',
    });
    expect(leakedTokens(fx.sandbox, log.text())).toEqual([]);
  });

  it('refuses a login for account A made as the user B pins, writing neither document', async () => {
    const a = await account('alice.json', { user_id: 'YY1111' });
    const b = await account('bob.json', { user_id: 'XX0000' });

    const error = await loginFailure(
      completeLogin({ ...deps(), query: await kiteRedirect(link('alice.json')) }),
    );

    expect(error).toMatchObject({ code: 'wrong_account', status: 403 });
    expect(await readFile(a.path, 'utf8')).toBe(a.bytes);
    expect(await readFile(b.path, 'utf8')).toBe(b.bytes);
    // The session Kite opened is logged out rather than left live.
    expect(fx.sandbox.calls['DELETE /session/token']).toBe(1);
  });

  it('does not let a login for account A land in an account B that has no pin', async () => {
    const a = await account('alice.json', { user_id: 'YY1111' });
    const b = await account('bob.json', { user_id: undefined });

    const error = await loginFailure(
      completeLogin({
        ...deps({ allowFirstLoginPin: true }),
        query: await kiteRedirect(link('alice.json')),
      }),
    );

    expect(error).toMatchObject({ code: 'wrong_account', status: 403 });
    expect(await readFile(a.path, 'utf8')).toBe(a.bytes);
    expect(await readFile(b.path, 'utf8')).toBe(b.bytes);
  });

  it('refuses a state whose account was changed to another, without looking up an account or asking Kite', async () => {
    const a = await account('alice.json', { user_id: 'XX0000' });
    const b = await account('bob.json', { user_id: 'XX0000' });
    const query = await kiteRedirect(link('alice.json'));
    const fields = (query.get('state') ?? '').split('.');
    fields[4] = Buffer.from('bob.json').toString('base64url');
    query.set('state', fields.join('.'));

    const error = await loginFailure(completeLogin({ ...deps(), query }));

    expect(error).toMatchObject({ code: 'bad_state', status: 403 });
    expect(lookups).toEqual([]);
    expect(exchanges()).toBe(0);
    expect(await readFile(a.path, 'utf8')).toBe(a.bytes);
    expect(await readFile(b.path, 'utf8')).toBe(b.bytes);
  });

  it('refuses a valid link for an account the deployment does not keep, without asking Kite', async () => {
    const a = await account('alice.json', { user_id: 'XX0000' });

    const error = await loginFailure(
      completeLogin({ ...deps(), query: await kiteRedirect(link('carol.json')) }),
    );

    expect(error).toMatchObject({ code: 'unknown_account', status: 404 });
    expect(error.message).toContain('"carol.json"');
    expect(exchanges()).toBe(0);
    expect(await readFile(a.path, 'utf8')).toBe(a.bytes);
  });

  it('does not take a login for an account a resolver found under another name, such as its user id', async () => {
    const a = await account('alice.json', { user_id: 'XX0000' });
    const byUserId: AccountResolver = async (name) =>
      name === 'XX0000' ? accounts.get('alice.json') : undefined;

    const error = await loginFailure(
      completeLogin({ ...deps({ resolveAccount: byUserId }), query: await kiteRedirect(link('XX0000')) }),
    );

    expect(error).toMatchObject({ code: 'unknown_account' });
    expect(exchanges()).toBe(0);
    expect(await readFile(a.path, 'utf8')).toBe(a.bytes);
  });

  it('refuses a link that names no account when several are kept, and takes it when one is', async () => {
    const a = await account('alice.json', { user_id: 'XX0000' });
    await account('bob.json', { user_id: 'XX0000' });

    const error = await loginFailure(completeLogin({ ...deps(), query: await kiteRedirect(link()) }));
    expect(error).toMatchObject({ code: 'account_required', status: 400 });
    expect(exchanges()).toBe(0);

    accounts.delete('bob.json');
    const result = await completeLogin({ ...deps(), query: await kiteRedirect(link()) });
    expect(result.account).toBeUndefined();
    expect(fx.sandbox.isAccessTokenValid((await a.read()).api_secret)).toBe(true);
  });

  it('takes one login per link in the account it names: a second login with it is refused', async () => {
    await account('alice.json', { user_id: 'XX0000' });
    const reused = link('alice.json');
    await completeLogin({ ...deps(), query: await kiteRedirect(reused) });

    const error = await loginFailure(completeLogin({ ...deps(), query: await kiteRedirect(reused) }));

    expect(error).toMatchObject({ code: 'state_used', status: 410 });
    expect(exchanges()).toBe(1);
  });

  it('answers 500 and writes nothing when the accounts cannot be listed', async () => {
    const failing: AccountResolver = async () => {
      throw new Error('ListObjectsV2 failed: AccessDenied');
    };

    const error = await loginFailure(
      completeLogin({ ...deps({ resolveAccount: failing }), query: await kiteRedirect(link('alice.json')) }),
    );

    expect(error).toMatchObject({ code: 'store_unavailable', status: 500 });
    expect(exchanges()).toBe(0);
  });

  it('keeps a one-document deployment from taking a link made for a named account', async () => {
    const a = await account('alice.json', { user_id: 'XX0000' });
    const one = accounts.get('alice.json') as LoginAccount;

    const error = await loginFailure(
      completeLogin({
        ...deps(),
        resolveAccount: undefined,
        store: one.store,
        kite: one.kite,
        query: await kiteRedirect(link('alice.json')),
      }),
    );

    expect(error).toMatchObject({ code: 'unknown_account', status: 404 });
    expect(exchanges()).toBe(0);
    expect(await readFile(a.path, 'utf8')).toBe(a.bytes);
  });
});

describe('exchangeRequestToken with several accounts', () => {
  let fx: SandboxFixture;

  beforeEach(async () => {
    fx = await startSandbox({ issueRefreshTokens: false });
  });

  afterEach(async () => {
    await fx.sandbox.close();
  });

  it('stores a pasted token in the account asked for, and refuses a state made for another account', async () => {
    const paths = new Map<string, string>();
    for (const name of ['alice.json', 'bob.json']) {
      paths.set(name, await writeTempConfig(seedConfig(fx.sandbox, 'expired', { user_id: 'XX0000' })));
    }
    const resolveAccount: AccountResolver = async (name) => {
      const path = name === undefined ? undefined : paths.get(name);
      return path && name ? { name, store: new FileStore({ path }), kite: () => fx.kite } : undefined;
    };
    const deps = { resolveAccount, appSecret: fx.appSecret };
    const bobBefore = await readFile(paths.get('bob.json') ?? '', 'utf8');

    const result = await exchangeRequestToken({
      ...deps,
      account: 'alice.json',
      requestToken: fx.sandbox.issueRequestToken(),
    });
    expect(result.account).toBe('alice.json');

    const state = new URL(
      buildLoginLink({
        apiKey: API_KEY,
        appSecret: fx.appSecret,
        loginRoot: fx.sandbox.url,
        account: 'alice.json',
      }),
    ).searchParams.get('redirect_params');
    const error = await loginFailure(
      exchangeRequestToken({
        ...deps,
        account: 'bob.json',
        requestToken: fx.sandbox.issueRequestToken(),
        state: new URLSearchParams(state ?? '').get('state') ?? '',
      }),
    );
    expect(error).toMatchObject({ code: 'bad_state', status: 403 });
    expect(await readFile(paths.get('bob.json') ?? '', 'utf8')).toBe(bobBefore);
    expect(fx.sandbox.calls['POST /session/token']).toBe(1);
  });

  it('asks for an account when a pasted token names none and several are kept', async () => {
    const resolveAccount: AccountResolver = async () => undefined;

    const error = await loginFailure(
      exchangeRequestToken({
        resolveAccount,
        appSecret: fx.appSecret,
        requestToken: fx.sandbox.issueRequestToken(),
      }),
    );

    expect(error).toMatchObject({ code: 'account_required' });
    expect(fx.sandbox.calls['POST /session/token'] ?? 0).toBe(0);
  });
});
