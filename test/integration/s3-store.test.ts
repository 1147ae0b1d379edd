// S3Store against the loopback S3 emulator with a real S3Client: conditional writes, revalidating reads,
// error mapping, encryption headers, aws-chunked uploads and rescued tokens.
import { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { ConfigError, ConflictError, NotFoundError, StoreError } from '../../lib/shared/errors.ts';
import type { KeptTokens } from '../../lib/store/config-store.ts';
import { openStore } from '../../lib/store/open-store.ts';
import { createS3Client, S3Store } from '../../lib/store/s3-store.ts';
import { type S3Emulator, startS3Emulator } from '../../testing/s3-server.ts';

const BUCKET = 'kite-config';
const ACCESS_TOKEN = 'accesstokenAAAA1111bbbb2222';
const REFRESH_TOKEN = 'refreshtokenCCCC3333dddd4444';

let emulator: S3Emulator;
let client: S3Client;
let keyCounter = 0;

function seedConfig(extra: Record<string, unknown> = {}): BrokerConfig {
  return {
    type: 'kite',
    api_key: 'kitekey1',
    api_secret: ACCESS_TOKEN,
    refresh_token: REFRESH_TOKEN,
    ...extra,
  };
}

function seedText(extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify(seedConfig(extra), null, 2)}\n`;
}

/** A fresh key per test, so tests never see each other's objects or requests. */
function freshKey(): string {
  keyCounter += 1;
  return `configs/broker-config-${keyCounter}.json`;
}

function storeFor(key: string, options: Partial<ConstructorParameters<typeof S3Store>[0]> = {}): S3Store {
  return new S3Store({ bucket: BUCKET, key, client, conflictRetry: { baseDelayMs: 5 }, ...options });
}

function requestsFor(key: string, method?: string) {
  return emulator.requests.filter((r) => r.key === key && (method === undefined || r.method === method));
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e: unknown) {
    return e;
  }
  throw new Error('expected the call to fail');
}

function expectNoSecrets(e: unknown): void {
  const text = e instanceof Error ? `${e.name} ${e.message}` : String(e);
  expect(text).not.toContain(ACCESS_TOKEN);
  expect(text).not.toContain(REFRESH_TOKEN);
}

beforeAll(async () => {
  emulator = await startS3Emulator({ buckets: [BUCKET] });
  client = createS3Client({ endpoint: emulator.endpoint });
});

afterAll(async () => {
  client.destroy();
  await emulator.close();
});

beforeEach(() => {
  emulator.clearFaults();
  emulator.setLatency(0);
});

describe('S3Store', () => {
  it('names its document as an s3:// URL', () => {
    const store = new S3Store({ bucket: BUCKET, key: 'a/broker-config.json', client });

    expect(store.location).toBe(`s3://${BUCKET}/a/broker-config.json`);
  });

  it('reads and validates the document and returns its ETag as the version', async () => {
    const key = freshKey();
    const etag = emulator.putObjectRaw(BUCKET, key, seedText({ custom: { keep: true } }));
    const store = storeFor(key);

    const stored = await store.read();

    expect(stored.version).toBe(etag);
    expect(stored.config.api_secret).toBe(ACCESS_TOKEN);
    expect(stored.config).toMatchObject({ custom: { keep: true } });
  });

  it('throws NotFoundError when the object does not exist', async () => {
    const store = storeFor(freshKey());

    const error = await caught(store.read());

    expect(error).toBeInstanceOf(NotFoundError);
  });

  it('throws ConfigError for malformed JSON and leaves the object untouched', async () => {
    const key = freshKey();
    const broken = `{"type":"kite","api_key":"kitekey1","api_secret":"${ACCESS_TOKEN}",`;
    const etag = emulator.putObjectRaw(BUCKET, key, broken);
    const store = storeFor(key);

    const error = await caught(store.read());

    expect(error).toBeInstanceOf(ConfigError);
    expectNoSecrets(error);
    expect(emulator.getObject(BUCKET, key)?.etag).toBe(etag);
    expect(emulator.getObject(BUCKET, key)?.body.toString('utf8')).toBe(broken);
    expect(requestsFor(key, 'PUT')).toHaveLength(0);
  });

  it('creates the document with If-None-Match: * when no version is expected', async () => {
    const key = freshKey();
    const store = storeFor(key);

    const version = await store.write(seedConfig(), null);

    const object = emulator.getObject(BUCKET, key);
    expect(version).toBe(object?.etag);
    expect(object?.body.toString('utf8')).toBe(seedText());
    expect(object?.contentType).toBe('application/json');
    expect(requestsFor(key, 'PUT')[0]?.headers['if-none-match']).toBe('*');
  });

  it('refuses to create a document that already exists', async () => {
    const key = freshKey();
    const etag = emulator.putObjectRaw(BUCKET, key, seedText({ owner: 'first' }));
    const store = storeFor(key);

    const error = await caught(store.write(seedConfig({ owner: 'second' }), null));

    expect(error).toBeInstanceOf(ConflictError);
    expect(emulator.getObject(BUCKET, key)?.etag).toBe(etag);
    expect(requestsFor(key, 'PUT').map((r) => r.status)).toEqual([412]);
  });

  it('writes with If-Match on the read version and returns the new version', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    const store = storeFor(key);
    const { config, version } = await store.read();

    const next = await store.write({ ...config, api_secret: 'newaccesstoken0000' }, version);

    expect(next).not.toBe(version);
    expect(next).toBe(emulator.getObject(BUCKET, key)?.etag);
    expect(requestsFor(key, 'PUT')[0]?.headers['if-match']).toBe(version);
    expect((await store.read()).config.api_secret).toBe('newaccesstoken0000');
  });

  it('lets exactly one of two writers with the same expected version win, keeping unknown fields', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText({ trading: { strategy: 'x', lots: 2 } }));
    const first = storeFor(key);
    const second = storeFor(key);
    const [a, b] = await Promise.all([first.read(), second.read()]);

    const results = await Promise.allSettled([
      first.write({ ...a.config, api_secret: 'token-from-first-writer' }, a.version),
      second.write({ ...b.config, api_secret: 'token-from-second-writer' }, b.version),
    ]);

    const winners = results.filter((r) => r.status === 'fulfilled');
    const losers = results.filter((r) => r.status === 'rejected');
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(1);
    expect((losers[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    const winnerToken =
      results[0]?.status === 'fulfilled' ? 'token-from-first-writer' : 'token-from-second-writer';
    const stored = JSON.parse(emulator.getObject(BUCKET, key)?.body.toString('utf8') ?? '{}');
    expect(stored.api_secret).toBe(winnerToken);
    expect(stored.trading).toEqual({ strategy: 'x', lots: 2 });
  });

  it('sends the conditional write again after a 409 ConditionalRequestConflict', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    const store = storeFor(key);
    const { config, version } = await store.read();
    emulator.injectFault({ method: 'PUT', times: 1, status: 409, code: 'ConditionalRequestConflict' });

    const next = await store.write({ ...config, user_id: 'AB1234' }, version);

    expect(next).toBe(emulator.getObject(BUCKET, key)?.etag);
    const puts = requestsFor(key, 'PUT');
    expect(puts.map((r) => r.status)).toEqual([409, 200]);
    expect(puts[1]?.headers['if-match']).toBe(version);
  });

  it('gives up with ConflictError when every attempt meets ConditionalRequestConflict', async () => {
    const key = freshKey();
    const etag = emulator.putObjectRaw(BUCKET, key, seedText());
    const store = storeFor(key, { conflictRetry: { attempts: 3, baseDelayMs: 5 } });
    emulator.injectFault({ method: 'PUT', times: 10, status: 409, code: 'ConditionalRequestConflict' });

    const error = await caught(store.write(seedConfig({ user_id: 'AB1234' }), etag));

    expect(error).toBeInstanceOf(ConflictError);
    expect(requestsFor(key, 'PUT').map((r) => r.status)).toEqual([409, 409, 409]);
    expect(emulator.getObject(BUCKET, key)?.etag).toBe(etag);
  });

  it('treats an If-Match write to a deleted document as a conflict', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    const store = storeFor(key);
    const { config, version } = await store.read();
    emulator.deleteObjectRaw(BUCKET, key);

    const error = await caught(store.write(config, version));

    expect(error).toBeInstanceOf(ConflictError);
    expect(requestsFor(key, 'PUT').map((r) => r.status)).toEqual([404]);
    expect(emulator.getObject(BUCKET, key)).toBeUndefined();
  });

  it('lets the SDK retry a 503 SlowDown and then succeeds', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    const store = storeFor(key);
    emulator.injectFault({ method: 'GET', times: 1, status: 503, code: 'SlowDown' });

    const stored = await store.read();

    expect(stored.config.api_key).toBe('kitekey1');
    expect(requestsFor(key, 'GET').map((r) => r.status)).toEqual([503, 200]);
  });

  it('reports persistent throttling as a retryable StoreError', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    const noRetryClient = createS3Client({ endpoint: emulator.endpoint, maxAttempts: 1 });
    const store = new S3Store({ bucket: BUCKET, key, client: noRetryClient });
    emulator.injectFault({ method: 'PUT', times: 1, status: 503, code: 'SlowDown' });

    const error = await caught(store.write(seedConfig(), emulator.getObject(BUCKET, key)?.etag ?? null));

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(true);
    expect((error as StoreError).message).toContain('SlowDown');
    expectNoSecrets(error);
    noRetryClient.destroy();
  });

  it('reports an internal error as retryable and access denied as not retryable', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    const noRetryClient = createS3Client({ endpoint: emulator.endpoint, maxAttempts: 1 });
    const store = new S3Store({ bucket: BUCKET, key, client: noRetryClient });
    emulator.injectFault({ method: 'GET', times: 1, status: 500, code: 'InternalError' });
    emulator.injectFault({ method: 'GET', times: 1, status: 403, code: 'AccessDenied' });

    const internal = await caught(store.read());
    const denied = await caught(store.read());

    expect(internal).toBeInstanceOf(StoreError);
    expect((internal as StoreError).retryable).toBe(true);
    expect(denied).toBeInstanceOf(StoreError);
    expect((denied as StoreError).retryable).toBe(false);
    noRetryClient.destroy();
  });

  it('reports an unreachable endpoint as a retryable StoreError', async () => {
    const closed = await startS3Emulator();
    const endpoint = closed.endpoint;
    await closed.close();
    const deadClient = createS3Client({ endpoint, maxAttempts: 1 });
    const store = new S3Store({ bucket: BUCKET, key: freshKey(), client: deadClient });

    const error = await caught(store.read());

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(true);
    deadClient.destroy();
  });

  it('revalidates a warm read with If-None-Match and uses the cached document on 304', async () => {
    const key = freshKey();
    const etag = emulator.putObjectRaw(BUCKET, key, seedText());
    const store = storeFor(key);
    await store.read();

    const warm = await store.read();

    const gets = requestsFor(key, 'GET');
    expect(gets.map((r) => r.status)).toEqual([200, 304]);
    expect(gets[1]?.headers['if-none-match']).toBe(etag);
    expect(warm.version).toBe(etag);
    expect(warm.config.api_secret).toBe(ACCESS_TOKEN);
  });

  it('fetches the new document when it changed since the cached read', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    const store = storeFor(key);
    await store.read();
    const changed = emulator.putObjectRaw(BUCKET, key, seedText({ user_id: 'CHANGED1' }));

    const fresh = await store.read();

    expect(fresh.version).toBe(changed);
    expect(fresh.config.user_id).toBe('CHANGED1');
    expect(requestsFor(key, 'GET').map((r) => r.status)).toEqual([200, 200]);
  });

  it('revalidates against its own last write without downloading the document again', async () => {
    const key = freshKey();
    const store = storeFor(key);
    const version = await store.write(seedConfig({ user_id: 'AB1234' }), null);

    const stored = await store.read();

    expect(stored.version).toBe(version);
    expect(stored.config.user_id).toBe('AB1234');
    expect(requestsFor(key, 'GET').map((r) => r.status)).toEqual([304]);
  });

  it('asks for SSE-S3 (AES256) by default', async () => {
    const key = freshKey();
    const store = storeFor(key);

    await store.write(seedConfig(), null);

    const put = requestsFor(key, 'PUT')[0];
    expect(put?.headers['x-amz-server-side-encryption']).toBe('AES256');
    expect(put?.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBeUndefined();
    expect(emulator.getObject(BUCKET, key)?.serverSideEncryption).toBe('AES256');
  });

  it('asks for SSE-KMS with the given key, also for rescued tokens', async () => {
    const key = freshKey();
    const kmsKeyId = 'arn:aws:kms:ap-south-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const store = storeFor(key, { kmsKeyId });

    const version = await store.write(seedConfig(), null);
    await store.saveRescue({ access_token: ACCESS_TOKEN, access_token_expires_at: 'x', issued_at: 'y' });

    for (const put of requestsFor(key, 'PUT').concat(requestsFor(`${key}.rescue.json`, 'PUT'))) {
      expect(put.headers['x-amz-server-side-encryption']).toBe('aws:kms');
      expect(put.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe(kmsKeyId);
    }
    expect(emulator.getObject(BUCKET, key)?.kmsKeyId).toBe(kmsKeyId);
    expect((await store.read()).version).toBe(version);
  });

  it('reads a document that was uploaded as an aws-chunked stream', async () => {
    const key = freshKey();
    const text = seedText({ note: 'streamed' });
    const bytes = Buffer.from(text, 'utf8');

    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: key,
        Body: Readable.from([bytes.subarray(0, 40), bytes.subarray(40)]),
        ContentLength: bytes.length,
      }),
    );
    const stored = await storeFor(key).read();

    const put = requestsFor(key, 'PUT')[0];
    expect(put?.headers['content-encoding']).toBe('aws-chunked');
    expect(put?.headers['x-amz-content-sha256']).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    expect(emulator.getObject(BUCKET, key)?.body.toString('utf8')).toBe(text);
    expect(stored.config).toMatchObject({ note: 'streamed' });
  });

  it('gets BadDigest from S3 when the supplied CRC32 does not match the body', async () => {
    const key = freshKey();

    const error = await caught(
      client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: seedText(), ChecksumCRC32: 'AAAAAA==' }),
      ),
    );

    expect((error as Error).name).toBe('BadDigest');
    expect(emulator.getObject(BUCKET, key)).toBeUndefined();
  });

  it('saves, loads and clears rescued tokens beside the document', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    const documentEtag = emulator.getObject(BUCKET, key)?.etag;
    const store = storeFor(key);
    const tokens: KeptTokens = {
      access_token: ACCESS_TOKEN,
      refresh_token: REFRESH_TOKEN,
      user_id: 'AB1234',
      access_token_expires_at: '2026-01-02T06:00:00+05:30',
      issued_at: '2026-01-01T03:30:00.000Z',
    };

    const before = await store.loadRescue();
    await store.saveRescue(tokens);
    const loaded = await store.loadRescue();
    await store.clearRescue();
    const after = await store.loadRescue();
    await store.clearRescue();

    expect(before).toBeNull();
    expect(loaded).toEqual(tokens);
    expect(after).toBeNull();
    expect(emulator.getObject(BUCKET, `${key}.rescue.json`)).toBeUndefined();
    expect(emulator.getObject(BUCKET, key)?.etag).toBe(documentEtag);
    expect(requestsFor(`${key}.rescue.json`, 'PUT')[0]?.headers['x-amz-server-side-encryption']).toBe(
      'AES256',
    );
  });

  it('sends ExpectedBucketOwner on every request it makes', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    const store = storeFor(key, { expectedBucketOwner: emulator.bucketOwner });
    const tokens: KeptTokens = {
      access_token: ACCESS_TOKEN,
      refresh_token: REFRESH_TOKEN,
      user_id: 'AB1234',
      access_token_expires_at: '2026-01-02T06:00:00+05:30',
      issued_at: '2026-01-01T03:30:00.000Z',
    };

    const { version } = await store.read();
    await store.write(seedConfig({ note: 'owned' }), version);
    await store.saveRescue(tokens);
    await store.loadRescue();
    await store.clearRescue();

    const sent = [...requestsFor(key), ...requestsFor(`${key}.rescue.json`)];
    expect(sent.map((r) => r.method).sort()).toEqual(['DELETE', 'GET', 'GET', 'PUT', 'PUT']);
    for (const request of sent) {
      expect(request.headers['x-amz-expected-bucket-owner']).toBe(emulator.bucketOwner);
      expect(request.status).toBeLessThan(300);
    }
  });

  it('is refused, and writes nothing, when another account owns the bucket', async () => {
    const key = freshKey();
    const etag = emulator.putObjectRaw(BUCKET, key, seedText());
    const store = storeFor(key, { expectedBucketOwner: '111122223333' });

    const read = await caught(store.read());
    const write = await caught(store.write(seedConfig({ note: 'hijacked' }), etag));

    for (const error of [read, write]) {
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).retryable).toBe(false);
      expect((error as Error).message).toContain('AccessDenied (HTTP 403)');
    }
    expect(requestsFor(key).map((r) => r.status)).toEqual([403, 403]);
    expect(emulator.getObject(BUCKET, key)?.etag).toBe(etag);
  });

  it('refuses an expected bucket owner that is not an AWS account id', () => {
    expect(() => storeFor(freshKey(), { expectedBucketOwner: 'someone' })).toThrow(ConfigError);
  });

  it('refuses a rescue object that does not hold tokens', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, `${key}.rescue.json`, '{"access_token": 5}');
    const store = storeFor(key);

    const error = await caught(store.loadRescue());

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(false);
  });
});

