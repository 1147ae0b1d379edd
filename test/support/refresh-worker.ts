// One refresher in a process of its own, for the cross-process tests. Configured through the environment
// (BROKER_CONFIG_URI, KITE_API_SECRET, the AWS endpoint variables); prints one JSON line with a hash of the
// token it ended with, never the token.
import { createHash } from 'node:crypto';
import { createRefresher } from '../../lib/engine/refresher.ts';
import { silentLog } from '../../lib/shared/log.ts';

// KILL_AFTER_KITE_ANSWER: the process is killed as soon as Kite's renewal answer has been read, before the event
// loop turns again: the few milliseconds after an answer arrives in which a function can be stopped.
if (process.env.KILL_AFTER_KITE_ANSWER) {
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const answer = await realFetch(input, init);
    if (!String(input).endsWith('/session/refresh_token')) return answer;
    // What the Kite client reads of an answer: its status, headers and text.
    const killedAfterReading = {
      status: answer.status,
      headers: answer.headers,
      text: async () => {
        const body = await answer.text();
        setImmediate(() => process.kill(process.pid, 'SIGKILL'));
        return body;
      },
    };
    return killedAfterReading as unknown as Response;
  };
}

const refresher = await createRefresher({
  configUri: process.env.BROKER_CONFIG_URI ?? '',
  appSecret: process.env.KITE_API_SECRET ?? '',
  log: silentLog,
  kite: { retry: { baseDelayMs: 2, maxDelayMs: 10 } },
  engine: {
    pollMs: 20,
    leaseTtlMs: Number(process.env.LEASE_TTL_MS ?? 30_000),
    leaseWaitMs: Number(process.env.LEASE_WAIT_MS ?? 20_000),
    ...(process.env.RESCUE_DIR ? { rescueDir: process.env.RESCUE_DIR } : {}),
  },
});
// Lets the parent start all workers before any of them reads the document.
if (process.env.START_AT) {
  const wait = Number(process.env.START_AT) - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}
try {
  const outcome = await refresher.refresh();
  const token = 'accessToken' in outcome ? outcome.accessToken : '';
  process.stdout.write(
    `${JSON.stringify({ status: outcome.status, token: createHash('sha256').update(token).digest('hex') })}\n`,
  );
} catch (e: unknown) {
  process.stdout.write(`${JSON.stringify({ error: e instanceof Error ? e.name : String(e) })}\n`);
  process.exitCode = 1;
}
