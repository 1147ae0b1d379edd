// What every Lambda function shares: Powertools Logger and Metrics, and per container the settings (read and
// validated once per cold start), the Kite app secret and a refresher, so warm invocations reuse clients.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createRefresher, type Refresher } from '../engine/refresher.ts';
import type { KiteCallInfo } from '../kite/client.ts';
import type { Log, LogFields } from '../shared/log.ts';
import { appSecretFrom } from './app-secret.ts';
import { LazyStore } from './lazy-store.ts';
import { DEFAULTS, type LambdaSettings, readSettings } from './settings.ts';

export type { LambdaSettings } from './settings.ts';

// Built at import, before the settings are read: a failed start must still log through them.
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? DEFAULTS.POWERTOOLS_SERVICE_NAME;
export const logger = new Logger({ serviceName });
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? DEFAULTS.POWERTOOLS_METRICS_NAMESPACE,
  serviceName,
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

/** Records Kite's latency per HTTP attempt. */
function recordKiteCall(info: KiteCallInfo): void {
  metrics.addMetric('KiteLatency', 'Milliseconds', info.durationMs);
}

export interface LambdaContext {
  settings: LambdaSettings;
  /** The Kite app secret (checksums, login links). */
  appSecret: string;
  refresher: Refresher;
}

let cached: Promise<LambdaContext> | undefined;

async function build(): Promise<LambdaContext> {
  const settings = readSettings();
  const appSecret = await appSecretFrom(settings.appSecret);
  // The store's SDK client loads with the first read, not before: a request turned away never loads it.
  const store = new LazyStore(settings.configUri, 'BROKER_CONFIG_URI', {
    kmsKeyId: settings.kmsKeyId,
    expectedBucketOwner: settings.expectedBucketOwner,
  });
  const refresher = await createRefresher({
    configUri: settings.configUri,
    store,
    appSecret,
    log,
    onKiteCall: recordKiteCall,
    engine: { windowMs: settings.windowMs },
  });
  return { settings, appSecret, refresher };
}

/** Settings, app secret and refresher, built once per container; a failed start is retried next invocation. */
export function lambdaContext(): Promise<LambdaContext> {
  if (!cached) {
    const building = build();
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
