// `npm run bench`: how big, how fast to load, how cheap per tick and how well-behaved under a storm the Lambda
// functions are. A benchmark, not a test: it always exits 0 when it could measure, prints a table of figures with
// their goals (PASS / MISS), and writes the same figures to bench-results.json (gitignored). About a minute and a
// half on two cores; everything runs on loopback and all temp files are removed at the end.
//
// What it measures, and how:
//
// 1. Bundle. Each function is built with esbuild exactly as deployment does (bench/build.ts reads custom.esbuild
//    from serverless.yml: bundle, minify, platform node, target node24, ESM, .mjs, external source map, AWS SDK
//    bundled). Counted: the handler file plus any chunk a cold invocation loads (with code splitting; without it,
//    just the one file), minified bytes and gzip bytes (node:zlib, per file). Source maps are not counted. The
//    floor is a bundle of only the AWS SDK clients that function's path uses with the document in S3 or in Secrets
//    Manager (bench/build.ts: floorSpec). Goal: bundle / floor ≤ 1.25 (minified bytes).
// 2. Cold import. Fresh `node` processes (the bench's own Node 24) import the built handler with the environment
//    and NODE_OPTIONS the deployment sets (--enable-source-maps), interleaved in rounds with a bare `node -e ''`,
//    the floor bundles and a runner that imports nothing. Reported: median wall time of the whole process, the
//    extra over bare, and the import time measured inside the child. Goal: handler extra / floor extra ≤ 1.3.
// 3. Store clients loaded. A child process runs the built scheduled handler against the emulators (a cold and a
//    warm tick) with a module hook that records every file it loads; the esbuild metafile says which clients and
//    store modules those files contain, i.e. what V8 has to parse. A second, instrumented build appends a marker
//    to each SDK client class and store module, telling what was also evaluated. Goal: an S3-configured function
//    never parses the Secrets Manager store module, and the reverse. (The Secrets Manager *client* is on every
//    path: the Kite app secret comes from Secrets Manager through KITE_API_SECRET_ID.)
// 4. Warm tick. The middy-wrapped scheduled handler, in this process, against the S3 emulator and the Kite
//    sandbox, with a fresh token: one cold invocation, then WARM_TICKS timed ones. AWS calls per tick are counted
//    from the emulators' request logs, Kite calls from the sandbox's. Goal: 1 AWS read, 0 Kite calls.
// 5. Refresh path. Kite answers after 100 ms; each run seeds an expired token and runs one scheduled tick (warm
//    container, no reset). Goal: ≤ 3 AWS calls and 1 Kite call per refresh; latency is reported.
// 6. Storm, one container. N = 1, 10, 100 concurrent on-demand invocations (middy handler, in this process,
//    Promise.all) right after Kite's flush, each reporting the flushed token with status 403; Kite answers after
//    100 ms. Each N runs STORM_REPEATS times. Concurrent identical requests in one process share one run
//    (lib/engine/refresher.ts), so this is one read, one lease, one renewal at any N: it measures one Lambda container.
//    Goal: 1 renewal at every N (worst run), p99 time to answer ≤ 250 ms at N = 100 (median of the runs' p99).
// 6b. Storm, separate containers. The same storm as Lambda spreads it: N refreshers built as N containers build
//    theirs (bench/containers.ts: each its own createRefresher, S3Store, S3Client and socket pool, and Kite client,
//    engine defaults), warmed by one read, then started together after the flush, each calling
//    refresh({ failedAccessToken }). Only the lease in the document keeps them to one renewal; the waiters learn
//    the new token by polling S3. Same servers, Kite latency, repeats and goals as 6; the S3 requests per storm
//    are reported. All N share this process's one event loop where real containers each have a CPU, so the
//    findings give the bench process's CPU, event-loop utilization and delay next to the timeline.
// 7. Memory. Peak RSS (process.resourceUsage().maxRSS) of a child that runs a cold and 50 warm ticks of the built
//    scheduled handler, next to a child that imports nothing. Goal: within the functions' memorySize.
//
// Under the table, "Where the time and bytes go" lists the facts behind each miss: the packages and files a
// bundle carries beyond its floor (esbuild metafile), a CPU profile of a cold import split into V8 compiling the
// source, loading Node built-ins, GC and the bundle's own code by package (bench/profile.ts, through the source
// map), which module imports a store module that should not be there, and a storm's timeline from Node's HTTP
// diagnostics channels (bench/timeline.ts): reads, lease, Kite, final write, answers, socket queueing, CPU.
// Cold-import probes (Powertools, zod, middy bundled alone) show what those dependencies cost by themselves.
//
// The servers (Kite sandbox, S3, Secrets Manager, SNS) run in a child process of their own (bench/servers.ts), so
// their work does not share the measured event loop. Logs are off (POWERTOOLS_LOG_LEVEL=SILENT), Powertools
// Metrics does not print EMF (POWERTOOLS_METRICS_DISABLED=true), and its "No application metrics to publish"
// warning, printed after every invocation that added no metric, is dropped from this process's stderr and
// counted (see quietPowertoolsWarnings). Figures on a busy machine are noisier; the load average is recorded next
// to them.
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, devNull, loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Context } from 'aws-lambda';
import {
  buildFunction,
  buildSource,
  bytesByOrigin,
  clientsIn,
  evaluationMarker,
  type FloorSpec,
  type FunctionBuild,
  floorKey,
  floorSource,
  floorSpec,
  importersOf,
  PROBES,
  readDeploySettings,
} from './build.ts';
import { type RunResult, runBare, runChild } from './children.ts';
import { stormAcrossContainers } from './containers.ts';
import { profileImport } from './profile.ts';
import {
  APP_SECRET,
  APP_SECRET_ID,
  CONFIG_URI,
  type Counts,
  type Endpoints,
  type Request,
  type SeedResult,
  type StoreKind,
} from './shared.ts';
import { startTimeline, stopTimeline, summarizeContainers, summarizeStorm } from './timeline.ts';

const PROJECT_DIR = resolve(fileURLToPath(new URL('..', import.meta.url)));
const RESULTS_FILE = join(PROJECT_DIR, 'bench-results.json');
const KINDS: StoreKind[] = ['s3', 'secretsmanager'];

const COLD_ROUNDS = 20;
const COLD_WARMUP_ROUNDS = 2;
const WARM_TICKS = 300;
const REFRESH_RUNS = 10;
const STORM_SIZES = [1, 10, 100];
const STORM_LABEL = '6 storm (one container)';
const CONTAINER_STORM_LABEL = '6b storm (separate containers)';
const STORM_REPEATS = 3;
const MEMORY_TICKS = 50;
const PROFILE_RUNS = 3;
const KITE_LATENCY_MS = 100;

