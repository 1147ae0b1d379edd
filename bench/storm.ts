// Sections 6 and 6b, storms: N = 1, 10, 100 concurrent on-demand refreshes right after Kite's flush, each
// reporting the flushed token with status 403, Kite answering after KITE_LATENCY_MS, STORM_REPEATS runs per N.
// One implementation runs both: inside one container (the middy handler in this process, Promise.all: concurrent
// identical requests share one run) and across separate containers (bench/containers.ts: only the lease in the
// document keeps them to one renewal). Goal: 1 renewal at every N (worst run); p99 time to answer at N = 100
// (median of the runs' p99) within Kite's latency + 150 ms.
import { stormAcrossContainers } from './containers.ts';
import type { Handlers } from './in-process.ts';
import { KITE_LATENCY_MS, lambdaContextFor } from './in-process.ts';
import { findings, row } from './report.ts';
import { awsCalls, renewalsIn } from './server-control.ts';
import type { Bench } from './setup.ts';
import { APP_SECRET, CONFIG_URI, type Counts, type SeedResult } from './shared.ts';
import { median, percentile, progress, round, sum, tally } from './stats.ts';
import { startTimeline, stopTimeline, summarizeContainers, summarizeStorm } from './timeline.ts';

const STORM_SIZES = [1, 10, 100];
const STORM_REPEATS = 3;
const GOAL = { renewals: 1, p99Ms: KITE_LATENCY_MS + 150 };

/** What one storm gave back, before the servers' counts are added. */
interface StormOutcome<T> {
  /** Time to answer per caller, from the common start, in ms. */
  times: number[];
  /** Answers by status (or error type). */
  answers: Record<string, number>;
  /** Distinct access tokens answered. */
  tokens: number;
  wallMs: number;
  /** This process's CPU during the storm. */
  cpuMs: number;
  eventLoopUtilization: number;
  timeline: T;
  /** Figures only this kind of storm has. */
  extra: Record<string, number>;
}

interface StormRun<T> extends StormOutcome<T> {
  renewals: number;
  p50: number;
  p99: number;
  max: number;
  aws: number;
  awsDetail: string;
  s3Requests: number;
  serverCpuMs: number;
}

/** One kind of storm: how to run it and how to tell what happened. */
interface StormKind<T> {
  section: string;
  run(bench: Bench, n: number): Promise<StormOutcome<T>>;
  /** The facts behind the run with the median p99, for N > 1. */
  finding(n: number, typical: StormRun<T>): string;
  /** The tail of the "time to answer" row. */
  answerDetail(runs: Array<StormRun<T>>): string;
  /** Rows only this kind of storm has. */
  extraRows?(n: number, runs: Array<StormRun<T>>): void;
}

async function prepareStorm(bench: Bench): Promise<string> {
  const seeded = await bench.servers.call<SeedResult>({ op: 'seed', expired: false, stores: ['s3'] });
  await bench.servers.call({ op: 'flush' });
  await bench.servers.call({ op: 'reset' });
  return seeded.accessToken;
}

function answersOf(list: Array<{ status: string; token?: string | undefined }>) {
  const answers: Record<string, number> = {};
  const tokens = new Set<string>();
  for (const a of list) {
    answers[a.status] = (answers[a.status] ?? 0) + 1;
    if (a.token) tokens.add(a.token);
  }
  return { answers, tokens: tokens.size };
}

