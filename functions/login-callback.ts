// The Lambda Function URL Kite sends the browser back to after the daily login: hands the query to lib/login/login.ts
// and answers with a small HTML page. The query carries a one-time request token, so it is never logged.
import { createHash } from 'node:crypto';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyStructuredResultV2, LambdaFunctionURLEvent } from 'aws-lambda';
import { loadAppSecret } from '../lib/lambda/app-secret.ts';
import { lambdaContext, log as lambdaLog, logger, metrics } from '../lib/lambda/context.ts';
import {
  completeLogin,
  type LoginDeps,
  LoginError,
  type LoginResult,
  loginSummary,
} from '../lib/login/login.ts';

export type LoginCallbackResult = APIGatewayProxyStructuredResultV2 & {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
};

const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:2rem;background:#f6f7f9;color:#1d2330}' +
  'main{max-width:36rem;margin:0 auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;' +
  'box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.4rem;margin-top:0}.ok{color:#16794c}' +
  '.fail{color:#b3261e}small{color:#5f6673}';

// Only this page's own inline style may apply: no scripts, images, frames, forms or outside requests.
const CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  // The page answers a one-time request: never cache it, never send its URL (with the token) on as a referrer.
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function page(
  statusCode: number,
  kind: 'ok' | 'fail',
  heading: string,
  lines: string[],
): LoginCallbackResult {
  const body = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    '<meta name="robots" content="noindex">',
    `<title>${escapeHtml(heading)}</title>`,
    `<style>${STYLE}</style>`,
    '</head><body><main>',
    `<h1 class="${kind}">${escapeHtml(heading)}</h1>`,
    ...lines.map((line) => `<p>${escapeHtml(line)}</p>`),
    '</main></body></html>',
    '',
  ].join('\n');
  return { statusCode, headers: { ...HEADERS }, body };
}

function plain(statusCode: number, text: string, extra: Record<string, string> = {}): LoginCallbackResult {
  return {
    statusCode,
    headers: {
      ...HEADERS,
      'content-type': 'text/plain; charset=utf-8',
      ...extra,
    },
    body: `${text}\n`,
  };
}

/** rawQueryString keeps repeated names (queryStringParameters joins them with commas); fall back to the map. */
function queryOf(event: LambdaFunctionURLEvent): URLSearchParams {
  if (event.rawQueryString) return new URLSearchParams(event.rawQueryString);
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
    if (value !== undefined) query.append(name, value);
  }
  return query;
}

async function defaultDeps(): Promise<LoginDeps> {
  const { refresher } = await lambdaContext();
  return {
    store: refresher.store,
    kite: refresher.kiteFor,
    appSecret: await loadAppSecret(),
    log: lambdaLog,
  };
}

function successPage(result: LoginResult, now: Date): LoginCallbackResult {
  const lines = [`${loginSummary(result, now)}.`];
  if (result.pinned) lines.push(`From now on this service keeps the token of ${result.userId} only.`);
  lines.push('You can close this tab.');
  return page(200, 'ok', '✅ Logged in', lines);
}

/**
 * Handles one request to the callback URL. `deps` defaults to the per-container store, Kite client and app secret
 * (lambdaContext); tests pass their own. Never throws: every outcome is a page.
 */
export async function loginCallback(
  event: LambdaFunctionURLEvent,
  deps?: LoginDeps,
): Promise<LoginCallbackResult> {
  const method = event.requestContext?.http?.method ?? 'GET';
  if (event.rawPath === '/favicon.ico') return plain(404, 'Not found');
  // Only a browser following Kite's redirect may spend the request token; a HEAD or POST must not.
  if (method !== 'GET') return plain(405, 'Method not allowed', { allow: 'GET' });

  const log = deps?.log ?? lambdaLog;
  let resolved: LoginDeps;
  try {
    resolved = deps ?? (await defaultDeps());
  } catch (e: unknown) {
    log.error('❌ Login callback is not configured', {
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
    metrics.addMetric('LoginFailed', 'Count', 1);
    return page(500, 'fail', 'Login failed', [
      'The login service is not configured correctly, so nothing was changed. Check the service’s logs.',
      'Error 500',
    ]);
  }

  const now = resolved.now ?? (() => new Date());
  try {
    const result = await completeLogin({ ...resolved, query: queryOf(event) });
    metrics.addMetric('LoginSucceeded', 'Count', 1);
    return successPage(result, now());
  } catch (e: unknown) {
    metrics.addMetric('LoginFailed', 'Count', 1);
    if (e instanceof LoginError) {
      log.warn('⛔ Login refused', { status: e.status, code: e.code, reason: e.detail ?? e.message });
      return page(e.status, 'fail', 'Login failed', [e.message, `Error ${e.status} (${e.code})`]);
    }
    log.error('❌ Login callback failed', {
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
    return page(500, 'fail', 'Login failed', [
      'The login could not be finished. Check the service’s logs before trying again.',
      'Error 500',
    ]);
  }
}

export const handler = middy((event: LambdaFunctionURLEvent) => loginCallback(event))
  // Never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: its query carries the request token.
  .use(injectLambdaContext(logger, { logEvent: false }))
  .use(logMetrics(metrics));