const GOAL = {
  bundleRatio: 1.25,
  coldRatio: 1.3,
  warmReads: 1,
  refreshAws: 3,
  refreshKite: 1,
  stormRenewals: 1,
  stormP99Ms: KITE_LATENCY_MS + 150,
};

// ---- small helpers ---------------------------------------------------------------------------------------------

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
function median(xs: number[]): number {
  const s = sorted(xs);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
/** Nearest-rank percentile. */
function percentile(xs: number[], p: number): number {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const ms = (x: number) => `${round(x, 1)} ms`;
const kib = (bytes: number) => `${round(bytes / 1024, 1)} KiB`;
const sum = (record: Record<string, number>) => Object.values(record).reduce((a, b) => a + b, 0);
const progress = (text: string) => process.stderr.write(`bench: ${text}\n`);

/**
 * Powertools Metrics warns "No application metrics to publish..." on stderr after every invocation that added no
 * metric (every warm tick), even with POWERTOOLS_METRICS_DISABLED; no setting turns it off short of making empty
 * metrics throw. The handlers run in this process, so this process's stderr drops exactly those lines and counts
 * them (bench-results.json meta.droppedWarnings). Children's stderr is piped and shown only when a child fails.
 */
const DROPPED_WARNING = 'No application metrics to publish.';
let droppedWarnings = 0;
function quietPowertoolsWarnings(): void {
  const write = process.stderr.write.bind(process.stderr) as (...args: unknown[]) => boolean;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string' && chunk.startsWith(DROPPED_WARNING)) {
      droppedWarnings++;
      const callback = rest.find((r) => typeof r === 'function') as ((error: null) => void) | undefined;
      if (callback) process.nextTick(callback, null);
      return true;
    }
    return write(chunk, ...rest);
  }) as typeof process.stderr.write;
}

interface Row {
  section: string;
  measure: string;
  value: string;
  goal: string;
  verdict: 'PASS' | 'MISS' | 'info';
}
const rows: Row[] = [];
/** Facts behind the misses, printed under the table. */
const findings: string[] = [];
function row(section: string, measure: string, value: string, goal = '', pass?: boolean): void {
  rows.push({ section, measure, value, goal, verdict: pass === undefined ? 'info' : pass ? 'PASS' : 'MISS' });
}

function context(name: string, i: number): Context {
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

const SCHEDULED_EVENT = { source: 'aws.events', 'detail-type': 'Scheduled Event' };

/** An event each function accepts: a schedule tick, an empty on-demand payload, a login redirect without a token. */
function eventFor(entry: string): unknown {
  if (entry.includes('scheduled')) return SCHEDULED_EVENT;
  if (entry.includes('login')) {
    return { rawPath: '/', rawQueryString: '', requestContext: { http: { method: 'GET' } }, headers: {} };
  }
  return {};
}

/** AWS requests in a count: S3 requests, Secrets Manager operations and SNS publishes. */
function awsCalls(c: Counts): { total: number; reads: number; writes: number; detail: string } {
  const s3 = sum(c.s3);
  const sm = sum(c.secretsManager);
  const reads =
    Object.entries(c.s3)
      .filter(([k]) => k.startsWith('GET') || k.startsWith('HEAD'))
      .reduce((a, [, v]) => a + v, 0) +
    (c.secretsManager.GetSecretValue ?? 0) +
    (c.secretsManager.DescribeSecret ?? 0);
  const parts = [
    ...Object.entries(c.s3).map(([k, v]) => `S3 ${k} ×${v}`),
    ...Object.entries(c.secretsManager).map(([k, v]) => `SM ${k} ×${v}`),
    ...(c.snsPublishes ? [`SNS Publish ×${c.snsPublishes}`] : []),
  ];
  return {
    total: s3 + sm + c.snsPublishes,
    reads,
    writes: s3 + sm + c.snsPublishes - reads,
    detail: parts.join(', '),
  };
}
const kiteCalls = (c: Counts) => sum(c.kite);
const renewalsIn = (c: Counts) => c.kite['POST /session/refresh_token'] ?? 0;

// ---- the server process ----------------------------------------------------------------------------------------

interface Servers {
  call<T = unknown>(request: Request): Promise<T>;
  close(): Promise<void>;
  child: ChildProcess;
}

async function startServers(env: NodeJS.ProcessEnv): Promise<Servers> {
  const child = fork(join(PROJECT_DIR, 'bench', 'servers.ts'), [], {
    execPath: process.execPath,
    env,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  const pending = new Map<number, { done: (v: unknown) => void; fail: (e: Error) => void }>();
  let nextId = 1;
  await new Promise<void>((ready, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`the server process exited (${code}) before it was ready`)));
    child.on(
      'message',
      (message: { ready?: boolean; id?: number; ok?: boolean; result?: unknown; error?: string }) => {
        if (message.ready) return ready();
        const waiter = message.id === undefined ? undefined : pending.get(message.id);
        if (!waiter || message.id === undefined) return;
        pending.delete(message.id);
        if (message.ok) waiter.done(message.result);
        else waiter.fail(new Error(`server process: ${message.error}`));
      },
    );
  });
  child.removeAllListeners('exit');
  child.on('exit', () => {
    for (const waiter of pending.values()) waiter.fail(new Error('the server process exited'));
    pending.clear();
  });
  const call = <T = unknown>(request: Request): Promise<T> => {
    const id = nextId++;
    return new Promise<T>((done, fail) => {
      pending.set(id, { done: done as (v: unknown) => void, fail });
      child.send({ id, ...request });
    });
  };
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    await call({ op: 'close' }).catch(() => {});
    const timer = setTimeout(() => child.kill(), 5_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, call, close };
}

// ---- environment -----------------------------------------------------------------------------------------------

let workDir = '';

/** The handlers' environment: the deployment's variables, pointed at the loopback servers, logs and EMF off. */
function handlerEnv(endpoints: Endpoints, kind: StoreKind): Record<string, string> {
  return {
    TMPDIR: join(workDir, 'tmp'),
    AWS_REGION: 'ap-south-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: devNull,
    AWS_SHARED_CREDENTIALS_FILE: devNull,
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secretsManager,
    AWS_ENDPOINT_URL_SNS: endpoints.sns,
    BROKER_CONFIG_URI: CONFIG_URI[kind],
    KITE_API_SECRET_ID: APP_SECRET_ID,
    ALERT_TOPIC_ARN: endpoints.topicArn,
    REFRESH_WINDOW_MINUTES: '120',
    REMINDER_FIRST_IST: '08:00',
    REMINDER_FOLLOW_UP_IST: '09:00',
    POWERTOOLS_SERVICE_NAME: 'kite-token-refresh',
    POWERTOOLS_METRICS_NAMESPACE: 'KiteTokenRefresh',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
}

/** A child's whole environment: PATH and locale from here, nothing else (no AWS profile, no NODE_OPTIONS). */
function childEnv(extra: Record<string, string>, nodeOptions: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ'])
    if (process.env[name]) env[name] = process.env[name];
  return { ...env, ...extra, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) };
}

