// Section 8, many accounts: a tick over M = 1, 10, 100 accounts (fresh, then expired, then warm in market hours,
// asking Kite about every token) and on-demand calls over 10
// accounts right after a flush, run with the accounts code in this process against its own S3 emulator (10 ms a
// request) and Kite sandboxes (100 ms a renewal), one per account, so each account has its own key. Memory at
// M = 100 is a child process of its own running one tick of the built scheduled handler against the same servers.
import { createAccountRegistry } from '../lib/accounts/registry.ts';
import { NO_METRICS, tickAccounts } from '../lib/accounts/tick.ts';
import { toIsoIst } from '../lib/engine/expiry.ts';
import { parseTradingCalendar } from '../lib/engine/trading-calendar.ts';
import { answerOnDemand } from '../lib/lambda/on-demand.ts';
import { silentLog } from '../lib/shared/log.ts';
import { cleanProcessEnv } from '../testing/clean-env.ts';
import { type KiteSandbox, startKiteSandbox } from '../testing/kite-sandbox.ts';
import { type S3Emulator, startS3Emulator } from '../testing/s3-server.ts';
import {
  type SecretsManagerEmulator,
  startSecretsManagerEmulator,
} from '../testing/secrets-manager-server.ts';
import { runChildAsync } from './children.ts';
import { childEnv, handlerEnv } from './env.ts';
import { row } from './report.ts';
import { type Bench, SCHEDULED_EVENT } from './setup.ts';
import { ms, percentile, progress, round } from './stats.ts';

const BUCKET = 'bench-accounts';
const APP_SECRET = 'bench-accounts-app-secret';
const APP_SECRET_ID = 'bench-accounts/kite-app';
/** The S3 prefix whose documents the memory child's tick serves. */
const MEMORY_PREFIX = 'memory/';
const MEMORY_ACCOUNTS = 100;
const CONCURRENCY = 4;
const S3_LATENCY_MS = 10;
const KITE_LATENCY_MS = 100;
interface World {
  s3: S3Emulator;
  sm: SecretsManagerEmulator;
  kites: KiteSandbox[];
}

/** Stores M documents under `folder`, account i on sandbox i; returns their locations. */
function seedDocuments(world: World, folder: string, m: number, expired: boolean): string[] {
  const uris: string[] = [];
  for (let i = 0; i < m; i++) {
    const kite = world.kites[i] as KiteSandbox;
    const session = kite.mintSession({ expired });
    const key = `${folder}a${String(i).padStart(3, '0')}.json`;
    const config = {
      type: 'kite',
      api_key: kite.apiKey,
      api_secret: session.accessToken,
      refresh_token: session.refreshToken,
      base_url: kite.url,
      access_token_expires_at: toIsoIst(session.expiresAt),
    };
    world.s3.putObjectRaw(BUCKET, key, JSON.stringify(config));
    uris.push(`s3://${BUCKET}/${key}`);
  }
  for (const kite of world.kites) kite.resetCalls();
  world.s3.resetRequests();
  return uris;
}

/** M documents, named one by one as BROKER_CONFIG_URI would (one document alone, or a list). */
function seed(world: World, m: number, expired: boolean): string {
  const uris = seedDocuments(world, `m${m}/`, m, expired);
  return m === 1 ? (uris[0] as string) : uris.join(',');
}

/** 11:01 IST on a Tuesday: a warm tick in market hours asks Kite about each token (the clock is pinned for that). */
const MARKET_HOURS = new Date('2026-03-03T11:01:00+05:30');
const WEEKDAYS_ONLY = parseTradingCalendar(undefined, undefined);

const profileCalls = (world: World) =>
  world.kites.reduce((n, k) => n + (k.calls['GET /user/profile'] ?? 0), 0);
const writes = (world: World) => world.s3.requests.filter((r) => r.method === 'PUT').length;
const renewals = (world: World) =>
  world.kites.reduce((n, k) => n + (k.calls['POST /session/refresh_token'] ?? 0), 0);
const reads = (world: World) => world.s3.requests.filter((r) => r.method === 'GET').length;

function registry(uri: string) {
  return createAccountRegistry({ uri, appSecret: APP_SECRET, log: silentLog });
}

/**
 * Market hours: a first tick writes each account's first verdict; the measured second tick is the warm one, which
 * costs per account one read and one Kite GET and writes nothing.
 */
async function marketHoursTick(world: World, m: number) {
  const accounts = registry(seed(world, m, false));
  const tick = () =>
    tickAccounts({
      accounts,
      log: silentLog,
      metrics: NO_METRICS,
      concurrency: CONCURRENCY,
      now: () => MARKET_HOURS,
      verification: { calendar: WEEKDAYS_ONLY, readyCheckIst: '09:01' },
    });
  await tick();
  for (const kite of world.kites) kite.resetCalls();
  world.s3.resetRequests();
  const started = performance.now();
  await tick();
  const wallMs = performance.now() - started;
  return { m, wallMs, reads: reads(world), kiteCalls: profileCalls(world), writes: writes(world) };
}

