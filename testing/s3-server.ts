// An S3 REST server on loopback for tests: path-style object CRUD with the conditional-write, checksum,
// aws-chunked, encryption and error semantics of real S3, plus a request log and fault injection.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32 } from 'node:zlib';

export type S3Method = 'GET' | 'PUT' | 'HEAD' | 'DELETE';

export type ChecksumAlgorithm = 'crc32' | 'crc32c' | 'crc64nvme' | 'sha1' | 'sha256';

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

export interface S3StoredObject {
  body: Buffer;
  /** Quoted, as S3 sends it. */
  etag: string;
  lastModified: Date;
  contentType: string;
  /** x-amz-meta-* values keyed by the name without the prefix. */
  metadata: Record<string, string>;
  serverSideEncryption: string;
  kmsKeyId: string | undefined;
  checksum: { algorithm: ChecksumAlgorithm; value: string };
  /** Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires as sent. */
  contentHeaders: Record<string, string>;
}

export interface S3Emulator {
  /** e.g. http://127.0.0.1:43123 — use with forcePathStyle. */
  readonly endpoint: string;
  readonly port: number;
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
}

class S3HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: Record<string, string>;
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    code: string,
    message: string,
    extra: Record<string, string> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.headers = headers;
  }
}

const DEFAULT_MESSAGES: Record<string, string> = {
  AccessDenied: 'Access Denied',
  BadDigest: 'The Content-MD5 or checksum value that you specified did not match what the server received.',
  ConditionalRequestConflict:
    'A conflicting conditional operation is currently in progress against this resource. Please try again.',
  InternalError: 'We encountered an internal error. Please try again.',
  NoSuchBucket: 'The specified bucket does not exist',
  NoSuchKey: 'The specified key does not exist.',
  PreconditionFailed: 'At least one of the pre-conditions you specified did not hold',
  ServiceUnavailable: 'Service is unable to handle request.',
  SlowDown: 'Please reduce your request rate.',
};

const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'];
const CONTENT_HEADERS = [
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'expires',
];
const SSE_VALUES = new Set(['AES256', 'aws:kms', 'aws:kms:dsse']);
const PRESIGN_PARAMS = new Set([
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-expires',
  'x-amz-signedheaders',
  'x-amz-signature',
  'x-amz-security-token',
  'x-amz-checksum-crc32',
  'x-amz-sdk-checksum-algorithm',
  'x-id',
]);
const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-content-type': 'content-type',
  'response-content-disposition': 'content-disposition',
  'response-cache-control': 'cache-control',
  'response-content-encoding': 'content-encoding',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
};

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