// ---- 1 & 3: builds, what runs load, floors ---------------------------------------------------------------------

interface Loaded {
  /** Metafile output paths of the files the run loaded from the build. */
  outputs: string[];
  bytes: number;
  gzipBytes: number;
  run: RunResult;
}

function loadedFrom(b: FunctionBuild, run: RunResult): Loaded {
  const byAbsolute = new Map<string, string>();
  for (const output of Object.keys(b.metafile.outputs)) byAbsolute.set(resolve(PROJECT_DIR, output), output);
  const outputs: string[] = [];
  for (const url of run.loaded) {
    const output = byAbsolute.get(fileURLToPath(url));
    if (output && !outputs.includes(output)) outputs.push(output);
  }
  let bytes = 0;
  let gzipBytes = 0;
  for (const output of outputs) {
    const data = readFileSync(resolve(PROJECT_DIR, output));
    bytes += data.length;
    gzipBytes += gzipSync(data).length;
  }
  return { outputs, bytes, gzipBytes, run };
}

function storeModulesIn(b: FunctionBuild, outputs: string[]): string[] {
  return Object.keys(bytesByOrigin(b.metafile, outputs))
    .filter((key) => /^lib\/store\/[a-z0-9-]+-store\.ts$/.test(key))
    .sort();
}

/** Where a bundle's bytes go beyond its floor's, by package or project file, largest first. */
function excessOverFloor(
  bundle: Record<string, number>,
  floor: Record<string, number>,
): Array<[string, number]> {
  const keys = new Set([...Object.keys(bundle), ...Object.keys(floor)]);
  const deltas: Array<[string, number]> = [];
  for (const key of keys) {
    const delta = (bundle[key] ?? 0) - (floor[key] ?? 0);
    if (delta !== 0) deltas.push([key, delta]);
  }
  return deltas.sort((a, b) => b[1] - a[1]);
}

