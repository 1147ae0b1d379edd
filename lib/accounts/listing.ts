// The accounts an AccountsLocation names: the listed documents as they are, or for an S3 prefix every *.json object
// directly under it (ListObjectsV2, page by page, in the S3 store module). The S3 client and that module load only
// for a prefix, on the first listing.
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from '../shared/errors.ts';
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

async function listPrefix(location: PrefixLocation, options: ListAccountsOptions): Promise<string[]> {
  const client = await (options.s3Client ?? defaultS3Client)();
  // The S3 commands come from the store module, which names them one by one (see listObjectKeys).
  const { listObjectKeys } = await import('../store/s3-store.ts');
  const keys = await listObjectKeys(client, {
    bucket: location.bucket,
    prefix: location.prefix,
    location: location.uri,
    pageSize: options.pageSize,
    expectedBucketOwner: options.expectedBucketOwner,
  });
  return keys.filter((key) => isAccountKey(location.prefix, key)).sort();
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
