// Every environment variable the product, the AWS SDK or Powertools reads, cleared, so a user's shell (a real
// KITE_API_SECRET, an AWS profile, an endpoint override) cannot change what a test or the bench measures. Tests, the
// bench and every child process they start begin from cleanEnv() and add only what they mean to set.

/** Exact names the product reads. */
const PRODUCT = [
  'KITE_API_SECRET',
  'KITE_API_SECRET_ID',
  'KITE_API_KEY',
  'KITE_REFRESH_FUNCTION',
  'KITE_REDIRECT_URL',
  'BROKER_CONFIG_URI',
  'BROKER_CONFIG_KMS_KEY_ID',
  'BROKER_CONFIG_BUCKET_OWNER',
  'LOGIN_STATE_SCOPE',
  'LOGIN_ALLOW_FIRST_PIN',
  'ALERT_TOPIC_ARN',
  'ALERT_EMAIL',
  'REFRESH_WINDOW_MINUTES',
  'ACCOUNT_CONCURRENCY',
  'TRADING_HOLIDAYS',
  'SPECIAL_SESSIONS',
  'STATUS_PAGE_URL',
  'PORT',
  'LOGIN_CALLBACK_PORT',
  'KITE_SANDBOX_PORT',
  'KITE_DAILY_SANDBOX_PORT',
  'S3_PORT',
  'SECRETS_MANAGER_PORT',
];

/** Prefixes of families read by the product (REMINDER_*), the AWS SDK (AWS_*) and Powertools (POWERTOOLS_*). */
const PREFIXES = [
  'AWS_',
  'POWERTOOLS_',
  'REMINDER_',
  'READY_',
  'NOTIFY_',
  'TELEGRAM_',
  'WEBHOOK_',
  'LAMBDA_',
];

/** True for a variable that can change the product's behaviour. */
export function isProductVariable(name: string): boolean {
  return PRODUCT.includes(name) || PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** What every test and bench process runs with: quiet logs, a fixed region, dummy credentials, no endpoint override. */
export const TEST_DEFAULTS: Readonly<Record<string, string>> = Object.freeze({
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_DEV: 'false',
  AWS_REGION: 'ap-south-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  // No ~/.aws/config or credentials file of the user's is read.
  AWS_CONFIG_FILE: '/nonexistent/kite-token-refresh/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/kite-token-refresh/aws-credentials',
  AWS_EC2_METADATA_DISABLED: 'true',
});

/**
 * `base` (default: this process's environment) without any product variable, plus TEST_DEFAULTS, plus `extra`. An
 * `undefined` in `extra` leaves that variable unset.
 */
export function cleanEnv(
  extra: Record<string, string | undefined> = {},
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) {
    if (!isProductVariable(name)) env[name] = value;
  }
  Object.assign(env, TEST_DEFAULTS);
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Replaces this process's environment with cleanEnv(extra) (test setup, the bench's start). */
export function cleanProcessEnv(extra: Record<string, string | undefined> = {}): void {
  const wanted = cleanEnv(extra);
  for (const name of Object.keys(process.env)) {
    if (!(name in wanted)) delete process.env[name];
  }
  Object.assign(process.env, wanted);
}
