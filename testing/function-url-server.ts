// A loopback stand-in for a Lambda Function URL: each HTTP request becomes the payload-2.0 event AWS would send the
// function (rawPath, rawQueryString, headers, requestContext.http), and the function's structured result becomes the
// HTTP answer, so a browser can drive a handler such as the login callback locally.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { APIGatewayProxyStructuredResultV2, LambdaFunctionURLEvent } from 'aws-lambda';
import { listenOnLoopback, readBoundedBody } from './loopback.ts';

/** A Function URL's payload limit is 6 MB; nothing local needs more than a form. */
const MAX_BODY_BYTES = 64 * 1024;

export type FunctionUrlHandler = (
  event: LambdaFunctionURLEvent,
) => Promise<APIGatewayProxyStructuredResultV2>;

export interface FunctionUrlServerOptions {
  handler: FunctionUrlHandler;
  /** 0 (default) picks a free port. */
  port?: number;
}

export interface FunctionUrlServer {
  /** e.g. http://127.0.0.1:8704/ (with the slash, as AWS prints a Function URL). */
  readonly url: string;
  close(): Promise<void>;
}

/** Headers as Lambda passes them: lower-case names, repeated values joined by commas, cookies apart. */
function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === 'cookie' || value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  return headers;
}

/** The event AWS builds for one request to a Function URL (payload format 2.0). */
export function functionUrlEvent(req: IncomingMessage, body: Buffer): LambdaFunctionURLEvent {
  const url = new URL(req.url ?? '/', 'http://function-url.invalid');
  // Lambda's front end says which scheme the browser used; here it is always plain http on loopback.
  const headers: Record<string, string> = { ...headersOf(req), 'x-forwarded-proto': 'http' };
  const query: Record<string, string> = {};
  // Lambda joins a repeated name's values with commas here; rawQueryString keeps them apart.
  for (const [name, value] of url.searchParams)
    query[name] = name in query ? `${query[name]},${value}` : value;
  const host = headers.host ?? '127.0.0.1';
  const now = new Date();
  const cookies = req.headers.cookie?.split(/;\s*/).filter(Boolean);
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(cookies?.length ? { cookies } : {}),
    ...(url.search ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: 'anonymous',
      apiId: 'local',
      domainName: host,
      domainPrefix: host.split('.')[0] ?? host,
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: body.toString('base64') } : {}),
    isBase64Encoded: body.length > 0,
  } as LambdaFunctionURLEvent;
}

function send(res: ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const body =
    result.body === undefined
      ? Buffer.alloc(0)
      : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  const headers: Record<string, string | number | string[]> = { 'content-length': body.length };
  for (const [name, value] of Object.entries(result.headers ?? {}))
    headers[name.toLowerCase()] = String(value);
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  res.writeHead(result.statusCode ?? 200, headers);
  res.end(body);
}

export async function startFunctionUrlServer(options: FunctionUrlServerOptions): Promise<FunctionUrlServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBoundedBody(req, MAX_BODY_BYTES);
    if (body === null) return send(res, { statusCode: 413, body: 'Request Entity Too Large' });
    let result: APIGatewayProxyStructuredResultV2;
    try {
      result = await options.handler(functionUrlEvent(req, body));
    } catch {
      // What a Function URL answers when the function throws.
      result = { statusCode: 502, headers: { 'content-type': 'application/json' }, body: '{"Message":null}' };
    }
    if (!res.destroyed) send(res, result);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const port = await listenOnLoopback(server, options.port);
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