/** 6: the on-demand handler in this process, as one Lambda container sees a storm. */
function oneContainer(h: Handlers): StormKind<ReturnType<typeof summarizeStorm>> {
  return {
    section: '6 storm (one container)',
    async run(bench, n) {
      const flushed = await prepareStorm(bench);
      const times: number[] = new Array(n).fill(0);
      const cpuBefore = process.cpuUsage();
      const eluBefore = performance.eventLoopUtilization();
      startTimeline(bench.endpoints.kite);
      const t0 = performance.now();
      const list = await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const a = await h.onDemand(
            { failedAccessToken: flushed, status: 403 },
            lambdaContextFor('on-demand', i + 1),
          );
          times[i] = performance.now() - t0;
          const status = a.status === 'error' ? `error:${a.error.type}` : a.status;
          return { status, token: 'accessToken' in a ? a.accessToken : undefined };
        }),
      );
      const wallMs = performance.now() - t0;
      const timeline = summarizeStorm(stopTimeline(), times);
      const cpu = process.cpuUsage(cpuBefore);
      return {
        times,
        ...answersOf(list),
        wallMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        eventLoopUtilization: performance.eventLoopUtilization(eluBefore).utilization,
        timeline,
        extra: {},
      };
    },
    finding(n, r) {
      const t = r.timeline;
      return (
        `storm (one container) N=${n} (run with the median p99): ${n} first reads done at ${t.firstReadsDoneMs} ms; ` +
        `${t.leasePutsSent} PUTs (lease attempts and the final write); lease won at ${t.leaseWonMs} ms; ` +
        `Kite ${t.kiteSentMs}–${t.kiteAnsweredMs} ms; final write done at ${t.finalWriteDoneMs} ms; ` +
        `answers ${t.firstAnswerMs}–${t.lastAnswerMs} ms; ${t.awsRequests} S3 requests ` +
        `(${t.readsAfterFinalWrite} reads after the final write), up to ${t.maxSocketsInUse} sockets in use, ` +
        `median ${t.medianQueuedInAgentMs} ms queued for a socket (max ${t.maxQueuedInAgentMs}), ` +
        `median request ${t.medianRequestMs} ms; handler process CPU ${round(r.cpuMs, 0)} ms in ` +
        `${round(r.wallMs, 0)} ms (event loop ${Math.round(r.eventLoopUtilization * 100)}% busy), ` +
        `server process CPU ${round(r.serverCpuMs, 0)} ms`
      );
    },
    answerDetail: (runs) =>
      `AWS calls ${median(runs.map((r) => r.aws))}; answers ${tally(runs.at(-1)?.answers ?? {})}`,
  };
}

/** 6b: N refreshers built as N containers build theirs, in this process. */
const SEPARATE = '6b storm (separate containers)';

function separateContainers(): StormKind<ReturnType<typeof summarizeContainers>> {
  return {
    section: SEPARATE,
    async run(bench, n) {
      const run = await stormAcrossContainers({
        n,
        s3Endpoint: bench.endpoints.s3,
        kiteUrl: bench.endpoints.kite,
        configUri: CONFIG_URI.s3,
        appSecret: APP_SECRET,
        prepare: () => prepareStorm(bench),
      });
      return {
        times: run.times,
        answers: run.outcomes,
        tokens: run.tokens,
        wallMs: run.wallMs,
        cpuMs: run.cpuMs,
        eventLoopUtilization: run.eventLoopUtilization,
        timeline: summarizeContainers(run.traces, run.times),
        extra: {
          loopDelayP99Ms: round(run.loopDelayP99Ms, 1),
          loopDelayMaxMs: round(run.loopDelayMaxMs, 1),
          connectionsOpened: run.connectionsOpened,
        },
      };
    },
    finding(n, r) {
      const t = r.timeline;
      return (
        `storm (separate containers) N=${n} (run with the median p99, ${round(r.p99, 0)} ms): ${t.clients} ` +
        `S3 clients; ${n} first reads done at ${t.firstReadsDoneMs} ms; lease won at ${t.leaseWonMs} ms ` +
        `(PUTs: ${tally(t.putStatuses)}); Kite ${t.kiteSentMs}–${t.kiteAnsweredMs} ms; final write done at ` +
        `${t.finalWriteDoneMs} ms; the waiters' reads that saw it were sent ${t.waiterSleptAfterWriteP50Ms} ms ` +
        `after it landed (p50; p99 ${t.waiterSleptAfterWriteP99Ms}, max ${t.waiterSleptAfterWriteMaxMs}) and ` +
        `took ${t.noticingReadP50Ms} ms (max ${t.noticingReadMaxMs}); answers ${t.firstAnswerMs}–` +
        `${t.lastAnswerMs} ms, p50 ${t.answerAfterWriteP50Ms} / p99 ${t.answerAfterWriteP99Ms} ms after the ` +
        `final write; ${t.awsRequests} S3 requests (GETs: ${tally(t.getStatuses)}; ` +
        `${t.getsPerWaiterMedian} per waiter, max ${t.getsPerWaiterMax}; ${t.readsAfterFinalWrite} sent after ` +
        `the final write), up to ${t.maxSocketsInUse} sockets in use, ${r.extra.connectionsOpened} connections ` +
        `opened, median ${t.medianQueuedInAgentMs} ms queued for a socket (max ${t.maxQueuedInAgentMs}), median ` +
        `request ${t.medianRequestMs} ms; bench process CPU ${round(r.cpuMs, 0)} ms in ` +
        `${round(r.wallMs, 0)} ms (${round(r.cpuMs / Math.max(1, t.awsRequests), 2)} ms per ` +
        `S3 request; event loop ${Math.round(r.eventLoopUtilization * 100)}% busy, delay p99 ` +
        `${r.extra.loopDelayP99Ms} ms, max ${r.extra.loopDelayMaxMs} ms), server process CPU ` +
        `${round(r.serverCpuMs, 0)} ms; slowest waiter's requests (method, status, sent–answered ms): ` +
        `${t.slowestWaiter}`
      );
    },
    answerDetail: (runs) =>
      `answers ${tally(runs.at(-1)?.answers ?? {})}, ${runs.at(-1)?.tokens ?? 0} token(s)`,
    extraRows(n, runs) {
      const s3 = runs.map((r) => r.s3Requests);
      row(
        SEPARATE,
        `N=${n}: S3 requests per storm`,
        `median ${median(s3)} (runs: ${s3.join(', ')}; last: ${runs.at(-1)?.awsDetail ?? ''})`,
      );
    },
  };
}

