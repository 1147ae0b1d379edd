// ListObjectsV2 as S3 answers it: keys in UTF-8 binary order, a delimiter that rolls keys up into CommonPrefixes,
// max-keys pages (a common prefix counts as one key) and an opaque continuation token, in S3's XML.
import { S3HttpError } from './errors.ts';
import type { Bucket } from './objects.ts';
import type { Answer, RequestContext } from './request.ts';

export const LIST_PARAMS = new Set([
  'list-type',
  'prefix',
  'delimiter',
  'continuation-token',
  'max-keys',
  'start-after',
  'encoding-type',
  'fetch-owner',
]);

const MAX_KEYS = 1000;

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

type Entry = { kind: 'key'; key: string } | { kind: 'prefix'; prefix: string };

function maxKeysOf(ctx: RequestContext): number {
  const raw = ctx.query.get('max-keys');
  if (raw === null) return MAX_KEYS;
  if (!/^\d+$/.test(raw)) {
    throw new S3HttpError(
      400,
      'InvalidArgument',
      'Provided max-keys not an integer or within integer range',
      {
        ArgumentName: 'max-keys',
        ArgumentValue: raw,
      },
    );
  }
  return Math.min(Number(raw), MAX_KEYS);
}

/** Where a page starts: after the key a continuation token names, or after start-after. */
function startAfterOf(ctx: RequestContext): string {
  const token = ctx.query.get('continuation-token');
  if (token === null) return ctx.query.get('start-after') ?? '';
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  if (!token || !decoded.startsWith('v1:')) {
    throw new S3HttpError(400, 'InvalidArgument', 'The continuation token provided is incorrect', {
      ArgumentName: 'continuation-token',
    });
  }
  return decoded.slice(3);
}

/** Every key under the prefix after `after`, rolled up at the delimiter, in order. */
function entriesOf(objects: Bucket, prefix: string, delimiter: string, after: string): Entry[] {
  const keys = [...objects.keys()]
    .filter((key) => key.startsWith(prefix))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const entries: Entry[] = [];
  for (const key of keys) {
    const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    const entry: Entry =
      cut >= 0 ? { kind: 'prefix', prefix: key.slice(0, cut + delimiter.length) } : { kind: 'key', key };
    const name = entry.kind === 'key' ? entry.key : entry.prefix;
    const last = entries.at(-1);
    if (last?.kind === 'prefix' && entry.kind === 'prefix' && last.prefix === entry.prefix) continue;
    // A prefix the previous page ended on was already listed whole.
    if (Buffer.compare(Buffer.from(name), Buffer.from(after)) <= 0) continue;
    if (entry.kind === 'prefix' && after.startsWith(entry.prefix)) continue;
    entries.push(entry);
  }
  return entries;
}

function contentsXml(objects: Bucket, key: string, encode: (s: string) => string): string {
  const object = objects.get(key);
  if (!object) return '';
  return (
    `<Contents><Key>${encode(key)}</Key><LastModified>${object.lastModified.toISOString()}</LastModified>` +
    `<ETag>${xmlEscape(object.etag)}</ETag><ChecksumAlgorithm>${object.checksum.algorithm.toUpperCase()}` +
    `</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType><Size>${object.body.length}</Size>` +
    '<StorageClass>STANDARD</StorageClass></Contents>'
  );
}

/** GET /bucket?list-type=2: one page of the bucket's keys. */
export function listObjectsV2(objects: Bucket, ctx: RequestContext): Answer {
  if (ctx.query.get('list-type') !== '2') {
    throw new S3HttpError(501, 'NotImplemented', 'Only ListObjectsV2 (list-type=2) is implemented');
  }
  const prefix = ctx.query.get('prefix') ?? '';
  const delimiter = ctx.query.get('delimiter') ?? '';
  const maxKeys = maxKeysOf(ctx);
  const urlEncoding = ctx.query.get('encoding-type') === 'url';
  const encode = (s: string) => xmlEscape(urlEncoding ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
  const all = entriesOf(objects, prefix, delimiter, startAfterOf(ctx));
  const page = all.slice(0, maxKeys);
  const truncated = all.length > page.length;
  const lastOnPage = page.at(-1);
  const next =
    truncated && lastOnPage
      ? Buffer.from(`v1:${lastOnPage.kind === 'key' ? lastOnPage.key : lastOnPage.prefix}`).toString(
          'base64url',
        )
      : undefined;
  const token = ctx.query.get('continuation-token');
  const startAfter = ctx.query.get('start-after');
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Name>${xmlEscape(ctx.bucket)}</Name><Prefix>${encode(prefix)}</Prefix>` +
    (delimiter ? `<Delimiter>${encode(delimiter)}</Delimiter>` : '') +
    `<MaxKeys>${maxKeys}</MaxKeys><KeyCount>${page.length}</KeyCount><IsTruncated>${truncated}</IsTruncated>` +
    (token !== null ? `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>` : '') +
    (next ? `<NextContinuationToken>${next}</NextContinuationToken>` : '') +
    (startAfter !== null ? `<StartAfter>${encode(startAfter)}</StartAfter>` : '') +
    (urlEncoding ? '<EncodingType>url</EncodingType>' : '') +
    page
      .map((entry) =>
        entry.kind === 'key'
          ? contentsXml(objects, entry.key, encode)
          : `<CommonPrefixes><Prefix>${encode(entry.prefix)}</Prefix></CommonPrefixes>`,
      )
      .join('') +
    '</ListBucketResult>';
  return { status: 200, headers: { 'content-type': 'application/xml' }, body: Buffer.from(xml, 'utf8') };
}
