// An S3 REST server on loopback for tests: path-style object CRUD with the conditional-write, checksum,
// aws-chunked, encryption and error semantics of real S3, plus a request log and fault injection.
// The protocol lives in testing/s3/: request parsing, checksums, conditions, PUT bodies, errors, and one handler per
// operation; this module is the server, its faults and its test-facing controls.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { listenOnLoopback } from './loopback.ts';
import { DEFAULT_MESSAGES, errorAnswer, S3HttpError } from './s3/errors.ts';
import { route } from './s3/handlers.ts';
import { ObjectStore, type S3StoredObject } from './s3/objects.ts';
import { type Answer, type RequestContext, readRequest } from './s3/request.ts';

export { type ChecksumAlgorithm, computeChecksum } from './s3/checksums.ts';
export type { S3StoredObject } from './s3/objects.ts';

export type S3Method = 'GET' | 'PUT' | 'HEAD' | 'DELETE';

export interface S3Fault {
  /** Only requests with this method fail; any method when omitted. */
  method?: S3Method;
  /** How many matching requests fail before the fault is used up. */
  times: number;
  status: number;
  /** The S3 error code, e.g. SlowDown, InternalError, ConditionalRequestConflict. */
  code: string;
  message?: string;
  /** Wait this long before answering, e.g. to trip a client timeout. */
  delayMs?: number;
}

export interface S3RequestRecord {
  method: string;
  bucket: string;
  key: string;
  /** The raw query string without the leading "?" (the SDK adds x-id=…). */
  query: string;
  status: number;
  /** Request headers, lower-cased names. */
  headers: Record<string, string>;
}

export interface S3Emulator {
  /** e.g. http://127.0.0.1:43123 — use with forcePathStyle. */
  readonly endpoint: string;
  readonly port: number;
  /** The account id that owns the buckets. */
  readonly bucketOwner: string;
  /** Every request answered, in order. The same array for the emulator's life; resetRequests empties it. */
  readonly requests: S3RequestRecord[];
  resetRequests(): void;
  createBucket(bucket: string): void;
  getObject(bucket: string, key: string): S3StoredObject | undefined;
  /** Stores bytes as a plain PUT would (new ETag, Last-Modified), creating the bucket if needed; returns the ETag. */
  putObjectRaw(
    bucket: string,
    key: string,
    body: string | Uint8Array,
    options?: { contentType?: string },
  ): string;
  deleteObjectRaw(bucket: string, key: string): boolean;
  injectFault(fault: S3Fault): void;
  clearFaults(): void;
  /** Delay added before every answer. */
  setLatency(ms: number): void;
  close(): Promise<void>;
}

export interface S3EmulatorOptions {
  port?: number;
  buckets?: string[];
  /** The account id that owns every bucket, checked against x-amz-expected-bucket-owner. Default 000000000000. */
  bucketOwner?: string;
}

export const DEFAULT_BUCKET_OWNER = '000000000000';

/** Percent-decodes bucket and key in place, as S3 does; a malformed escape is S3's InvalidURI. */
function decodePath(ctx: RequestContext): void {
  try {
    ctx.bucket = decodeURIComponent(ctx.bucket);
    ctx.key = decodeURIComponent(ctx.key);
  } catch {
    throw new S3HttpError(400, 'InvalidURI', "Couldn't parse the specified URI.");
  }
}

/** Unsigned requests are refused, as S3 refuses anonymous access to a private bucket. */
function checkSigned(ctx: RequestContext): void {
  const presigned = [...ctx.query.keys()].some((k) => k.toLowerCase() === 'x-amz-signature');
  if (ctx.headers.authorization === undefined && !presigned) {
    throw new S3HttpError(403, 'AccessDenied', DEFAULT_MESSAGES.AccessDenied ?? '');
  }
}

/** As S3 does: a request that names another account as the bucket's expected owner is refused, whatever it asks. */
function checkExpectedOwner(ctx: RequestContext, owner: string): void {
  const expected = ctx.headers['x-amz-expected-bucket-owner'];
  if (expected !== undefined && expected !== owner) {
    throw new S3HttpError(403, 'AccessDenied', DEFAULT_MESSAGES.AccessDenied ?? '');
  }
}

