// The S3 emulator at the HTTP level: the protocol details other tests rely on, checked with plain fetch.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { computeChecksum, type S3Emulator, startS3Emulator } from '../../testing/s3-server.ts';

const BUCKET = 'emulated';
// The emulator needs an Authorization header but does not check the signature.
const AUTH =
  'AWS4-HMAC-SHA256 Credential=test/20260101/ap-south-1/s3/aws4_request, SignedHeaders=host, Signature=00';

let emulator: S3Emulator;
let counter = 0;

function freshKey(): string {
  counter += 1;
  return `objects/item-${counter}.json`;
}

function call(
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: Buffer | string } = {},
) {
  return fetch(`${emulator.endpoint}${path}`, {
    method,
    headers: { authorization: AUTH, ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
}

function md5Etag(text: string): string {
  return `"${createHash('md5').update(text).digest('hex')}"`;
}

function awsChunked(pieces: string[], trailers: Record<string, string>, signed = false): Buffer {
  const sig = signed ? `;chunk-signature=${'0'.repeat(64)}` : '';
  let out = '';
  for (const piece of pieces) out += `${Buffer.byteLength(piece).toString(16)}${sig}\r\n${piece}\r\n`;
  out += `0${sig}\r\n`;
  for (const [name, value] of Object.entries(trailers)) out += `${name}:${value}\r\n`;
  out += '\r\n';
  return Buffer.from(out, 'utf8');
}

function chunkedHeaders(decodedLength: number): Record<string, string> {
  return {
    'content-encoding': 'aws-chunked',
    'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    'x-amz-decoded-content-length': String(decodedLength),
    'x-amz-trailer': 'x-amz-checksum-crc32',
    'x-amz-sdk-checksum-algorithm': 'CRC32',
  };
}

beforeAll(async () => {
  emulator = await startS3Emulator({ buckets: [BUCKET] });
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.clearFaults();
  emulator.setLatency(0);
  emulator.resetRequests();
});

describe('S3 emulator', () => {
  it('rejects requests without an Authorization header with AccessDenied', async () => {
    const res = await fetch(`${emulator.endpoint}/${BUCKET}/${freshKey()}`);

    const body = await res.text();
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amz-request-id')).toMatch(/^[0-9A-F]{16}$/);
    expect(body).toContain('<Code>AccessDenied</Code>');
    expect(body).toContain(`<RequestId>${res.headers.get('x-amz-request-id')}</RequestId>`);
  });

  it('answers NoSuchBucket and NoSuchKey with S3 XML error bodies', async () => {
    const key = freshKey();

    const noBucket = await call('GET', `/missing-bucket/${key}`);
    const noKey = await call('GET', `/${BUCKET}/${key}`);

    expect(noBucket.status).toBe(404);
    expect(await noBucket.text()).toMatch(
      /<Code>NoSuchBucket<\/Code>.*<BucketName>missing-bucket<\/BucketName>/s,
    );
    expect(noKey.status).toBe(404);
    const text = await noKey.text();
    expect(text.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
    expect(text).toMatch(
      /<Error><Code>NoSuchKey<\/Code><Message>[^<]+<\/Message><Key>objects\/item-\d+\.json<\/Key>/,
    );
  });

  it('stores a PUT body and returns it with an MD5 ETag and object headers', async () => {
    const key = freshKey();
    const text = '{"hello":"world"}';

    const put = await call('PUT', `/${BUCKET}/${key}`, {
      headers: { 'content-type': 'application/json' },
      body: text,
    });
    const get = await call('GET', `/${BUCKET}/${key}`);

    expect(put.status).toBe(200);
    expect(put.headers.get('etag')).toBe(md5Etag(text));
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('application/json');
    expect(get.headers.get('content-length')).toBe(String(text.length));
    expect(get.headers.get('etag')).toBe(md5Etag(text));
    expect(new Date(get.headers.get('last-modified') ?? '').getTime()).not.toBeNaN();
    expect(await get.text()).toBe(text);
  });

  it('answers conditional GET and HEAD with 304 and 412', async () => {
    const key = freshKey();
    const etag = emulator.putObjectRaw(BUCKET, key, 'body');

    const notModified = await call('GET', `/${BUCKET}/${key}`, { headers: { 'if-none-match': etag } });
    const headNotModified = await call('HEAD', `/${BUCKET}/${key}`, { headers: { 'if-none-match': etag } });
    const failed = await call('GET', `/${BUCKET}/${key}`, { headers: { 'if-match': '"0000"' } });
    const matched = await call('GET', `/${BUCKET}/${key}`, { headers: { 'if-match': etag } });

    expect(notModified.status).toBe(304);
    expect(notModified.headers.get('etag')).toBe(etag);
    expect(await notModified.text()).toBe('');
    expect(headNotModified.status).toBe(304);
    expect(failed.status).toBe(412);
    expect(await failed.text()).toContain('<Code>PreconditionFailed</Code>');
    expect(matched.status).toBe(200);
  });

  it('applies If-None-Match: * and If-Match to PUT like S3', async () => {
    const key = freshKey();
    const missingKey = freshKey();
    const etag = emulator.putObjectRaw(BUCKET, key, 'v1');

    const createOver = await call('PUT', `/${BUCKET}/${key}`, {
      headers: { 'if-none-match': '*' },
      body: 'x',
    });
    const staleMatch = await call('PUT', `/${BUCKET}/${key}`, {
      headers: { 'if-match': '"0000"' },
      body: 'x',
    });
    const missing = await call('PUT', `/${BUCKET}/${missingKey}`, {
      headers: { 'if-match': etag },
      body: 'x',
    });
    const good = await call('PUT', `/${BUCKET}/${key}`, { headers: { 'if-match': etag }, body: 'v2' });

    expect(createOver.status).toBe(412);
    expect(staleMatch.status).toBe(412);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('<Code>NoSuchKey</Code>');
    expect(good.status).toBe(200);
    expect(emulator.getObject(BUCKET, key)?.body.toString()).toBe('v2');
    expect(emulator.getObject(BUCKET, missingKey)).toBeUndefined();
  });

  it('creates buckets on PUT /bucket and refuses to create one twice', async () => {
    const first = await call('PUT', '/made-by-test');
    const second = await call('PUT', '/made-by-test');
    const put = await call('PUT', '/made-by-test/k', { body: 'x' });

    expect(first.status).toBe(200);
    expect(second.status).toBe(409);
    expect(await second.text()).toContain('<Code>BucketAlreadyOwnedByYou</Code>');
    expect(put.status).toBe(200);
  });

  it('decodes an aws-chunked body with a CRC32 trailer and echoes the checksum', async () => {
    const key = freshKey();
    const text = '{"a":1,"b":"two"}';
    const crc = computeChecksum('crc32', Buffer.from(text));

    const res = await call('PUT', `/${BUCKET}/${key}`, {
      headers: chunkedHeaders(text.length),
      body: awsChunked([text.slice(0, 5), text.slice(5)], { 'x-amz-checksum-crc32': crc }),
    });

    expect(res.status).toBe(200);
    expect(res.headers.get('x-amz-checksum-crc32')).toBe(crc);
    expect(res.headers.get('etag')).toBe(md5Etag(text));
    expect(emulator.getObject(BUCKET, key)?.body.toString()).toBe(text);
    expect(emulator.getObject(BUCKET, key)?.contentHeaders['content-encoding']).toBeUndefined();
  });

  it('decodes signed aws-chunked framing (chunk-signature extensions)', async () => {
    const key = freshKey();
    const text = 'signed chunks';

    const res = await call('PUT', `/${BUCKET}/${key}`, {
      headers: {
        'content-encoding': 'aws-chunked',
        'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
        'x-amz-decoded-content-length': String(text.length),
      },
      body: awsChunked([text], {}, true),
    });

    expect(res.status).toBe(200);
    expect(emulator.getObject(BUCKET, key)?.body.toString()).toBe(text);
  });

  it('rejects a wrong CRC32 with BadDigest and a short chunked body with IncompleteBody', async () => {
    const key = freshKey();
    const text = 'payload';

    const badTrailer = await call('PUT', `/${BUCKET}/${key}`, {
      headers: chunkedHeaders(text.length),
      body: awsChunked([text], { 'x-amz-checksum-crc32': 'AAAAAA==' }),
    });
    const badHeader = await call('PUT', `/${BUCKET}/${key}`, {
      headers: { 'x-amz-checksum-crc32': 'AAAAAA==', 'x-amz-sdk-checksum-algorithm': 'CRC32' },
      body: text,
    });
    const short = await call('PUT', `/${BUCKET}/${key}`, {
      headers: chunkedHeaders(text.length + 3),
      body: awsChunked([text], { 'x-amz-checksum-crc32': computeChecksum('crc32', Buffer.from(text)) }),
    });

    expect(badTrailer.status).toBe(400);
    expect(await badTrailer.text()).toContain('<Code>BadDigest</Code>');
    expect(badHeader.status).toBe(400);
    expect(await badHeader.text()).toContain('<Code>BadDigest</Code>');
    expect(short.status).toBe(400);
    expect(await short.text()).toContain('<Code>IncompleteBody</Code>');
    expect(emulator.getObject(BUCKET, key)).toBeUndefined();
  });

  it('stores and echoes server-side-encryption headers, with non-MD5 ETags for SSE-KMS', async () => {
    const key = freshKey();
    const kmsKey = 'arn:aws:kms:ap-south-1:111122223333:key/abcd';
    const text = 'secret-ish';

    const put = await call('PUT', `/${BUCKET}/${key}`, {
      headers: {
        'x-amz-server-side-encryption': 'aws:kms',
        'x-amz-server-side-encryption-aws-kms-key-id': kmsKey,
      },
      body: text,
    });
    const head = await call('HEAD', `/${BUCKET}/${key}`);

    expect(put.headers.get('x-amz-server-side-encryption')).toBe('aws:kms');
    expect(put.headers.get('x-amz-server-side-encryption-aws-kms-key-id')).toBe(kmsKey);
    expect(head.headers.get('x-amz-server-side-encryption-aws-kms-key-id')).toBe(kmsKey);
    expect(put.headers.get('etag')).not.toBe(md5Etag(text));
    expect(emulator.getObject(BUCKET, key)?.serverSideEncryption).toBe('aws:kms');
  });

  it('fails injected requests the given number of times and logs every request', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, 'x');
    emulator.injectFault({ method: 'HEAD', times: 2, status: 503, code: 'SlowDown' });

    const first = await call('HEAD', `/${BUCKET}/${key}`);
    const get = await call('GET', `/${BUCKET}/${key}`);
    const second = await call('HEAD', `/${BUCKET}/${key}`);
    const third = await call('HEAD', `/${BUCKET}/${key}`);

    expect([first.status, get.status, second.status, third.status]).toEqual([503, 200, 503, 200]);
    expect(emulator.requests.map((r) => `${r.method} ${r.status}`)).toEqual([
      'HEAD 503',
      'GET 200',
      'HEAD 503',
      'HEAD 200',
    ]);
    expect(emulator.requests[0]?.headers.authorization).toBe(AUTH);
  });

  it('delays answers by the configured latency and fault delay', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, 'x');
    emulator.setLatency(30);
    emulator.injectFault({ method: 'GET', times: 1, status: 500, code: 'InternalError', delayMs: 40 });

    const started = performance.now();
    const res = await call('GET', `/${BUCKET}/${key}`);
    const elapsed = performance.now() - started;

    expect(res.status).toBe(500);
    expect(await res.text()).toContain('<Code>InternalError</Code>');
    expect(elapsed).toBeGreaterThanOrEqual(65);
  });

  it('deletes objects with 204 whether or not they exist', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, 'x');

    const first = await call('DELETE', `/${BUCKET}/${key}`);
    const again = await call('DELETE', `/${BUCKET}/${key}`);

    expect([first.status, again.status]).toEqual([204, 204]);
    expect(emulator.getObject(BUCKET, key)).toBeUndefined();
  });

  it('serves byte ranges with 206', async () => {
    const key = freshKey();
    emulator.putObjectRaw(BUCKET, key, '0123456789');

    const res = await call('GET', `/${BUCKET}/${key}`, { headers: { range: 'bytes=2-4' } });

    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 2-4/10');
    expect(await res.text()).toBe('234');
  });
});
