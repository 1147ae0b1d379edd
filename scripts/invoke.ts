// `npm run invoke:scheduled` / `npm run invoke:on-demand [-- '<json payload>']`: runs a Lambda handler locally,
// through its middy wrapper. With BROKER_CONFIG_URI set it uses that (e.g. LocalStack via AWS_ENDPOINT_URL);
// otherwise it starts the Kite sandbox and the S3 and Secrets Manager test servers and seeds an expired token.
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { toIsoIst } from '../lib/engine/expiry.ts';
import { maskToken } from '../lib/shared/mask.ts';
import { startKiteSandbox } from '../testing/kite-sandbox.ts';
import { startS3Emulator } from '../testing/s3-server.ts';
import { startSecretsManagerEmulator } from '../testing/secrets-manager-server.ts';
import { startSnsEmulator } from '../testing/sns-server.ts';

const which = process.argv[2];
if (which !== 'scheduled' && which !== 'on-demand') {
  process.stderr.write('usage: node scripts/invoke.ts scheduled|on-demand [json-payload]\n');
  process.exit(2);
}

const closers: Array<() => Promise<void>> = [];
if (!process.env.BROKER_CONFIG_URI) {
  const apiKey = 'localapikey';
  const appSecret = 'local-app-secret';
  const kite = await startKiteSandbox({ apiKey, apiSecret: appSecret });
  const s3 = await startS3Emulator({ buckets: ['kite-token-local'] });
  const sm = await startSecretsManagerEmulator();
  const sns = await startSnsEmulator();
  closers.push(kite.close, s3.close, sm.close, sns.close);
  const expired = kite.mintSession({ expired: true });
  const config = {
    type: 'kite',
    api_key: apiKey,
    api_secret: expired.accessToken,
    refresh_token: expired.refreshToken,
    base_url: kite.url,
    access_token_expires_at: toIsoIst(expired.expiresAt),
  };
  s3.putObjectRaw('kite-token-local', 'broker-config.json', JSON.stringify(config, null, 2));
  sm.createSecret('kite-token-local/kite-app', JSON.stringify({ api_secret: appSecret }));
  Object.assign(process.env, {
    BROKER_CONFIG_URI: 's3://kite-token-local/broker-config.json',
    KITE_API_SECRET_ID: 'kite-token-local/kite-app',
    ALERT_TOPIC_ARN: sns.createTopic('kite-token-local-alerts'),
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.endpoint,
    AWS_ENDPOINT_URL_SNS: sns.endpoint,
    AWS_REGION: process.env.AWS_REGION ?? 'ap-south-1',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
  });
  process.stderr.write(
    `Using the Kite sandbox (${kite.url}) and local S3/Secrets Manager servers with an expired token.\n`,
  );
}

const name = `kite-token-refresh-local-${which}`;
const context: Context = {
  functionName: name,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${name}`,
  memoryLimitInMB: '256',
  awsRequestId: randomUUID(),
  logGroupName: `/aws/lambda/${name}`,
  logStreamName: 'local',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 60_000,
  done: () => {},
  fail: () => {},
  succeed: () => {},
};

try {
  let result: unknown;
  if (which === 'scheduled') {
    const { handler } = await import('../functions/scheduled-refresh.ts');
    result = await handler({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, context);
  } else {
    const { handler } = await import('../functions/on-demand-refresh.ts');
    result = await handler(process.argv[3] ? JSON.parse(process.argv[3]) : {}, context);
  }
  // The on-demand answer carries the token; a terminal gets it masked.
  const shown = JSON.stringify(
    result,
    (key, value) => (key === 'accessToken' ? maskToken(String(value)) : value),
    2,
  );
  process.stdout.write(`${shown}\n`);
} catch (e: unknown) {
  process.stderr.write(`${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n`);
  process.exitCode = 1;
} finally {
  await Promise.all(closers.map((close) => close()));
}
