// What every test server does the same way: listen on 127.0.0.1 only, on the port asked for or a free one (0),
// failing when the port is taken instead of hanging; and read a request's body, bounded where the real service is.
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts `server` on 127.0.0.1; resolves with the port it got. */
export async function listenOnLoopback(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** The whole request body; null once it passes `maxBytes` (the rest is not read into memory). */
export async function readBoundedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The whole request body, of any size. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  return (await readBoundedBody(req, Number.POSITIVE_INFINITY)) as Buffer;
}
