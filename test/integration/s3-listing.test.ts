// ListObjectsV2 on the S3 test server, driven by the real S3Client, and the account listing built on it.
import { ListObjectsV2Command, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listAccounts } from '../../lib/accounts/listing.ts';
import { parseAccountsLocation } from '../../lib/accounts/location.ts';
import { ConfigError, StoreError } from '../../lib/shared/errors.ts';
import { type S3Emulator, startS3Emulator } from '../../testing/s3-server.ts';

const BUCKET = 'listing';
let s3: S3Emulator;
let client: S3Client;

beforeAll(async () => {
  s3 = await startS3Emulator({ buckets: [BUCKET] });
  client = new S3Client({
    region: 'ap-south-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await s3.close();
});

beforeEach(() => {
  for (const key of [...listKeys()]) s3.deleteObjectRaw(BUCKET, key);
  s3.resetRequests();
});

function* listKeys(): Generator<string> {
  for (const name of ['a', 'b', 'c', 'd', 'e']) yield `accounts/${name}.json`;
  yield 'accounts/a.json.rescue.json';
  yield 'accounts/archive/old.json';
  yield 'accounts/archive/older.json';
  yield 'accounts/notes.txt';
  yield 'other/x.json';
}

function seedAll(): void {
  for (const key of listKeys()) s3.putObjectRaw(BUCKET, key, '{}');
}

describe('ListObjectsV2 on the S3 test server', () => {
  it('lists keys under a prefix in order and rolls nested keys up into common prefixes', async () => {
    seedAll();
    const out = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'accounts/', Delimiter: '/' }),
    );
    expect(out.Contents?.map((c) => c.Key)).toEqual([
      'accounts/a.json',
      'accounts/a.json.rescue.json',
      'accounts/b.json',
      'accounts/c.json',
      'accounts/d.json',
      'accounts/e.json',
      'accounts/notes.txt',
    ]);
    expect(out.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['accounts/archive/']);
    expect(out.KeyCount).toBe(8);
    expect(out.IsTruncated).toBe(false);
    expect(out.Contents?.[0]).toMatchObject({ Size: 2, ETag: expect.stringMatching(/^"[0-9a-f]{32}"$/) });
  });

  it('pages with max-keys and continuation tokens, counting a common prefix as one key', async () => {
    seedAll();
    const pages: string[][] = [];
    for await (const page of paginateListObjectsV2(
      { client, pageSize: 3 },
      { Bucket: BUCKET, Prefix: 'accounts/', Delimiter: '/' },
    )) {
      pages.push([
        ...(page.Contents ?? []).map((c) => c.Key ?? ''),
        ...(page.CommonPrefixes ?? []).map((p) => p.Prefix ?? ''),
      ]);
    }
    expect(pages.map((p) => p.length)).toEqual([3, 3, 2]);
    expect(pages.flat()).toContain('accounts/archive/');
    expect(new Set(pages.flat()).size).toBe(8);
    expect(s3.requests.filter((r) => r.query.includes('continuation-token'))).toHaveLength(2);
  });

  it('lists the whole bucket without a delimiter and answers NoSuchBucket for a missing bucket', async () => {
    seedAll();
    const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(out.KeyCount).toBe(10);
    await expect(client.send(new ListObjectsV2Command({ Bucket: 'missing-bucket' }))).rejects.toMatchObject({
      name: 'NoSuchBucket',
    });
  });

  it('refuses a continuation token it did not issue', async () => {
    await expect(
      client.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: 'bm9wZQ' })),
    ).rejects.toMatchObject({ name: 'InvalidArgument' });
  });
});

describe('listAccounts', () => {
  it('takes every json document directly under an S3 prefix, skipping rescue objects and nested keys', async () => {
    seedAll();
    const documents = await listAccounts(parseAccountsLocation(`s3://${BUCKET}/accounts/`), {
      s3Client: () => client,
      pageSize: 2,
    });
    expect(documents.map((d) => [d.name, d.uri])).toEqual([
      ['a', `s3://${BUCKET}/accounts/a.json`],
      ['b', `s3://${BUCKET}/accounts/b.json`],
      ['c', `s3://${BUCKET}/accounts/c.json`],
      ['d', `s3://${BUCKET}/accounts/d.json`],
      ['e', `s3://${BUCKET}/accounts/e.json`],
    ]);
  });

  it('refuses a prefix with no account documents under it', async () => {
    s3.putObjectRaw(BUCKET, 'accounts/a.json.rescue.json', '{}');
    await expect(
      listAccounts(parseAccountsLocation(`s3://${BUCKET}/accounts/`), { s3Client: () => client }),
    ).rejects.toThrow(ConfigError);
  });

  it('reports a listing S3 refuses as a store error naming the operation', async () => {
    s3.injectFault({ method: 'GET', times: 1, status: 403, code: 'AccessDenied' });
    const listing = listAccounts(parseAccountsLocation(`s3://${BUCKET}/accounts/`), {
      s3Client: () => client,
    });
    await expect(listing).rejects.toThrow(StoreError);
    await expect(listing).rejects.toThrow(/ListObjectsV2/);
  });
});
