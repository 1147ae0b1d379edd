// Where a storm's time goes: every HTTP request this process makes while recording (the AWS SDK's node:http
// requests to S3, fetch requests to Kite), with when it was created, when it got a socket, when its answer
// arrived and its status, from Node's diagnostics channels. Nothing in the product is changed or wrapped.
import { subscribe } from 'node:diagnostics_channel';

interface HttpRequestLike {
  method?: string;
  path?: string;
  origin?: string;
}

export interface RequestTrace {
  target: 'aws' | 'kite';
  method: string;
  path: string;
  createdMs: number;
  /** When a socket was assigned (node:http only); the gap after createdMs is time queued in the agent. */
  startMs: number | undefined;
  doneMs: number | undefined;
  status: number | undefined;
}

let recording = false;
let origin = 0;
let traces: RequestTrace[] = [];
const open = new WeakMap<object, RequestTrace>();
let kiteOrigin = '';

function now(): number {
  return performance.now() - origin;
}

subscribe('http.client.request.created', (message) => {
  if (!recording) return;
  const request = (message as { request: HttpRequestLike & object }).request;
  const trace: RequestTrace = {
    target: 'aws',
    method: request.method ?? '?',
    path: request.path ?? '?',
    createdMs: now(),
    startMs: undefined,
    doneMs: undefined,
    status: undefined,
  };
  open.set(request, trace);
  traces.push(trace);
});
subscribe('http.client.request.start', (message) => {
  const trace = open.get((message as { request: object }).request);
  if (trace) trace.startMs = now();
});
subscribe('http.client.response.finish', (message) => {
  const { request, response } = message as { request: object; response: { statusCode?: number } };
  const trace = open.get(request);
  if (!trace) return;
  trace.doneMs = now();
  trace.status = response.statusCode;
});
subscribe('undici:request:create', (message) => {
  if (!recording) return;
  const request = (message as { request: HttpRequestLike & object }).request;
  if (kiteOrigin && request.origin !== kiteOrigin) return;
  const at = now();
  const trace: RequestTrace = {
    target: 'kite',
    method: request.method ?? '?',
    path: request.path ?? '?',
    createdMs: at,
    startMs: at,
    doneMs: undefined,
    status: undefined,
  };
  open.set(request, trace);
  traces.push(trace);
});
subscribe('undici:request:headers', (message) => {
  const { request, response } = message as { request: object; response: { statusCode?: number } };
  const trace = open.get(request);
  if (!trace) return;
  trace.doneMs = now();
  trace.status = response.statusCode;
});

/** Starts recording; times are relative to this call. Requests to `kite` (an origin) count as Kite's. */
export function startTimeline(kite: string): void {
  kiteOrigin = new URL(kite).origin;
  traces = [];
  origin = performance.now();
  recording = true;
}

export function stopTimeline(): RequestTrace[] {
  recording = false;
  return traces;
}

const r1 = (x: number | undefined) => (x === undefined ? null : Math.round(x * 10) / 10);

/** Milestones of one storm: reads, the lease, Kite, the final write, and how busy the SDK's sockets were. */
export function summarizeStorm(traces: RequestTrace[], answerMs: number[]) {
  const aws = traces.filter((t) => t.target === 'aws');
  const puts = aws.filter((t) => t.method === 'PUT');
  const okPuts = puts
    .filter((t) => t.status !== undefined && t.status < 300)
    .sort((a, b) => (a.doneMs ?? 0) - (b.doneMs ?? 0));
  const gets = aws.filter((t) => t.method === 'GET');
  const kite = traces.filter((t) => t.target === 'kite');
  const n = answerMs.length;
  const firstGetsDone = gets
    .slice(0, n)
    .map((t) => t.doneMs ?? 0)
    .sort((a, b) => a - b)
    .at(-1);
  const queued = aws.map((t) => (t.startMs ?? t.createdMs) - t.createdMs);
  const service = aws
    .filter((t) => t.doneMs !== undefined)
    .map((t) => (t.doneMs ?? 0) - (t.startMs ?? t.createdMs));
  const sortedNums = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const med = (xs: number[]) => sortedNums(xs)[Math.floor(xs.length / 2)];
  let inFlight = 0;
  let maxInFlight = 0;
  const edges = aws.flatMap((t) => [
    [t.startMs ?? t.createdMs, 1],
    [t.doneMs ?? Number.POSITIVE_INFINITY, -1],
  ]) as Array<[number, number]>;
  for (const [, d] of edges.sort((a, b) => a[0] - b[0] || a[1] - b[1])) {
    inFlight += d;
    maxInFlight = Math.max(maxInFlight, inFlight);
  }
  const leaseWon = okPuts[0];
  const finalWrite = okPuts[1];
  const afterFinal = finalWrite?.doneMs ?? Number.POSITIVE_INFINITY;
  return {
    firstReadsDoneMs: r1(firstGetsDone),
    leasePutsSent: puts.length,
    leaseWonMs: r1(leaseWon?.doneMs),
    kiteSentMs: r1(kite[0]?.createdMs),
    kiteAnsweredMs: r1(kite[0]?.doneMs),
    finalWriteDoneMs: r1(finalWrite?.doneMs),
    readsAfterFinalWrite: gets.filter((t) => t.createdMs >= afterFinal).length,
    firstAnswerMs: r1(Math.min(...answerMs)),
    lastAnswerMs: r1(Math.max(...answerMs)),
    awsRequests: aws.length,
    maxSocketsInUse: maxInFlight,
    medianQueuedInAgentMs: r1(med(queued)),
    maxQueuedInAgentMs: r1(Math.max(0, ...queued)),
    medianRequestMs: r1(med(service)),
  };
}
