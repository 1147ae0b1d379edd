// The cold start a user waits for: a fresh Node process imports a built handler and answers its first invocation
// against the loopback servers, next to a bundle of the bare AWS SDK clients doing the same work (the floor).
// Pairs alternate handler and floor so that a busy machine slows both alike; the headline is the ratio of medians.
import { join } from 'node:path';
import type { DeploySettings } from './build.ts';
import { buildSource } from './build.ts';
import { runChild } from './children.ts';
import { childEnv, handlerEnv } from './env.ts';
import { findings, row } from './report.ts';
import { awsCalls } from './server-control.ts';
import { type Bench, buildOf } from './setup.ts';
import type { Counts } from './shared.ts';
import { median, ms, percentile, progress, round } from './stats.ts';

export const COLD_START_GOAL = 1.1;
const PAIRS = 15;
const SECTION = '2 cold start';

export type FunctionKind = 'scheduled' | 'on-demand' | 'login';

export function kindOf(entry: string): FunctionKind {
  if (entry.includes('scheduled')) return 'scheduled';
  if (entry.includes('login')) return 'login';
  return 'on-demand';
}

/** A well-formed request token and a state no key signed: the callback answers 403 without calling Kite. */
const BAD_STATE_QUERY = `status=success&action=login&request_token=${'a'.repeat(32)}&state=not-a-signed-state`;

/** The first invocation each function gets: representative, and cheap enough to repeat. */
export const FIRST_INVOCATION: Record<FunctionKind, { event: unknown; expect: unknown; work: string }> = {
  // The hourly tick on the warm path: the stored token is not due, one read.
  scheduled: {
    event: { source: 'aws.events', 'detail-type': 'Scheduled Event' },
    expect: 'fresh',
    work: 'a tick that finds the token not due (app secret read, 1 GetObject)',
  },
  // A caller whose rejected token is not the stored one gets the stored one back: one read.
  'on-demand': {
    event: { failedAccessToken: 'not-the-stored-token', status: 403 },
    expect: 'already_fresh',
    work: 'a payload whose token is not the stored one → already_fresh (app secret read, 1 GetObject)',
  },
  // A redirect with a forged state: the page says no before anything is read or sent to Kite.
  login: {
    event: {
      rawPath: '/',
      rawQueryString: BAD_STATE_QUERY,
      requestContext: { http: { method: 'GET' } },
      headers: {},
    },
    expect: 403,
    work: 'a redirect with a bad state → 403 page (app secret read)',
  },
};

const READ_APP_SECRET = [
  "import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';",
  'const sm = new SecretsManagerClient({});',
  'let appSecret;',
  'const readAppSecret = async () =>',
  '  (appSecret ??= JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: process.env.KITE_API_SECRET_ID }))).SecretString).api_secret);',
];

const READ_CONFIG = [
  "import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';",
  'const s3 = new S3Client({ forcePathStyle: true });',
  'async function readConfig() {',
  "  const [bucket, ...key] = process.env.BROKER_CONFIG_URI.slice('s3://'.length).split('/');",
  "  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key.join('/') }));",
  '  return JSON.parse(await out.Body.transformToString());',
  '}',
];

/** The floor: the same first invocation written against the bare SDK clients, nothing else. */
export const FLOOR_SOURCE: Record<FunctionKind, string> = {
  scheduled: [
    ...READ_APP_SECRET,
    ...READ_CONFIG,
    'export async function handler() {',
    '  await readAppSecret();',
    '  const config = await readConfig();',
    '  const left = Date.parse(config.access_token_expires_at) - Date.now();',
    "  return { status: left < 2 * 3600_000 ? 'due' : 'fresh' };",
    '}',
  ].join('\n'),
  'on-demand': [
    ...READ_APP_SECRET,
    ...READ_CONFIG,
    'export async function handler(event) {',
    '  await readAppSecret();',
    '  const config = await readConfig();',
    "  return config.api_secret === event.failedAccessToken ? { status: 'stale' } : { status: 'already_fresh', accessToken: config.api_secret };",
    '}',
  ].join('\n'),
  login: [
    "import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';",
    ...READ_APP_SECRET,
    'export async function handler(event) {',
    "  const key = Buffer.from(hkdfSync('sha256', await readAppSecret(), Buffer.alloc(0), 'login-state', 32));",
    "  const state = new URLSearchParams(event.rawQueryString).get('state') ?? '';",
    "  const [payload = '', mac = ''] = state.split('.');",
    "  const want = createHmac('sha256', key).update(payload).digest();",
    "  const got = Buffer.from(mac, 'base64url');",
    '  const ok = got.length === want.length && timingSafeEqual(got, want);',
    "  return { statusCode: ok ? 200 : 403, headers: { 'content-type': 'text/html' }, body: '<p>Login failed</p>' };",
    '}',
  ].join('\n'),
};

/** Builds the floor handler of a function with the deployment's esbuild options. */
export async function buildColdStartFloor(
  projectDir: string,
  settings: DeploySettings,
  kind: FunctionKind,
  dir: string,
): Promise<string> {
  const file = join(dir, `cold-start-floor-${kind}${settings.outputExtension}`);
  await buildSource(projectDir, settings, FLOOR_SOURCE[kind], file);
  return file;
}

/** One side of the pairs: per run, in ms. */
export interface ColdStartSide {
  /** Wall time of the whole process, spawn to exit. */
  wallMs: number[];
  /** Inside the child: the import, then the first invocation. */
  importMs: number[];
  firstMs: number[];
  /** CPU time of the child (user + system). */
  cpuMs: number[];
  status: unknown;
}

export interface ColdStartRun {
  file: string;
  env: NodeJS.ProcessEnv;
}

const emptySide = (): ColdStartSide => ({
  wallMs: [],
  importMs: [],
  firstMs: [],
  cpuMs: [],
  status: undefined,
});

