// Starts the S3 and Secrets Manager test servers and builds stores on them with real SDK clients.
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import type { ConfigStore } from '../../lib/store/config-store.ts';
import { S3Store } from '../../lib/store/s3-store.ts';
import { SecretsManagerStore } from '../../lib/store/secrets-manager-store.ts';
import { type S3Emulator, startS3Emulator } from '../../testing/s3-server.ts';
import {
  type SecretsManagerEmulator,
  startSecretsManagerEmulator,
} from '../../testing/secrets-manager-server.ts';

export const BUCKET = 'kite-config';
export const KEY = 'prod/broker-config.json';
export const SECRET = 'kite-token-refresh/test/broker-config';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

export interface CloudStores {
  s3: S3Emulator;
  sm: SecretsManagerEmulator;
  close(): Promise<void>;
}

export async function startCloud(): Promise<CloudStores> {
  const [s3, sm] = await Promise.all([startS3Emulator({ buckets: [BUCKET] }), startSecretsManagerEmulator()]);
  return { s3, sm, close: async () => void (await Promise.all([s3.close(), sm.close()])) };
}

export type StoreKind = 's3' | 'secretsmanager';

/** A store with its own SDK client, as a separate Lambda container would have. `maxAttempts` 1 turns off SDK retries. */
export function storeOn(
  cloud: CloudStores,
  kind: StoreKind,
  options: { maxAttempts?: number } = {},
): ConfigStore {
  const common = {
    region: 'ap-south-1',
    credentials,
    ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
  };
  return kind === 's3'
    ? new S3Store({
        bucket: BUCKET,
        key: KEY,
        client: new S3Client({ ...common, endpoint: cloud.s3.endpoint, forcePathStyle: true }),
      })
    : new SecretsManagerStore({
        secretId: SECRET,
        client: new SecretsManagerClient({ ...common, endpoint: cloud.sm.endpoint }),
      });
}

/** Puts a config document in place, replacing any earlier one (Secrets Manager: the emulator starts afresh). */
export function seedCloud(cloud: CloudStores, kind: StoreKind, config: BrokerConfig): void {
  const text = `${JSON.stringify(config, null, 2)}\n`;
  if (kind === 's3') cloud.s3.putObjectRaw(BUCKET, KEY, text);
  else {
    cloud.sm.reset();
    cloud.sm.createSecret(SECRET, text);
  }
}

/** The location string a user would pass to --config or BROKER_CONFIG_URI. */
export function locationOf(kind: StoreKind): string {
  return kind === 's3' ? `s3://${BUCKET}/${KEY}` : `secretsmanager://${SECRET}`;
}

/** Environment that points the SDK's standard endpoint variables at the test servers. */
export function endpointEnv(cloud: CloudStores): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: cloud.s3.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: cloud.sm.endpoint,
    AWS_REGION: 'ap-south-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  };
}
