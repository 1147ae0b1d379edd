// broker-config.json as one S3 object. Compare-and-swap uses S3 conditional writes (If-Match / If-None-Match on
// PutObject) with the ETag as the version; warm reads revalidate with If-None-Match so unchanged documents cost no body.
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import {
  type BrokerConfig,
  MAX_CONFIG_BYTES,
  parseConfig,
  serializeConfig,
} from '../engine/broker-config.ts';
import { backoffDelay, EQUAL_JITTER, sleep } from '../shared/backoff.ts';
import { ConfigError, ConflictError, NotFoundError, StoreError } from '../shared/errors.ts';
import { type ClientOptions, lazyClient } from '../shared/lazy.ts';
import { awsErrorFacts, awsStoreError } from './aws-errors.ts';
import { type ConfigStore, type KeptTokens, parseKeptTokens, type StoredConfig } from './config-store.ts';

/** A ready client (tests, shared clients), or config that createS3Client builds one from on first use. */
export interface S3StoreOptions extends ClientOptions<S3Client, S3ClientConfig> {
  bucket: string;
  key: string;
  /** Encrypt with this KMS key (SSE-KMS) instead of S3-managed keys (SSE-S3). */
  kmsKeyId?: string;
  /**
   * The AWS account id that must own the bucket (ExpectedBucketOwner on every request). S3 answers 403 when another
   * account owns it, so a bucket deleted and re-created by someone else under the same name is never read or written.
   */
  expectedBucketOwner?: string;
  /** How often a PUT that S3 answered with 409 ConditionalRequestConflict is sent again, and the first pause. */
  conflictRetry?: { attempts?: number; baseDelayMs?: number };
}

const DEFAULT_CONFLICT_ATTEMPTS = 4;
const DEFAULT_CONFLICT_DELAY_MS = 40;
/** No pause between 409 resends is longer than this, whatever attempts and first pause are configured. */
const MAX_CONFLICT_DELAY_MS = 1_000;

/**
 * An S3 client for the store. The SDK itself takes the endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL;
 * what it does not do is switch to path-style addressing, which emulators and most S3-compatible servers need.
 */
export function createS3Client(config: S3ClientConfig = {}): S3Client {
  const ignoreEnv = /^true$/i.test(process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? '');
  const envEndpoint = ignoreEnv ? undefined : process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL;
  const customEndpoint = config.endpoint !== undefined || Boolean(envEndpoint);
  return new S3Client({
    ...(customEndpoint ? { forcePathStyle: true } : {}),
    // Without timeouts a half-open connection would hold a Lambda until it is killed.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000 },
    ...config,
  });
}

/** What listObjectKeys lists: the keys directly under a prefix ("/" delimits), page by page. */
export interface ListKeysRequest {
  bucket: string;
  prefix: string;
  /** The location errors name (an s3:// URI). */
  location: string;
  /** Keys asked for per page; S3's own default (1000) when absent. */
  pageSize?: number | undefined;
  /** The account id that must own the bucket (ExpectedBucketOwner). */
  expectedBucketOwner?: string | undefined;
}

async function listPage(
  client: S3Client,
  request: ListKeysRequest,
  token: string | undefined,
): Promise<ListObjectsV2CommandOutput> {
  try {
    return await client.send(
      new ListObjectsV2Command({
        Bucket: request.bucket,
        Prefix: request.prefix,
        Delimiter: '/',
        ...(token ? { ContinuationToken: token } : {}),
        ...(request.pageSize ? { MaxKeys: request.pageSize } : {}),
        ...(request.expectedBucketOwner ? { ExpectedBucketOwner: request.expectedBucketOwner } : {}),
      }),
    );
  } catch (e: unknown) {
    throw awsStoreError('ListObjectsV2', request.location, e);
  }
}

/**
 * Every key directly under a prefix (ListObjectsV2 with Delimiter "/", following continuation tokens), in S3's
 * order. It lives here, beside the store's own commands, so the S3 client module is imported by name in one place:
 * importing the whole module elsewhere would put every S3 command, the aggregated client, its waiters and
 * paginators into the chunk every S3 store loads on a cold start.
 */