/** `pairs` alternating runs (which goes first alternates too), after one unmeasured pair. */
export function measurePairs(
  kind: FunctionKind,
  handler: ColdStartRun,
  floor: ColdStartRun,
  pairs: number,
): { handler: ColdStartSide; floor: ColdStartSide } {
  const sides = { handler: emptySide(), floor: emptySide() };
  const event = FIRST_INVOCATION[kind].event;
  const once = (which: 'handler' | 'floor', measured: boolean) => {
    const target = which === 'handler' ? handler : floor;
    const run = runChild({ file: target.file, invocations: 1, event }, target.env);
    if (run.error) throw new Error(`cold start of ${target.file}: ${run.error}`);
    const side = sides[which];
    side.status = run.statuses[0];
    if (!measured) return;
    side.wallMs.push(run.wallMs);
    side.importMs.push(run.importMs);
    side.firstMs.push(run.ticks[0] ?? Number.NaN);
    side.cpuMs.push(run.cpuMs);
  };
  for (let i = -1; i < pairs; i++) {
    const order = i % 2 === 0 ? (['handler', 'floor'] as const) : (['floor', 'handler'] as const);
    for (const which of order) once(which, i >= 0);
  }
  return sides;
}

/** Medians and the ratio, for the table and bench-results.json. */
export function summarizePairs(p: { handler: ColdStartSide; floor: ColdStartSide }) {
  const handlerMs = median(p.handler.wallMs);
  const floorMs = median(p.floor.wallMs);
  const side = (s: ColdStartSide) => ({
    medianMs: round(median(s.wallMs), 2),
    p90Ms: round(percentile(s.wallMs, 90), 2),
    importMedianMs: round(median(s.importMs), 2),
    firstInvocationMedianMs: round(median(s.firstMs), 2),
    cpuMedianMs: round(median(s.cpuMs), 2),
    status: s.status,
  });
  return {
    pairs: p.handler.wallMs.length,
    ratio: round(handlerMs / floorMs, 3),
    cpuRatio: round(median(p.handler.cpuMs) / median(p.floor.cpuMs), 3),
    handler: side(p.handler),
    floor: side(p.floor),
  };
}

/**
 * The handlers' environment as deployed, with the document in S3: logs at Powertools' default level and metrics
 * printed as EMF, both to a pipe, as Lambda sends them to CloudWatch.
 */
function deployedEnv(bench: Bench): Record<string, string | undefined> {
  return {
    ...handlerEnv(bench.workDir, bench.endpoints, 's3'),
    POWERTOOLS_LOG_LEVEL: 'INFO',
    POWERTOOLS_METRICS_DISABLED: undefined,
  };
}

/** The AWS requests one cold handler process makes on its first invocation. */
async function requestsOfOneRun(bench: Bench, file: string, kind: FunctionKind, env: NodeJS.ProcessEnv) {
  await bench.servers.call({ op: 'reset' });
  runChild({ file, invocations: 1, event: FIRST_INVOCATION[kind].event }, env);
  return awsCalls(await bench.servers.call<Counts>({ op: 'counts' })).detail;
}

/**
 * The headline cold start, per function: the built handler with the deployment's NODE_OPTIONS against the floor
 * without any (the least a deployment of the bare SDK would run with), PAIRS alternating pairs, medians.
 */
export async function coldStartSection(bench: Bench): Promise<Record<string, unknown>> {
  progress(
    `cold starts: ${PAIRS} alternating pairs of fresh processes per function, first invocation answered`,
  );
  await bench.servers.call({ op: 'seed', expired: false, stores: ['s3'] });
  const env = deployedEnv(bench);
  const results: Record<string, unknown> = {
    pairs: PAIRS,
    goal: COLD_START_GOAL,
    nodeOptions: bench.settings.nodeOptions ?? '',
  };
  for (const fn of bench.settings.functions) {
    const kind = kindOf(fn.entry);
    const handler = { file: buildOf(bench, fn).entryFile, env: childEnv(env, bench.settings.nodeOptions) };
    const floor = {
      file: await buildColdStartFloor(
        bench.projectDir,
        bench.settings,
        kind,
        join(bench.workDir, 'cold-start'),
      ),
      env: childEnv(env),
    };
    const requests = await requestsOfOneRun(bench, handler.file, kind, handler.env);
    const s = summarizePairs(measurePairs(kind, handler, floor, PAIRS));
    results[fn.name] = { work: FIRST_INVOCATION[kind].work, requests, ...s };
    const { handler: h, floor: f } = s;
    const pass = s.ratio <= COLD_START_GOAL && h.status === FIRST_INVOCATION[kind].expect;
    row(
      SECTION,
      `${fn.name}: import + first invocation (s3)`,
      `${ms(h.medianMs)} vs bare SDK ${ms(f.medianMs)}: ratio ${round(s.ratio, 2)} ` +
        `(CPU ${round(s.cpuRatio, 2)}; answered ${String(h.status)}; ${requests})`,
      `ratio ≤ ${COLD_START_GOAL}`,
      pass,
    );
    if (!pass) {
      findings.push(
        `cold start ${fn.name} (${FIRST_INVOCATION[kind].work}): median wall ${ms(h.medianMs)} vs ` +
          `${ms(f.medianMs)}; in the child: import ${ms(h.importMedianMs)} then first invocation ` +
          `${ms(h.firstInvocationMedianMs)}, against ${ms(f.importMedianMs)} then ${ms(f.firstInvocationMedianMs)}; ` +
          `CPU ${ms(h.cpuMedianMs)} vs ${ms(f.cpuMedianMs)}; answered ${String(h.status)} (floor ${String(f.status)})`,
      );
    }
  }
  return results;
}
