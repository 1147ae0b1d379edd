// AWS Lambda's Invoke API on loopback (REST JSON: POST /2015-03-31/functions/{name}/invocations), running
// registered handlers in-process, so the caller helper is tested with the real LambdaClient against the real handler.
// It also answers GetAccountSettings (GET /2016-08-19/account-settings/) with limits a test sets.
import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { Context } from 'aws-lambda';
import { listenOnLoopback, readBody } from './loopback.ts';

export type InvokeHandler = (event: unknown, context: Context) => Promise<unknown>;

/** What GetAccountSettings reports about concurrency. */
export interface AccountConcurrency {
  ConcurrentExecutions: number;
  UnreservedConcurrentExecutions: number;
}

export interface LambdaEmulator {
  readonly endpoint: string;
  /** The account's concurrency as GetAccountSettings reports it; default a fresh account's 1000. */
  account: AccountConcurrency;
  /** Invocations received, by function name. */
  readonly invocations: Record<string, number>;
  register(name: string, handler: InvokeHandler): void;
  close(): Promise<void>;
}

const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body ?? null);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'x-amzn-RequestId': randomUUID(),
    'X-Amz-Executed-Version': '$LATEST',
    ...headers,
  });
  res.end(text);
}

function fakeContext(name: string): Context {
  const deadline = Date.now() + 60_000;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:ap-south-1:000000000000:function:${name}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

export async function startLambdaEmulator(options: { port?: number } = {}): Promise<LambdaEmulator> {
  const handlers = new Map<string, InvokeHandler>();
  const invocations: Record<string, number> = {};

  const account: AccountConcurrency = { ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 1000 };

  const server = createServer(async (req, res) => {
    if (req.method === 'GET' && /^\/2016-08-19\/account-settings\/?(\?.*)?$/.test(req.url ?? '')) {
      if (!req.headers.authorization) {
        return send(res, 403, { message: 'Missing Authentication Token' });
      }
      return send(res, 200, {
        AccountLimit: {
          TotalCodeSize: 80_530_636_800,
          CodeSizeUnzipped: 262_144_000,
          CodeSizeZipped: 52_428_800,
          ...account,
        },
        AccountUsage: { TotalCodeSize: 0, FunctionCount: 0 },
      });
    }
    const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations(\?.*)?$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match?.[1]) {
      return send(
        res,
        404,
        { Type: 'User', message: 'Unknown operation' },
        { 'x-amzn-ErrorType': 'UnknownOperationException' },
      );
    }
    if (!req.headers.authorization) {
      return send(
        res,
        403,
        { message: 'Missing Authentication Token' },
        { 'x-amzn-ErrorType': 'MissingAuthenticationTokenException' },
      );
    }
    // The SDK puts the name, an ARN or a partial ARN in the path; the function name is the last segment.
    const name =
      decodeURIComponent(match[1])
        .split(':')
        .filter((part) => part !== '$LATEST')
        .at(-1) ?? '';
    const handler = handlers.get(name);
    if (!handler) {
      return send(
        res,
        404,
        {
          Type: 'User',
          Message: `Function not found: arn:aws:lambda:ap-south-1:000000000000:function:${name}`,
        },
        { 'x-amzn-ErrorType': 'ResourceNotFoundException' },
      );
    }
    const body = await readBody(req);
    if (body.length > MAX_PAYLOAD_BYTES) {
      return send(
        res,
        413,
        { Type: 'User', message: 'Request must be smaller than 6291456 bytes' },
        { 'x-amzn-ErrorType': 'RequestTooLargeException' },
      );
    }
    let event: unknown;
    try {
      event = body.length ? JSON.parse(body.toString('utf8')) : {};
    } catch {
      return send(
        res,
        400,
        { Type: 'User', message: 'Could not parse request body into json' },
        { 'x-amzn-ErrorType': 'InvalidRequestContentException' },
      );
    }
    invocations[name] = (invocations[name] ?? 0) + 1;
    try {
      send(res, 200, await handler(event, fakeContext(name)));
    } catch (e: unknown) {
      const error = e instanceof Error ? e : new Error(String(e));
      // Lambda answers 200 with X-Amz-Function-Error when the function itself throws.
      send(
        res,
        200,
        { errorType: error.name, errorMessage: error.message, trace: [] },
        { 'X-Amz-Function-Error': 'Unhandled' },
      );
    }
  });
  const port = await listenOnLoopback(server, options.port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    account,
    invocations,
    register(name, handler) {
      handlers.set(name, handler);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
