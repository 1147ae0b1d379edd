// The accounts an AccountsLocation names: the listed documents as they are, or for an S3 prefix every *.json object
// directly under it (ListObjectsV2, page by page). The S3 client loads only for a prefix, on the first listing.
import type { ListObjectsV2CommandOutput, S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from '../shared/errors.ts';
import { awsStoreError } from '../store/aws-errors.ts';
import {
  type AccountDocument,
  type AccountsLocation,
  accountDocument,
  checkUniqueNames,
  RESCUE_SUFFIX,
} from './location.ts';

export interface ListAccountsOptions {
  /** The S3 client to list with (shared with the stores); built with createS3Client when absent. */
  s3Client?: () => S3Client | Promise<S3Client>;
  /** The account id that must own the bucket (ExpectedBucketOwner). */
  expectedBucketOwner?: string | undefined;
  /** The setting errors name. Default BROKER_CONFIG_URI. */
  setting?: string;
  /** Keys asked for per page; S3's own default (1000) when absent. Tests use small pages. */
  pageSize?: number;
}

/** Whether an object directly under the prefix is an account's document. */
export function isAccountKey(prefix: string, key: string): boolean {
  const rest = key.slice(prefix.length);
  return (
    key.startsWith(prefix) &&
    rest.length > '.json'.length &&
    !rest.includes('/') &&
    rest.endsWith('.json') &&
    !rest.endsWith(RESCUE_SUFFIX)
  );
}

async function defaultS3Client(): Promise<S3Client> {
  const { createS3Client } = await import('../store/s3-store.ts');
  return createS3Client();
}

type PrefixLocation = Extract<AccountsLocation, { kind: 's3-prefix' }>;

async function listPage(
  client: S3Client,
  location: PrefixLocation,
  options: ListAccountsOptions,
  token: string | undefined,
): Promise<ListObjectsV2CommandOutput> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  try {
    return await client.send(
      new ListObjectsV2Command({
        Bucket: location.bucket,
        Prefix: location.prefix,
        Delimiter: '/',
        ...(token ? { ContinuationToken: token } : {}),
        ...(options.pageSize ? { MaxKeys: options.pageSize } : {}),
        ...(options.expectedBucketOwner ? { ExpectedBucketOwner: options.expectedBucketOwner } : {}),
      }),
    );
  } catch (e: unknown) {
    throw awsStoreError('ListObjectsV2', location.uri, e);
  }
}

async function listPrefix(location: PrefixLocation, options: ListAccountsOptions): Promise<string[]> {
  const client = await (options.s3Client ?? defaultS3Client)();
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await listPage(client, location, options, token);
    for (const item of page.Contents ?? []) {
      if (item.Key && isAccountKey(location.prefix, item.Key)) keys.push(item.Key);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

/**
 * The documents of every account, in a stable order. For an S3 prefix that holds no account, a ConfigError: a
 * deployment that serves nobody is a mistake, not a quiet success.
 */
export async function listAccounts(
  location: AccountsLocation,
  options: ListAccountsOptions = {},
): Promise<AccountDocument[]> {
  const setting = options.setting ?? 'BROKER_CONFIG_URI';
  switch (location.kind) {
    case 'single':
      return [location.document];
    case 'list':
      return location.documents;
    case 's3-prefix': {
      const keys = await listPrefix(location, options);
      if (keys.length === 0) {
        throw new ConfigError(`${setting}: no account documents (*.json) directly under ${location.uri}`, {
          field: setting,
        });
      }
      const documents = keys.map((key) => accountDocument(`s3://${location.bucket}/${key}`, setting));
      checkUniqueNames(documents, setting);
      return documents;
    }
  }
}
