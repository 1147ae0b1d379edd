// SecretsManagerStore against the loopback Secrets Manager emulator, through the real SDK client.
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { ConfigError, ConflictError, NotFoundError, StoreError } from '../../lib/shared/errors.ts';
import type { KeptTokens } from '../../lib/store/config-store.ts';
import { SecretsManagerStore } from '../../lib/store/secrets-manager-store.ts';
import {
  type SecretsManagerEmulator,
  startSecretsManagerEmulator,
} from '../../testing/secrets-manager-server.ts';

const SECRET = 'kite/broker-config';
const ACCESS_TOKEN = 'acc3ssT0kenSecretValue0001';
const REFRESH_TOKEN = 'r3freshT0kenSecretValue001';

let emulator: SecretsManagerEmulator;

beforeAll(async () => {
  emulator = await startSecretsManagerEmulator();
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.reset();
});

/** A real client; retries wait 5 ms instead of the SDK's up-to-seconds backoff so the file stays fast. */
function client(options: { endpoint?: string; maxAttempts?: number } = {}): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint: options.endpoint ?? emulator.endpoint,
    region: 'ap-south-1',
    retryStrategy: new ConfiguredRetryStrategy(options.maxAttempts ?? 3, 5),
  });
}

function store(secretId = SECRET, endpoint?: string): SecretsManagerStore {
  return new SecretsManagerStore({ secretId, client: client({ endpoint }) });
}

function config(overrides: Partial<BrokerConfig> & Record<string, unknown> = {}): BrokerConfig {
  return {
    type: 'kite',
    api_key: 'kitekey1',
    api_secret: ACCESS_TOKEN,
    refresh_token: REFRESH_TOKEN,
    ...overrides,
  };
}

function seed(value: BrokerConfig | string = config()): { arn: string; versionId: string } {
  return emulator.createSecret(SECRET, typeof value === 'string' ? value : JSON.stringify(value));
}

function allStages(): string[] {
  return Object.values(emulator.labels(SECRET)).flat();
}

function operations(): string[] {
  return emulator.requests.map((r) => r.operation);
}

