// `npm run emulators`: the Kite sandbox, an S3 server and a Secrets Manager server on loopback, each seeded with a
// broker-config.json whose token has expired, and the login callback behind a Function URL stand-in, for trying the
// CLI, the Lambda handlers, the daily login and the status page in a browser without AWS or Kite.

import { loginLinkFor } from '../lib/accounts/login-link.ts';
import type { BrokerConfig } from '../lib/engine/broker-config.ts';
import { toIsoIst } from '../lib/engine/expiry.ts';
import { buildStatusLink, STATUS_LINK_TTL_MS, statusPageUrl } from '../lib/login/status-link.ts';
import { cleanProcessEnv } from '../testing/clean-env.ts';
import { startFunctionUrlServer } from '../testing/function-url-server.ts';
import { startKiteSandbox } from '../testing/kite-sandbox.ts';
import { startS3Emulator } from '../testing/s3-server.ts';
import { startSecretsManagerEmulator } from '../testing/secrets-manager-server.ts';

const API_KEY = process.env.KITE_API_KEY ?? 'localapikey';
const APP_SECRET = process.env.KITE_API_SECRET ?? 'local-app-secret';
const BUCKET = 'kite-token-local';
const KEY = 'broker-config.json';
const DAILY_LOGIN_KEY = 'daily-login.json';
const SECRET = 'kite-token-local/broker-config';
// The longest a login link may live: long enough to click through after a coffee.
const LINK_TTL_MS = 3 * 60 * 60 * 1000;

function port(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (Number.isInteger(value) && value >= 0 && value < 65536) return value;
  process.stderr.write(`emulators: ${name} must be a port number (0 picks a free one)\n`);
  process.exit(2);
}
const callbackPort = port('LOGIN_CALLBACK_PORT', 8704);

// An exchange-approved app (its sessions carry refresh tokens), for the documents that renew by themselves.
const kite = await startKiteSandbox({
  apiKey: API_KEY,
  apiSecret: APP_SECRET,
  port: port('KITE_SANDBOX_PORT', 8701),
  loginPage: true,
});
// An ordinary app, as most are: no refresh token with a login, so its document needs the daily login. A person
// opens the login link here: Kite's login page with its one button, not an instant redirect.
const dailyKite = await startKiteSandbox({
  apiKey: API_KEY,
  apiSecret: APP_SECRET,
  port: port('KITE_DAILY_SANDBOX_PORT', 8705),
  loginPage: true,
  issueRefreshTokens: false,
});
const s3 = await startS3Emulator({ port: port('S3_PORT', 8702), buckets: [BUCKET] });
const sm = await startSecretsManagerEmulator({ port: port('SECRETS_MANAGER_PORT', 8703) });

/** An expired document; `dailyLogin`: of the ordinary app, without a refresh token. */
function seed(dailyLogin = false): BrokerConfig {
  const app = dailyLogin ? dailyKite : kite;
  const expired = app.mintSession({ expired: true });
  return {
    type: 'kite',
    api_key: API_KEY,
    api_secret: expired.accessToken,
    refresh_token: expired.refreshToken,
    base_url: app.url,
    rate_limit: { requests_per_second: 10, burst_size: 20 },
    access_token_expires_at: toIsoIst(expired.expiresAt),
    // Pinned, as the README asks: the callback refuses a login into a document that names no account.
    user_id: kite.userId,
  };
}
s3.putObjectRaw(BUCKET, KEY, `${JSON.stringify(seed(), null, 2)}\n`);
// The browser's document: a daily-login account, which only a login can bring back.
const dailyLoginDocument = seed(true);
s3.putObjectRaw(BUCKET, DAILY_LOGIN_KEY, `${JSON.stringify(dailyLoginDocument, null, 2)}\n`);
sm.createSecret(SECRET, `${JSON.stringify(seed(), null, 2)}\n`);
sm.createSecret('kite-token-local/kite-app', JSON.stringify({ api_secret: APP_SECRET }));

// This process is the login callback's Lambda container from here on: its environment is the function's, pointing
// at the daily-login S3 document above (a printed CLI command reads it, so `status` shows the login at once). Only
// KITE_API_KEY and KITE_API_SECRET are taken from the shell (the sandboxes' app: a value of your choosing, never a
// real app's, since the sandboxes are not Kite); everything else it exported (an AWS profile or endpoint) is dropped,
// and nothing is exported back. Set before the import, because Powertools reads its variables there.
cleanProcessEnv({
  BROKER_CONFIG_URI: `s3://${BUCKET}/${DAILY_LOGIN_KEY}`,
  KITE_API_SECRET: APP_SECRET,
  AWS_ENDPOINT_URL_S3: s3.endpoint,
  AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.endpoint,
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  // Its log lines (never a token) show here, as CloudWatch would show them; metrics have nowhere to go.
  POWERTOOLS_LOG_LEVEL: 'INFO',
  POWERTOOLS_METRICS_DISABLED: 'true',
});
const { loginCallback } = await import('../functions/login-callback.ts');
const callback = await startFunctionUrlServer({
  handler: (event) => loginCallback(event),
  port: callbackPort,
});
dailyKite.setRedirectUrl(callback.url);
kite.setRedirectUrl(callback.url);
// The callback's environment above sets no LOGIN_STATE_SCOPE, so it verifies both links with the unscoped keys.
const loginLink = loginLinkFor(undefined, dailyLoginDocument, { appSecret: APP_SECRET, ttlMs: LINK_TTL_MS });
const statusLink = buildStatusLink(statusPageUrl(callback.url), {
  appSecret: APP_SECRET,
  scope: undefined,
  // 12 hours, as the morning message's link: a trading day.
  ttlMs: STATUS_LINK_TTL_MS,
});

process.stdout.write(`Kite sandbox:     ${kite.url}   (an exchange-approved app: renews with refresh tokens)
Kite, daily:      ${dailyKite.url}   (an ordinary app, no refresh tokens; login page ${dailyKite.url}/connect/login)
S3:               ${s3.endpoint}   s3://${BUCKET}/${KEY}
Secrets Manager:  ${sm.endpoint}   secretsmanager://${SECRET}
Login callback:   ${callback.url}   (the loginCallback function; the sandbox's redirect URL)
Daily login:      s3://${BUCKET}/${DAILY_LOGIN_KEY}   (no refresh token: the callback's document)

Each holds a broker-config.json with an expired token. In a browser: the daily login (works once, for 3 hours;
it stores the token in s3://${BUCKET}/${DAILY_LOGIN_KEY}) and the status page (that document at a glance, with a Log in with
Kite button while a login is due; works for 12 hours):

Login link:  ${loginLink}
Status page: ${statusLink}

In another terminal:

  export AWS_ENDPOINT_URL_S3=${s3.endpoint} AWS_ENDPOINT_URL_SECRETS_MANAGER=${sm.endpoint}
  export AWS_REGION=ap-south-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  export KITE_API_SECRET=${APP_SECRET}
  npm run kite-token -- status  --config s3://${BUCKET}/${KEY}
  npm run kite-token -- status  --config s3://${BUCKET}/${DAILY_LOGIN_KEY}
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
  await Promise.all([callback.close(), kite.close(), dailyKite.close(), s3.close(), sm.close()]);
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
