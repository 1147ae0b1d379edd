// The Lambda Function URL Kite sends the browser back to after the daily login: hands the query to
// lib/login/exchange.ts and answers with a page from lib/login/pages.ts. The query carries a one-time request token,
// so it is never logged.
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyStructuredResultV2, LambdaFunctionURLEvent } from 'aws-lambda';
import { lambdaContext, log as lambdaLog, logger, metrics } from '../lib/lambda/context.ts';
import { completeLogin, type LoginDeps } from '../lib/login/exchange.ts';
import { accountResolver } from '../lib/login/login-account.ts';
import { LoginError } from '../lib/login/outcome.ts';
import {
  type LoginPage,
  methodNotAllowedPage,
  notConfiguredPage,
  notFoundPage,
  refusedPage,
  successPage,
  unexpectedFailurePage,
} from '../lib/login/pages.ts';
import { describeError } from '../lib/shared/errors.ts';

export type LoginCallbackResult = APIGatewayProxyStructuredResultV2 & LoginPage;

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
  const { settings, accounts, appSecret } = await lambdaContext();
  // Each login goes to the account its link's state names; a link naming none, to the deployment's only account.
  return {
    resolveAccount: accountResolver(accounts),
    appSecret,
    log: lambdaLog,
    stateScope: settings.stateScope,
    allowFirstLoginPin: settings.allowFirstLoginPin,
  };
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
  if (event.rawPath === '/favicon.ico') return notFoundPage();
  // Only a browser following Kite's redirect may spend the request token; a HEAD or POST must not.
  if (method !== 'GET') return methodNotAllowedPage();

  const log = deps?.log ?? lambdaLog;
  let resolved: LoginDeps;
  try {
    resolved = deps ?? (await defaultDeps());
  } catch (e: unknown) {
    log.error('❌ Login callback is not configured', { error: describeError(e) });
    metrics.addMetric('LoginFailed', 'Count', 1);
    return notConfiguredPage();
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
      return refusedPage(e);
    }
    log.error('❌ Login callback failed', { error: describeError(e) });
    return unexpectedFailurePage();
  }
}

export const handler = middy((event: LambdaFunctionURLEvent) => loginCallback(event))
  // Never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: its query carries the request token.
  .use(injectLambdaContext(logger, { logEvent: false }))
  .use(logMetrics(metrics));