async function tickOnce(world: World, m: number, expired: boolean) {
  const accounts = registry(seed(world, m, expired));
  let peakHeap = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }, 5);
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  await tickAccounts({ accounts, log: silentLog, metrics: NO_METRICS, concurrency: CONCURRENCY });
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  return {
    m,
    wallMs,
    reads: reads(world),
    renewals: renewals(world),
    /** This process's heap, emulators and sandboxes included: a detail for bench-results.json only. */
    heapGrowthKiB: (peakHeap - heapBefore) / 1024,
  };
}

/**
 * Peak memory of the function itself at M = 100: a child process runs one tick of the built scheduled handler over
 * an S3 prefix holding 100 expired documents (each renews), with the deployment's environment pointed at this
 * section's servers (the app secret from Secrets Manager), next to a child that imports nothing. Only the handler
 * runs in the child; the servers stay in this process, which is why the child is spawned without blocking it.
 */
async function memoryTick(bench: Bench, world: World) {
  const b = bench.scheduled;
  if (!b) return undefined;
  seedDocuments(world, MEMORY_PREFIX, MEMORY_ACCOUNTS, true);
  const env = childEnv(
    {
      ...handlerEnv(bench.workDir, bench.endpoints, 's3'),
      AWS_ENDPOINT_URL_S3: world.s3.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: world.sm.endpoint,
      BROKER_CONFIG_URI: `s3://${BUCKET}/${MEMORY_PREFIX}`,
      KITE_API_SECRET_ID: APP_SECRET_ID,
      ACCOUNT_CONCURRENCY: String(CONCURRENCY),
    },
    bench.settings.nodeOptions,
  );
  const run = await runChildAsync({ file: b.entryFile, invocations: 1, event: SCHEDULED_EVENT }, env);
  const served = { renewals: renewals(world), reads: reads(world) };
  const nothing = await runChildAsync({}, env);
  return {
    accounts: MEMORY_ACCOUNTS,
    maxRssKiB: run.maxRssKiB,
    nothingMaxRssKiB: nothing.maxRssKiB,
    memorySizeMb: bench.settings.memorySizeMb ?? 128,
    tickMs: run.ticks[0],
    status: run.statuses[0],
    error: run.error,
    ...served,
  };
}

/** One read and one renewal on their own, the units the goals are stated in. */
async function units(world: World) {
  await tickOnce(world, 1, true); // warm-up: modules, the S3 client, connections
  const one = await tickOnce(world, 1, false);
  const renewal = await tickOnce(world, 1, true);
  return { readMs: one.wallMs, renewalMs: renewal.wallMs };
}

async function onDemandStorm(world: World) {
  const accounts = registry(seed(world, 10, false));
  const all = await accounts.all();
  const flushed = await Promise.all(all.map(async (a) => (await a.refresher.store.read()).config.api_secret));
  for (const kite of world.kites.slice(0, 10)) kite.flushAll();
  // After the flush every stored token is dead: mark them expired so each account is due.
  await Promise.all(
    all.map(async (a) => {
      const { config, version } = await a.refresher.store.read();
      await a.refresher.store.write(
        { ...config, access_token_expires_at: toIsoIst(new Date(Date.now() - 1)) },
        version,
      );
    }),
  );
  for (const kite of world.kites) kite.resetCalls();
  const times: number[] = [];
  await Promise.all(
    Array.from({ length: 100 }, async (_, i) => {
      const started = performance.now();
      const account = (await accounts.findByAccessToken(flushed[i % 10] as string)) ?? all[i % 10];
      if (!account) throw new Error('bench: no account');
      await answerOnDemand(account.refresher, { failedAccessToken: flushed[i % 10] as string, status: 403 });
      times.push(performance.now() - started);
    }),
  );
  return {
    calls: 100,
    accounts: 10,
    renewals: renewals(world),
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
  };
}

