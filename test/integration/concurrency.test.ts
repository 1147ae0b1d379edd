import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RefreshDeps, refreshToken } from '../../lib/engine/refresh-engine.ts';
import { KiteClient } from '../../lib/kite/client.ts';
import type { ConfigStore } from '../../lib/store/config-store.ts';
import { FileStore } from '../../lib/store/file-store.ts';
import { cleanEnv } from '../../testing/clean-env.ts';
import {
  API_KEY,
  captureLog,
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
} from '../support/fixtures.ts';
import {
  type CloudStores,
  endpointEnv,
  locationOf,
  type StoreKind,
  seedCloud,
  startCloud,
  storeOn,
} from '../support/stores.ts';

let cloud: CloudStores;
let fx: SandboxFixture;
let workerBundle: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  cloud = await startCloud();
  // One bundle for all worker processes: twenty processes each loading the SDK from TypeScript sources would
  // spend their time compiling, not racing.
  workerBundle = join(await mkdtemp(join(tmpdir(), 'refresh-worker-')), 'worker.mjs');
  await build({
    entryPoints: ['test/support/refresh-worker.ts'],
    outfile: workerBundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
});

afterAll(async () => {
  await cloud.close();
  await rm(dirname(workerBundle), { recursive: true, force: true });
});

beforeEach(async () => {
  fx = await startSandbox();
  // Enough Kite latency that every refresher is in flight while the first one renews.
  fx.sandbox.setLatency(50);
});

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  cloud.s3.clearFaults();
  cloud.sm.clearFaults();
  await fx.sandbox.close();
});

const renewals = () => fx.sandbox.calls['POST /session/refresh_token'] ?? 0;
const hash = (token: string) => createHash('sha256').update(token).digest('hex');

function ownKite(): KiteClient {
  return new KiteClient({
    apiKey: API_KEY,
    apiSecret: fx.appSecret,
    baseUrl: fx.sandbox.url,
    retry: { baseDelayMs: 2 },
  });
}

function deps(store: ConfigStore, overrides: Partial<RefreshDeps> = {}): RefreshDeps {
  const kite = ownKite();
  return { store, kite: () => kite, log: captureLog(), pollMs: 20, ...overrides };
}

/** Runs the refresh worker in a child process; resolves with its exit code and its one JSON line. */
function worker(env: Record<string, string>): {
  done: Promise<{ code: number | null; out: string; err: string }>;
  kill(): void;
  pid: number | undefined;
} {
  const child = spawn(process.execPath, [workerBundle], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, out, err });
    }),
  );
  return { done, kill: () => child.kill('SIGKILL'), pid: child.pid };
}

describe.each<StoreKind>(['s3', 'secretsmanager'])('twenty refreshers on %s', (kind) => {
  it('make exactly one renewal and all end with the token that is stored', async () => {
    seedCloud(cloud, kind, seedConfig(fx.sandbox, 'expired'));

    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => refreshToken(deps(storeOn(cloud, kind)))),
    );

    expect(renewals()).toBe(1);
    const stored = (await storeOn(cloud, kind).read()).config;
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    expect(stored.refresh_lease).toBeUndefined();
    expect(outcomes.filter((o) => o.status === 'refreshed')).toHaveLength(1);
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ accessToken: stored.api_secret });
    }
  });

  it('survive a final write that fails three times, then succeeds', async () => {
    seedCloud(cloud, kind, seedConfig(fx.sandbox, 'expired'));
    const store = storeOn(cloud, kind, { maxAttempts: 1 });
    // Faults start once Kite has answered, so they hit the final write, not the lease.
    const kite = new KiteClient({
      apiKey: API_KEY,
      apiSecret: fx.appSecret,
      baseUrl: fx.sandbox.url,
      onCall: () =>
        kind === 's3'
          ? cloud.s3.injectFault({ method: 'PUT', times: 3, status: 503, code: 'SlowDown' })
          : cloud.sm.injectFault({
              operation: 'PutSecretValue',
              times: 3,
              status: 400,
              type: 'ThrottlingException',
            }),
    });

    const outcome = await refreshToken({ ...deps(store), kite: () => kite, writeRetry: { baseDelayMs: 5 } });

    expect(outcome.status).toBe('refreshed');
    const stored = (await store.read()).config;
    expect(stored.api_secret).toBe('accessToken' in outcome ? outcome.accessToken : '');
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
  });

  it('keep the tokens and fail loudly when the final write always fails, then store them on the next run', async () => {
    const seeded = seedConfig(fx.sandbox, 'expired');
    seedCloud(cloud, kind, seeded);
    const store = storeOn(cloud, kind, { maxAttempts: 1 });
    const log = captureLog();
    const kite = new KiteClient({
      apiKey: API_KEY,
      apiSecret: fx.appSecret,
      baseUrl: fx.sandbox.url,
      onCall: () =>
        kind === 's3'
          ? cloud.s3.injectFault({ method: 'PUT', times: 1000, status: 500, code: 'InternalError' })
          : cloud.sm.injectFault({
              operation: 'PutSecretValue',
              times: 1000,
              status: 500,
              type: 'InternalServiceError',
            }),
    });
    const rescueDir = await import('node:fs/promises').then((fs) => fs.mkdtemp('/tmp/kite-rescue-'));

    const error = await refreshToken({
      ...deps(store),
      kite: () => kite,
      log,
      rescueDir,
      leaseTtlMs: 200,
      writeRetry: { attempts: 3, baseDelayMs: 5 },
    }).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'TokenNotStoredError' });
    expect(log.lines.at(-1)?.message).toBe('❌ Token refresh failed');
    expect(leakedTokens(fx.sandbox, `${String(error)} ${log.text()}`)).toEqual([]);
    expect((await store.read()).config.api_secret).toBe(seeded.api_secret);

    cloud.s3.clearFaults();
    cloud.sm.clearFaults();
    await new Promise((r) => setTimeout(r, 250)); // the dead run's lease lapses
    const next = await refreshToken({ ...deps(storeOn(cloud, kind)), rescueDir });

    expect(next).toMatchObject({ status: 'refreshed', kiteCalls: 0 });
    expect(renewals()).toBe(1);
    const stored = (await store.read()).config;
    expect(stored.api_secret).not.toBe(seeded.api_secret);
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
  });
});

