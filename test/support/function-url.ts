// The Function URL event (payload 2.0) a browser produces, for tests that call the login callback's handler.
import { randomUUID } from 'node:crypto';
import type { Context, LambdaFunctionURLEvent } from 'aws-lambda';
import { handler, type LoginCallbackResult } from '../../functions/login-callback.ts';
import { lambdaContextFor } from './lambda-context.ts';

export function functionUrlEvent(url: URL, method = 'GET'): LambdaFunctionURLEvent {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers: { host: url.host, 'user-agent': 'Mozilla/5.0' },
    ...(url.search ? { queryStringParameters: Object.fromEntries(url.searchParams) } : {}),
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abc123',
      domainName: url.host,
      domainPrefix: 'abc123',
      http: {
        method,
        path: url.pathname,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'Mozilla/5.0',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: '07/Nov/2025:02:31:00 +0000',
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
}

/** Opens `url` on the login callback's middy-wrapped handler, as a browser would. */
export async function openOnCallback(url: URL | string, method = 'GET'): Promise<LoginCallbackResult> {
  const context: Context = lambdaContextFor('loginCallback', 15_000);
  return (await handler(functionUrlEvent(new URL(url), method), context)) as LoginCallbackResult;
}

/** The href of every button (an <a class="button">) on a page, unescaped. */
export function buttonLinks(body: string): string[] {
  return [...body.matchAll(/<a class="button" href="([^"]*)">([^<]*)<\/a>/g)].map((m) =>
    (m[1] ?? '').replaceAll('&amp;', '&'),
  );
}

/** The headers every page of the callback carries. */
export const STRICT_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};
