// The environments the bench runs code in. The bench starts from cleanProcessEnv() and every child it spawns gets
// cleanEnv() plus only what it needs, so a user's shell (a real KITE_API_SECRET, an AWS profile, an endpoint
// override, NODE_OPTIONS) cannot change a figure.
import { join } from 'node:path';
import { istDate } from '../lib/engine/expiry.ts';
import { cleanEnv } from '../testing/clean-env.ts';
import { APP_SECRET_ID, CONFIG_URI, type Endpoints, type StoreKind } from './shared.ts';

/** The handlers' variables as the deployment sets them, pointed at the loopback servers, logs and EMF off. */
export function handlerEnv(workDir: string, endpoints: Endpoints, kind: StoreKind): Record<string, string> {
  return {
    TMPDIR: join(workDir, 'tmp'),
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secretsManager,
    AWS_ENDPOINT_URL_SNS: endpoints.sns,
    BROKER_CONFIG_URI: CONFIG_URI[kind],
    KITE_API_SECRET_ID: APP_SECRET_ID,
    ALERT_TOPIC_ARN: endpoints.topicArn,
    REFRESH_WINDOW_MINUTES: '120',
    REMINDER_FIRST_IST: '08:00',
    REMINDER_FOLLOW_UP_IST: '09:00',
    // Today is listed as a holiday so that what these sections measure does not depend on the hour the bench runs:
    // in market hours a tick also asks Kite about the token (section 8 measures that tick with a pinned clock).
    TRADING_HOLIDAYS: istDate(new Date()),
    POWERTOOLS_SERVICE_NAME: 'kite-token-refresh',
    POWERTOOLS_METRICS_NAMESPACE: 'KiteTokenRefresh',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
}

/** A child process's whole environment: cleanEnv() with `extra`, and NODE_OPTIONS only when given. */
export function childEnv(extra: Record<string, string | undefined>, nodeOptions?: string): NodeJS.ProcessEnv {
  return cleanEnv({ ...extra, NODE_OPTIONS: nodeOptions || undefined });
}
