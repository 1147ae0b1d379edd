// Faults around one renewal: the final write failing (when the store's rescue copy is written), and Kite's answer
// lost after Kite acted on it (what the user is told, and when a renewal is not tried again).
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { type RefreshDeps, refreshToken } from '../../lib/engine/refresh-engine.ts';
import { writeTokens } from '../../lib/engine/token-write.ts';
import { KiteClient } from '../../lib/kite/client.ts';
import { LoginRequiredError, StoreError } from '../../lib/shared/errors.ts';
import type { ConfigStore, KeptTokens } from '../../lib/store/config-store.ts';
import { FileStore } from '../../lib/store/file-store.ts';
import {
  captureLog,
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
  writeTempConfig,
} from '../support/fixtures.ts';

let fx: SandboxFixture;

beforeEach(async () => {
  fx = await startSandbox();
});

afterEach(async () => {
  await fx.sandbox.close();
});

const renewals = () => fx.sandbox.calls['POST /session/refresh_token'] ?? 0;

async function setup(config: BrokerConfig, overrides: Partial<RefreshDeps> = {}) {
  const path = await writeTempConfig(config);
  const store = new FileStore({ path });
  const log = captureLog();
  const rescueDir = await mkdtemp(join(tmpdir(), 'renewal-faults-'));
  const deps: RefreshDeps = { store, kite: () => fx.kite, log, pollMs: 5, rescueDir, ...overrides };
  return { path, store, log, deps };
}

/**
 * A store whose writes after the lease write fail `failures` times with a retryable StoreError; its rescue slot fails
 * `rescueFailures` times. `events` records what happened in order.
 */
function flakyStore(store: FileStore, failures: number, rescueFailures = 0) {
  const events: string[] = [];
  let writes = 0;
  let rescues = 0;
  const flaky: ConfigStore = {
    location: store.location,
    read: () => store.read(),
    write: async (doc, version) => {
      writes++;
      if (writes > 1 && writes <= failures + 1) {
        events.push('write failed');
        throw new StoreError('throttled', { retryable: true });
      }
      const v = await store.write(doc, version);
      events.push(writes === 1 ? 'lease' : 'write');
      return v;
    },
    saveRescue: async (t: KeptTokens) => {
      if (++rescues <= rescueFailures) {
        events.push('rescue failed');
        throw new StoreError('throttled', { retryable: true });
      }
      await store.saveRescue(t);
      events.push('rescue');
    },
    loadRescue: () => store.loadRescue(),
    clearRescue: async () => {
      await store.clearRescue();
      events.push('rescue cleared');
    },
  };
  return { flaky, events };
}

describe('the final write', () => {
  it('writes the store’s rescue copy at the first failed write, and removes it once the write lands', async () => {
    const { deps, store } = await setup(seedConfig(fx.sandbox, 'expired'));
    const { flaky, events } = flakyStore(store, 3);

    const outcome = await refreshToken({ ...deps, store: flaky, writeRetry: { baseDelayMs: 1 } });

    expect(outcome).toMatchObject({ status: 'refreshed', kiteCalls: 1 });
    expect(events).toEqual([
      'lease',
      'write failed',
      'rescue',
      'write failed',
      'write failed',
      'write',
      'rescue cleared',
    ]);
    expect(await store.loadRescue()).toBeNull();
  });

  it('clears the store’s rescue copy when a later attempt refuses the tokens, so no run stores them', async () => {
    const { store } = await setup(seedConfig(fx.sandbox, 'fresh', { user_id: 'XX0000' }));
    const { flaky, events } = flakyStore(store, 1);
    await flaky.write((await store.read()).config, (await store.read()).version); // the "lease" write
    const tokens: KeptTokens = {
      access_token: 'refusedaccesstoken0000000000000',
      user_id: 'ZZ9999',
      access_token_expires_at: '2099-01-01T06:00:00+05:30',
      issued_at: new Date().toISOString(),
    };
    let attempts = 0;
    const refusal = new Error('another account');

    const failure = writeTokens({
      store: flaky,
      start: await store.read(),
      tokens,
      apply: (base) => {
        if (++attempts > 1) throw refusal;
        return { ...base, api_secret: tokens.access_token };
      },
      superseded: () => false,
      retry: { baseDelayMs: 1 },
      rescueDir: await mkdtemp(join(tmpdir(), 'renewal-faults-')),
    });

    await expect(failure).rejects.toBe(refusal);
    expect(events).toEqual(['lease', 'write failed', 'rescue', 'rescue cleared']);
    expect(await store.loadRescue()).toBeNull();
  });

  it('tries the rescue copy again after each failed write until it lands', async () => {
    const { deps, store } = await setup(seedConfig(fx.sandbox, 'expired'));
    const { flaky, events } = flakyStore(store, 3, 1);

    await refreshToken({ ...deps, store: flaky, writeRetry: { baseDelayMs: 1 } });

    expect(events.slice(0, 5)).toEqual(['lease', 'write failed', 'rescue failed', 'write failed', 'rescue']);
  });
});

