// The Lambda Function URL Kite sends the browser back to after the daily login: hands the query to
// lib/login/exchange.ts and answers with a page from lib/login/pages.ts. The query carries a one-time request token,
// so it is never logged. GET /status?s=<signed token> is the status page (lib/accounts/status-page.ts).
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyStructuredResultV2, LambdaFunctionURLEvent } from 'aws-lambda';
import { answerStatusPage, type StatusPageDeps } from '../lib/accounts/status-page.ts';
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
import { retryLoginLink } from '../lib/login/retry-link.ts';
import { buildStatusLink, statusPageUrl } from '../lib/login/status-link.ts';
import { statusUnavailablePage } from '../lib/login/status-page.ts';
import { describeError } from '../lib/shared/errors.ts';
import type { ConfigStore } from '../lib/store/config-store.ts';

export type LoginCallbackResult = APIGatewayProxyStructuredResultV2 & LoginPage;

/** A login's dependencies, and the deployment's accounts for the status page (default: the one document). */
export type CallbackDeps = LoginDeps & {
  accounts?: StatusPageDeps['accounts'];
  calendar?: StatusPageDeps['calendar'];
};

/** rawQueryString keeps repeated names (queryStringParameters joins them with commas); fall back to the map. */
function queryOf(event: LambdaFunctionURLEvent): URLSearchParams {
  if (event.rawQueryString) return new URLSearchParams(event.rawQueryString);
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
    if (value !== undefined) query.append(name, value);
  }
  return query;
}

/** The one query value of `name`; undefined when it is missing or given more than once. */
function single(query: URLSearchParams, name: string): string | undefined {
  const all = query.getAll(name);
  return all.length === 1 ? all[0] : undefined;
}

/**
 * The status page on this Function URL, from the event (https://<domainName>/status); undefined without a host. A
 * Function URL is https only; plain http is taken from x-forwarded-proto for a loopback host alone (the local stand-in
 * of `npm run emulators`), so no request can turn a deployed link into an http one.
 */
function ownStatusPage(event: LambdaFunctionURLEvent): string | undefined {
  const host = event.requestContext?.domainName;
  if (!host || !/^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/.test(host)) return undefined;
  const loopback = /^(127\.0\.0\.1|localhost)(:\d{1,5})?$/.test(host);
  const scheme = loopback && event.headers?.['x-forwarded-proto'] === 'http' ? 'http' : 'https';
  return statusPageUrl(`${scheme}://${host}/`);
}

async function defaultDeps(): Promise<CallbackDeps> {
  const { settings, accounts, appSecret } = await lambdaContext();
  // Each login goes to the account its link's state names; a link naming none, to the deployment's only account.
  return {
    accounts,
    resolveAccount: accountResolver(accounts),
    appSecret,
    log: lambdaLog,
    stateScope: settings.stateScope,
    allowFirstLoginPin: settings.allowFirstLoginPin,
    calendar: settings.calendar,
  };
}

/** Deps for one document (tests that pass a store): that document is the page's one account. */
function oneDocument(store: ConfigStore | undefined): StatusPageDeps['accounts'] {
  const accounts = store
    ? [{ name: 'broker-config', userId: undefined, linkAccount: undefined, refresher: { store } }]
    : [];
  return { all: async () => accounts };
}

/** GET /status: the status page for a valid status token, 403 for anything else. Never throws. */
async function statusRoute(event: LambdaFunctionURLEvent, deps?: CallbackDeps): Promise<LoginCallbackResult> {
  const log = deps?.log ?? lambdaLog;
  try {
    const resolved = deps ?? (await defaultDeps());
    return await answerStatusPage(single(queryOf(event), 's'), {
      accounts: resolved.accounts ?? oneDocument(resolved.store),
      appSecret: resolved.appSecret,
      stateScope: resolved.stateScope,
      calendar: resolved.calendar,
      log,
      ...(resolved.now ? { now: resolved.now } : {}),
    });
  } catch (e: unknown) {
    log.error('❌ Status page failed', { error: describeError(e) });
    return statusUnavailablePage();
  }
}

/** A fresh status link for the success page, when the event says where this function is; never throws. */
function statusLinkFor(event: LambdaFunctionURLEvent, deps: CallbackDeps, now: Date): string | undefined {
  const page = ownStatusPage(event);
  try {
    return page && buildStatusLink(page, { appSecret: deps.appSecret, scope: deps.stateScope, now });
  } catch {
    return undefined;
  }
}

/**
 * Handles one request to the callback URL. `deps` defaults to the per-container store, Kite client and app secret
 * (lambdaContext); tests pass their own. Never throws: every outcome is a page.
 */
export async function loginCallback(
  event: LambdaFunctionURLEvent,
  deps?: CallbackDeps,
): Promise<LoginCallbackResult> {
  const method = event.requestContext?.http?.method ?? 'GET';
  if (event.rawPath === '/favicon.ico') return notFoundPage();
  // Only a browser following Kite's redirect may spend the request token; a HEAD or POST must not.
  if (method !== 'GET') return methodNotAllowedPage();
  if (event.rawPath === '/status') return statusRoute(event, deps);

  const log = deps?.log ?? lambdaLog;
  let resolved: CallbackDeps;
  try {
    resolved = deps ?? (await defaultDeps());
  } catch (e: unknown) {
    log.error('❌ Login callback is not configured', { error: describeError(e) });
    metrics.addMetric('LoginFailed', 'Count', 1);
    return notConfiguredPage();
  }

  const now = resolved.now ?? (() => new Date());
  const query = queryOf(event);
  try {
    const result = await completeLogin({ ...resolved, query });
    metrics.addMetric('LoginSucceeded', 'Count', 1);
    return successPage(result, now(), statusLinkFor(event, resolved, now()));
  } catch (e: unknown) {
    metrics.addMetric('LoginFailed', 'Count', 1);
    if (e instanceof LoginError) {
      log.warn('⛔ Login refused', { status: e.status, code: e.code, reason: e.detail ?? e.message });
      return refusedPage(e, await retryLoginLink(resolved, single(query, 'state'), e));
    }
    log.error('❌ Login callback failed', { error: describeError(e) });
    return unexpectedFailurePage();
  }
}

export const handler = middy((event: LambdaFunctionURLEvent) => loginCallback(event))
  // Never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: its query carries the request token.
  .use(injectLambdaContext(logger, { logEvent: false }))
  .use(logMetrics(metrics));
