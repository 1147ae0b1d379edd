// One handler per S3 operation the emulator speaks (GetObject/HeadObject, PutObject, DeleteObject, CreateBucket,
// HeadBucket, DeleteBucket, ListObjectsV2), and the router that picks one from the method, bucket, key and query.
import { checkIfMatch, checkReadConditions, checkWriteConditions, parseRange } from './conditions.ts';
import { noSuchKey, notImplemented, S3HttpError } from './errors.ts';
import { LIST_PARAMS, listObjectsV2 } from './listing.ts';
import type { ObjectStore, S3StoredObject } from './objects.ts';
import { decodePutBody } from './put-body.ts';
import type { Answer, RequestContext } from './request.ts';

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

function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name)
  );
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

function getOrHeadObject(store: ObjectStore, ctx: RequestContext): Answer {
  const object = store.bucket(ctx.bucket).get(ctx.key);
  if (!object) throw noSuchKey(ctx.key);
  checkReadConditions(object, ctx.headers);
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

/** The encryption a PUT asks for, checked as S3 checks it; the KMS key defaults to the account's aws/s3 key. */
function requestedEncryption(ctx: RequestContext): { sse: string; kmsKeyId: string | undefined } {
  const sse = ctx.headers['x-amz-server-side-encryption'];
  const kmsKeyId = ctx.headers['x-amz-server-side-encryption-aws-kms-key-id'];
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
  const resolvedKmsKey = sse?.startsWith('aws:kms')
    ? (kmsKeyId ?? `arn:aws:kms:${ctx.region}:000000000000:alias/aws/s3`)
    : undefined;
  return { sse: sse ?? 'AES256', kmsKeyId: resolvedKmsKey };
}

/** x-amz-meta-* and the content headers S3 keeps (Content-Encoding without the aws-chunked framing). */
function keptHeaders(h: Record<string, string>): {
  metadata: Record<string, string>;
  contentHeaders: Record<string, string>;
} {
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
  return { metadata, contentHeaders };
}

function putObject(store: ObjectStore, ctx: RequestContext): Answer {
  const objects = store.bucket(ctx.bucket);
  const encryption = requestedEncryption(ctx);
  const { data, checksum } = decodePutBody(ctx.headers, ctx.body);
  // Conditions are judged against the object as it is once the whole body has arrived.
  checkWriteConditions(ctx.headers, objects.get(ctx.key), ctx.key);
  const object = store.put(objects, ctx.key, data, {
    contentType: ctx.headers['content-type'],
    ...keptHeaders(ctx.headers),
    serverSideEncryption: encryption.sse,
    kmsKeyId: encryption.kmsKeyId,
    checksum,
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

function deleteObject(store: ObjectStore, ctx: RequestContext): Answer {
  const objects = store.bucket(ctx.bucket);
  checkIfMatch(ctx.headers['if-match'], objects.get(ctx.key), ctx.key);
  objects.delete(ctx.key);
  return { status: 204 };
}

function createBucket(store: ObjectStore, ctx: RequestContext): Answer {
  if (!isValidBucketName(ctx.bucket)) {
    throw new S3HttpError(400, 'InvalidBucketName', 'The specified bucket is not valid.', {
      BucketName: ctx.bucket,
    });
  }
  if (store.hasBucket(ctx.bucket)) {
    throw new S3HttpError(
      409,
      'BucketAlreadyOwnedByYou',
      'Your previous request to create the named bucket succeeded and you already own it.',
      { BucketName: ctx.bucket },
    );
  }
  store.createBucket(ctx.bucket);
  return { status: 200, headers: { location: `/${ctx.bucket}` } };
}

function headBucket(store: ObjectStore, ctx: RequestContext): Answer {
  store.bucket(ctx.bucket);
  return { status: 200, headers: { 'x-amz-bucket-region': ctx.region } };
}

function deleteBucket(store: ObjectStore, ctx: RequestContext): Answer {
  if (store.bucket(ctx.bucket).size > 0) {
    throw new S3HttpError(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', {
      BucketName: ctx.bucket,
    });
  }
  store.deleteBucket(ctx.bucket);
  return { status: 204 };
}

type Handler = (store: ObjectStore, ctx: RequestContext) => Answer;

const BUCKET_HANDLERS: Record<string, Handler> = {
  GET: (store, ctx) => listObjectsV2(store.bucket(ctx.bucket), ctx),
  PUT: createBucket,
  HEAD: headBucket,
  DELETE: deleteBucket,
};
const OBJECT_HANDLERS: Record<string, Handler> = {
  GET: getOrHeadObject,
  HEAD: getOrHeadObject,
  PUT: putObject,
  DELETE: deleteObject,
};

/**
 * Only presigning and SDK parameters, response overrides on an object GET and listing parameters on a bucket GET
 * are understood; any subresource is not.
 */
function checkSubresources(ctx: RequestContext): void {
  const get = ctx.method === 'GET';
  const listing = get && ctx.key === '';
  for (const param of ctx.query.keys()) {
    const name = param.toLowerCase();
    const understood =
      PRESIGN_PARAMS.has(name) || (listing ? LIST_PARAMS.has(name) : get && name in RESPONSE_OVERRIDES);
    if (!understood) {
      throw notImplemented(`This emulator does not implement the "${param}" subresource`);
    }
  }
}

export function route(store: ObjectStore, ctx: RequestContext): Answer {
  if (ctx.bucket === '') throw notImplemented();
  checkSubresources(ctx);
  if (ctx.key === '') {
    const handler = BUCKET_HANDLERS[ctx.method];
    if (!handler) throw notImplemented('This bucket operation is not implemented by this emulator');
    return handler(store, ctx);
  }
  const handler = OBJECT_HANDLERS[ctx.method];
  if (!handler) {
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
  return handler(store, ctx);
}