function uint32Base64(value: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b.toString('base64');
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = (CRC32C_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const CRC64_MASK = 0xffffffffffffffffn;
const CRC64NVME_TABLE = (() => {
  const table: bigint[] = [];
  for (let n = 0n; n < 256n; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1n ? 0x9a6c9329ac4bc9b5n ^ (c >> 1n) : c >> 1n;
    table.push(c);
  }
  return table;
})();

function crc64nvme(data: Uint8Array): Buffer {
  let c = CRC64_MASK;
  for (const byte of data) c = (CRC64NVME_TABLE[Number((c ^ BigInt(byte)) & 0xffn)] ?? 0n) ^ (c >> 8n);
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE((c ^ CRC64_MASK) & CRC64_MASK);
  return out;
}

/** The base64 checksum S3 would compute for `data`, as sent in x-amz-checksum-<algorithm>. */
export function computeChecksum(algorithm: ChecksumAlgorithm, data: Uint8Array): string {
  switch (algorithm) {
    case 'crc32':
      return uint32Base64(crc32(data));
    case 'crc32c':
      return uint32Base64(crc32c(data));
    case 'crc64nvme':
      return crc64nvme(data).toString('base64');
    case 'sha1':
      return createHash('sha1').update(data).digest('base64');
    case 'sha256':
      return createHash('sha256').update(data).digest('base64');
  }
}

interface DecodedChunks {
  data: Buffer;
  trailers: Record<string, string>;
}

/**
 * aws-chunked framing: `<hex-size>[;chunk-signature=…]\r\n<bytes>\r\n` repeated, a zero-size chunk, then optional
 * trailer lines (`name:value\r\n`) and a blank line. Signatures are not checked.
 */
function decodeAwsChunked(raw: Buffer): DecodedChunks {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', pos);
    if (eol < 0)
      throw new S3HttpError(400, 'IncompleteBody', 'The request body ended inside a chunk header.');
    const sizeText = (raw.subarray(pos, eol).toString('latin1').split(';', 1)[0] ?? '').trim();
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) {
      throw new S3HttpError(
        400,
        'InvalidChunkSizeError',
        'Only the last chunk is allowed to have a size of 0.',
      );
    }
    const size = Number.parseInt(sizeText, 16);
    pos = eol + 2;
    if (size === 0) break;
    if (pos + size + 2 > raw.length) {
      throw new S3HttpError(
        400,
        'IncompleteBody',
        'You did not provide the number of bytes specified by a chunk.',
      );
    }
    parts.push(raw.subarray(pos, pos + size));
    pos += size;
    if (raw[pos] !== 0x0d || raw[pos + 1] !== 0x0a) {
      throw new S3HttpError(400, 'IncompleteBody', 'A chunk was not followed by CRLF.');
    }
    pos += 2;
  }
  const trailers: Record<string, string> = {};
  while (pos < raw.length) {
    const eol = raw.indexOf('\r\n', pos);
    if (eol < 0) throw malformedTrailer();
    const line = raw.subarray(pos, eol).toString('latin1');
    pos = eol + 2;
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformedTrailer();
    trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (pos !== raw.length) throw malformedTrailer();
  return { data: Buffer.concat(parts), trailers };
}

function malformedTrailer(): S3HttpError {
  return new S3HttpError(
    400,
    'MalformedTrailerError',
    'The request contained trailing data that was not well-formed or did not conform to our published schema.',
  );
}

/** Entity tags from If-Match / If-None-Match, without quotes or weak prefix. */
function parseEtagList(header: string): string[] {
  return header
    .split(',')
    .map((t) =>
      t
        .trim()
        .replace(/^W\//, '')
        .replace(/^"(.*)"$/, '$1'),
    )
    .filter((t) => t.length > 0);
}

function etagMatches(header: string, etag: string): boolean {
  const bare = etag.replace(/^"(.*)"$/, '$1');
  return parseEtagList(header).some((t) => t === '*' || t === bare);
}

function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.floor(t / 1000);
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name)
  );
}

interface RequestContext {
  method: string;
  bucket: string;
  key: string;
  query: URLSearchParams;
  rawQuery: string;
  headers: Record<string, string>;
  body: Buffer;
  requestId: string;
  region: string;
}

