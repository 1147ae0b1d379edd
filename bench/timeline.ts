// Where a storm's time goes: every HTTP request this process makes while recording (the AWS SDK's node:http
// requests to S3, fetch requests to Kite), with when it was created, when it got a socket, when its answer
// arrived and its status, from Node's diagnostics channels. Nothing in the product is changed or wrapped.
import { subscribe } from 'node:diagnostics_channel';

interface HttpRequestLike {
  method?: string;
  path?: string;
  origin?: string;
  /** node:http's agent: every SDK client has its own, so it tells which client (container) sent a request. */
  agent?: object;
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
  /** Which HTTP agent (node:http only): one per SDK client, numbered in order of first use. */
  client: number | undefined;
}

let recording = false;
let origin = 0;
let traces: RequestTrace[] = [];
/** TCP connections opened while recording (node:http and fetch alike): 0 when every client reused a warm socket. */
let connections = 0;
const open = new WeakMap<object, RequestTrace>();
let kiteOrigin = '';
const agentIds = new WeakMap<object, number>();
let nextAgentId = 1;

function clientOf(agent: object | undefined): number | undefined {
  if (!agent) return undefined;
  let id = agentIds.get(agent);
  if (id === undefined) {
    id = nextAgentId++;
    agentIds.set(agent, id);
  }
  return id;
}

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
    client: clientOf(request.agent),
  };
  open.set(request, trace);
  traces.push(trace);
});
subscribe('net.client.socket', () => {
  if (recording) connections++;
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
    client: undefined,
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
  connections = 0;
  origin = performance.now();
  recording = true;
}

export function stopTimeline(): RequestTrace[] {
  recording = false;
  return traces;
}

/** TCP connections opened during the last recording. */
export function connectionsOpened(): number {
  return connections;
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

const quantile = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return r1(s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]);
};

/**
 * A storm of refreshers that each have their own SDK client (separate containers): who won the lease, and how
 * and when each of the others (the waiters) noticed the final write. A waiter's last read is the one that saw the
 * new token; the gap between the final write and that read being sent is the time it spent asleep between polls.
 */
/** AWS requests by the client (container) that sent them. */
function byClientOf(aws: RequestTrace[]): Map<number, RequestTrace[]> {
  const byClient = new Map<number, RequestTrace[]>();
  for (const t of aws) {
    if (t.client === undefined) continue;
    const list = byClient.get(t.client) ?? [];
    list.push(t);
    byClient.set(t.client, list);
  }
  return byClient;
}

export function summarizeContainers(traces: RequestTrace[], answerMs: number[]) {
  const base = summarizeStorm(traces, answerMs);
  const aws = traces.filter((t) => t.target === 'aws');
  const byClient = byClientOf(aws);
  const statusCount = (method: string) => {
    const out: Record<string, number> = {};
    for (const t of aws.filter((x) => x.method === method)) {
      const key = String(t.status ?? 'none');
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  };
  const okPuts = aws
    .filter((t) => t.method === 'PUT' && t.status !== undefined && t.status < 300)
    .sort((a, b) => (a.doneMs ?? 0) - (b.doneMs ?? 0));
  const winner = okPuts[0]?.client;
  const finalWriteDone = okPuts[1]?.doneMs;
  const waiters = [...byClient.entries()].filter(([client]) => client !== winner);
  const getsPerWaiter: number[] = [];
  const sleptAfterWrite: number[] = [];
  const noticedAfterWrite: number[] = [];
  const noticingRead: number[] = [];
  let slowest: { client: number; requests: RequestTrace[]; lastDone: number } | undefined;
  for (const [client, list] of waiters) {
    const gets = list.filter((t) => t.method === 'GET');
    getsPerWaiter.push(gets.length);
    const last = gets.at(-1);
    if (last && finalWriteDone !== undefined) {
      sleptAfterWrite.push(last.createdMs - finalWriteDone);
      noticedAfterWrite.push((last.doneMs ?? last.createdMs) - finalWriteDone);
      noticingRead.push((last.doneMs ?? last.createdMs) - last.createdMs);
    }
    const lastDone = Math.max(...list.map((t) => t.doneMs ?? t.createdMs));
    if (!slowest || lastDone > slowest.lastDone) slowest = { client, requests: list, lastDone };
  }
  const afterWrite = finalWriteDone === undefined ? [] : answerMs.map((a) => a - (finalWriteDone as number));
  const describe = (t: RequestTrace) => `${t.method} ${t.status ?? '?'} ${r1(t.createdMs)}–${r1(t.doneMs)}`;
  return {
    ...base,
    clients: byClient.size,
    getStatuses: statusCount('GET'),
    putStatuses: statusCount('PUT'),
    getsPerWaiterMedian: quantile(getsPerWaiter, 50),
    getsPerWaiterMax: getsPerWaiter.length ? Math.max(...getsPerWaiter) : null,
    /**
     * When a waiter sent the read that saw the final write, relative to the write landing: time asleep between
     * polls. Negative when the read was sent before the write landed and S3 served it after.
     */
    waiterSleptAfterWriteP50Ms: quantile(sleptAfterWrite, 50),
    waiterSleptAfterWriteP99Ms: quantile(sleptAfterWrite, 99),
    waiterSleptAfterWriteMaxMs: quantile(sleptAfterWrite, 100),
    /** How long that read took, sent to answered. */
    noticingReadP50Ms: quantile(noticingRead, 50),
    noticingReadMaxMs: quantile(noticingRead, 100),
    /** From the final write landing to the waiters' reads that saw it answering. */
    waiterNoticedAfterWriteP50Ms: quantile(noticedAfterWrite, 50),
    waiterNoticedAfterWriteP99Ms: quantile(noticedAfterWrite, 99),
    /** From the final write landing to the refreshers' answers. */
    answerAfterWriteP50Ms: quantile(afterWrite, 50),
    answerAfterWriteP99Ms: quantile(afterWrite, 99),
    slowestWaiter: slowest ? slowest.requests.map(describe).join(', ') : null,
  };
}