function responseHeaders(ctx: RequestContext, answer: Answer, body: Buffer): Record<string, string> {
  const out: Record<string, string> = {
    'x-amz-request-id': ctx.requestId,
    'x-amz-id-2': randomBytes(24).toString('base64'),
    date: new Date().toUTCString(),
    server: 'AmazonS3',
    ...answer.headers,
  };
  if (answer.status !== 204 && answer.status !== 304) out['content-length'] = String(body.length);
  return out;
}

/** Injected faults, used up in order as matching requests arrive. */
class FaultQueue {
  readonly #faults: S3Fault[] = [];

  add(fault: S3Fault): void {
    this.#faults.push({ ...fault });
  }

  clear(): void {
    this.#faults.length = 0;
  }

  take(method: string): S3Fault | undefined {
    const index = this.#faults.findIndex(
      (f) => f.times > 0 && (f.method === undefined || f.method === method),
    );
    const fault = this.#faults[index];
    if (!fault) return undefined;
    fault.times -= 1;
    if (fault.times <= 0) this.#faults.splice(index, 1);
    return fault;
  }
}

interface EmulatorState {
  owner: string;
  objects: ObjectStore;
  faults: FaultQueue;
  requests: S3RequestRecord[];
  latencyMs: number;
}

async function answerTo(state: EmulatorState, ctx: RequestContext): Promise<Answer> {
  try {
    decodePath(ctx);
    if (state.latencyMs > 0) await sleep(state.latencyMs);
    checkSigned(ctx);
    checkExpectedOwner(ctx, state.owner);
    const fault = state.faults.take(ctx.method);
    if (fault) {
      if (fault.delayMs) await sleep(fault.delayMs);
      throw new S3HttpError(
        fault.status,
        fault.code,
        fault.message ?? DEFAULT_MESSAGES[fault.code] ?? fault.code,
        ctx.key ? { Key: ctx.key } : {},
      );
    }
    return route(state.objects, ctx);
  } catch (e: unknown) {
    if (!(e instanceof S3HttpError)) throw e;
    return errorAnswer(ctx, e);
  }
}

async function handle(state: EmulatorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const ctx = await readRequest(req);
  const answer = await answerTo(state, ctx);
  const body = answer.body ?? Buffer.alloc(0);
  const out = responseHeaders(ctx, answer, body);
  state.requests.push({
    method: ctx.method,
    bucket: ctx.bucket,
    key: ctx.key,
    query: ctx.rawQuery,
    status: answer.status,
    headers: ctx.headers,
  });
  res.writeHead(answer.status, out);
  res.end(ctx.method === 'HEAD' || answer.status === 304 ? undefined : body);
}

export async function startS3Emulator(options: S3EmulatorOptions = {}): Promise<S3Emulator> {
  const state: EmulatorState = {
    owner: options.bucketOwner ?? DEFAULT_BUCKET_OWNER,
    objects: new ObjectStore(options.buckets),
    faults: new FaultQueue(),
    requests: [],
    latencyMs: 0,
  };
  const { objects, requests } = state;

  const server = createServer((req, res) => {
    handle(state, req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(e instanceof Error ? e.message : 'internal error');
      } else {
        res.destroy();
      }
    });
  });
  // Long requests under injected delay must not be cut by Node's own server timeouts.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;

  const port = await listenOnLoopback(server, options.port);

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    bucketOwner: state.owner,
    requests,
    resetRequests() {
      requests.length = 0;
    },
    createBucket(bucket) {
      objects.createBucket(bucket);
    },
    getObject(bucket, key) {
      return objects.get(bucket, key);
    },
    putObjectRaw(bucket, key, body, putOptions = {}) {
      objects.createBucket(bucket);
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
      return objects.put(objects.bucket(bucket), key, bytes, { contentType: putOptions.contentType }).etag;
    },
    deleteObjectRaw(bucket, key) {
      return objects.delete(bucket, key);
    },
    injectFault(fault) {
      state.faults.add(fault);
    },
    clearFaults() {
      state.faults.clear();
    },
    setLatency(ms) {
      state.latencyMs = ms;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