/** Awaits a promise expected to reject and hands back the error, so assertions can inspect it. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e: unknown) {
    if (e instanceof Error) return e;
    throw e;
  }
  throw new Error('expected the promise to reject');
}

describe('SecretsManagerStore', () => {
  it('names its location by secret id', () => {
    const subject = store();

    expect(subject.location).toBe('secretsmanager://kite/broker-config');
  });

  it('reads the current version and returns its VersionId as the version', async () => {
    const { versionId } = seed(config({ user_id: 'AB1234' }));

    const stored = await store().read();

    expect(stored.version).toBe(versionId);
    expect(stored.config).toMatchObject({ api_key: 'kitekey1', api_secret: ACCESS_TOKEN, user_id: 'AB1234' });
  });

  it('throws NotFoundError when the secret does not exist', async () => {
    const error = await failure(store().read());

    expect(error).toBeInstanceOf(NotFoundError);
  });

  it('throws ConfigError for malformed JSON and writes nothing', async () => {
    seed(`{"type":"kite","api_secret":"${ACCESS_TOKEN}",`);
    emulator.resetRequests();

    const error = await failure(store().read());

    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).not.toContain(ACCESS_TOKEN);
    expect(operations()).toEqual(['GetSecretValue']);
    expect(emulator.currentValue(SECRET)).toBe(`{"type":"kite","api_secret":"${ACCESS_TOKEN}",`);
  });

  it('throws ConfigError when a required field is missing, naming the field but not the token', async () => {
    seed(JSON.stringify({ type: 'kite', api_secret: ACCESS_TOKEN }));

    const error = await failure(store().read());

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe('api_key');
    expect(error.message).not.toContain(ACCESS_TOKEN);
  });

  it('creates the secret when the expected version is null', async () => {
    const subject = store();

    const version = await subject.write(config(), null);

    expect(emulator.labels(SECRET)).toEqual({ [version]: ['AWSCURRENT'] });
    expect((await subject.read()).config.api_secret).toBe(ACCESS_TOKEN);
  });

  it('throws ConflictError when creating a secret that already holds a document', async () => {
    seed(config({ api_secret: 'theirs' }));

    const error = await failure(store().write(config(), null));

    expect(error).toBeInstanceOf(ConflictError);
    expect(JSON.parse(emulator.currentValue(SECRET) ?? '{}').api_secret).toBe('theirs');
  });

  it('fills a secret that exists without any value when creating', async () => {
    await client().send(new CreateSecretCommand({ Name: SECRET }));
    const subject = store();
    await expect(subject.read()).rejects.toBeInstanceOf(NotFoundError);

    const version = await subject.write(config(), null);

    expect(emulator.labels(SECRET)).toEqual({ [version]: ['AWSCURRENT'] });
    expect((await subject.read()).version).toBe(version);
  });

  it('swaps in a new version that becomes AWSCURRENT, the old one AWSPREVIOUS', async () => {
    const { versionId: first } = seed();
    const subject = store();
    const { config: current, version } = await subject.read();

    const next = await subject.write({ ...current, api_secret: 'newAccessToken' }, version);

    expect(next).not.toBe(first);
    expect(emulator.labels(SECRET)).toEqual({ [first]: ['AWSPREVIOUS'], [next]: ['AWSCURRENT'] });
    expect(await subject.read()).toMatchObject({ version: next, config: { api_secret: 'newAccessToken' } });
  });

  it('lets exactly one of two writers with the same expected version win', async () => {
    seed(config({ custom_field: { keep: true } }));
    const [a, b] = [store(), store()];
    const [readA, readB] = await Promise.all([a.read(), b.read()]);
    emulator.resetRequests();
    emulator.setLatency(5);

    const results = await Promise.allSettled([
      a.write({ ...readA.config, api_secret: 'writerA' }, readA.version),
      b.write({ ...readB.config, api_secret: 'writerB' }, readB.version),
    ]);

    const won = results.findIndex((r) => r.status === 'fulfilled');
    const lost = results.find((r) => r.status === 'rejected');
    expect(operations().slice(0, 2)).toEqual(['PutSecretValue', 'PutSecretValue']);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(lost?.status === 'rejected' && lost.reason).toBeInstanceOf(ConflictError);
    const stored = JSON.parse(emulator.currentValue(SECRET) ?? '{}');
    expect(stored.api_secret).toBe(won === 0 ? 'writerA' : 'writerB');
    expect(stored.custom_field).toEqual({ keep: true });
    expect(allStages().sort()).toEqual(['AWSCURRENT', 'AWSPREVIOUS']);
    expect(Object.values(emulator.labels(SECRET)).filter((stages) => stages.length === 0)).toHaveLength(1);
  });

  it('reports a lost compare-and-swap as a conflict even when DescribeSecret fails after it', async () => {
    seed();
    const [a, b] = [store(), store()];
    const [readA, readB] = await Promise.all([a.read(), b.read()]);
    await a.write({ ...readA.config, api_secret: 'writerA' }, readA.version);
    emulator.injectFault({
      operation: 'DescribeSecret',
      times: 10,
      status: 400,
      type: 'AccessDeniedException',
    });

    const error = await failure(b.write({ ...readB.config, api_secret: 'writerB' }, readB.version));

    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).retryable).toBe(true);
    expect(JSON.parse(emulator.currentValue(SECRET) ?? '{}').api_secret).toBe('writerA');
  });

  it('throws ConflictError when writing on top of a version that is no longer current', async () => {
    seed();
    const subject = store();
    const stale = await subject.read();
    await subject.write({ ...stale.config, api_secret: 'first' }, stale.version);

    const error = await failure(subject.write({ ...stale.config, api_secret: 'second' }, stale.version));

    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).not.toContain('second');
    expect(JSON.parse(emulator.currentValue(SECRET) ?? '{}').api_secret).toBe('first');
    expect(allStages().filter((s) => s.startsWith('KTR_'))).toEqual([]);
  });

  it('retries a throttled request once and succeeds', async () => {
    seed();
    emulator.injectFault({ operation: 'GetSecretValue', times: 1, status: 400, type: 'ThrottlingException' });

    const stored = await store().read();

    expect(stored.config.api_key).toBe('kitekey1');
    expect(emulator.requests).toEqual([
      { operation: 'GetSecretValue', status: 400 },
      { operation: 'GetSecretValue', status: 200 },
    ]);
  });

  it('throws a retryable StoreError when throttling persists', async () => {
    seed();
    emulator.injectFault({ times: 100, status: 400, type: 'ThrottlingException', message: 'Rate exceeded' });

    const error = await failure(store().read());

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(true);
    expect(error.message).toContain('ThrottlingException');
    expect(emulator.requests).toHaveLength(3);
  });

  it('throws a retryable StoreError when the service keeps failing with 500', async () => {
    seed();
    const subject = store();
    const { config: current, version } = await subject.read();
    emulator.injectFault({
      operation: 'PutSecretValue',
      times: 100,
      status: 500,
      type: 'InternalServiceError',
    });

    const error = await failure(subject.write({ ...current, api_secret: 'newAccessToken' }, version));

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(true);
    expect(error.message).not.toContain('newAccessToken');
    expect(emulator.currentValue(SECRET)).toBe(JSON.stringify(config()));
  });

  it('throws a retryable StoreError when the service cannot be reached', async () => {
    const closed = await startSecretsManagerEmulator();
    await closed.close();

    const error = await failure(store(SECRET, closed.endpoint).read());

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(true);
  });

  it('throws a StoreError that is not retryable when access is denied', async () => {
    seed();
    emulator.injectFault({ times: 1, status: 400, type: 'AccessDeniedException', message: 'not authorized' });

    const error = await failure(store().read());

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(false);
  });

  it('throws a retryable StoreError when the label move keeps failing, leaving the document as it was', async () => {
    seed();
    const subject = store();
    const { config: current, version } = await subject.read();
    emulator.injectFault({
      operation: 'UpdateSecretVersionStage',
      times: 3,
      status: 500,
      type: 'InternalServiceError',
    });

    const error = await failure(subject.write({ ...current, api_secret: 'newAccessToken' }, version));

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(true);
    expect((await subject.read()).version).toBe(version);
    expect(allStages()).toEqual(['AWSCURRENT']);
  });

  it('commits the write when the label move landed but every answer to it was lost', async () => {
    seed();
    const subject = store();
    const { config: current, version } = await subject.read();
    emulator.injectFault({
      operation: 'UpdateSecretVersionStage',
      times: 3,
      status: 500,
      type: 'InternalServiceError',
      afterApply: true,
    });

    const next = await subject.write({ ...current, api_secret: 'newAccessToken' }, version);

    expect(await subject.read()).toMatchObject({ version: next, config: { api_secret: 'newAccessToken' } });
    expect(allStages().sort()).toEqual(['AWSCURRENT', 'AWSPREVIOUS']);
  });

  it('works when the secret is addressed by its ARN', async () => {
    const { arn } = seed();
    const subject = store(arn);
    const { config: current, version } = await subject.read();

    const next = await subject.write({ ...current, api_secret: 'viaArn' }, version);

    expect(subject.location).toBe(`secretsmanager://${arn}`);
    expect((await store().read()).version).toBe(next);
    expect(JSON.parse(emulator.currentValue(SECRET) ?? '{}').api_secret).toBe('viaArn');
  });

  it('refuses to create a secret addressed by an ARN that does not exist', async () => {
    const arn = 'arn:aws:secretsmanager:ap-south-1:000000000000:secret:kite/missing-AbCdEf';

    const error = await failure(store(arn).write(config(), null));

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(false);
  });

  it('sweeps pending labels that crashed writers left behind when the label quota is reached', async () => {
    seed();
    const raw = client();
    const longAgo = (Date.now() - 60 * 60 * 1000).toString(36);
    for (let i = 0; i < 19; i++) {
      await raw.send(
        new PutSecretValueCommand({
          SecretId: SECRET,
          SecretString: '{}',
          VersionStages: [`KTR_PENDING_${longAgo}_${i.toString(16).padStart(6, '0')}`],
        }),
      );
    }
    const subject = store();
    const { config: current, version } = await subject.read();

    const next = await subject.write({ ...current, api_secret: 'afterSweep' }, version);

    expect((await subject.read()).version).toBe(next);
    expect(allStages().sort()).toEqual(['AWSCURRENT', 'AWSPREVIOUS']);
  });

  describe('rescue', () => {
    const tokens: KeptTokens = {
      access_token: 'rescuedAccessToken01',
      refresh_token: 'rescuedRefreshToken1',
      user_id: 'AB1234',
      access_token_expires_at: '2026-01-02T06:00:00+05:30',
      issued_at: '2026-01-01T03:00:00.000Z',
    };

    it('returns null when nothing was rescued', async () => {
      seed();

      const loaded = await store().loadRescue();

      expect(loaded).toBeNull();
    });

    it('saves tokens under its own label without moving AWSCURRENT', async () => {
      const { versionId } = seed();
      const subject = store();

      await subject.saveRescue(tokens);

      expect(await subject.loadRescue()).toEqual(tokens);
      expect((await subject.read()).version).toBe(versionId);
      expect(emulator.labels(SECRET)[versionId]).toEqual(['AWSCURRENT']);
    });

    it('keeps only the latest rescue', async () => {
      seed();
      const subject = store();
      await subject.saveRescue(tokens);

      await subject.saveRescue({ ...tokens, access_token: 'laterAccessToken01' });

      expect((await subject.loadRescue())?.access_token).toBe('laterAccessToken01');
      expect(allStages().filter((s) => s === 'KTR_RESCUE')).toHaveLength(1);
    });

    it('clears the rescue label so nothing is loaded afterwards', async () => {
      seed();
      const subject = store();
      await subject.saveRescue(tokens);

      await subject.clearRescue();

      expect(await subject.loadRescue()).toBeNull();
      expect(allStages()).toEqual(['AWSCURRENT']);
    });

    it('clears without error when nothing was rescued', async () => {
      seed();

      await store().clearRescue();

      expect(allStages()).toEqual(['AWSCURRENT']);
    });

    it('refuses to save into a secret with no current document', async () => {
      await client().send(new CreateSecretCommand({ Name: SECRET }));

      const error = await failure(store().saveRescue(tokens));

      expect(error).toBeInstanceOf(StoreError);
      expect(error.message).not.toContain(tokens.access_token);
      expect(emulator.labels(SECRET)).toEqual({});
    });
  });
});
