// What every Lambda function shares: Powertools Logger and Metrics, settings read and validated once per cold
// start, and a refresher built once per container so warm invocations reuse clients and the app secret.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import * as z from 'zod/mini';
import { createRefresher, type Refresher } from '../engine/refresher.ts';
import type { KiteCallInfo } from '../kite/client.ts';
import { ConfigError } from '../shared/errors.ts';
import type { Log, LogFields } from '../shared/log.ts';
import { parseStoreLocation } from '../store/open-store.ts';
import { loadAppSecret } from './app-secret.ts';

export const SERVICE_NAME = 'kite-token-refresh';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME });
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'KiteTokenRefresh',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
});

type Level = 'debug' | 'info' | 'warn' | 'error';
const at =
  (level: Level) =>
  (message: string, fields?: LogFields): void => {
    if (fields) logger[level](message, fields as Record<string, unknown> & object);
    else logger[level](message);
  };

/** The product's Log surface over Powertools' Logger: structured JSON with the Lambda context. */
export const log: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };

const hhmm = z.string().check(z.regex(/^([01]\d|2[0-3]):[0-5]\d$/));

const settingsSchema = z.object({
  BROKER_CONFIG_URI: z.string().check(z.minLength(1)),
  KITE_API_SECRET_ID: z.optional(z.string()),
  KITE_API_SECRET: z.optional(z.string()),
  ALERT_TOPIC_ARN: z.optional(z.string()),
  REFRESH_WINDOW_MINUTES: z.optional(z.string().check(z.regex(/^\d+$/))),
  REMINDER_FIRST_IST: z.optional(hhmm),
  REMINDER_FOLLOW_UP_IST: z.optional(hhmm),
});

export interface LambdaSettings {
  configUri: string;
  alertTopicArn: string | undefined;
  windowMs: number;
  reminderFirstIst: string;
  reminderFollowUpIst: string;
}

/** Reads the functions' settings from the environment. Throws one ConfigError naming the variable. */
export function readSettings(env: NodeJS.ProcessEnv = process.env): LambdaSettings {
  const result = settingsSchema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0];
    const name = String(issue?.path[0] ?? 'environment');
    throw new ConfigError(
      `environment variable ${name} is ${env[name] === undefined ? 'missing' : 'invalid'}`,
      { field: name },
    );
  }
  const s = result.data;
  if (!s.KITE_API_SECRET_ID && !s.KITE_API_SECRET) {
    throw new ConfigError('environment variable KITE_API_SECRET_ID is missing', {
      field: 'KITE_API_SECRET_ID',
    });
  }
  parseStoreLocation(s.BROKER_CONFIG_URI, 'BROKER_CONFIG_URI');
  const first = s.REMINDER_FIRST_IST ?? '08:00';
  const followUp = s.REMINDER_FOLLOW_UP_IST ?? '09:00';
  // "HH:mm" strings compare in clock order.
  if (followUp <= first) {
    throw new ConfigError(
      'environment variable REMINDER_FOLLOW_UP_IST must be later than REMINDER_FIRST_IST',
      {
        field: 'REMINDER_FOLLOW_UP_IST',
      },
    );
  }
  return {
    configUri: s.BROKER_CONFIG_URI,
    alertTopicArn: s.ALERT_TOPIC_ARN || undefined,
    windowMs: Number(s.REFRESH_WINDOW_MINUTES ?? 120) * 60_000,
    reminderFirstIst: first,
    reminderFollowUpIst: followUp,
  };
}

/** Records Kite's latency per HTTP attempt. */
function recordKiteCall(info: KiteCallInfo): void {
  metrics.addMetric('KiteLatency', 'Milliseconds', info.durationMs);
}

let cached: Promise<{ settings: LambdaSettings; refresher: Refresher }> | undefined;

/** Settings, app secret and refresher, built once per container; a failed start is retried next invocation. */
export function lambdaContext(): Promise<{ settings: LambdaSettings; refresher: Refresher }> {
  if (!cached) {
    const building = (async () => {
      const settings = readSettings();
      const appSecret = await loadAppSecret();
      const refresher = await createRefresher({
        configUri: settings.configUri,
        appSecret,
        log,
        onKiteCall: recordKiteCall,
        engine: { windowMs: settings.windowMs },
      });
      return { settings, refresher };
    })();
    cached = building;
    building.catch(() => {
      if (cached === building) cached = undefined;
    });
  }
  return cached;
}

/** Forgets the per-container state (tests change the environment between cases). */
export function resetLambdaContext(): void {
  cached = undefined;
}

/** When Lambda will stop this invocation (epoch ms), less a second for the answer to get out. */
export function deadlineOf(
  context: { getRemainingTimeInMillis?: () => number } | undefined,
): number | undefined {
  const remaining = context?.getRemainingTimeInMillis?.();
  return typeof remaining === 'number' && Number.isFinite(remaining)
    ? Date.now() + remaining - 1_000
    : undefined;
}
