// The caller helper against the real LambdaClient and a Lambda Invoke endpoint on loopback: what it does with each
// kind of answer the refresh function can give, and which Kite failures make it ask for one at all.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inspect } from 'node:util';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  createKiteAuth,
  isKiteAuthError,
  KiteApiError,
  LoginRequiredError,
  type OnDemandResponse,
  TokenRefreshError,
} from '../../lib/client/index.ts';
import { type InvokeHandler, type LambdaEmulator, startLambdaEmulator } from '../../testing/lambda-server.ts';
import { startS3Emulator } from '../../testing/s3-server.ts';
import { writeTempConfig } from '../support/fixtures.ts';

const STORED = 'stored-access-token-0001';
const ISSUED = 'issued-access-token-0002';
const REFRESHER = 'refresher';

let lambda: LambdaEmulator;
let configPath: string;

beforeAll(async () => {
  lambda = await startLambdaEmulator();
});

afterAll(() => lambda.close());

beforeEach(async () => {
  configPath = await writeTempConfig({
    type: 'kite',
    api_key: 'k',
    api_secret: STORED,
    access_token_expires_at: '2099-01-01T06:00:00+05:30',
  });
});

afterEach(() => rm(dirname(configPath), { recursive: true, force: true }));

const authAnswering = (answer: InvokeHandler) => {
  lambda.register(REFRESHER, answer);
  return createKiteAuth({
    configUri: configPath,
    refreshFunction: REFRESHER,
    lambda: new LambdaClient({ endpoint: lambda.endpoint, region: 'ap-south-1' }),
  });
};

const rejected = new KiteApiError('Incorrect `api_key` or `access_token`.', {
  status: 403,
  errorType: 'TokenException',
});

/** A Kite call that rejects `dead` and returns the token it was given otherwise. */
const kiteCall = (dead: string) => async (token: string) => {
  if (token === dead) throw rejected;
  return token;
};