// ---- main ------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = loadavg();
  workDir = await mkdtemp(join(tmpdir(), 'ktr-bench-'));
  await mkdir(join(workDir, 'tmp'));
  const settings = readDeploySettings(PROJECT_DIR);
  for (const note of settings.notes) progress(note);

  progress(`building ${settings.functions.length} functions (${settings.source})`);
  const builds = new Map<string, FunctionBuild>();
  for (const fn of settings.functions) {
    builds.set(fn.name, await buildFunction(PROJECT_DIR, settings, fn, join(workDir, 'build')));
  }
  const scheduledFn = settings.functions.find((f) => f.entry.includes('scheduled'));
  const instrumented = scheduledFn
    ? await buildFunction(PROJECT_DIR, settings, scheduledFn, join(workDir, 'instrumented'), [
        evaluationMarker,
      ])
    : undefined;

  const serverEnv: NodeJS.ProcessEnv = { ...process.env, TMPDIR: join(workDir, 'tmp') };
  delete serverEnv.NODE_OPTIONS;
  const servers = await startServers(serverEnv);
  const cleanup = () => {
    if (servers.child.exitCode === null) servers.child.kill();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  process.once('SIGTERM', () => {
    cleanup();
    process.exit(143);
  });

  try {
    const endpoints = await servers.call<Endpoints>({ op: 'endpoints' });
    const envFor = (kind: StoreKind, nodeOptions = settings.nodeOptions) =>
      childEnv(handlerEnv(endpoints, kind), nodeOptions);
    await servers.call({ op: 'seed', expired: false, stores: KINDS });

    // -- what a cold invocation loads, per function and store kind (sizes count those files) --
    progress('tracing what each function loads on a cold invocation');
    const loaded = new Map<string, Loaded>();
    for (const fn of settings.functions) {
      const b = builds.get(fn.name) as FunctionBuild;
      for (const kind of KINDS) {
        const run = runChild(
          { file: b.entryFile, trace: true, invocations: 1, event: eventFor(fn.entry) },
          envFor(kind),
        );
        loaded.set(`${fn.name}/${kind}`, loadedFrom(b, run));
      }
    }

    // -- floors --
    const floors = new Map<
      string,
      { spec: FloorSpec; file: string; bytes: number; gzipBytes: number; origins: Record<string, number> }
    >();
    const floorOf = new Map<string, string>();
    for (const fn of settings.functions) {
      const b = builds.get(fn.name) as FunctionBuild;
      const bundleClients = clientsIn(b.metafile, Object.keys(b.metafile.outputs));
      for (const kind of KINDS) {
        const spec = floorSpec(kind, bundleClients);
        const key = floorKey(spec);
        floorOf.set(`${fn.name}/${kind}`, key);
        if (floors.has(key)) continue;
        const file = join(
          workDir,
          'floors',
          `${key.replace(/[^a-z0-9+-]/gi, '_')}${settings.outputExtension}`,
        );
        const fb = await buildSource(PROJECT_DIR, settings, floorSource(spec), file);
        const data = readFileSync(file);
        floors.set(key, {
          spec,
          file,
          bytes: data.length,
          gzipBytes: gzipSync(data).length,
          origins: bytesByOrigin(fb.metafile, Object.keys(fb.metafile.outputs)),
        });
      }
    }

    // -- 1. bundle --
    const bundleResults: unknown[] = [];
    for (const fn of settings.functions) {
      const b = builds.get(fn.name) as FunctionBuild;
      for (const kind of KINDS) {
        const l = loaded.get(`${fn.name}/${kind}`) as Loaded;
        const floor = floors.get(floorOf.get(`${fn.name}/${kind}`) as string) as NonNullable<
          ReturnType<typeof floors.get>
        >;
        const ratio = l.bytes / floor.bytes;
        const gzipRatio = l.gzipBytes / floor.gzipBytes;
        const excess = excessOverFloor(bytesByOrigin(b.metafile, l.outputs), floor.origins);
        bundleResults.push({
          function: fn.name,
          entry: fn.entry,
          storeKind: kind,
          files: l.outputs.map((o) => relative(join(workDir, 'build'), resolve(PROJECT_DIR, o))),
          bytes: l.bytes,
          gzipBytes: l.gzipBytes,
          floor: { clients: floor.spec, bytes: floor.bytes, gzipBytes: floor.gzipBytes },
          ratio: round(ratio, 3),
          gzipRatio: round(gzipRatio, 3),
          excessOverFloor: Object.fromEntries(excess.slice(0, 12)),
          firstInvocation: { statuses: l.run.statuses, error: l.run.error },
        });
        if (ratio > GOAL.bundleRatio) {
          findings.push(
            `bundle ${fn.name} (${kind}): +${kib(l.bytes - floor.bytes)} over the floor, mostly ` +
              excess
                .slice(0, 7)
                .map(([origin, bytes]) => `${origin} ${bytes > 0 ? '+' : ''}${kib(bytes)}`)
                .join(', '),
          );
        }
        row(
          '1 bundle',
          `${fn.name} (${kind})`,
          `${kib(l.bytes)} / gz ${kib(l.gzipBytes)}; floor ${kib(floor.bytes)} / gz ${kib(floor.gzipBytes)}; ` +
            `ratio ${round(ratio, 2)} (gz ${round(gzipRatio, 2)})`,
          `ratio ≤ ${GOAL.bundleRatio}`,
          ratio <= GOAL.bundleRatio,
        );
      }
    }

    // -- 2. cold import --
    progress(`cold imports: ${COLD_WARMUP_ROUNDS + COLD_ROUNDS} rounds of fresh node processes`);
    await servers.call({ op: 'reset' });
    interface Target {
      id: string;
      file?: string;
      nodeOptions?: string | undefined;
      bare?: boolean;
    }
    const targets: Target[] = [
      { id: 'bare', bare: true, nodeOptions: settings.nodeOptions },
      { id: 'nothing', nodeOptions: settings.nodeOptions },
    ];
    for (const fn of settings.functions) {
      const b = builds.get(fn.name) as FunctionBuild;
      targets.push({ id: `handler:${fn.name}`, file: b.entryFile, nodeOptions: settings.nodeOptions });
      if (settings.nodeOptions) targets.push({ id: `handler-plain:${fn.name}`, file: b.entryFile });
    }
    for (const [key, floor] of floors)
      targets.push({ id: `floor:${key}`, file: floor.file, nodeOptions: settings.nodeOptions });
    for (const [name, source] of Object.entries(PROBES)) {
      const file = join(workDir, 'probes', `${name}${settings.outputExtension}`);
      await buildSource(PROJECT_DIR, settings, source, file);
      targets.push({ id: `probe:${name}`, file, nodeOptions: settings.nodeOptions });
    }
    const wall = new Map<string, number[]>(targets.map((t) => [t.id, []]));
    const inChild = new Map<string, number[]>(targets.map((t) => [t.id, []]));
    const atImport = new Set<string>();
    const atImportBaseline = new Set<string>();
    for (let r = 0; r < COLD_WARMUP_ROUNDS + COLD_ROUNDS; r++) {
      for (let i = 0; i < targets.length; i++) {
        const t = targets[(i + r) % targets.length] as Target;
        const env = envFor('s3', t.nodeOptions);
        if (t.bare) {
          const w = runBare(env);
          if (r >= COLD_WARMUP_ROUNDS) wall.get(t.id)?.push(w);
          continue;
        }
        const run = runChild(t.file ? { file: t.file } : {}, env);
        for (const resource of run.atImport)
          (t.file ? atImport : atImportBaseline).add(`${t.id}: ${resource}`);
        if (r < COLD_WARMUP_ROUNDS) continue;
        wall.get(t.id)?.push(run.wallMs);
        inChild.get(t.id)?.push(run.importMs);
      }
    }
    const importIo = awsCalls(await servers.call<Counts>({ op: 'counts' }));
    // Handles the runner itself has, and stdio streams (a PipeWrap appears once anything touches process.stdout
    // or process.stderr, as Powertools and the SDK do), are not I/O started by the import.
    const baselineKinds = new Set([
      'PipeWrap',
      'TTYWrap',
      ...[...atImportBaseline].map((r) => r.slice(r.indexOf(': ') + 2)),
    ]);
    for (const r of [...atImport]) if (baselineKinds.has(r.slice(r.indexOf(': ') + 2))) atImport.delete(r);
    const med = (m: Map<string, number[]>, id: string) => median(m.get(id) ?? []);
    const bareWall = med(wall, 'bare');
    const coldResults: Record<string, unknown> = {
      rounds: COLD_ROUNDS,
      nodeOptions: settings.nodeOptions ?? '',
      bareWallMs: round(bareWall, 2),
      nothingWallMs: round(med(wall, 'nothing'), 2),
      awsRequestsDuringImports: importIo.total,
      activeAtImport: [...atImport],
      targets: Object.fromEntries(
        targets.map((t) => [
          t.id,
          {
            wallMedianMs: round(med(wall, t.id), 2),
            wallP90Ms: round(percentile(wall.get(t.id) ?? [], 90), 2),
            extraOverBareMs: round(med(wall, t.id) - bareWall, 2),
            importMedianMs: t.bare ? null : round(med(inChild, t.id), 2),
          },
        ]),
      ),
      ratios: {} as Record<string, unknown>,
    };
    row('2 cold import', "bare node -e '' (wall)", ms(bareWall), '', undefined);
    const profiles: Record<string, Record<string, number>> = {};
    coldResults.cpuProfiles = profiles;
    for (const fn of settings.functions) {
      const hid = `handler:${fn.name}`;
      const extra = med(wall, hid) - bareWall;
      const imp = med(inChild, hid);
      let missed = false;
      for (const kind of KINDS) {
        const fid = `floor:${floorOf.get(`${fn.name}/${kind}`)}`;
        const floorExtra = med(wall, fid) - bareWall;
        const ratio = extra / floorExtra;
        const importRatio = imp / med(inChild, fid);
        (coldResults.ratios as Record<string, unknown>)[`${fn.name}/${kind}`] = {
          handlerExtraMs: round(extra, 2),
          floorExtraMs: round(floorExtra, 2),
          ratio: round(ratio, 3),
          handlerImportMs: round(imp, 2),
          floorImportMs: round(med(inChild, fid), 2),
          importRatio: round(importRatio, 3),
        };
        row(
          '2 cold import',
          `${fn.name} (${kind})`,
          `extra ${ms(extra)} vs floor ${ms(floorExtra)}: ratio ${round(ratio, 2)}; ` +
            `in-child import ${ms(imp)} vs ${ms(med(inChild, fid))}: ${round(importRatio, 2)}`,
          `ratio ≤ ${GOAL.coldRatio}`,
          ratio <= GOAL.coldRatio,
        );
        missed ||= ratio > GOAL.coldRatio;
      }
      const b = builds.get(fn.name) as FunctionBuild;
      const profile = profileImport(b.entryFile, envFor('s3'), workDir, PROFILE_RUNS);
      profiles[fn.name] = profile;
      if (missed) {
        const atImportBytes = runChild({ file: b.entryFile, trace: true }, envFor('s3'));
        findings.push(
          `cold import ${fn.name}: the import loads ${kib(loadedFrom(b, atImportBytes).bytes)} of code; CPU per process ` +
            `(--cpu-prof, whole process): ${Object.entries(profile)
              .slice(0, 8)
              .map(([k, v]) => `${k} ${v} ms`)
              .join(', ')}`,
        );
      }
      if (settings.nodeOptions) {
        row(
          '2 cold import',
          `${fn.name} without NODE_OPTIONS`,
          `extra ${ms(med(wall, `handler-plain:${fn.name}`) - bareWall)}; in-child import ${ms(med(inChild, `handler-plain:${fn.name}`))}`,
        );
      }
    }
    row(
      '2 cold import',
      'I/O at import',
      `${importIo.total} AWS requests; ${atImport.size ? [...atImport].join(', ') : 'no active handles'}`,
      'none',
      importIo.total === 0 && atImport.size === 0,
    );
    row(
      '2 cold import',
      'other dependencies alone (extra)',
      Object.keys(PROBES)
        .map((name) => `${name} ${ms(med(wall, `probe:${name}`) - bareWall)}`)
        .join(', '),
    );

    // -- 3. store clients loaded --
    progress('store clients loaded by the scheduled function');
    const clientResults: Record<string, unknown> = {};
    if (scheduledFn && instrumented) {
      const b = builds.get(scheduledFn.name) as FunctionBuild;
      for (const kind of KINDS) {
        await servers.call({ op: 'seed', expired: false, stores: KINDS });
        const run = runChild(
          { file: b.entryFile, trace: true, invocations: 2, event: SCHEDULED_EVENT },
          envFor(kind),
        );
        const l = loadedFrom(b, run);
        const marked = runChild(
          { file: instrumented.entryFile, trace: true, invocations: 2, event: SCHEDULED_EVENT },
          envFor(kind),
        );
        const parsedClients = clientsIn(b.metafile, l.outputs);
        const parsedStores = storeModulesIn(b, l.outputs);
        const origins = bytesByOrigin(b.metafile, l.outputs);
        const otherStore = kind === 's3' ? 'lib/store/secrets-manager-store.ts' : 'lib/store/s3-store.ts';
        const otherClient = kind === 's3' ? '@aws-sdk/client-secrets-manager' : '@aws-sdk/client-s3';
        clientResults[kind] = {
          statuses: run.statuses,
          error: run.error,
          splitting: Boolean(settings.options.splitting),
          filesLoaded: l.outputs.length,
          parsedClients: Object.fromEntries(parsedClients.map((c) => [c, origins[c] ?? 0])),
          parsedStoreModules: Object.fromEntries(parsedStores.map((s) => [s, origins[s] ?? 0])),
          evaluated: [...new Set(marked.evaluated)].sort(),
          evaluatedRunStatuses: marked.statuses,
        };
        const evaluated = new Set(marked.evaluated);
        for (const other of [otherStore, ...(kind === 'secretsmanager' ? [otherClient] : [])]) {
          const present = other.startsWith('lib/')
            ? parsedStores.includes(other)
            : parsedClients.includes(other);
          if (!present) continue;
          const importers = importersOf(
            b.metafile,
            other.startsWith('lib/')
              ? other
              : (Object.keys(b.metafile.inputs).find((i) => i.endsWith(`${other}/dist-es/index.js`)) ??
                  other),
          );
          findings.push(
            `clients, scheduled (${kind}): ${other} is parsed${evaluated.has(other) ? ' and evaluated' : ''}` +
              `${settings.options.splitting ? '' : ' (one bundle file without code splitting)'}; imported by ${importers.join(', ') || '?'}`,
          );
        }
        row(
          '3 clients',
          `scheduled (${kind}): parsed`,
          `${parsedClients.map((c) => `${c.replace('@aws-sdk/', '')} ${kib(origins[c] ?? 0)}`).join(', ')}; stores: ${parsedStores.map((s) => s.replace('lib/store/', '')).join(', ')}` +
            (settings.options.splitting ? '' : ' (one file: everything in the bundle is parsed)'),
        );
        row(
          '3 clients',
          `scheduled (${kind}): evaluated`,
          [...evaluated]
            .sort()
            .map((e) => e.replace('@aws-sdk/', '').replace('lib/store/', ''))
            .join(', ') || 'none',
        );
        row(
          '3 clients',
          `scheduled (${kind}): other store module parsed?`,
          `${otherStore.replace('lib/store/', '')}: ${parsedStores.includes(otherStore) ? 'parsed' : 'not parsed'}` +
            `${evaluated.has(otherStore) ? ', evaluated' : ''}`,
          'not parsed',
          !parsedStores.includes(otherStore),
        );
        if (kind === 'secretsmanager') {
          row(
            '3 clients',
            `scheduled (${kind}): S3 client parsed?`,
            `${otherClient.replace('@aws-sdk/', '')}: ${parsedClients.includes(otherClient) ? 'parsed' : 'not parsed'}${evaluated.has(otherClient) ? ', evaluated' : ''}`,
            'not parsed',
            !parsedClients.includes(otherClient),
          );
        } else {
          row(
            '3 clients',
            `scheduled (${kind}): SM client`,
            `${parsedClients.includes(otherClient) ? 'parsed' : 'not parsed'}${evaluated.has(otherClient) ? ', evaluated' : ''}: needed for the app secret (KITE_API_SECRET_ID)`,
          );
        }
      }
    }

    // -- 7. memory --
    progress('peak RSS of a handler process');
    let memory: Record<string, unknown> = {};
    if (scheduledFn) {
      await servers.call({ op: 'seed', expired: false, stores: KINDS });
      const b = builds.get(scheduledFn.name) as FunctionBuild;
      const run = runChild(
        { file: b.entryFile, invocations: 1 + MEMORY_TICKS, event: SCHEDULED_EVENT },
        envFor('s3'),
      );
      const nothing = runChild({}, envFor('s3'));
      const limitKiB = (settings.memorySizeMb ?? 128) * 1024;
      memory = {
        ticks: 1 + MEMORY_TICKS,
        maxRssKiB: run.maxRssKiB,
        nothingMaxRssKiB: nothing.maxRssKiB,
        memorySizeMb: settings.memorySizeMb ?? null,
        statuses: [...new Set(run.statuses)],
        error: run.error,
      };
      row(
        '7 memory',
        `scheduled, ${1 + MEMORY_TICKS} ticks (built, s3)`,
        `maxRSS ${round(run.maxRssKiB / 1024, 1)} MiB (node importing nothing: ${round(nothing.maxRssKiB / 1024, 1)} MiB)`,
        `≤ memorySize ${settings.memorySizeMb ?? 128} MB`,
        run.maxRssKiB <= limitKiB,
      );
    }

    // -- 4-6: the middy handlers in this process --
    progress('warm ticks, refreshes and storms in process');
    quietPowertoolsWarnings();
    Object.assign(process.env, handlerEnv(endpoints, 's3'));
    for (const name of Object.keys(process.env)) {
      if (/^AWS_/.test(name) && !(name in handlerEnv(endpoints, 's3'))) delete process.env[name];
    }
    const { handler: scheduled } = await import('../functions/scheduled-refresh.ts');
    const { handler: onDemand } = await import('../functions/on-demand-refresh.ts');
    const { resetLambdaContext } = await import('../lib/lambda/context.ts');
    resetLambdaContext();

    // 4. warm tick
    await servers.call({ op: 'latency', ms: 0 });
    await servers.call({ op: 'seed', expired: false, stores: ['s3'] });
    const coldStart = performance.now();
    await scheduled(SCHEDULED_EVENT, context('scheduled', 0));
    const coldMs = performance.now() - coldStart;
    await servers.call({ op: 'reset' });
    const tickMs: number[] = [];
    const tickStatuses: Record<string, number> = {};
    for (let i = 1; i <= WARM_TICKS; i++) {
      const t = performance.now();
      const out = await scheduled(SCHEDULED_EVENT, context('scheduled', i));
      tickMs.push(performance.now() - t);
      tickStatuses[out.status] = (tickStatuses[out.status] ?? 0) + 1;
    }
    const warmCounts = await servers.call<Counts>({ op: 'counts' });
    const warmAws = awsCalls(warmCounts);
    const warm = {
      ticks: WARM_TICKS,
      inProcessColdInvocationMs: round(coldMs, 2),
      medianMs: round(median(tickMs), 3),
      p99Ms: round(percentile(tickMs, 99), 3),
      maxMs: round(Math.max(...tickMs), 3),
      statuses: tickStatuses,
      awsCallsPerTick: round(warmAws.total / WARM_TICKS, 3),
      awsReadsPerTick: round(warmAws.reads / WARM_TICKS, 3),
      awsWritesPerTick: round(warmAws.writes / WARM_TICKS, 3),
      kiteCallsPerTick: round(kiteCalls(warmCounts) / WARM_TICKS, 3),
      counts: warmCounts,
    };
    row(
      '4 warm tick',
      `latency (${WARM_TICKS} ticks)`,
      `median ${ms(median(tickMs))}, p99 ${ms(percentile(tickMs, 99))}`,
    );
    row(
      '4 warm tick',
      'AWS calls per tick',
      `${warm.awsCallsPerTick} (${warm.awsReadsPerTick} reads, ${warm.awsWritesPerTick} writes: ${warmAws.detail})`,
      `${GOAL.warmReads} read`,
      warm.awsReadsPerTick === GOAL.warmReads && warm.awsWritesPerTick === 0,
    );
    row(
      '4 warm tick',
      'Kite calls per tick',
      String(warm.kiteCallsPerTick),
      '0',
      warm.kiteCallsPerTick === 0,
    );

    // 5. refresh path
    await servers.call({ op: 'latency', ms: KITE_LATENCY_MS });
    const refreshMs: number[] = [];
    const refreshAws: number[] = [];
    const refreshKite: number[] = [];
    const refreshDetail: Record<string, number> = {};
    const refreshStatuses: Record<string, number> = {};
    for (let i = 0; i < REFRESH_RUNS; i++) {
      await servers.call<SeedResult>({ op: 'seed', expired: true, stores: ['s3'] });
      await servers.call({ op: 'reset' });
      const t = performance.now();
      const out = await scheduled(SCHEDULED_EVENT, context('scheduled', 10_000 + i));
      refreshMs.push(performance.now() - t);
      const c = await servers.call<Counts>({ op: 'counts' });
      const aws = awsCalls(c);
      refreshAws.push(aws.total);
      refreshKite.push(kiteCalls(c));
      refreshDetail[aws.detail] = (refreshDetail[aws.detail] ?? 0) + 1;
      refreshStatuses[out.status] = (refreshStatuses[out.status] ?? 0) + 1;
    }
    const refresh = {
      runs: REFRESH_RUNS,
      kiteLatencyMs: KITE_LATENCY_MS,
      medianMs: round(median(refreshMs), 2),
      maxMs: round(Math.max(...refreshMs), 2),
      awsCallsMax: Math.max(...refreshAws),
      awsCallsMedian: median(refreshAws),
      kiteCallsMax: Math.max(...refreshKite),
      awsCallPatterns: refreshDetail,
      statuses: refreshStatuses,
    };
    row(
      '5 refresh',
      `latency (${REFRESH_RUNS} runs, Kite +${KITE_LATENCY_MS} ms)`,
      `median ${ms(median(refreshMs))}, max ${ms(Math.max(...refreshMs))}`,
    );
    row(
      '5 refresh',
      'AWS calls per refresh (worst)',
      `${refresh.awsCallsMax} (${Object.keys(refreshDetail).join(' | ')})`,
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

    // 6. storm
    await onDemand({}, context('on-demand', 0)); // the on-demand wrapper's own first call
    const stormResults: unknown[] = [];
    for (const n of STORM_SIZES) {
      const runs: Array<{
        renewals: number;
        p50: number;
        p99: number;
        max: number;
        aws: number;
        awsDetail: string;
        statuses: Record<string, number>;
        tokens: number;
        wallMs: number;
        handlerCpuMs: number;
        eventLoopUtilization: number;
        serverCpuMs: number;
        timeline: ReturnType<typeof summarizeStorm>;
      }> = [];
      for (let rep = 0; rep < STORM_REPEATS; rep++) {
        const seeded = await servers.call<SeedResult>({ op: 'seed', expired: false, stores: ['s3'] });
        await servers.call({ op: 'flush' });
        await servers.call({ op: 'reset' });
        const times: number[] = new Array(n).fill(0);
        const cpuBefore = process.cpuUsage();
        const eluBefore = performance.eventLoopUtilization();
        startTimeline(endpoints.kite);
        const t0 = performance.now();
        const answers = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            onDemand(
              { failedAccessToken: seeded.accessToken, status: 403 },
              context('on-demand', i + 1),
            ).then((a) => {
              times[i] = performance.now() - t0;
              return a;
            }),
          ),
        );
        const wallMs = performance.now() - t0;
        const timeline = summarizeStorm(stopTimeline(), times);
        const elu = performance.eventLoopUtilization(eluBefore).utilization;
        const cpu = process.cpuUsage(cpuBefore);
        const c = await servers.call<Counts>({ op: 'counts' });
        const statuses: Record<string, number> = {};
        const tokens = new Set<string>();
        for (const a of answers) {
          const key = a.status === 'error' ? `error:${a.error.type}` : a.status;
          statuses[key] = (statuses[key] ?? 0) + 1;
          if ('accessToken' in a) tokens.add(a.accessToken);
        }
        const aws = awsCalls(c);
        runs.push({
          renewals: renewalsIn(c),
          p50: percentile(times, 50),
          p99: percentile(times, 99),
          max: Math.max(...times),
          aws: aws.total,
          awsDetail: aws.detail,
          statuses,
          tokens: tokens.size,
          wallMs,
          handlerCpuMs: (cpu.user + cpu.system) / 1000,
          eventLoopUtilization: round(elu, 3),
          serverCpuMs: c.cpuMs,
          timeline,
        });
      }
      const typical = [...runs].sort((a, b) => a.p99 - b.p99)[Math.floor(runs.length / 2)];
      if (typical && n > 1) {
        const t = typical.timeline;
        findings.push(
          `storm (one container) N=${n} (run with the median p99): ${n} first reads done at ${t.firstReadsDoneMs} ms; ` +
            `${t.leasePutsSent} PUTs (lease attempts and the final write); lease won at ${t.leaseWonMs} ms; ` +
            `Kite ${t.kiteSentMs}–${t.kiteAnsweredMs} ms; final write done at ${t.finalWriteDoneMs} ms; ` +
            `answers ${t.firstAnswerMs}–${t.lastAnswerMs} ms; ${t.awsRequests} S3 requests ` +
            `(${t.readsAfterFinalWrite} reads after the final write), up to ${t.maxSocketsInUse} sockets in use, ` +
            `median ${t.medianQueuedInAgentMs} ms queued for a socket (max ${t.maxQueuedInAgentMs}), ` +
            `median request ${t.medianRequestMs} ms; handler process CPU ${round(typical.handlerCpuMs, 0)} ms in ` +
            `${round(typical.wallMs, 0)} ms (event loop ${Math.round(typical.eventLoopUtilization * 100)}% busy), ` +
            `server process CPU ${round(typical.serverCpuMs, 0)} ms`,
        );
      }
      const worstRenewals = Math.max(...runs.map((r) => r.renewals));
      const p99 = median(runs.map((r) => r.p99));
      const p50 = median(runs.map((r) => r.p50));
      stormResults.push({
        label: STORM_LABEL,
        n,
        repeats: STORM_REPEATS,
        worstRenewals,
        medianP50Ms: round(p50, 2),
        medianP99Ms: round(p99, 2),
        runs: runs.map((r) => ({ ...r, p50: round(r.p50, 2), p99: round(r.p99, 2), max: round(r.max, 2) })),
      });
      row(
        STORM_LABEL,
        `N=${n}: Kite renewals (worst of ${STORM_REPEATS})`,
        String(worstRenewals),
        `${GOAL.stormRenewals}`,
        worstRenewals === GOAL.stormRenewals,
      );
      row(
        STORM_LABEL,
        `N=${n}: time to answer`,
        `p50 ${ms(p50)}, p99 ${ms(p99)} (median of runs); AWS calls ${median(runs.map((r) => r.aws))}; ` +
          `answers ${Object.entries(runs.at(-1)?.statuses ?? {})
            .map(([k, v]) => `${k}×${v}`)
            .join(' ')}`,
        n === 100 ? `p99 ≤ ${GOAL.stormP99Ms} ms` : '',
        n === 100 ? p99 <= GOAL.stormP99Ms : undefined,
      );
    }

    // 6b. storm across containers
    progress('storm across separate containers');
    const containerStormResults: unknown[] = [];
    for (const n of STORM_SIZES) {
      const runs: Array<{
        renewals: number;
        p50: number;
        p99: number;
        max: number;
        s3Requests: number;
        s3Detail: string;
        outcomes: Record<string, number>;
        tokens: number;
        wallMs: number;
        handlerCpuMs: number;
        eventLoopUtilization: number;
        loopDelayP99Ms: number;
        loopDelayMaxMs: number;
        connectionsOpened: number;
        serverCpuMs: number;
        timeline: ReturnType<typeof summarizeContainers>;
      }> = [];
      for (let rep = 0; rep < STORM_REPEATS; rep++) {
        const run = await stormAcrossContainers({
          n,
          s3Endpoint: endpoints.s3,
          kiteUrl: endpoints.kite,
          configUri: CONFIG_URI.s3,
          appSecret: APP_SECRET,
          prepare: async () => {
            const seeded = await servers.call<SeedResult>({ op: 'seed', expired: false, stores: ['s3'] });
            await servers.call({ op: 'flush' });
            await servers.call({ op: 'reset' });
            return seeded.accessToken;
          },
        });
        const c = await servers.call<Counts>({ op: 'counts' });
        const aws = awsCalls(c);
        runs.push({
          renewals: renewalsIn(c),
          p50: percentile(run.times, 50),
          p99: percentile(run.times, 99),
          max: Math.max(...run.times),
          s3Requests: sum(c.s3),
          s3Detail: aws.detail,
          outcomes: run.outcomes,
          tokens: run.tokens,
          wallMs: run.wallMs,
          handlerCpuMs: run.cpuMs,
          eventLoopUtilization: round(run.eventLoopUtilization, 3),
          loopDelayP99Ms: round(run.loopDelayP99Ms, 1),
          loopDelayMaxMs: round(run.loopDelayMaxMs, 1),
          connectionsOpened: run.connectionsOpened,
          serverCpuMs: c.cpuMs,
          timeline: summarizeContainers(run.traces, run.times),
        });
      }
      const typical = [...runs].sort((a, b) => a.p99 - b.p99)[Math.floor(runs.length / 2)];
      if (typical && n > 1) {
        const t = typical.timeline;
        const statuses = (r: Record<string, number>) =>
          Object.entries(r)
            .map(([k, v]) => `${k}×${v}`)
            .join(' ');
        findings.push(
          `storm (separate containers) N=${n} (run with the median p99, ${round(typical.p99, 0)} ms): ${t.clients} ` +
            `S3 clients; ${n} first reads done at ${t.firstReadsDoneMs} ms; lease won at ${t.leaseWonMs} ms ` +
            `(PUTs: ${statuses(t.putStatuses)}); Kite ${t.kiteSentMs}–${t.kiteAnsweredMs} ms; final write done at ` +
            `${t.finalWriteDoneMs} ms; the waiters' reads that saw it were sent ${t.waiterSleptAfterWriteP50Ms} ms ` +
            `after it landed (p50; p99 ${t.waiterSleptAfterWriteP99Ms}, max ${t.waiterSleptAfterWriteMaxMs}) and ` +
            `took ${t.noticingReadP50Ms} ms (max ${t.noticingReadMaxMs}); answers ${t.firstAnswerMs}–` +
            `${t.lastAnswerMs} ms, p50 ${t.answerAfterWriteP50Ms} / p99 ${t.answerAfterWriteP99Ms} ms after the ` +
            `final write; ${t.awsRequests} S3 requests (GETs: ${statuses(t.getStatuses)}; ` +
            `${t.getsPerWaiterMedian} per waiter, max ${t.getsPerWaiterMax}; ${t.readsAfterFinalWrite} sent after ` +
            `the final write), up to ${t.maxSocketsInUse} sockets in use, ${typical.connectionsOpened} connections ` +
            `opened, median ${t.medianQueuedInAgentMs} ms queued for a socket (max ${t.maxQueuedInAgentMs}), median ` +
            `request ${t.medianRequestMs} ms; bench process CPU ${round(typical.handlerCpuMs, 0)} ms in ` +
            `${round(typical.wallMs, 0)} ms (${round(typical.handlerCpuMs / Math.max(1, t.awsRequests), 2)} ms per ` +
            `S3 request; event loop ${Math.round(typical.eventLoopUtilization * 100)}% busy, delay p99 ` +
            `${typical.loopDelayP99Ms} ms, max ${typical.loopDelayMaxMs} ms), server process CPU ` +
            `${round(typical.serverCpuMs, 0)} ms; slowest waiter's requests (method, status, sent–answered ms): ` +
            `${t.slowestWaiter}`,
        );
      }
      const worstRenewals = Math.max(...runs.map((r) => r.renewals));
      const p99 = median(runs.map((r) => r.p99));
      const p50 = median(runs.map((r) => r.p50));
      const s3Requests = runs.map((r) => r.s3Requests);
      containerStormResults.push({
        label: CONTAINER_STORM_LABEL,
        n,
        repeats: STORM_REPEATS,
        worstRenewals,
        medianP50Ms: round(p50, 2),
        medianP99Ms: round(p99, 2),
        medianS3Requests: median(s3Requests),
        runs: runs.map((r) => ({ ...r, p50: round(r.p50, 2), p99: round(r.p99, 2), max: round(r.max, 2) })),
      });
      row(
        CONTAINER_STORM_LABEL,
        `N=${n}: Kite renewals (worst of ${STORM_REPEATS})`,
        String(worstRenewals),
        `${GOAL.stormRenewals}`,
        worstRenewals === GOAL.stormRenewals,
      );
      row(
        CONTAINER_STORM_LABEL,
        `N=${n}: time to answer`,
        `p50 ${ms(p50)}, p99 ${ms(p99)} (median of runs); answers ${Object.entries(
          runs.at(-1)?.outcomes ?? {},
        )
          .map(([k, v]) => `${k}×${v}`)
          .join(' ')}, ${runs.at(-1)?.tokens ?? 0} token(s)`,
        n === 100 ? `p99 ≤ ${GOAL.stormP99Ms} ms` : '',
        n === 100 ? p99 <= GOAL.stormP99Ms : undefined,
      );
      row(
        CONTAINER_STORM_LABEL,
        `N=${n}: S3 requests per storm`,
        `median ${median(s3Requests)} (runs: ${s3Requests.join(', ')}; last: ${runs.at(-1)?.s3Detail ?? ''})`,
      );
    }

    // -- report --
    const durationS = (performance.now() - started) / 1000;
    printTable(durationS);
    const results = {
      meta: {
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        loadAverageBefore: loadBefore.map((x) => round(x, 2)),
        loadAverageAfter: loadavg().map((x) => round(x, 2)),
        durationS: round(durationS, 1),
        droppedWarnings: { [DROPPED_WARNING]: droppedWarnings },
      },
      build: {
        source: settings.source,
        options: settings.options,
        nodeOptions: settings.nodeOptions ?? null,
        functions: settings.functions,
        notes: settings.notes,
      },
      goals: GOAL,
      bundle: bundleResults,
      coldImport: coldResults,
      clientsLoaded: clientResults,
      warmTick: warm,
      refresh,
      storm: stormResults,
      stormSeparateContainers: containerStormResults,
      memory,
      table: rows,
      findings,
    };
    await writeFile(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`\nWrote ${relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE}\n`);
  } finally {
    await servers.close().catch(() => {});
    cleanup();
  }
}

