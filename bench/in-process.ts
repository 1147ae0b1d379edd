// Sections 4 and 5: the middy-wrapped handlers in this process, against the server process. 4, warm tick: one
// cold invocation, then WARM_TICKS timed ones with a fresh token (goal: 1 AWS read, 0 Kite calls). 5, refresh:
// Kite answers after KITE_LATENCY_MS; each run seeds an expired token and runs one tick in the warm container
// (goal: ≤ 3 AWS calls, 1 Kite call).
import type { Context } from 'aws-lambda';
import type { AccountsTickResult, AccountTickResult } from '../lib/accounts/tick.ts';
import type { OnDemandResponse } from '../lib/lambda/on-demand.ts';
import { cleanProcessEnv } from '../testing/clean-env.ts';
import { handlerEnv } from './env.ts';
import { row } from './report.ts';
import { awsCalls, kiteCalls } from './server-control.ts';
import { type Bench, SCHEDULED_EVENT } from './setup.ts';
import type { Counts, SeedResult } from './shared.ts';
import { median, ms, percentile, progress, round } from './stats.ts';

export const KITE_LATENCY_MS = 100;
const WARM_TICKS = 300;
const REFRESH_RUNS = 10;
const GOAL = { warmReads: 1, refreshAws: 3, refreshKite: 1 };

