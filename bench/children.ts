// Fresh Node processes that import a built handler (or nothing) and optionally invoke it: cold import times,
// what a real run loads, and peak memory. The runner is plain JavaScript passed with -e, so the child pays no
// TypeScript stripping and its own cost is the same for every target, including the "nothing" baseline.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const LOCAL_NODE = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));

/** The Node 24 children run on: the project's node_modules/.bin/node, else the bench's own binary. */
export const NODE = existsSync(LOCAL_NODE) ? LOCAL_NODE : process.execPath;

const MARK = '@@ktr-bench@@';

// Reads KTR_BENCH_SPEC: { file?, trace?, invocations?, event? }. With `trace`, a module hook records every
// file: URL loaded (the handler's own file and any chunk it pulls in later). Prints one JSON line after MARK.
const RUNNER = `
const spec = JSON.parse(process.env.KTR_BENCH_SPEC ?? '{}');
const loaded = [];
if (spec.trace) {
  const { registerHooks } = await import('node:module');
  registerHooks({ load(url, context, next) { if (url.startsWith('file:')) loaded.push(url); return next(url, context); } });
}
const started = performance.now();
const mod = spec.file ? await import(spec.file) : undefined;
const importMs = performance.now() - started;
const atImport = process.getActiveResourcesInfo();
const ticks = [];
const statuses = [];
let error;
try {
  for (let i = 0; i < (spec.invocations ?? 0); i++) {
    const name = 'bench-function';
    const context = {
      functionName: name, functionVersion: '$LATEST', memoryLimitInMB: '256',
      invokedFunctionArn: 'arn:aws:lambda:ap-south-1:000000000000:function:' + name,
      awsRequestId: 'bench-' + i, logGroupName: '/aws/lambda/' + name, logStreamName: 'bench',
      callbackWaitsForEmptyEventLoop: true, getRemainingTimeInMillis: () => 60000,
      done() {}, fail() {}, succeed() {},
    };
    const t = performance.now();
    const out = await mod.handler(structuredClone(spec.event ?? {}), context);
    ticks.push(performance.now() - t);
    statuses.push(out?.status ?? out?.statusCode ?? null);
  }
} catch (e) {
  error = e instanceof Error ? e.name + ': ' + e.message : String(e);
}
const result = {
  importMs, loaded, atImport, ticks, statuses, error,
  evaluated: globalThis.__ktrEvaluated ?? [],
  maxRssKiB: process.resourceUsage().maxRSS,
  cpuMs: (({ user, system }) => (user + system) / 1000)(process.cpuUsage()),
};
process.stdout.write('\\n${MARK}' + JSON.stringify(result) + '\\n', () => process.exit(0));
`;

export interface RunSpec {
  /** Absolute path of the module to import; none for the baseline. */
  file?: string;
  trace?: boolean;
  invocations?: number;
  event?: unknown;
}

export interface RunResult {
  /** Wall time of the whole child process, spawn to exit, in ms. */
  wallMs: number;
  /** Time of `await import(file)` inside the child, in ms. */
  importMs: number;
  loaded: string[];
  /** Active handles and requests right after the import (I/O started at import time shows here). */
  atImport: string[];
  ticks: number[];
  statuses: unknown[];
  error?: string;
  evaluated: string[];
  maxRssKiB: number;
  /** CPU time of the child (user + system) up to the result, in ms. */
  cpuMs: number;
}

function childArgs(spec: RunSpec, env: NodeJS.ProcessEnv, nodeArgs: string[]) {
  const childSpec = { ...spec, ...(spec.file ? { file: pathToFileURL(spec.file).href } : {}) };
  return {
    args: [...nodeArgs, '--input-type=module', '-e', RUNNER],
    env: { ...env, KTR_BENCH_SPEC: JSON.stringify(childSpec) },
  };
}

/** The runner's result line from a finished child, or an error with the end of its stderr. */
function resultOf(
  spec: RunSpec,
  wallMs: number,
  out: {
    status: number | null;
    signal: string | null;
    error?: Error | undefined;
    stdout: string;
    stderr: string;
  },
): RunResult {
  const line = out.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith(MARK));
  if (out.status !== 0 || !line) {
    throw new Error(
      `child run of ${spec.file ?? '(nothing)'} failed (${out.error?.message ?? out.signal ?? `exit ${out.status}`})\n` +
        out.stderr.slice(-4000),
    );
  }
  return { wallMs, ...(JSON.parse(line.slice(MARK.length)) as Omit<RunResult, 'wallMs'>) };
}

/** Runs the runner in a fresh Node 24 process (NODE), with `nodeArgs` before the script. */
export function runChild(spec: RunSpec, env: NodeJS.ProcessEnv, nodeArgs: string[] = []): RunResult {
  const child = childArgs(spec, env, nodeArgs);
  const started = process.hrtime.bigint();
  const out = spawnSync(NODE, child.args, {
    env: child.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  return resultOf(spec, wallMs, {
    status: out.status,
    signal: out.signal,
    error: out.error,
    stdout: out.stdout ?? '',
    stderr: out.stderr ?? '',
  });
}

/**
 * runChild without blocking this process: for a child that talks to servers running in this process (section 8's
 * S3 emulator and Kite sandboxes), which a synchronous spawn would keep from ever answering.
 */
export function runChildAsync(
  spec: RunSpec,
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
): Promise<RunResult> {
  const child = childArgs(spec, env, nodeArgs);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const proc = spawn(NODE, child.args, {
      env: child.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    proc.on('error', reject);
    proc.on('close', (status, signal) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      try {
        resolve(resultOf(spec, wallMs, { status, signal, stdout, stderr }));
      } catch (e: unknown) {
        reject(e);
      }
    });
  });
}

/** Wall time of a bare `node -e ''`. */
export function runBare(env: NodeJS.ProcessEnv): number {
  const started = process.hrtime.bigint();
  const out = spawnSync(NODE, ['-e', ''], { env, stdio: 'ignore', timeout: 60_000 });
  if (out.status !== 0) throw new Error(`node -e '' failed (${out.signal ?? `exit ${out.status}`})`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}
