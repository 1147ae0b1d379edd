// `npm run emulators`: the Kite sandbox, an S3 server and a Secrets Manager server on loopback, each seeded with a
// broker-config.json whose token has expired, for trying the CLI and the Lambda handlers without AWS or Kite.

import type { BrokerConfig } from '../lib/engine/broker-config.ts';
import { toIsoIst } from '../lib/engine/expiry.ts';
import { startKiteSandbox } from '../testing/kite-sandbox.ts';
import { startS3Emulator } from '../testing/s3-server.ts';
import { startSecretsManagerEmulator } from '../testing/secrets-manager-server.ts';

const API_KEY = process.env.KITE_API_KEY ?? 'localapikey';
const APP_SECRET = process.env.KITE_API_SECRET ?? 'local-app-secret';
const BUCKET = 'kite-token-local';
const KEY = 'broker-config.json';
const SECRET = 'kite-token-local/broker-config';
const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

const kite = await startKiteSandbox({
  apiKey: API_KEY,
  apiSecret: APP_SECRET,
  port: port('KITE_SANDBOX_PORT', 8701),
});
const s3 = await startS3Emulator({ port: port('S3_PORT', 8702), buckets: [BUCKET] });
const sm = await startSecretsManagerEmulator({ port: port('SECRETS_MANAGER_PORT', 8703) });

function seed(): BrokerConfig {
  const expired = kite.mintSession({ expired: true });
  return {
    type: 'kite',
    api_key: API_KEY,
    api_secret: expired.accessToken,
    refresh_token: expired.refreshToken,
    base_url: kite.url,
    rate_limit: { requests_per_second: 10, burst_size: 20 },
    access_token_expires_at: toIsoIst(expired.expiresAt),
  };
}
s3.putObjectRaw(BUCKET, KEY, `${JSON.stringify(seed(), null, 2)}\n`);
sm.createSecret(SECRET, `${JSON.stringify(seed(), null, 2)}\n`);
sm.createSecret('kite-token-local/kite-app', JSON.stringify({ api_secret: APP_SECRET }));

process.stdout.write(`Kite sandbox:     ${kite.url}   (login page ${kite.url}/connect/login)
S3:               ${s3.endpoint}   s3://${BUCKET}/${KEY}
Secrets Manager:  ${sm.endpoint}   secretsmanager://${SECRET}

Each holds a broker-config.json with an expired token. In another terminal:

  export AWS_ENDPOINT_URL_S3=${s3.endpoint} AWS_ENDPOINT_URL_SECRETS_MANAGER=${sm.endpoint}
  export AWS_REGION=ap-south-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  export KITE_API_SECRET=${APP_SECRET}
  npm run kite-token -- status  --config s3://${BUCKET}/${KEY}
  npm run kite-token -- refresh --config s3://${BUCKET}/${KEY}
  npm run kite-token -- refresh --config secretsmanager://${SECRET}

The Lambda functions, as osls runs them locally (events/ holds a sample event for each):

  npx osls invoke local -f onDemandRefresh --stage local -p events/on-demand.json
  npx osls invoke local -f scheduledRefresh --stage local -p events/scheduled-tick.json
  npx osls invoke local -f onDemandRefresh --stage local -p events/on-demand.json \\
    -e BROKER_CONFIG_URI=secretsmanager://${SECRET}

Ctrl-C stops them.
`);

const stop = async () => {
  await Promise.all([kite.close(), s3.close(), sm.close()]);
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