describe('a renewal whose answer was lost', () => {
  it('says an earlier attempt may have renewed at Kite, not that the refresh token was revoked, when the retry gets 403', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store, log } = await setup(config);
    fx.sandbox.dropNextResponse('POST /session/refresh_token', 1);

    const error = await refreshToken(deps).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(LoginRequiredError);
    const message = (error as Error).message;
    expect(message).toMatch(
      /earlier attempt in this run .* may have renewed the token at Kite without its answer arriving/,
    );
    expect(message).not.toMatch(/revoked|logout|password/);
    expect((await store.read()).config.api_secret).toBe(config.api_secret);
    expect(leakedTokens(fx.sandbox, `${message} ${log.text()}`)).toEqual([]);
  });

  it('records that Kite rotates the refresh token once a renewal returns a new one', async () => {
    const { deps, store } = await setup(seedConfig(fx.sandbox, 'expired'));

    await refreshToken(deps);

    expect((await store.read()).config.refresh_token_rotates).toBe(true);
  });

  it('does not retry a renewal Kite may have acted on once rotation is recorded, and the next run tells why it failed', async () => {
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token_rotates: true });
    const { deps, store, path } = await setup(config);
    fx.sandbox.dropNextResponse('POST /session/refresh_token', 1);

    const error = await refreshToken(deps).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'KiteNetworkError' });
    expect(renewals()).toBe(1);
    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(stored.api_secret).toBe(config.api_secret);
    expect(stored.refresh_lease).toBeUndefined();
    expect(stored.unanswered_renewal_at).toEqual(expect.any(String));

    const next = await refreshToken(deps).catch((e: unknown) => e);

    expect(next).toBeInstanceOf(LoginRequiredError);
    expect((next as Error).message).toMatch(
      /a renewal at .* got no answer and may have renewed the token at Kite/,
    );
    expect((await store.read()).config.api_secret).toBe(config.api_secret);
  });

  it('still retries what never reached Kite (429) when rotation is recorded', async () => {
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token_rotates: true });
    const { deps } = await setup(config);
    fx.sandbox.failNext({ endpoint: 'POST /session/refresh_token', times: 1, status: 429 });

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'refreshed' });
    expect(renewals()).toBe(2);
  });

  it('still retries a refused connection when rotation is recorded', async () => {
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token_rotates: true });
    const { deps } = await setup(config);
    let calls = 0;
    const refusing: typeof fetch = (input, init) =>
      ++calls === 1
        ? Promise.reject(
            Object.assign(new TypeError('fetch failed'), {
              cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
            }),
          )
        : fetch(input, init);
    const kite = new KiteClient({
      apiKey: fx.kite.apiKey,
      apiSecret: fx.appSecret,
      baseUrl: fx.sandbox.url,
      retry: { baseDelayMs: 2, maxDelayMs: 10 },
      fetch: refusing,
    });

    const outcome = await refreshToken({ ...deps, kite: () => kite });

    expect(outcome).toMatchObject({ status: 'refreshed' });
    expect(calls).toBe(2);
  });
});
