// A PutObject body as the client meant it: aws-chunked framing (with trailers) removed, and every digest the
// client supplied (x-amz-content-sha256, Content-MD5, one x-amz-checksum-*) checked the way S3 checks it.
import { createHash } from 'node:crypto';
import { CHECKSUM_ALGORITHMS, computeChecksum } from './checksums.ts';
import { malformedTrailer, S3HttpError } from './errors.ts';
import type { S3StoredObject } from './objects.ts';

interface DecodedChunks {
  data: Buffer;
  trailers: Record<string, string>;
}

/** The data chunks from `raw`; `end` is the offset just after the zero-size chunk's header. */
function readChunks(raw: Buffer): { parts: Buffer[]; end: number } {
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
    if (size === 0) return { parts, end: pos };
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
}

/** `name:value\r\n` lines up to a blank line, which must end the body. */
function readTrailers(raw: Buffer, start: number): Record<string, string> {
  const trailers: Record<string, string> = {};
  let pos = start;
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
  return trailers;
}

/**
 * aws-chunked framing: `<hex-size>[;chunk-signature=…]\r\n<bytes>\r\n` repeated, a zero-size chunk, then optional
 * trailer lines (`name:value\r\n`) and a blank line. Signatures are not checked.
 */
export function decodeAwsChunked(raw: Buffer): DecodedChunks {
  const { parts, end } = readChunks(raw);
  return { data: Buffer.concat(parts), trailers: readTrailers(raw, end) };
}

function decodeStreaming(h: Record<string, string>, body: Buffer): DecodedChunks {
  const declared = h['x-amz-decoded-content-length'];
  if (declared === undefined) {
    throw new S3HttpError(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');
  }
  const decoded = decodeAwsChunked(body);
  if (String(decoded.data.length) !== declared.trim()) {
    throw new S3HttpError(
      400,
      'IncompleteBody',
      'You did not provide the number of bytes specified by the Content-Length HTTP header',
    );
  }
  const announced = h['x-amz-trailer']?.trim().toLowerCase();
  if (announced !== undefined && decoded.trailers[announced] === undefined) throw malformedTrailer();
  return decoded;
}

function checkContentSha256(contentSha: string, data: Buffer): void {
  if (!/^[0-9a-f]{64}$/i.test(contentSha)) return;
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

/** The data with framing removed; the trailers aws-chunked carried (none otherwise). */
function decodeFraming(h: Record<string, string>, body: Buffer): DecodedChunks {
  const encodings = (h['content-encoding'] ?? '').split(',').map((e) => e.trim().toLowerCase());
  const contentSha = h['x-amz-content-sha256'] ?? '';
  if (encodings.includes('aws-chunked') || contentSha.startsWith('STREAMING-'))
    return decodeStreaming(h, body);
  checkContentSha256(contentSha, body);
  return { data: body, trailers: {} };
}

function checkContentMd5(contentMd5: string | undefined, data: Buffer): void {
  if (contentMd5 === undefined) return;
  const given = Buffer.from(contentMd5, 'base64');
  if (given.length !== 16) {
    throw new S3HttpError(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
  }
  if (!given.equals(createHash('md5').update(data).digest())) {
    throw new S3HttpError(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
}

/** The one x-amz-checksum-* the client sent (header or trailer), agreeing with x-amz-sdk-checksum-algorithm. */
function suppliedChecksum(
  h: Record<string, string>,
  trailers: Record<string, string>,
): S3StoredObject['checksum'] | undefined {
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
  if (sdkAlgorithm === undefined) return checksum;
  if (checksum === undefined) {
    throw new S3HttpError(
      400,
      'InvalidRequest',
      'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.',
    );
  }
  if (sdkAlgorithm !== checksum.algorithm) {
    throw new S3HttpError(400, 'InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
  }
  return checksum;
}

/** The payload as the client meant it: aws-chunked framing removed and every supplied digest checked. */
export function decodePutBody(
  h: Record<string, string>,
  body: Buffer,
): { data: Buffer; checksum: S3StoredObject['checksum'] | undefined } {
  const { data, trailers } = decodeFraming(h, body);
  checkContentMd5(h['content-md5'], data);
  const checksum = suppliedChecksum(h, trailers);
  if (checksum !== undefined && computeChecksum(checksum.algorithm, data) !== checksum.value) {
    throw new S3HttpError(
      400,
      'BadDigest',
      `The ${checksum.algorithm.toUpperCase()} you specified did not match the calculated checksum.`,
    );
  }
  return { data, checksum };
}