export async function accountsSection(bench: Bench): Promise<Record<string, unknown>> {
  progress(
    'many accounts: ticks over 1, 10, 100 accounts, an on-demand storm over 10, memory at 100 (child)',
  );
  const s3 = await startS3Emulator({ buckets: [BUCKET] });
  const sm = await startSecretsManagerEmulator();
  sm.createSecret(APP_SECRET_ID, JSON.stringify({ api_secret: APP_SECRET }));
  const kites = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      startKiteSandbox({ apiKey: `benchkey${i}`, apiSecret: APP_SECRET }),
    ),
  );
  cleanProcessEnv({
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_REGION: 'ap-south-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
  });
  s3.setLatency(S3_LATENCY_MS);
  for (const kite of kites) kite.setLatency(KITE_LATENCY_MS);
  const world = { s3, sm, kites };
  try {
    const unit = await units(world);
    const fresh = [];
    const expired = [];
    for (const m of [1, 10, 100]) fresh.push(await tickOnce(world, m, false));
    for (const m of [1, 10, 100]) expired.push(await tickOnce(world, m, true));
    const market = [];
    for (const m of [1, 10, 100]) market.push(await marketHoursTick(world, m));
    const storm = await onDemandStorm(world);
    const memory = await memoryTick(bench, world);
    report(unit, fresh, expired, storm, memory);
    reportMarketHours(unit, market);
    return {
      concurrency: CONCURRENCY,
      s3LatencyMs: S3_LATENCY_MS,
      kiteLatencyMs: KITE_LATENCY_MS,
      unit,
      fresh,
      expired,
      marketHours: market,
      storm,
      memory,
    };
  } finally {
    await Promise.all([s3.close(), sm.close(), ...kites.map((k) => k.close())]);
  }
}

type Tick = Awaited<ReturnType<typeof tickOnce>>;

function report(
  unit: { readMs: number; renewalMs: number },
  fresh: Tick[],
  expired: Tick[],
  storm: Awaited<ReturnType<typeof onDemandStorm>>,
  memory: Awaited<ReturnType<typeof memoryTick>>,
): void {
  for (const t of fresh) {
    const bound = Math.ceil(t.m / CONCURRENCY) * unit.readMs * 1.5;
    row(
      '8 accounts',
      `tick, ${t.m} fresh account(s)`,
      `${ms(t.wallMs)}, ${t.reads} reads, ${t.renewals} Kite calls`,
      `${t.m} reads, 0 Kite, ≤ ${ms(bound)}`,
      t.reads === t.m && t.renewals === 0 && t.wallMs <= bound,
    );
  }
  for (const t of expired) {
    const expected = Math.ceil(t.m / CONCURRENCY) * unit.renewalMs;
    row(
      '8 accounts',
      `tick, ${t.m} expired account(s)`,
      `${ms(t.wallMs)} (${round(t.wallMs / expected, 2)}× ceil(M/${CONCURRENCY}) × one renewal), ${t.renewals} renewals`,
      `${t.m} renewals, ≈ ${ms(expected)}`,
      t.renewals === t.m && t.wallMs <= expected * 1.5,
    );
  }
  if (memory) reportMemory(memory);
  row(
    '8 accounts',
    '100 on-demand calls over 10 accounts after a flush',
    `${storm.renewals} renewals, p50 ${ms(storm.p50Ms)}, p99 ${ms(storm.p99Ms)}`,
    '10 renewals',
    storm.renewals === 10,
  );
}

function reportMarketHours(unit: { readMs: number }, market: Awaited<ReturnType<typeof marketHoursTick>>[]) {
  for (const t of market) {
    // A read and a Kite GET per account, CONCURRENCY at a time.
    const bound = Math.ceil(t.m / CONCURRENCY) * (unit.readMs + KITE_LATENCY_MS) * 1.5;
    row(
      '8 accounts',
      `warm tick in market hours, ${t.m} account(s)`,
      `${ms(t.wallMs)}, ${t.reads} reads, ${t.kiteCalls} Kite calls, ${t.writes} writes`,
      `${t.m} reads, ${t.m} Kite GETs, 0 writes, ≤ ${ms(bound)}`,
      t.reads === t.m && t.kiteCalls === t.m && t.writes === 0 && t.wallMs <= bound,
    );
  }
}

function reportMemory(memory: NonNullable<Awaited<ReturnType<typeof memoryTick>>>): void {
  const served = memory.renewals === memory.accounts && memory.status === 'served' && !memory.error;
  const what = served
    ? `${memory.renewals} renewals in ${ms(memory.tickMs ?? Number.NaN)}`
    : `not served as expected (${memory.renewals} renewals, ${String(memory.error ?? memory.status)})`;
  row(
    '8 accounts',
    `tick, ${memory.accounts} expired accounts: memory (built, s3 prefix)`,
    `maxRSS ${round(memory.maxRssKiB / 1024, 1)} MiB, one tick in a child: ${what} ` +
      `(node importing nothing: ${round(memory.nothingMaxRssKiB / 1024, 1)} MiB)`,
    `≤ memorySize ${memory.memorySizeMb} MB`,
    served && memory.maxRssKiB <= memory.memorySizeMb * 1024,
  );
}
