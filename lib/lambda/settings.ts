// Every setting the Lambda functions read, in one schema with the defaults in one place. Read and validated once
// per cold start; a missing or malformed setting stops the function with a message that names it.
import * as z from 'zod/mini';
import { parseAccountsLocation } from '../accounts/location.ts';
import { DEFAULT_REFRESH_WINDOW_MS } from '../engine/expiry.ts';
import { parseTradingCalendar, type TradingCalendar } from '../engine/trading-calendar.ts';
import { DEFAULT_READY_CHECK_IST } from '../engine/verdict.ts';
import { DEFAULT_FIRST_REMINDER_IST, DEFAULT_FOLLOW_UP_IST } from '../login/reminders.ts';
import { ConfigError } from '../shared/errors.ts';

/** The value a setting takes when its variable is unset. */
export const DEFAULTS = {
  POWERTOOLS_SERVICE_NAME: 'kite-token-refresh',
  POWERTOOLS_METRICS_NAMESPACE: 'KiteTokenRefresh',
  REFRESH_WINDOW_MINUTES: String(DEFAULT_REFRESH_WINDOW_MS / 60_000),
  REMINDER_FIRST_IST: DEFAULT_FIRST_REMINDER_IST,
  REMINDER_FOLLOW_UP_IST: DEFAULT_FOLLOW_UP_IST,
  LOGIN_ALLOW_FIRST_PIN: 'false',
  ACCOUNT_CONCURRENCY: '4',
  READY_CHECK_IST: DEFAULT_READY_CHECK_IST,
  NOTIFY_READY: 'false',
  TELEGRAM_API_URL: 'https://api.telegram.org',
} as const;

export interface LambdaSettings {
  /**
   * BROKER_CONFIG_URI: where broker-config.json lives; or, for several accounts, a comma-separated list of
   * documents or an S3 prefix ending in "/".
   */
  configUri: string;
  /** ACCOUNT_CONCURRENCY: how many accounts a scheduled tick serves at once. Default 4. */
  accountConcurrency: number;
  /** BROKER_CONFIG_KMS_KEY_ID: the KMS key S3 writes encrypt with (SSE-KMS); unset: SSE-S3. */
  kmsKeyId: string | undefined;
  /** BROKER_CONFIG_BUCKET_OWNER: the account id that must own the config bucket (S3 ExpectedBucketOwner). */
  expectedBucketOwner: string | undefined;
  /** LOGIN_STATE_SCOPE: the deployment's stage, part of the login-state key; unset: the unscoped key. */
  stateScope: string | undefined;
  /** LOGIN_ALLOW_FIRST_PIN: a first login may pin user_id in a document that names no account. Default false. */
  allowFirstLoginPin: boolean;
  /** KITE_API_SECRET (the Kite app secret itself, for local runs) or KITE_API_SECRET_ID (a secret holding it). */
  appSecret: { value: string } | { secretId: string };
  /** ALERT_TOPIC_ARN: where login reminders go; unset: no reminders. */
  alertTopicArn: string | undefined;
  /** REFRESH_WINDOW_MINUTES, in ms: renew when less than this is left. */
  windowMs: number;
  /** REMINDER_FIRST_IST and REMINDER_FOLLOW_UP_IST, "HH:mm" IST. */
  reminderFirstIst: string;
  reminderFollowUpIst: string;
  /** TRADING_HOLIDAYS and SPECIAL_SESSIONS, comma-separated IST dates: which days the exchange trades. Default: weekdays. */
  calendar: TradingCalendar;
  /** READY_CHECK_IST, "HH:mm" IST: the tick at or after it on a trading day checks each account is ready. */
  readyCheckIst: string;
  /** NOTIFY_READY: say "ready for market open" every trading morning, not only when an account is not ready. */
  notifyReady: boolean;
  /** TELEGRAM_SECRET_ID: a secret holding {"bot_token", "chat_id"}; unset: no Telegram messages. */
  telegramSecretId: string | undefined;
  /** TELEGRAM_API_URL: the Bot API root. Default https://api.telegram.org. */
  telegramApiUrl: string;
  /** WEBHOOK_SECRET_ID: a secret holding {"url", "format": "slack" | "discord" | "json"}; unset: no webhook. */
  webhookSecretId: string | undefined;
  /** STATUS_PAGE_URL: the status page (the login callback's URL + "status"); the morning messages link it. */
  statusPageUrl: string | undefined;
  /** POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE. */
  serviceName: string;
  metricsNamespace: string;
}

const hhmm = () => z.string().check(z.regex(/^([01]\d|2[0-3]):[0-5]\d$/));
const optionalText = () => z.optional(z.string());

/** Built on first use, not at import: only a cold start pays for it. */
let schema: ReturnType<typeof buildSchema> | undefined;