describe('createKiteAuth', () => {
  it('retries with the token the refresh function returns after Kite rejects the stored one', async () => {
    const answer: OnDemandResponse = { status: 'refreshed', accessToken: ISSUED };
    const auth = authAnswering(async () => answer);

    expect(await auth.withKiteAuth(kiteCall(STORED))).toBe(ISSUED);
    expect(await auth.getAccessToken()).toBe(ISSUED);
  });

  it('throws a retryable TokenRefreshError when the refresh function itself fails', async () => {
    const auth = authAnswering(async () => {
      throw new Error('out of memory');
    });

    const failure = auth.withKiteAuth(kiteCall(STORED));

    await expect(failure).rejects.toBeInstanceOf(TokenRefreshError);
    await expect(failure).rejects.toMatchObject({
      retryable: true,
      message: 'the refresh function failed: Error: out of memory',
    });
  });

  it('passes on whether an error answer is worth retrying, and reads the store again afterwards', async () => {
    const answer: OnDemandResponse = {
      status: 'error',
      error: { type: 'KiteRejected', message: '400 InputException: bad', retryable: false },
    };
    const auth = authAnswering(async () => answer);
    await auth.getAccessToken();

    await expect(auth.withKiteAuth(kiteCall(STORED))).rejects.toMatchObject({
      name: 'TokenRefreshError',
      retryable: false,
      message: 'the refresh function answered KiteRejected: 400 InputException: bad',
    });
    await writeFile(
      configPath,
      JSON.stringify({ type: 'kite', api_key: 'k', api_secret: 'replaced-by-hand' }),
    );
    expect(await auth.getAccessToken()).toBe('replaced-by-hand');
  });

  it('throws LoginRequiredError with the login link as a field, never in its message', async () => {
    const answer: OnDemandResponse = {
      status: 'login_required',
      reason: 'refresh_token_rejected',
      loginUrl: 'https://login.example/',
    };
    const auth = authAnswering(async () => answer);

    const failure = auth.withKiteAuth(kiteCall(STORED));

    await expect(failure).rejects.toBeInstanceOf(LoginRequiredError);
    await expect(failure).rejects.toMatchObject({
      reason: 'refresh_token_rejected',
      loginUrl: 'https://login.example/',
    });
    const error: unknown = await failure.catch((e: unknown) => e);
    expect(String((error as Error).message)).not.toContain('login.example');
    expect(String(error)).not.toContain('login.example');
    expect(inspect(error)).not.toContain('login.example');
    expect(JSON.stringify(error)).not.toContain('login.example');
  });

  it('refuses an answer without a token instead of handing the caller undefined', async () => {
    const auth = authAnswering(async () => ({ status: 'refreshed' }));

    await expect(auth.withKiteAuth(kiteCall(STORED))).rejects.toMatchObject({
      name: 'TokenRefreshError',
      retryable: false,
    });
  });

  it('throws a retryable TokenRefreshError, keeping the cause, when the function cannot be invoked', async () => {
    const auth = createKiteAuth({
      configUri: configPath,
      refreshFunction: 'missing',
      lambda: new LambdaClient({ endpoint: lambda.endpoint, region: 'ap-south-1' }),
    });

    const error = await auth.withKiteAuth(kiteCall(STORED)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TokenRefreshError);
    expect(error).toMatchObject({
      retryable: true,
      message: 'could not invoke the refresh function missing: ResourceNotFoundException',
    });
    expect((error as TokenRefreshError).cause).toBeInstanceOf(Error);
  });

  it('names KITE_REFRESH_FUNCTION when no refresh function is configured', async () => {
    const auth = createKiteAuth({ configUri: configPath });

    await expect(auth.withKiteAuth(kiteCall(STORED))).rejects.toMatchObject({
      name: 'ConfigError',
      field: 'KITE_REFRESH_FUNCTION',
    });
  });

  it('names BROKER_CONFIG_URI when no store is configured', async () => {
    const auth = createKiteAuth();

    await expect(auth.getAccessToken()).rejects.toBeInstanceOf(ConfigError);
    await expect(auth.getAccessToken()).rejects.toMatchObject({ field: 'BROKER_CONFIG_URI' });
  });

  it('tells the refresh function the status Kite answered with', async () => {
    const events: unknown[] = [];
    const auth = authAnswering(async (event) => {
      events.push(event);
      return { status: 'refreshed', accessToken: ISSUED };
    });

    await auth.withKiteAuth(kiteCall(STORED));

    expect(events).toEqual([{ failedAccessToken: STORED, status: 403 }]);
  });
});

