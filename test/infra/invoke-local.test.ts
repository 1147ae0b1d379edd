// `osls invoke local --stage local` with the sample events in events/, against the Kite sandbox and the S3 and Secrets
// Manager test servers on the names `npm run emulators` serves: the framework's own local run, as a Serverless user
// tries it first. osls builds the function with esbuild and runs it in its own process, with a clean environment.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_DIR, runOsls } from '../../scripts/package.ts';
import { cleanEnv } from '../../testing/clean-env.ts';
import { type S3Emulator, startS3Emulator } from '../../testing/s3-server.ts';
import {
  type SecretsManagerEmulator,
  startSecretsManagerEmulator,
} from '../../testing/secrets-manager-server.ts';
import { type SandboxFixture, seedConfig, startSandbox } from '../support/fixtures.ts';

// The names the local stage's functions are given (serverless.yml, params.local and custom.settings.emulators).
const BUCKET = 'kite-token-local';
const KEY = 'broker-config.json';
const CONFIG_SECRET = 'kite-token-local/broker-config';
const APP_SECRET = 'kite-token-local/kite-app';
const INVOKE_TIMEOUT = 180_000;

let fx: SandboxFixture;
let s3: S3Emulator;
let sm: SecretsManagerEmulator;

beforeAll(async () => {
  fx = await startSandbox();
  s3 = await startS3Emulator({ buckets: [BUCKET] });
  sm = await startSecretsManagerEmulator();
});

afterAll(async () => {
  await Promise.all([fx?.sandbox.close(), s3?.close(), sm?.close()]);
});

/** Runs `osls invoke local` and returns the function's answer, the last JSON object osls prints. */
async function invokeLocal(
  fn: string,
  event: string,
  extra: string[] = [],
): Promise<Record<string, unknown>> {
  let output = '';
  await runOsls(
    ['invoke', 'local', '--function', fn, '--stage', 'local', '--path', `events/${event}`, ...extra],
    {
      onOutput: (text) => {
        output += text;
      },
      env: cleanEnv({
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.endpoint,
        POWERTOOLS_METRICS_DISABLED: 'true',
        SLS_TELEMETRY_DISABLED: '1',
        SLS_NOTIFICATIONS_MODE: 'off',
      }),
    },
  ).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${output}`);
  });
  const start = [...output.matchAll(/^\{$/gm)].at(-1)?.index;
  if (start === undefined) throw new Error(`osls printed no answer:\n${output}`);
  return JSON.parse(output.slice(start)) as Record<string, unknown>;
}

/** The bucket's document as the test server holds it. */
const inBucket = (): string | undefined => s3.getObject(BUCKET, KEY)?.body.toString('utf8');

describe('osls invoke local --stage local', () => {
  it('ships sample events that are JSON objects, for osls invoke local and sam local invoke -e', async () => {
    for (const name of [
      'scheduled-tick.json',
      'on-demand.json',
      'on-demand-account.json',
      'login-callback.json',
    ]) {
      const event = JSON.parse(await readFile(join(PROJECT_DIR, 'events', name), 'utf8')) as unknown;
      expect(typeof event === 'object' && event !== null && !Array.isArray(event), name).toBe(true);
    }
  });

  it(
    'runs the on-demand function with events/on-demand.json: the expired token in the bucket is renewed and returned',
    async () => {
      sm.reset();
      sm.createSecret(APP_SECRET, JSON.stringify({ api_secret: fx.appSecret }));
      const seeded = seedConfig(fx.sandbox, 'expired');
      s3.putObjectRaw(BUCKET, KEY, `${JSON.stringify(seeded, null, 2)}\n`);
      const renewalsBefore = fx.sandbox.calls['POST /session/refresh_token'] ?? 0;

      const answer = await invokeLocal('onDemandRefresh', 'on-demand.json');

      expect(answer.status).toBe('refreshed');
      expect(fx.sandbox.isAccessTokenValid(String(answer.accessToken))).toBe(true);
      const stored = JSON.parse(inBucket() ?? '{}') as { api_secret?: string };
      expect(stored.api_secret).toBe(answer.accessToken);
      expect(fx.sandbox.calls['POST /session/refresh_token']).toBe(renewalsBefore + 1);
    },
    INVOKE_TIMEOUT,
  );

  it(
    'runs the scheduled function with events/scheduled-tick.json: the expired token is renewed at the tick',
    async () => {
      sm.reset();
      sm.createSecret(APP_SECRET, JSON.stringify({ api_secret: fx.appSecret }));
      s3.putObjectRaw(BUCKET, KEY, `${JSON.stringify(seedConfig(fx.sandbox, 'expired'), null, 2)}\n`);

      const result = await invokeLocal('scheduledRefresh', 'scheduled-tick.json');

      expect(result).toMatchObject({ status: 'refreshed' });
      const stored = JSON.parse(inBucket() ?? '{}') as { api_secret?: string };
      expect(fx.sandbox.isAccessTokenValid(String(stored.api_secret))).toBe(true);
    },
    INVOKE_TIMEOUT,
  );

  it(
    'runs the on-demand function with events/on-demand-account.json, which names the account',
    async () => {
      sm.reset();
      sm.createSecret(APP_SECRET, JSON.stringify({ api_secret: fx.appSecret }));
      s3.putObjectRaw(BUCKET, KEY, `${JSON.stringify(seedConfig(fx.sandbox, 'expired'), null, 2)}\n`);

      const answer = await invokeLocal('onDemandRefresh', 'on-demand-account.json');

      expect(answer.status).toBe('refreshed');
      expect(JSON.parse(inBucket() ?? '{}')).toMatchObject({ api_secret: answer.accessToken });
    },
    INVOKE_TIMEOUT,
  );

  it(
    'takes -e BROKER_CONFIG_URI over the stage setting: the document in Secrets Manager is renewed, the bucket untouched',
    async () => {
      sm.reset();
      sm.createSecret(APP_SECRET, JSON.stringify({ api_secret: fx.appSecret }));
      const inSecret = seedConfig(fx.sandbox, 'expired');
      sm.createSecret(CONFIG_SECRET, `${JSON.stringify(inSecret, null, 2)}\n`);
      const bucketDocument = `${JSON.stringify(seedConfig(fx.sandbox, 'expired'), null, 2)}\n`;
      s3.putObjectRaw(BUCKET, KEY, bucketDocument);

      const answer = await invokeLocal('onDemandRefresh', 'on-demand.json', [
        '--env',
        `BROKER_CONFIG_URI=secretsmanager://${CONFIG_SECRET}`,
      ]);

      expect(answer.status).toBe('refreshed');
      expect(fx.sandbox.isAccessTokenValid(String(answer.accessToken))).toBe(true);
      const stored = JSON.parse(sm.currentValue(CONFIG_SECRET) ?? '{}') as { api_secret?: string };
      expect(stored.api_secret).toBe(answer.accessToken);
      expect(inBucket()).toBe(bucketDocument);
    },
    INVOKE_TIMEOUT,
  );
});