export async function startS3Emulator(options: S3EmulatorOptions = {}): Promise<S3Emulator> {
  const buckets = new Map<string, Map<string, S3StoredObject>>();
  const requests: S3RequestRecord[] = [];
  const faults: S3Fault[] = [];
  let latencyMs = 0;

  for (const name of options.buckets ?? []) buckets.set(name, new Map());

  function store(
    objects: Map<string, S3StoredObject>,
    key: string,
    body: Buffer,
    attrs: Partial<Omit<S3StoredObject, 'body' | 'etag' | 'lastModified'>>,
  ): S3StoredObject {
    const sse = attrs.serverSideEncryption ?? 'AES256';
    // Like S3: the ETag is the MD5 of the data only for unencrypted and SSE-S3 objects.
    const etag = sse.startsWith('aws:kms') ? md5Hex(Buffer.concat([randomBytes(16), body])) : md5Hex(body);
    const object: S3StoredObject = {
      body,
      etag: `"${etag}"`,
      lastModified: new Date(Math.floor(Date.now() / 1000) * 1000),
      contentType: attrs.contentType ?? 'binary/octet-stream',
      metadata: attrs.metadata ?? {},
      serverSideEncryption: sse,
      kmsKeyId: attrs.kmsKeyId,
      // S3 keeps a full-object CRC64NVME for uploads that did not name a checksum.
      checksum: attrs.checksum ?? { algorithm: 'crc64nvme', value: computeChecksum('crc64nvme', body) },
      contentHeaders: attrs.contentHeaders ?? {},
    };
    objects.set(key, object);
    return object;
  }

  function bucketOrThrow(ctx: RequestContext): Map<string, S3StoredObject> {
    const objects = buckets.get(ctx.bucket);
    if (!objects) {
      throw new S3HttpError(404, 'NoSuchBucket', DEFAULT_MESSAGES.NoSuchBucket ?? '', {
        BucketName: ctx.bucket,
      });
    }
    return objects;
  }

  function noSuchKey(ctx: RequestContext): S3HttpError {
    return new S3HttpError(404, 'NoSuchKey', DEFAULT_MESSAGES.NoSuchKey ?? '', { Key: ctx.key });
  }

  function preconditionFailed(condition: string): S3HttpError {
    return new S3HttpError(412, 'PreconditionFailed', DEFAULT_MESSAGES.PreconditionFailed ?? '', {
      Condition: condition,
    });
  }

  function objectHeaders(object: S3StoredObject, ctx: RequestContext): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': object.contentType,
      etag: object.etag,
      'last-modified': object.lastModified.toUTCString(),
      'accept-ranges': 'bytes',
      'x-amz-server-side-encryption': object.serverSideEncryption,
      ...object.contentHeaders,
    };
    if (object.kmsKeyId) headers['x-amz-server-side-encryption-aws-kms-key-id'] = object.kmsKeyId;
    for (const [name, value] of Object.entries(object.metadata)) headers[`x-amz-meta-${name}`] = value;
    if (ctx.headers['x-amz-checksum-mode']?.toUpperCase() === 'ENABLED' && ctx.headers.range === undefined) {
      headers[`x-amz-checksum-${object.checksum.algorithm}`] = object.checksum.value;
      headers['x-amz-checksum-type'] = 'FULL_OBJECT';
    }
    return headers;
  }

  /** RFC 7232 order, as S3 applies it: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since. */
  function checkReadConditions(object: S3StoredObject, ctx: RequestContext): void {
    const modified = Math.floor(object.lastModified.getTime() / 1000);
    const ifMatch = ctx.headers['if-match'];
    if (ifMatch !== undefined) {
      if (!etagMatches(ifMatch, object.etag)) throw preconditionFailed('If-Match');
    } else {
      const since = parseHttpDate(ctx.headers['if-unmodified-since']);
      if (since !== undefined && modified > since) throw preconditionFailed('If-Unmodified-Since');
    }
    const notModified = new S3HttpError(
      304,
      'NotModified',
      'Not Modified',
      {},
      {
        etag: object.etag,
        'last-modified': object.lastModified.toUTCString(),
      },
    );
    const ifNoneMatch = ctx.headers['if-none-match'];
    if (ifNoneMatch !== undefined) {
      if (etagMatches(ifNoneMatch, object.etag)) throw notModified;
    } else {
      const since = parseHttpDate(ctx.headers['if-modified-since']);
      if (since !== undefined && modified <= since) throw notModified;
    }
  }

  function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
    const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
    if (!match || (match[1] === '' && match[2] === '')) return undefined;
    let start: number;
    let end: number;
    if (match[1] === '') {
      const suffix = Number(match[2]);
      start = Math.max(0, size - suffix);
      end = size - 1;
      if (suffix === 0) start = size;
    } else {
      start = Number(match[1]);
      end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
    }
    if (start >= size || start > end) {
      throw new S3HttpError(
        416,
        'InvalidRange',
        'The requested range is not satisfiable',
        { ActualObjectSize: String(size), RangeRequested: header ?? '' },
        { 'content-range': `bytes */${size}` },
      );
    }
    return { start, end };
  }

  function getOrHeadObject(ctx: RequestContext): {
    status: number;
    headers: Record<string, string>;
    body: Buffer;
  } {
    const objects = bucketOrThrow(ctx);
    const object = objects.get(ctx.key);
    if (!object) throw noSuchKey(ctx);
    checkReadConditions(object, ctx);
    const headers = objectHeaders(object, ctx);
    for (const [param, header] of Object.entries(RESPONSE_OVERRIDES)) {
      const value = ctx.query.get(param);
      if (value !== null) headers[header] = value;
    }
    const range = parseRange(ctx.headers.range, object.body.length);
    if (range) {
      headers['content-range'] = `bytes ${range.start}-${range.end}/${object.body.length}`;
      return { status: 206, headers, body: object.body.subarray(range.start, range.end + 1) };
    }
    return { status: 200, headers, body: object.body };
  }

  /** The payload as the client meant it: aws-chunked framing removed and every supplied digest checked. */
  function decodePutBody(ctx: RequestContext): {
    data: Buffer;
    checksum: S3StoredObject['checksum'] | undefined;
  } {
    const h = ctx.headers;
    const encodings = (h['content-encoding'] ?? '').split(',').map((e) => e.trim().toLowerCase());
    const contentSha = h['x-amz-content-sha256'] ?? '';
    let data = ctx.body;
    let trailers: Record<string, string> = {};
    if (encodings.includes('aws-chunked') || contentSha.startsWith('STREAMING-')) {
      const declared = h['x-amz-decoded-content-length'];
      if (declared === undefined) {
        throw new S3HttpError(
          411,
          'MissingContentLength',
          'You must provide the Content-Length HTTP header.',
        );
      }
      ({ data, trailers } = decodeAwsChunked(ctx.body));
      if (String(data.length) !== declared.trim()) {
        throw new S3HttpError(
          400,
          'IncompleteBody',
          'You did not provide the number of bytes specified by the Content-Length HTTP header',
        );
      }
      const announced = h['x-amz-trailer']?.trim().toLowerCase();
      if (announced !== undefined && trailers[announced] === undefined) throw malformedTrailer();
    } else if (/^[0-9a-f]{64}$/i.test(contentSha)) {
      const actual = createHash('sha256').update(data).digest('hex');
      if (actual !== contentSha.toLowerCase()) {
        throw new S3HttpError(
          400,
          'XAmzContentSHA256Mismatch',
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
          { ClientComputedContentSHA256: contentSha, S3ComputedContentSHA256: actual },
        );
      }
    }

    const contentMd5 = h['content-md5'];
    if (contentMd5 !== undefined) {
      const given = Buffer.from(contentMd5, 'base64');
      if (given.length !== 16) {
        throw new S3HttpError(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
      }
      if (!given.equals(createHash('md5').update(data).digest())) {
        throw new S3HttpError(
          400,
          'BadDigest',
          'The Content-MD5 you specified did not match what we received.',
        );
      }
    }

    const supplied: S3StoredObject['checksum'][] = [];
    for (const algorithm of CHECKSUM_ALGORITHMS) {
      const name = `x-amz-checksum-${algorithm}`;
      const value = trailers[name] ?? h[name];
      if (value !== undefined) supplied.push({ algorithm, value });
    }
    if (supplied.length > 1) {
      throw new S3HttpError(
        400,
        'InvalidRequest',
        'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.',
      );
    }
    const sdkAlgorithm = h['x-amz-sdk-checksum-algorithm']?.toLowerCase();
    const checksum = supplied[0];
    if (sdkAlgorithm !== undefined && checksum === undefined) {
      throw new S3HttpError(
        400,
        'InvalidRequest',
        'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.',
      );
    }
    if (sdkAlgorithm !== undefined && checksum !== undefined && sdkAlgorithm !== checksum.algorithm) {
      throw new S3HttpError(
        400,
        'InvalidRequest',
        'Value for x-amz-sdk-checksum-algorithm header is invalid.',
      );
    }
    if (checksum !== undefined) {
      const actual = computeChecksum(checksum.algorithm, data);
      if (actual !== checksum.value) {
        throw new S3HttpError(
          400,
          'BadDigest',
          `The ${checksum.algorithm.toUpperCase()} you specified did not match the calculated checksum.`,
        );
      }
    }
    return { data, checksum };
  }

  function putObject(ctx: RequestContext): { status: number; headers: Record<string, string> } {
    const objects = bucketOrThrow(ctx);
    const h = ctx.headers;
    const sse = h['x-amz-server-side-encryption'];
    const kmsKeyId = h['x-amz-server-side-encryption-aws-kms-key-id'];
    if (sse !== undefined && !SSE_VALUES.has(sse)) {
      throw new S3HttpError(400, 'InvalidArgument', 'The encryption method specified is not supported', {
        ArgumentName: 'x-amz-server-side-encryption',
        ArgumentValue: sse,
      });
    }
    if (kmsKeyId !== undefined && !sse?.startsWith('aws:kms')) {
      throw new S3HttpError(
        400,
        'InvalidArgument',
        'Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms',
      );
    }
    const { data, checksum } = decodePutBody(ctx);

    // Conditions are judged against the object as it is once the whole body has arrived.
    const existing = objects.get(ctx.key);
    const ifNoneMatch = h['if-none-match'];
    const ifMatch = h['if-match'];
    if (ifNoneMatch !== undefined) {
      if (ifNoneMatch.trim() !== '*') {
        throw new S3HttpError(
          501,
          'NotImplemented',
          'A header you provided implies functionality that is not implemented',
          {
            Header: 'If-None-Match',
          },
        );
      }
      if (existing) throw preconditionFailed('If-None-Match');
    }
    if (ifMatch !== undefined) {
      if (!existing) throw noSuchKey(ctx);
      if (!etagMatches(ifMatch, existing.etag)) throw preconditionFailed('If-Match');
    }

    const metadata: Record<string, string> = {};
    const contentHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(h)) {
      if (name.startsWith('x-amz-meta-')) metadata[name.slice('x-amz-meta-'.length)] = value;
    }
    for (const name of CONTENT_HEADERS) {
      let value = h[name];
      if (name === 'content-encoding' && value !== undefined) {
        value = value
          .split(',')
          .map((e) => e.trim())
          .filter((e) => e !== '' && e.toLowerCase() !== 'aws-chunked')
          .join(',');
      }
      if (value) contentHeaders[name] = value;
    }
    const resolvedKmsKey = sse?.startsWith('aws:kms')
      ? (kmsKeyId ?? `arn:aws:kms:${ctx.region}:000000000000:alias/aws/s3`)
      : undefined;
    const object = store(objects, ctx.key, data, {
      contentType: h['content-type'],
      metadata,
      serverSideEncryption: sse ?? 'AES256',
      kmsKeyId: resolvedKmsKey,
      checksum,
      contentHeaders,
    });
    const headers: Record<string, string> = {
      etag: object.etag,
      'x-amz-server-side-encryption': object.serverSideEncryption,
      [`x-amz-checksum-${object.checksum.algorithm}`]: object.checksum.value,
      'x-amz-checksum-type': 'FULL_OBJECT',
    };
    if (object.kmsKeyId) headers['x-amz-server-side-encryption-aws-kms-key-id'] = object.kmsKeyId;
    return { status: 200, headers };
  }

  function deleteObject(ctx: RequestContext): void {
    const objects = bucketOrThrow(ctx);
    const ifMatch = ctx.headers['if-match'];
    if (ifMatch !== undefined) {
      const existing = objects.get(ctx.key);
      if (!existing) throw noSuchKey(ctx);
      if (!etagMatches(ifMatch, existing.etag)) throw preconditionFailed('If-Match');
    }
    objects.delete(ctx.key);
  }

  function createBucket(name: string): void {
    if (!buckets.has(name)) buckets.set(name, new Map());
  }

  type Answer = { status: number; headers?: Record<string, string>; body?: Buffer };

  function route(ctx: RequestContext): Answer {
    if (ctx.bucket === '') {
      throw new S3HttpError(
        501,
        'NotImplemented',
        'A header you provided implies functionality that is not implemented',
      );
    }
    for (const param of ctx.query.keys()) {
      const name = param.toLowerCase();
      if (!PRESIGN_PARAMS.has(name) && !(ctx.method === 'GET' && name in RESPONSE_OVERRIDES)) {
        throw new S3HttpError(
          501,
          'NotImplemented',
          `This emulator does not implement the "${param}" subresource`,
        );
      }
    }
    if (ctx.key === '') {
      switch (ctx.method) {
        case 'PUT':
          if (!isValidBucketName(ctx.bucket)) {
            throw new S3HttpError(400, 'InvalidBucketName', 'The specified bucket is not valid.', {
              BucketName: ctx.bucket,
            });
          }
          if (buckets.has(ctx.bucket)) {
            throw new S3HttpError(
              409,
              'BucketAlreadyOwnedByYou',
              'Your previous request to create the named bucket succeeded and you already own it.',
              { BucketName: ctx.bucket },
            );
          }
          createBucket(ctx.bucket);
          return { status: 200, headers: { location: `/${ctx.bucket}` } };
        case 'HEAD':
          bucketOrThrow(ctx);
          return { status: 200, headers: { 'x-amz-bucket-region': ctx.region } };
        case 'DELETE': {
          const objects = bucketOrThrow(ctx);
          if (objects.size > 0) {
            throw new S3HttpError(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', {
              BucketName: ctx.bucket,
            });
          }
          buckets.delete(ctx.bucket);
          return { status: 204 };
        }
        default:
          throw new S3HttpError(501, 'NotImplemented', 'Bucket listing is not implemented by this emulator');
      }
    }
    switch (ctx.method) {
      case 'GET':
      case 'HEAD':
        return getOrHeadObject(ctx);
      case 'PUT':
        return putObject(ctx);
      case 'DELETE':
        deleteObject(ctx);
        return { status: 204 };
      default:
        throw new S3HttpError(
          405,
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
          {
            Method: ctx.method,
            ResourceType: 'OBJECT',
          },
        );
    }
  }

  function errorAnswer(ctx: RequestContext, error: S3HttpError): Answer {
    const headers: Record<string, string> = { ...error.headers };
    if (error.status === 304 || ctx.method === 'HEAD') return { status: error.status, headers };
    const extra = Object.entries(error.extra)
      .map(([name, value]) => `<${name}>${xmlEscape(value)}</${name}>`)
      .join('');
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<Error><Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message>${extra}` +
      `<RequestId>${ctx.requestId}</RequestId><HostId>${randomBytes(24).toString('base64')}</HostId></Error>`;
    headers['content-type'] = 'application/xml';
    return { status: error.status, headers, body: Buffer.from(xml, 'utf8') };
  }

  function takeFault(method: string): S3Fault | undefined {
    const index = faults.findIndex((f) => f.times > 0 && (f.method === undefined || f.method === method));
    const fault = faults[index];
    if (!fault) return undefined;
    fault.times -= 1;
    if (fault.times <= 0) faults.splice(index, 1);
    return fault;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.slice(1);
    const slash = path.indexOf('/');
    const headers = flatHeaders(req);
    const ctx: RequestContext = {
      method: req.method ?? 'GET',
      bucket: slash < 0 ? path : path.slice(0, slash),
      key: slash < 0 ? '' : path.slice(slash + 1),
      query: url.searchParams,
      rawQuery: url.search.replace(/^\?/, ''),
      headers,
      body: Buffer.concat(chunks),
      requestId: randomBytes(8).toString('hex').toUpperCase(),
      region: /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(headers.authorization ?? '')?.[1] ?? 'us-east-1',
    };

    let answer: Answer;
    try {
      try {
        ctx.bucket = decodeURIComponent(ctx.bucket);
        ctx.key = decodeURIComponent(ctx.key);
      } catch {
        throw new S3HttpError(400, 'InvalidURI', "Couldn't parse the specified URI.");
      }
      if (latencyMs > 0) await sleep(latencyMs);
      const presigned = [...ctx.query.keys()].some((k) => k.toLowerCase() === 'x-amz-signature');
      if (headers.authorization === undefined && !presigned) {
        throw new S3HttpError(403, 'AccessDenied', DEFAULT_MESSAGES.AccessDenied ?? '');
      }
      const fault = takeFault(ctx.method);
      if (fault) {
        if (fault.delayMs) await sleep(fault.delayMs);
        throw new S3HttpError(
          fault.status,
          fault.code,
          fault.message ?? DEFAULT_MESSAGES[fault.code] ?? fault.code,
          ctx.key ? { Key: ctx.key } : {},
        );
      }
      answer = route(ctx);
    } catch (e: unknown) {
      if (!(e instanceof S3HttpError)) throw e;
      answer = errorAnswer(ctx, e);
    }

    const body = answer.body ?? Buffer.alloc(0);
    const out: Record<string, string> = {
      'x-amz-request-id': ctx.requestId,
      'x-amz-id-2': randomBytes(24).toString('base64'),
      date: new Date().toUTCString(),
      server: 'AmazonS3',
      ...answer.headers,
    };
    if (answer.status !== 204 && answer.status !== 304) out['content-length'] = String(body.length);
    requests.push({
      method: ctx.method,
      bucket: ctx.bucket,
      key: ctx.key,
      query: ctx.rawQuery,
      status: answer.status,
      headers,
    });
    res.writeHead(answer.status, out);
    res.end(ctx.method === 'HEAD' || answer.status === 304 ? undefined : body);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
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

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    resetRequests() {
      requests.length = 0;
    },
    createBucket,
    getObject(bucket, key) {
      return buckets.get(bucket)?.get(key);
    },
    putObjectRaw(bucket, key, body, putOptions = {}) {
      createBucket(bucket);
      const objects = buckets.get(bucket) ?? new Map<string, S3StoredObject>();
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
      return store(objects, key, bytes, { contentType: putOptions.contentType }).etag;
    },
    deleteObjectRaw(bucket, key) {
      return buckets.get(bucket)?.delete(key) ?? false;
    },
    injectFault(fault) {
      faults.push({ ...fault });
    },
    clearFaults() {
      faults.length = 0;
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
