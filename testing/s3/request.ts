// One S3 request as the handlers see it: path-style bucket and key, query, lower-cased headers, the whole body and
// the region the SigV4 credential names; and the answer a handler gives back.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface RequestContext {
  method: string;
  bucket: string;
  key: string;
  query: URLSearchParams;
  rawQuery: string;
  headers: Record<string, string>;
  body: Buffer;
  requestId: string;
  region: string;
}

export type Answer = { status: number; headers?: Record<string, string>; body?: Buffer };

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Reads the whole request. Bucket and key stay percent-encoded until decodePath. */
export async function readRequest(req: IncomingMessage): Promise<RequestContext> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const path = url.pathname.slice(1);
  const slash = path.indexOf('/');
  const headers = flatHeaders(req);
  return {
    method: req.method ?? 'GET',
    bucket: slash < 0 ? path : path.slice(0, slash),
    key: slash < 0 ? '' : path.slice(slash + 1),
    query: url.searchParams,
    rawQuery: url.search.replace(/^\?/, ''),
    headers,
    body: Buffer.concat(chunks),
    requestId: randomBytes(8).toString('hex').toUpperCase(),
    region: /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(headers.authorization ?? '')?.[1] ?? 'us-east-1',
  };
}
