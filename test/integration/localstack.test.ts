// Opt-in: the same store behaviour against LocalStack, for machines that can run it
// (LOCALSTACK_ENDPOINT=http://localhost:4566 npm test -- test/localstack.test.ts).
import { randomUUID } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { refreshToken } from '../../lib/engine/refresh-engine.ts';
import { ConflictError } from '../../lib/shared/errors.ts';
import type { ConfigStore } from '../../lib/store/config-store.ts';
import { S3Store } from '../../lib/store/s3-store.ts';
import { SecretsManagerStore } from '../../lib/store/secrets-manager-store.ts';
import { captureLog, seedConfig, startSandbox } from '../support/fixtures.ts';

const endpoint = process.env.LOCALSTACK_ENDPOINT;
const common = {
  region: 'us-east-1',
  endpoint,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
};

async function s3Store(): Promise<ConfigStore> {
  const client = new S3Client({ ...common, forcePathStyle: true });
  const bucket = `kite-token-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return new S3Store({ bucket, key: 'broker-config.json', client });
}

async function secretsManagerStore(initial: BrokerConfig): Promise<ConfigStore> {
  const client = new SecretsManagerClient(common);
  const name = `kite-token/${randomUUID().slice(0, 8)}`;
  await client.send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(initial) }));
  return new SecretsManagerStore({ secretId: name, client });
}

describe.runIf(endpoint)('against LocalStack (runs only when LOCALSTACK_ENDPOINT is set)', () => {
  it.each(['s3', 'secretsmanager'])('%s: one of two writers with the same version wins', async (kind) => {
    const fx = await startSandbox();
    try {
      const initial = seedConfig(fx.sandbox, 'expired');
      const store = kind === 's3' ? await s3Store() : await secretsManagerStore(initial);
      if (kind === 's3') await store.write(initial, null);
      const { version } = await store.read();

      const results = await Promise.allSettled([
        store.write({ ...initial, api_secret: 'from-a' }, version),
        store.write({ ...initial, api_secret: 'from-b' }, version),
      ]);

      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(ConflictError);
    } finally {
      await fx.sandbox.close();
    }
  });

  it.each(['s3', 'secretsmanager'])('%s: ten refreshers make one renewal', async (kind) => {
    const fx = await startSandbox();
    try {
      const initial = seedConfig(fx.sandbox, 'expired');
      const store = kind === 's3' ? await s3Store() : await secretsManagerStore(initial);
      if (kind === 's3') await store.write(initial, null);

      const outcomes = await Promise.all(
        Array.from({ length: 10 }, () =>
          refreshToken({ store, kite: () => fx.kite, log: captureLog(), pollMs: 50 }),
        ),
      );

      expect(fx.sandbox.calls['POST /session/refresh_token']).toBe(1);
      const stored = (await store.read()).config.api_secret;
      for (const o of outcomes) expect(o).toMatchObject({ accessToken: stored });
    } finally {
      await fx.sandbox.close();
    }
  });
});