function buildSchema() {
  return z.object({
    BROKER_CONFIG_URI: z.string().check(z.minLength(1)),
    BROKER_CONFIG_KMS_KEY_ID: optionalText(),
    BROKER_CONFIG_BUCKET_OWNER: z.optional(z.string().check(z.regex(/^(\d{12})?$/))),
    LOGIN_STATE_SCOPE: z.optional(z.string().check(z.regex(/^([A-Za-z0-9._:/-]{1,128})?$/))),
    LOGIN_ALLOW_FIRST_PIN: z._default(z.enum(['true', 'false']), DEFAULTS.LOGIN_ALLOW_FIRST_PIN),
    KITE_API_SECRET_ID: optionalText(),
    KITE_API_SECRET: optionalText(),
    ALERT_TOPIC_ARN: optionalText(),
    ACCOUNT_CONCURRENCY: z._default(
      z.string().check(z.regex(/^([1-9]|[1-5]\d|6[0-4])$/)),
      DEFAULTS.ACCOUNT_CONCURRENCY,
    ),
    REFRESH_WINDOW_MINUTES: z._default(z.string().check(z.regex(/^\d+$/)), DEFAULTS.REFRESH_WINDOW_MINUTES),
    REMINDER_FIRST_IST: z._default(hhmm(), DEFAULTS.REMINDER_FIRST_IST),
    REMINDER_FOLLOW_UP_IST: z._default(hhmm(), DEFAULTS.REMINDER_FOLLOW_UP_IST),
    READY_CHECK_IST: z._default(hhmm(), DEFAULTS.READY_CHECK_IST),
    NOTIFY_READY: z._default(z.enum(['true', 'false']), DEFAULTS.NOTIFY_READY),
    TELEGRAM_SECRET_ID: optionalText(),
    TELEGRAM_API_URL: z._default(
      z
        .string()
        .check(z.regex(/^(https:\/\/[^\s/?#]+|http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?)\/?$/)),
      DEFAULTS.TELEGRAM_API_URL,
    ),
    WEBHOOK_SECRET_ID: optionalText(),
    STATUS_PAGE_URL: z.optional(
      z
        .string()
        .check(
          z.regex(/^((https:\/\/[^\s/?#]+|http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?)\/[^\s?#]*)?$/),
        ),
    ),
    // Checked date by date below, so the message can name the entry that is wrong.
    TRADING_HOLIDAYS: optionalText(),
    SPECIAL_SESSIONS: optionalText(),
    POWERTOOLS_SERVICE_NAME: z._default(z.string(), DEFAULTS.POWERTOOLS_SERVICE_NAME),
    POWERTOOLS_METRICS_NAMESPACE: z._default(z.string(), DEFAULTS.POWERTOOLS_METRICS_NAMESPACE),
  });
}

/** An unset or empty variable is no setting. */
const orNone = (value: string | undefined): string | undefined => value || undefined;

const fail = (name: string, problem: string) =>
  new ConfigError(`environment variable ${name} ${problem}`, { field: name });

/** Reads the functions' settings from the environment. Throws one ConfigError naming the variable. */
export function readSettings(env: NodeJS.ProcessEnv = process.env): LambdaSettings {
  schema ??= buildSchema();
  const result = schema.safeParse(env);
  if (!result.success) {
    const name = String(result.error.issues[0]?.path[0] ?? 'environment');
    throw fail(name, env[name] === undefined ? 'is missing' : 'is invalid');
  }
  const s = result.data;
  const appSecret = s.KITE_API_SECRET
    ? { value: s.KITE_API_SECRET }
    : s.KITE_API_SECRET_ID
      ? { secretId: s.KITE_API_SECRET_ID }
      : undefined;
  if (!appSecret) throw fail('KITE_API_SECRET_ID', 'is missing');
  parseAccountsLocation(s.BROKER_CONFIG_URI, 'BROKER_CONFIG_URI');
  // "HH:mm" strings compare in clock order.
  // The ready check asks Kite, which a tick does only from 06:01 through the 15:30 close: a later first tick in the
  // hour would check nothing, every day, without a word.
  if (s.READY_CHECK_IST < '06:00' || s.READY_CHECK_IST > '15:01') {
    throw fail('READY_CHECK_IST', 'must be between 06:00 and 15:01 IST (the ticks that ask Kite)');
  }
  if (s.REMINDER_FOLLOW_UP_IST <= s.REMINDER_FIRST_IST) {
    throw fail('REMINDER_FOLLOW_UP_IST', 'must be later than REMINDER_FIRST_IST');
  }
  const calendar = parseTradingCalendar(s.TRADING_HOLIDAYS, s.SPECIAL_SESSIONS);
  return {
    configUri: s.BROKER_CONFIG_URI,
    accountConcurrency: Number(s.ACCOUNT_CONCURRENCY),
    kmsKeyId: orNone(s.BROKER_CONFIG_KMS_KEY_ID),
    expectedBucketOwner: orNone(s.BROKER_CONFIG_BUCKET_OWNER),
    stateScope: orNone(s.LOGIN_STATE_SCOPE),
    allowFirstLoginPin: s.LOGIN_ALLOW_FIRST_PIN === 'true',
    appSecret,
    alertTopicArn: orNone(s.ALERT_TOPIC_ARN),
    windowMs: Number(s.REFRESH_WINDOW_MINUTES) * 60_000,
    reminderFirstIst: s.REMINDER_FIRST_IST,
    reminderFollowUpIst: s.REMINDER_FOLLOW_UP_IST,
    calendar,
    readyCheckIst: s.READY_CHECK_IST,
    notifyReady: s.NOTIFY_READY === 'true',
    telegramSecretId: orNone(s.TELEGRAM_SECRET_ID),
    telegramApiUrl: s.TELEGRAM_API_URL.replace(/\/$/, ''),
    webhookSecretId: orNone(s.WEBHOOK_SECRET_ID),
    statusPageUrl: orNone(s.STATUS_PAGE_URL),
    serviceName: s.POWERTOOLS_SERVICE_NAME,
    metricsNamespace: s.POWERTOOLS_METRICS_NAMESPACE,
  };
}