async function runOnce<T>(bench: Bench, kind: StormKind<T>, n: number): Promise<StormRun<T>> {
  const outcome = await kind.run(bench, n);
  const c = await bench.servers.call<Counts>({ op: 'counts' });
  const aws = awsCalls(c);
  return {
    ...outcome,
    renewals: renewalsIn(c),
    p50: percentile(outcome.times, 50),
    p99: percentile(outcome.times, 99),
    max: Math.max(...outcome.times),
    aws: aws.total,
    awsDetail: aws.detail,
    s3Requests: sum(c.s3),
    serverCpuMs: c.cpuMs,
  };
}

/** Runs one kind of storm at every N, adds its rows and findings, and returns its results. */
async function stormSeries<T>(bench: Bench, kind: StormKind<T>): Promise<unknown[]> {
  const results: unknown[] = [];
  for (const n of STORM_SIZES) {
    const runs: Array<StormRun<T>> = [];
    for (let rep = 0; rep < STORM_REPEATS; rep++) runs.push(await runOnce(bench, kind, n));
    const typical = [...runs].sort((a, b) => a.p99 - b.p99)[Math.floor(runs.length / 2)];
    if (typical && n > 1) findings.push(kind.finding(n, typical));
    const worstRenewals = Math.max(...runs.map((r) => r.renewals));
    const p99 = median(runs.map((r) => r.p99));
    const p50 = median(runs.map((r) => r.p50));
    results.push({
      label: kind.section,
      n,
      repeats: STORM_REPEATS,
      worstRenewals,
      medianP50Ms: round(p50, 2),
      medianP99Ms: round(p99, 2),
      medianS3Requests: median(runs.map((r) => r.s3Requests)),
      runs: runs.map((r) => ({
        ...r,
        times: undefined,
        p50: round(r.p50, 2),
        p99: round(r.p99, 2),
        max: round(r.max, 2),
        eventLoopUtilization: round(r.eventLoopUtilization, 3),
      })),
    });
    row(
      kind.section,
      `N=${n}: Kite renewals (worst of ${STORM_REPEATS})`,
      String(worstRenewals),
      `${GOAL.renewals}`,
      worstRenewals === GOAL.renewals,
    );
    row(
      kind.section,
      `N=${n}: time to answer`,
      `p50 ${round(p50, 1)} ms, p99 ${round(p99, 1)} ms (median of runs); ${kind.answerDetail(runs)}`,
      n === 100 ? `p99 ≤ ${GOAL.p99Ms} ms` : '',
      n === 100 ? p99 <= GOAL.p99Ms : undefined,
    );
    kind.extraRows?.(n, runs);
  }
  return results;
}

/** Sections 6 and 6b. */
export async function stormSections(
  bench: Bench,
  h: Handlers,
): Promise<{ oneContainer: unknown[]; separate: unknown[] }> {
  await h.onDemand({}, lambdaContextFor('on-demand', 0)); // the on-demand wrapper's own first call
  const one = await stormSeries(bench, oneContainer(h));
  progress('storm across separate containers');
  const separate = await stormSeries(bench, separateContainers());
  return { oneContainer: one, separate };
}
