// One way to name where broker-config.json lives, accepted everywhere a location is: a path or file://…,
// s3://bucket/key, secretsmanager://<name-or-arn>. Store modules load lazily, so a deployment pays only for its own.
import { fileURLToPath } from 'node:url';
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

/**
 * Opens the store a location names. AWS clients take endpoints from the standard AWS_ENDPOINT_URL* variables.
 * The S3 store encrypts with `kmsKeyId` when given; without the option, with BROKER_CONFIG_KMS_KEY_ID.
 */
export async function openStore(
  uri: string,
  setting?: string,
  options: { kmsKeyId?: string | undefined } = {},
): Promise<ConfigStore> {
  const location = parseStoreLocation(uri, setting);
  const kmsKeyId = 'kmsKeyId' in options ? options.kmsKeyId : process.env.BROKER_CONFIG_KMS_KEY_ID;
  switch (location.kind) {
    case 'file': {
      const { FileStore } = await import('./file-store.ts');
      return new FileStore({ path: location.path });
    }
    case 's3': {
      const { S3Store } = await import('./s3-store.ts');
      return new S3Store({
        bucket: location.bucket,
        key: location.key,
        ...(kmsKeyId ? { kmsKeyId } : {}),
      });
    }
    case 'secretsmanager': {
      const { SecretsManagerStore } = await import('./secrets-manager-store.ts');
      return new SecretsManagerStore({ secretId: location.secretId });
    }
  }
}