describe('createKiteAuth({ account })', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kite-auth-accounts-'));
    for (const name of ['alice', 'bob']) {
      const config = { type: 'kite', api_key: 'k', api_secret: `${name}-access-token-0001` };
      await writeFile(join(dir, `${name}.json`), JSON.stringify(config));
    }
  });

  afterEach(() => rm(dir, { recursive: true, force: true }));

  const accountAuth = (account: string | undefined, configUri: string, events: unknown[]) => {
    lambda.register(REFRESHER, async (event) => {
      events.push(event);
      return { status: 'refreshed', accessToken: ISSUED };
    });
    return createKiteAuth({
      configUri,
      ...(account === undefined ? {} : { account }),
      refreshFunction: REFRESHER,
      lambda: new LambdaClient({ endpoint: lambda.endpoint, region: 'ap-south-1' }),
    });
  };

  it('reads the account’s own document from the deployment’s list and names the account to the refresh function', async () => {
    const events: unknown[] = [];
    const list = `${join(dir, 'alice.json')},${join(dir, 'bob.json')}`;
    const auth = accountAuth('bob', list, events);

    expect(await auth.getAccessToken()).toBe('bob-access-token-0001');
    expect(await auth.withKiteAuth(kiteCall('bob-access-token-0001'))).toBe(ISSUED);
    expect(events).toEqual([{ failedAccessToken: 'bob-access-token-0001', status: 403, account: 'bob' }]);
  });

  it('reads the account’s document by its own location, and sends no account without one, as before', async () => {
    const named: unknown[] = [];
    const plain: unknown[] = [];

    await accountAuth('alice', join(dir, 'alice.json'), named).withKiteAuth(
      kiteCall('alice-access-token-0001'),
    );
    await accountAuth(undefined, join(dir, 'alice.json'), plain).withKiteAuth(
      kiteCall('alice-access-token-0001'),
    );

    expect(named).toEqual([{ failedAccessToken: 'alice-access-token-0001', status: 403, account: 'alice' }]);
    expect(plain).toEqual([{ failedAccessToken: 'alice-access-token-0001', status: 403 }]);
  });

  it('throws ConfigError for an account the list does not hold, without asking the refresh function', async () => {
    const events: unknown[] = [];
    const auth = accountAuth('carol', `${join(dir, 'alice.json')},${join(dir, 'bob.json')}`, events);

    await expect(auth.getAccessToken()).rejects.toBeInstanceOf(ConfigError);
    await expect(auth.getAccessToken()).rejects.toThrow(
      /no document for account "carol" \(accounts: alice, bob\)/,
    );
    expect(events).toEqual([]);
  });

  it('refuses an account that is not the one document’s, so the token read and the account renewed agree', async () => {
    const auth = accountAuth('bob', join(dir, 'alice.json'), []);

    await expect(auth.getAccessToken()).rejects.toThrow(/account "bob" is not the account of .*alice\.json/);
  });

  it('asks for an account when the location names several, rather than reading one of them', async () => {
    const auth = accountAuth(undefined, `${join(dir, 'alice.json')},${join(dir, 'bob.json')}`, []);

    await expect(auth.getAccessToken()).rejects.toThrow(
      /names several accounts: pass createKiteAuth\(\{ account \}\)/,
    );
  });

  it('reads <prefix><account>.json under an S3 prefix', async () => {
    const s3 = await startS3Emulator({ buckets: ['kite-config'] });
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_REGION: 'ap-south-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });
    try {
      s3.putObjectRaw(
        'kite-config',
        'accounts/ravi.json',
        JSON.stringify({ type: 'kite', api_key: 'k', api_secret: 'ravi-access-token-0001' }),
      );
      const auth = accountAuth('ravi', 's3://kite-config/accounts/', []);
      expect(await auth.getAccessToken()).toBe('ravi-access-token-0001');
      await expect(
        accountAuth('../ravi', 's3://kite-config/accounts/', []).getAccessToken(),
      ).rejects.toBeInstanceOf(ConfigError);
    } finally {
      process.env = saved;
      await s3.close();
    }
  });
});

describe('isKiteAuthError', () => {
  const kite = (status: number, errorType: string) => new KiteApiError('x', { status, errorType });

  it('counts a 401 or 403 from Kite as a dead token when it names TokenException or no error type', () => {
    expect(isKiteAuthError(kite(403, 'TokenException'))).toBe(true);
    expect(isKiteAuthError(kite(401, 'TokenException'))).toBe(true);
    expect(isKiteAuthError(kite(403, ''))).toBe(true);
    expect(isKiteAuthError(kite(401, ''))).toBe(true);
  });

  it('does not count other Kite failures as a dead token', () => {
    expect(isKiteAuthError(kite(403, 'PermissionException'))).toBe(false);
    expect(isKiteAuthError(kite(401, 'InputException'))).toBe(false);
    expect(isKiteAuthError(kite(400, 'TokenException'))).toBe(false);
    expect(isKiteAuthError(kite(500, ''))).toBe(false);
  });

  it('reads the status and error type of other clients’ errors under the names they use', () => {
    expect(isKiteAuthError({ error_type: 'TokenException', status: 400 })).toBe(true);
    expect(isKiteAuthError({ errorType: 'PermissionException', status: 403 })).toBe(false);
    expect(isKiteAuthError({ statusCode: 401 })).toBe(true);
    expect(isKiteAuthError({ status_code: 403 })).toBe(true);
    expect(isKiteAuthError({ response: { status: 403 } })).toBe(true);
    expect(isKiteAuthError({ status: 429 })).toBe(false);
    expect(isKiteAuthError('403')).toBe(false);
    expect(isKiteAuthError(null)).toBe(false);
  });
});