export function lambdaContextFor(name: string, i: number): Context {
  return {
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:ap-south-1:000000000000:function:${name}`,
    memoryLimitInMB: '256',
    awsRequestId: `bench-${name}-${i}`,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'bench',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 60_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/**
 * Powertools Metrics warns "No application metrics to publish..." on stderr after every invocation that added no
 * metric (every warm tick), even with POWERTOOLS_METRICS_DISABLED; no setting turns it off short of making empty
 * metrics throw. The handlers run in this process, so this process's stderr drops exactly those lines and counts
 * them (bench-results.json meta.droppedWarnings). Children's stderr is piped and shown only when a child fails.
 */
export const DROPPED_WARNING = 'No application metrics to publish.';
export const dropped = { warnings: 0 };
function quietPowertoolsWarnings(): void {
  const write = process.stderr.write.bind(process.stderr) as (...args: unknown[]) => boolean;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string' && chunk.startsWith(DROPPED_WARNING)) {
      dropped.warnings++;
      const callback = rest.find((r) => typeof r === 'function') as ((error: null) => void) | undefined;
      if (callback) process.nextTick(callback, null);
      return true;
    }
    return write(chunk, ...rest);
  }) as typeof process.stderr.write;
}

export interface Handlers {
  scheduled(event: unknown, context: Context): Promise<AccountTickResult | AccountsTickResult>;
  onDemand(event: unknown, context: Context): Promise<OnDemandResponse>;
}

/** Sets this process's environment to the handlers' (document in S3) and imports the middy handlers. */
export async function loadHandlers(bench: Bench): Promise<Handlers> {
  progress('warm ticks, refreshes and storms in process');
  quietPowertoolsWarnings();
  cleanProcessEnv(handlerEnv(bench.workDir, bench.endpoints, 's3'));
  const { handler: scheduled } = await import('../functions/scheduled-refresh.ts');
  const { handler: onDemand } = await import('../functions/on-demand-refresh.ts');
  const { resetLambdaContext } = await import('../lib/lambda/context.ts');
  resetLambdaContext();
  return { scheduled, onDemand };
}

/** Section 4. */
export async function warmTickSection(bench: Bench, h: Handlers): Promise<Record<string, unknown>> {
  const { servers } = bench;
  await servers.call({ op: 'latency', ms: 0 });
  await servers.call({ op: 'seed', expired: false, stores: ['s3'] });
  const coldStart = performance.now();
  await h.scheduled(SCHEDULED_EVENT, lambdaContextFor('scheduled', 0));
  const coldMs = performance.now() - coldStart;
  await servers.call({ op: 'reset' });
  const tickMs: number[] = [];
  const statuses: Record<string, number> = {};
  for (let i = 1; i <= WARM_TICKS; i++) {
    const t = performance.now();
    const out = await h.scheduled(SCHEDULED_EVENT, lambdaContextFor('scheduled', i));
    tickMs.push(performance.now() - t);
    statuses[out.status ?? 'none'] = (statuses[out.status ?? 'none'] ?? 0) + 1;
  }
  const counts = await servers.call<Counts>({ op: 'counts' });
  const aws = awsCalls(counts);
  const perTick = (x: number) => round(x / WARM_TICKS, 3);
  const warm = {
    ticks: WARM_TICKS,
    inProcessColdInvocationMs: round(coldMs, 2),
    medianMs: round(median(tickMs), 3),
    p99Ms: round(percentile(tickMs, 99), 3),
    maxMs: round(Math.max(...tickMs), 3),
    statuses,
    awsCallsPerTick: perTick(aws.total),
    awsReadsPerTick: perTick(aws.reads),
    awsWritesPerTick: perTick(aws.writes),
    kiteCallsPerTick: perTick(kiteCalls(counts)),
    counts,
  };
  row(
    '4 warm tick',
    `latency (${WARM_TICKS} ticks)`,
    `median ${ms(median(tickMs))}, p99 ${ms(percentile(tickMs, 99))}`,
  );
  row(
    '4 warm tick',
    'AWS calls per tick',
    `${warm.awsCallsPerTick} (${warm.awsReadsPerTick} reads, ${warm.awsWritesPerTick} writes: ${aws.detail})`,
    `${GOAL.warmReads} read`,
    warm.awsReadsPerTick === GOAL.warmReads && warm.awsWritesPerTick === 0,
  );
  row('4 warm tick', 'Kite calls per tick', String(warm.kiteCallsPerTick), '0', warm.kiteCallsPerTick === 0);
  return warm;
}

/** Section 5. */
export async function refreshSection(bench: Bench, h: Handlers): Promise<Record<string, unknown>> {
  const { servers } = bench;
  await servers.call({ op: 'latency', ms: KITE_LATENCY_MS });
  const times: number[] = [];
  const awsPerRun: number[] = [];
  const kitePerRun: number[] = [];
  const patterns: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  for (let i = 0; i < REFRESH_RUNS; i++) {
    await servers.call<SeedResult>({ op: 'seed', expired: true, stores: ['s3'] });
    await servers.call({ op: 'reset' });
    const t = performance.now();
    const out = await h.scheduled(SCHEDULED_EVENT, lambdaContextFor('scheduled', 10_000 + i));
    times.push(performance.now() - t);
    const c = await servers.call<Counts>({ op: 'counts' });
    const aws = awsCalls(c);
    awsPerRun.push(aws.total);
    kitePerRun.push(kiteCalls(c));
    patterns[aws.detail] = (patterns[aws.detail] ?? 0) + 1;
    statuses[out.status ?? 'none'] = (statuses[out.status ?? 'none'] ?? 0) + 1;
  }
  const refresh = {
    runs: REFRESH_RUNS,
    kiteLatencyMs: KITE_LATENCY_MS,
    medianMs: round(median(times), 2),
    maxMs: round(Math.max(...times), 2),
    awsCallsMax: Math.max(...awsPerRun),
    awsCallsMedian: median(awsPerRun),
    kiteCallsMax: Math.max(...kitePerRun),
    awsCallPatterns: patterns,
    statuses,
  };
  row(
    '5 refresh',
    `latency (${REFRESH_RUNS} runs, Kite +${KITE_LATENCY_MS} ms)`,
    `median ${ms(median(times))}, max ${ms(Math.max(...times))}`,
  );
  row(
    '5 refresh',
    'AWS calls per refresh (worst)',
    `${refresh.awsCallsMax} (${Object.keys(patterns).join(' | ')})`,
    `≤ ${GOAL.refreshAws}`,
    refresh.awsCallsMax <= GOAL.refreshAws,
  );
  row(
    '5 refresh',
    'Kite calls per refresh (worst)',
    String(refresh.kiteCallsMax),
    `${GOAL.refreshKite}`,
    refresh.kiteCallsMax === GOAL.refreshKite,
  );
  return refresh;
}
