// S3's conditional requests: If-Match / If-None-Match / If-(Un)Modified-Since on reads, the If-Match and
// If-None-Match: * that make writes compare-and-swap, and byte ranges.
import { noSuchKey, notImplemented, preconditionFailed, S3HttpError } from './errors.ts';
import type { S3StoredObject } from './objects.ts';

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

export function etagMatches(header: string, etag: string): boolean {
  const bare = etag.replace(/^"(.*)"$/, '$1');
  return parseEtagList(header).some((t) => t === '*' || t === bare);
}

function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.floor(t / 1000);
}

/** RFC 7232 order, as S3 applies it: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since. */
export function checkReadConditions(object: S3StoredObject, headers: Record<string, string>): void {
  const modified = Math.floor(object.lastModified.getTime() / 1000);
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, object.etag)) throw preconditionFailed('If-Match');
  } else {
    const since = parseHttpDate(headers['if-unmodified-since']);
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
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, object.etag)) throw notModified;
  } else {
    const since = parseHttpDate(headers['if-modified-since']);
    if (since !== undefined && modified <= since) throw notModified;
  }
}

/** If-Match on a write or delete: the object must exist (else NoSuchKey) and carry a listed ETag. */
export function checkIfMatch(
  ifMatch: string | undefined,
  existing: S3StoredObject | undefined,
  key: string,
): void {
  if (ifMatch === undefined) return;
  if (!existing) throw noSuchKey(key);
  if (!etagMatches(ifMatch, existing.etag)) throw preconditionFailed('If-Match');
}

/** A PUT's conditions, judged against the object as it is once the whole body has arrived. */
export function checkWriteConditions(
  headers: Record<string, string>,
  existing: S3StoredObject | undefined,
  key: string,
): void {
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    // S3 takes only "*" here: create if absent.
    if (ifNoneMatch.trim() !== '*') throw notImplemented(undefined, { Header: 'If-None-Match' });
    if (existing) throw preconditionFailed('If-None-Match');
  }
  checkIfMatch(headers['if-match'], existing, key);
}

export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
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
