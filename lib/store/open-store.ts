// One way to name where broker-config.json lives, accepted everywhere a location is: a path or file://…,
// s3://bucket/key, secretsmanager://<name-or-arn>. Store modules load lazily, so a deployment pays only for its own.
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigError } from '../shared/errors.ts';
import type { ConfigStore } from './config-store.ts';

export type StoreLocation =
  | { kind: 'file'; path: string }
  | { kind: 's3'; bucket: string; key: string }
  | { kind: 'secretsmanager'; secretId: string };

/** Parses a config location. Throws ConfigError naming `setting` for anything it cannot use. */
export function parseStoreLocation(uri: string, setting = 'BROKER_CONFIG_URI'): StoreLocation {
  const value = uri.trim();
  if (!value) throw new ConfigError(`${setting} is empty`, { field: setting });
  if (value.startsWith('s3://')) {
    const rest = value.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash > 0 ? rest.slice(0, slash) : '';
    const key = slash > 0 ? rest.slice(slash + 1) : '';
    if (!bucket || !key)
      throw new ConfigError(`${setting} must look like s3://bucket/key`, { field: setting });
    return { kind: 's3', bucket, key };
  }
  if (value.startsWith('secretsmanager://')) {
    const secretId = value.slice('secretsmanager://'.length);
    if (!secretId) {
      throw new ConfigError(`${setting} must look like secretsmanager://<name-or-arn>`, { field: setting });
    }
    return { kind: 'secretsmanager', secretId };
  }
  if (value.startsWith('file://')) return { kind: 'file', path: fileURLToPath(value) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new ConfigError(`${setting} must be a path, file://, s3:// or secretsmanager:// location`, {
      field: setting,
    });
  }
  return { kind: 'file', path: value };
}

export interface OpenStoreOptions {
  /**
   * For s3:// locations: the AWS account id that must own the bucket (S3's ExpectedBucketOwner). Default
   * BROKER_CONFIG_BUCKET_OWNER; unset, S3 does not check the owner.
   */
  expectedBucketOwner?: string | undefined;
  /** For s3:// locations: SSE-KMS key. Default BROKER_CONFIG_KMS_KEY_ID; unset, SSE-S3. */
  kmsKeyId?: string | undefined;
  /**
   * SDK clients shared by every store opened with the same object, made when the first store of a kind opens: a
   * deployment with many accounts keeps one S3 client and one Secrets Manager client. Default: one per store.
   */
  clients?: SharedClients;
}

/** The SDK clients stores share; filled in as stores open. */
export interface SharedClients {
  s3?: S3Client;
  secretsManager?: SecretsManagerClient;
}

async function openS3(
  location: Extract<StoreLocation, { kind: 's3' }>,
  options: OpenStoreOptions,
): Promise<ConfigStore> {
  const { S3Store, createS3Client } = await import('./s3-store.ts');
  if (options.clients) options.clients.s3 ??= createS3Client();
  // A caller that names an option (the Lambda settings) decides it, even as undefined; the CLI names none.
  const kmsKeyId = 'kmsKeyId' in options ? options.kmsKeyId : process.env.BROKER_CONFIG_KMS_KEY_ID;
  const owner =
    'expectedBucketOwner' in options ? options.expectedBucketOwner : process.env.BROKER_CONFIG_BUCKET_OWNER;
  return new S3Store({
    bucket: location.bucket,
    key: location.key,
    ...(kmsKeyId ? { kmsKeyId } : {}),
    ...(owner ? { expectedBucketOwner: owner } : {}),
    ...(options.clients?.s3 ? { client: options.clients.s3 } : {}),
  });
}

async function openSecretsManager(secretId: string, options: OpenStoreOptions): Promise<ConfigStore> {
  const { SecretsManagerStore, createSecretsManagerClient } = await import('./secrets-manager-store.ts');
  if (options.clients) options.clients.secretsManager ??= createSecretsManagerClient();
  const client = options.clients?.secretsManager;
  return new SecretsManagerStore({ secretId, ...(client ? { client } : {}) });
}

/** Opens the store a location names. AWS clients take endpoints from the standard AWS_ENDPOINT_URL* variables. */
export async function openStore(
  uri: string,
  setting?: string,
  options: OpenStoreOptions = {},
): Promise<ConfigStore> {
  const location = parseStoreLocation(uri, setting);
  switch (location.kind) {
    case 'file': {
      const { FileStore } = await import('./file-store.ts');
      return new FileStore({ path: location.path });
    }
    case 's3':
      return openS3(location, options);
    case 'secretsmanager':
      return openSecretsManager(location.secretId, options);
  }
}