describe('createS3Client', () => {
  it('uses path-style addressing when an endpoint is configured', async () => {
    const configured = createS3Client({ endpoint: emulator.endpoint });
    const plain = createS3Client({ region: 'ap-south-1' });

    expect(configured.config.forcePathStyle).toBe(true);
    expect(plain.config.forcePathStyle).toBe(false);
    configured.destroy();
    plain.destroy();
  });

  it('reaches the endpoint named in AWS_ENDPOINT_URL_S3 with path-style addressing', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    vi.stubEnv('AWS_ENDPOINT_URL_S3', emulator.endpoint);
    try {
      const store = new S3Store({ bucket: BUCKET, key });

      const stored = await store.read();

      expect(stored.config.api_key).toBe('kitekey1');
      expect(requestsFor(key, 'GET')[0]?.bucket).toBe(BUCKET);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('takes the expected bucket owner from BROKER_CONFIG_BUCKET_OWNER when opened by location', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, seedText());
    vi.stubEnv('AWS_ENDPOINT_URL_S3', emulator.endpoint);
    try {
      vi.stubEnv('BROKER_CONFIG_BUCKET_OWNER', emulator.bucketOwner);
      expect((await (await openStore(`s3://${BUCKET}/${key}`)).read()).config.api_key).toBe('kitekey1');
      vi.stubEnv('BROKER_CONFIG_BUCKET_OWNER', '111122223333');
      const denied = await caught((await openStore(`s3://${BUCKET}/${key}`)).read());
      expect((denied as Error).message).toContain('AccessDenied (HTTP 403)');
      const explicit = await openStore(`s3://${BUCKET}/${key}`, undefined, {
        expectedBucketOwner: emulator.bucketOwner,
      });
      expect((await explicit.read()).config.api_key).toBe('kitekey1');
    } finally {
      vi.unstubAllEnvs();
    }
    expect(requestsFor(key, 'GET').map((r) => r.headers['x-amz-expected-bucket-owner'])).toEqual([
      emulator.bucketOwner,
      '111122223333',
      emulator.bucketOwner,
    ]);
  });

  it('lets the caller override path-style addressing', async () => {
    const virtualHosted = createS3Client({ endpoint: emulator.endpoint, forcePathStyle: false });

    expect(virtualHosted.config.forcePathStyle).toBe(false);
    virtualHosted.destroy();
  });
});

describe('S3 emulator checksums through the SDK', () => {
  it('returns the stored CRC32 on GET so the SDK can validate the body', async () => {
    const key = freshKey();
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: seedText() }));

    const out = await client.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: 'ENABLED' }),
    );

    expect(out.ChecksumCRC32).toBe(emulator.getObject(BUCKET, key)?.checksum.value);
    expect(await out.Body?.transformToString()).toBe(seedText());
  });
});