function printTable(durationS: number): void {
  const head = { section: 'area', measure: 'measure', value: 'figure', goal: 'goal', verdict: '' };
  const ordered = rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => Number.parseInt(a.r.section, 10) - Number.parseInt(b.r.section, 10) || a.i - b.i)
    .map(({ r }) => r);
  const all = [head, ...ordered];
  const width = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const w = { section: width('section'), measure: width('measure'), goal: width('goal') };
  const lines = all.map(
    (r) =>
      `${r.section.padEnd(w.section)}  ${r.measure.padEnd(w.measure)}  ${(r.verdict === 'info' ? '' : r.verdict).padEnd(4)}  ${r.goal.padEnd(w.goal)}  ${r.value}`,
  );
  if (findings.length > 0) lines.push('', 'Where the time and bytes go:', ...findings.map((f) => `- ${f}`));
  const misses = rows.filter((r) => r.verdict === 'MISS').length;
  const passes = rows.filter((r) => r.verdict === 'PASS').length;
  process.stdout.write(
    `\n${lines[0]}\n${'-'.repeat(Math.min(160, (lines[0] ?? '').length + 40))}\n${lines.slice(1).join('\n')}\n\n` +
      `${passes} PASS, ${misses} MISS; ${round(durationS, 1)} s on ${cpus().length} cores, Node ${process.version}, ` +
      `load average ${loadavg()
        .map((x) => round(x, 2))
        .join(' ')}\n`,
  );
}

try {
  await main();
  process.exit(0);
} catch (e: unknown) {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
}
