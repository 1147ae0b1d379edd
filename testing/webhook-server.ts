// A chat webhook receiver on loopback (Slack incoming webhook, Discord webhook, or any JSON endpoint): records the
// JSON posted to each path, and can answer 404 (a deleted webhook), 429 with Retry-After, or a 5xx, the way Slack and
// Discord do.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback, readBody } from './loopback.ts';

export interface WebhookPost {
  path: string;
  body: Record<string, unknown>;
  at: number;
}

export type WebhookFault =
  | { kind: 'not_found'; times: number }
  | { kind: 'rate_limit'; times: number; retryAfter: number }
  | { kind: 'server_error'; times: number; status?: number };

export interface WebhookEmulator {
  /** http://127.0.0.1:<port>; a webhook URL is this plus a path. */
  readonly url: string;
  /** Accepted posts, by path. */
  readonly posts: Map<string, WebhookPost[]>;
  /** Every request, accepted or not. */
  readonly requests: Array<{ path: string; status: number; at: number }>;
  postsTo(path: string): WebhookPost[];
  injectFault(fault: WebhookFault): void;
  reset(): void;
  close(): Promise<void>;
}

function reply(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): number {
  res.writeHead(status, { 'content-type': 'text/plain', ...headers });
  res.end(body);
  return status;
}

export async function startWebhookEmulator(): Promise<WebhookEmulator> {
  const posts = new Map<string, WebhookPost[]>();
  const requests: WebhookEmulator['requests'] = [];
  const faults: WebhookFault[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<number> => {
    if (req.method !== 'POST') return reply(res, 405, 'method_not_allowed');
    const text = (await readBody(req)).toString('utf8');
    const fault = faults[0];
    if (fault) {
      if (--fault.times <= 0) faults.shift();
      if (fault.kind === 'not_found') return reply(res, 404, 'no_service');
      if (fault.kind === 'rate_limit') {
        return reply(res, 429, 'rate_limited', { 'retry-after': String(fault.retryAfter) });
      }
      return reply(res, fault.status ?? 500, 'internal_error');
    }
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? ''))
      return reply(res, 400, 'invalid_payload');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return reply(res, 400, 'invalid_payload');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return reply(res, 400, 'invalid_payload');
    const list = posts.get(path) ?? [];
    list.push({ path, body: body as Record<string, unknown>, at: Date.now() });
    posts.set(path, list);
    return reply(res, 200, 'ok');
  };

  const server = createServer((req, res) => {
    const at = Date.now();
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    void handle(req, res, path).then((status) => requests.push({ path, status, at }));
  });
  const port = await listenOnLoopback(server);

  return {
    url: `http://127.0.0.1:${port}`,
    posts,
    requests,
    postsTo: (path) => posts.get(path) ?? [],
    injectFault(fault) {
      faults.push({ ...fault });
    },
    reset() {
      posts.clear();
      requests.length = 0;
      faults.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
