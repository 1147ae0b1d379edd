// What every Lambda function shares: Powertools Logger and Metrics, and per container the settings (read and
// validated once per cold start), the Kite app secret and the accounts' refreshers, so warm invocations reuse clients.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { type AccountRegistry, createAccountRegistry } from '../accounts/registry.ts';
import type { Refresher } from '../engine/refresher.ts';
import type { KiteCallInfo } from '../kite/client.ts';
import { ConfigError } from '../shared/errors.ts';
import { lazyAsync } from '../shared/lazy.ts';
import type { Log, LogFields } from '../shared/log.ts';
import { appSecretFrom } from './app-secret.ts';
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
  /** Every account BROKER_CONFIG_URI names; one for a single document. */
  accounts: AccountRegistry;
  /**
   * The refresher of a single-document deployment. With several accounts there is no one refresher: reading it
   * throws a ConfigError, and callers pick an account from `accounts`.
   */
  readonly refresher: Refresher;
}

async function build(): Promise<LambdaContext> {
  const settings = readSettings();
  const appSecret = await appSecretFrom(settings.appSecret);
  // Each account's store and SDK client load with its first read, not before: a request turned away loads none.
  const accounts = createAccountRegistry({
    uri: settings.configUri,
    appSecret,
    log,
    onKiteCall: recordKiteCall,
    engine: { windowMs: settings.windowMs },
    storeOptions: { kmsKeyId: settings.kmsKeyId, expectedBucketOwner: settings.expectedBucketOwner },
  });
  const single = accounts.single ? (await accounts.all())[0]?.refresher : undefined;
  return {
    settings,
    appSecret,
    accounts,
    get refresher(): Refresher {
      if (!single) {
        throw new ConfigError('BROKER_CONFIG_URI names several accounts: pick one by name or user_id', {
          field: 'BROKER_CONFIG_URI',
        });
      }
      return single;
    },
  };
}

let container = lazyAsync(build);

/** Settings, app secret and refresher, built once per container; a failed start is retried next invocation. */
export function lambdaContext(): Promise<LambdaContext> {
  return container();
}

/** Forgets the per-container state (tests change the environment between cases). */
export function resetLambdaContext(): void {
  container = lazyAsync(build);
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