export async function listObjectKeys(client: S3Client, request: ListKeysRequest): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await listPage(client, request, token);
    for (const item of page.Contents ?? []) if (item.Key) keys.push(item.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

export class S3Store implements ConfigStore {
  readonly location: string;
  readonly bucket: string;
  readonly key: string;
  readonly rescueKey: string;
  readonly #client: () => S3Client;
  readonly #kmsKeyId: string | undefined;
  readonly #owner: { ExpectedBucketOwner: string } | Record<string, never>;
  readonly #conflictAttempts: number;
  readonly #conflictDelayMs: number;
  /** The last document seen, so a warm read can ask S3 only whether it changed. */
  #cache: { etag: string; text: string } | undefined;

  constructor(options: S3StoreOptions) {
    if (!options.bucket || !options.key)
      throw new ConfigError('S3 store needs a bucket and a key', { field: 'bucket' });
    this.bucket = options.bucket;
    this.key = options.key;
    this.rescueKey = `${options.key}.rescue.json`;
    this.location = `s3://${options.bucket}/${options.key}`;
    this.#client = lazyClient(options, createS3Client);
    this.#kmsKeyId = options.kmsKeyId;
    if (options.expectedBucketOwner && !/^\d{12}$/.test(options.expectedBucketOwner)) {
      throw new ConfigError('the expected bucket owner must be a 12-digit AWS account id', {
        field: 'expectedBucketOwner',
      });
    }
    this.#owner = options.expectedBucketOwner ? { ExpectedBucketOwner: options.expectedBucketOwner } : {};
    this.#conflictAttempts = Math.max(1, options.conflictRetry?.attempts ?? DEFAULT_CONFLICT_ATTEMPTS);
    this.#conflictDelayMs = options.conflictRetry?.baseDelayMs ?? DEFAULT_CONFLICT_DELAY_MS;
  }

  async read(): Promise<StoredConfig> {
    const cached = this.#cache;
    let etag: string;
    let text: string;
    try {
      const out = await this.#client().send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          ...this.#owner,
          ...(cached ? { IfNoneMatch: cached.etag } : {}),
        }),
      );
      if (out.ETag === undefined)
        throw new StoreError(`${this.location}: S3 returned no ETag`, { retryable: false });
      if (out.ContentLength !== undefined && out.ContentLength > MAX_CONFIG_BYTES) {
        (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
        throw new ConfigError(`${this.location}: broker config is larger than ${MAX_CONFIG_BYTES} bytes`, {
          field: '(document)',
        });
      }
      etag = out.ETag;
      text = (await out.Body?.transformToString('utf8')) ?? '';
    } catch (e: unknown) {
      if (e instanceof StoreError || e instanceof ConfigError) throw e;
      const f = awsErrorFacts(e);
      if (cached && (f.status === 304 || f.name === 'NotModified')) {
        return { config: parseConfig(cached.text, this.location), version: cached.etag };
      }
      if (f.name === 'NoSuchKey') {
        this.#cache = undefined;
        throw new NotFoundError(`${this.location} does not exist`);
      }
      throw awsStoreError('GetObject', this.location, e);
    }
    this.#cache = undefined;
    const config = parseConfig(text, this.location);
    this.#cache = { etag, text };
    return { config, version: etag };
  }

  async write(config: BrokerConfig, expectedVersion: string | null): Promise<string> {
    const text = serializeConfig(config);
    const input: PutObjectCommandInput = {
      Bucket: this.bucket,
      Key: this.key,
      Body: text,
      ContentType: 'application/json',
      ...this.#owner,
      ...(expectedVersion === null ? { IfNoneMatch: '*' } : { IfMatch: expectedVersion }),
      ...this.#encryption(),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await this.#client().send(new PutObjectCommand(input));
        if (out.ETag === undefined)
          throw new StoreError(`${this.location}: S3 returned no ETag`, { retryable: false });
        this.#cache = { etag: out.ETag, text };
        return out.ETag;
      } catch (e: unknown) {
        const failure = this.#writeFailure(e, expectedVersion);
        if (failure !== 'resend') throw failure;
        if (attempt >= this.#conflictAttempts) {
          throw new ConflictError(`${this.location} is being written by someone else`);
        }
        await sleep(
          backoffDelay(attempt, {
            baseMs: this.#conflictDelayMs,
            maxMs: MAX_CONFLICT_DELAY_MS,
            jitter: EQUAL_JITTER,
          }),
        );
      }
    }
  }

  /** What a failed conditional PUT means: the document changed, S3 asks for a resend, or the store failed. */
  #writeFailure(e: unknown, expectedVersion: string | null): Error | 'resend' {
    if (e instanceof StoreError) return e;
    const f = awsErrorFacts(e);
    if (f.name === 'PreconditionFailed' || f.status === 412) {
      return new ConflictError(
        expectedVersion === null
          ? `${this.location} already exists`
          : `${this.location} changed since it was read`,
      );
    }
    // With If-Match, S3 answers 404 when the object is gone: it changed (was deleted) since it was read.
    if (expectedVersion !== null && f.name === 'NoSuchKey') {
      return new ConflictError(`${this.location} was deleted since it was read`);
    }
    // S3 asks for the conditional write to be sent again; the SDK does not retry 409s on its own.
    if (f.name === 'ConditionalRequestConflict' || f.status === 409) return 'resend';
    return awsStoreError('PutObject', this.location, e);
  }

  async saveRescue(tokens: KeptTokens): Promise<void> {
    try {
      await this.#client().send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.rescueKey,
          Body: `${JSON.stringify(tokens, null, 2)}\n`,
          ContentType: 'application/json',
          ...this.#owner,
          ...this.#encryption(),
        }),
      );
    } catch (e: unknown) {
      throw awsStoreError('PutObject', this.#rescueLocation, e);
    }
  }

  async loadRescue(): Promise<KeptTokens | null> {
    let text: string;
    try {
      const out = await this.#client().send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.rescueKey, ...this.#owner }),
      );
      text = (await out.Body?.transformToString('utf8')) ?? '';
    } catch (e: unknown) {
      if (awsErrorFacts(e).name === 'NoSuchKey') return null;
      throw awsStoreError('GetObject', this.#rescueLocation, e);
    }
    return parseKeptTokens(text, this.#rescueLocation);
  }

  async clearRescue(): Promise<void> {
    try {
      await this.#client().send(
        new DeleteObjectCommand({ Bucket: this.bucket, Key: this.rescueKey, ...this.#owner }),
      );
    } catch (e: unknown) {
      if (awsErrorFacts(e).name === 'NoSuchKey') return;
      throw awsStoreError('DeleteObject', this.#rescueLocation, e);
    }
  }

  #encryption(): Pick<PutObjectCommandInput, 'ServerSideEncryption' | 'SSEKMSKeyId'> {
    return this.#kmsKeyId
      ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: this.#kmsKeyId }
      : { ServerSideEncryption: 'AES256' };
  }

  get #rescueLocation(): string {
    return `s3://${this.bucket}/${this.rescueKey}`;
  }
}