describe('refreshers in separate processes', () => {
  it('make exactly one renewal between twenty processes on S3', async () => {
    seedCloud(cloud, 's3', seedConfig(fx.sandbox, 'expired'));
    const env = {
      ...endpointEnv(cloud),
      BROKER_CONFIG_URI: locationOf('s3'),
      KITE_API_SECRET: fx.appSecret,
      START_AT: String(Date.now() + 3_000),
    };

    const results = await Promise.all(Array.from({ length: 20 }, () => worker(env).done));

    const lines = results.map((r) => JSON.parse(r.out.trim()) as { status: string; token: string });
    expect(results.map((r) => r.code)).toEqual(Array(20).fill(0));
    expect(renewals()).toBe(1);
    const stored = (await storeOn(cloud, 's3').read()).config.api_secret;
    expect(new Set(lines.map((l) => l.token))).toEqual(new Set([hash(stored)]));
    expect(lines.filter((l) => l.status === 'refreshed')).toHaveLength(1);
    expect(leakedTokens(fx.sandbox, results.map((r) => r.out + r.err).join('\n'))).toEqual([]);
  }, 90_000);

  it('keeps the renewed tokens when the process is killed right after Kite’s answer arrives', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'killed-after-answer-'));
    const path = join(dir, 'broker-config.json');
    await writeFile(path, `${JSON.stringify(seedConfig(fx.sandbox, 'expired'), null, 2)}\n`, { mode: 0o600 });
    const env = {
      BROKER_CONFIG_URI: path,
      KITE_API_SECRET: fx.appSecret,
      RESCUE_DIR: dir,
      KILL_AFTER_KITE_ANSWER: '1',
    };

    const killed = await worker(env).done;

    expect(killed.code).toBeNull();
    expect(renewals()).toBe(1);
    const store = new FileStore({ path });
    const next = await refreshToken({ ...deps(store), rescueDir: dir });
    expect(next).toMatchObject({ status: 'refreshed', kiteCalls: 0 });
    expect(renewals()).toBe(1);
    const stored = (await store.read()).config;
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    expect(stored.refresh_lease).toBeUndefined();
  }, 90_000);

  it('lets a later refresher finish when the lease holder is killed mid-renewal', async () => {
    seedCloud(cloud, 'secretsmanager', seedConfig(fx.sandbox, 'expired'));
    const env = {
      ...endpointEnv(cloud),
      BROKER_CONFIG_URI: locationOf('secretsmanager'),
      KITE_API_SECRET: fx.appSecret,
      LEASE_TTL_MS: '1500',
    };
    fx.sandbox.hang('POST /session/refresh_token', 1);

    const holder = worker(env);
    const store = storeOn(cloud, 'secretsmanager');
    const deadline = Date.now() + 30_000;
    while (!(fx.sandbox.calls['POST /session/refresh_token'] ?? 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await store.read()).config.refresh_lease).toBeDefined();
    holder.kill();
    expect((await holder.done).code).not.toBe(0);

    const later = await worker(env).done;

    expect(later.code).toBe(0);
    expect(JSON.parse(later.out).status).toBe('refreshed');
    const stored = (await store.read()).config;
    expect(stored.refresh_lease).toBeUndefined();
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
  }, 90_000);
});
