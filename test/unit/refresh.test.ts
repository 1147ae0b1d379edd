import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { localRescuePath } from '../../lib/engine/kept-tokens.ts';
import { type RefreshDeps, refreshToken } from '../../lib/engine/refresh-engine.ts';
import { createRefresher } from '../../lib/engine/refresher.ts';
import {
  ConflictError,
  KiteApiError,
  LoginRequiredError,
  TokenNotStoredError,
} from '../../lib/shared/errors.ts';
import type { ConfigStore } from '../../lib/store/config-store.ts';
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

async function setup(config: BrokerConfig, overrides: Partial<RefreshDeps> = {}) {
  const path = await writeTempConfig(config);
  const store = new FileStore({ path });
  const log = captureLog();
  const deps: RefreshDeps = { store, kite: () => fx.kite, log, pollMs: 5, rescueDir: tmpdir(), ...overrides };
  return { path, store, log, deps };
}

const renewals = () => fx.sandbox.calls['POST /session/refresh_token'] ?? 0;

describe('refreshToken', () => {
  it('does not refresh when more than the window remains', async () => {
    const config = seedConfig(fx.sandbox, 'fresh');
    const { deps } = await setup(config, { windowMs: 0 });
    const outcome = await refreshToken(deps);
    expect(outcome).toMatchObject({ status: 'fresh', accessToken: config.api_secret, kiteCalls: 0 });
    expect(renewals()).toBe(0);
  });

  it('renews an expired token once and writes it back with its expiry and unknown fields kept', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, path, log } = await setup(config);

    const outcome = await refreshToken(deps);

    expect(outcome.status).toBe('refreshed');
    expect(renewals()).toBe(1);
    const stored = JSON.parse(await readFile(path, 'utf8')) as BrokerConfig;
    expect(stored.api_secret).not.toBe(config.api_secret);
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    expect(stored.access_token_expires_at).toMatch(/T06:00:00\+05:30$/);
    expect(stored.refreshed_at).toMatch(/\+05:30$/);
    expect(stored.user_id).toBe('XX0000');
    expect(stored.strategy_id).toBe('momentum-7');
    expect(stored.rate_limit).toEqual({ requests_per_second: 10, burst_size: 20 });
    expect(stored.refresh_lease).toBeUndefined();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(log.lines.map((l) => l.message)).toEqual([
      '🔄 Refreshing Kite access token...',
      '✅ Token refreshed successfully',
    ]);
    expect(log.lines[1]?.fields?.expiresAt).toMatch(/^\d{4}-\d{2}-\d{2} 06:00:00 IST$/);
  });

  it('stores the rotated refresh token Kite hands out', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config);
    await refreshToken(deps);
    const { config: stored } = await store.read();
    expect(stored.refresh_token).not.toBe(config.refresh_token);
    // The next renewal works with what was stored.
    await refreshToken(deps, { force: true });
    expect(renewals()).toBe(2);
  });

  it('reports that a login is needed when no refresh token is configured, and writes nothing', async () => {
    const { deps, path, log } = await setup(seedConfig(fx.sandbox, 'expired', { refresh_token: '' }));
    const before = await readFile(path, 'utf8');

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'login_required', reason: 'no_refresh_token', kiteCalls: 0 });
    expect(log.lines[0]?.message).toBe('⚠️  No refresh token configured');
    expect(await readFile(path, 'utf8')).toBe(before);
    expect(renewals()).toBe(0);
  });

  it('stores a login token that a failed write kept in the rescue slot instead of asking for another login', async () => {
    const { deps, store } = await setup(seedConfig(fx.sandbox, 'expired', { refresh_token: '' }));
    const login = fx.sandbox.mintSession();
    await store.saveRescue({
      access_token: login.accessToken,
      user_id: login.userId,
      access_token_expires_at: login.expiresAt.toISOString(),
      issued_at: new Date().toISOString(),
    });

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'refreshed', accessToken: login.accessToken, kiteCalls: 0 });
    expect((await store.read()).config.api_secret).toBe(login.accessToken);
    expect(await store.loadRescue()).toBeNull();
  });

  it('fails with LoginRequiredError and leaves the tokens untouched when Kite rejects the refresh token', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store, log } = await setup(config);
    fx.sandbox.revokeRefreshTokens();

    const error = await refreshToken(deps).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(LoginRequiredError);
    expect((error as LoginRequiredError).reason).toBe('refresh_token_rejected');
    expect((error as Error).cause).toBeInstanceOf(KiteApiError);
    expect((await store.read()).config).toEqual(config);
    const failure = log.lines.find((l) => l.message === '❌ Token refresh failed');
    expect(failure?.fields).toMatchObject({ status: 403, errorType: 'TokenException' });
  });

  it('gives the lease back and keeps the tokens when Kite stays down', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config);
    fx.sandbox.failNext({ times: 10, status: 503 });

    await expect(refreshToken(deps)).rejects.toMatchObject({ name: 'KiteApiError', status: 503 });
    expect((await store.read()).config).toEqual(config);
  });

  it('returns at once without calling Kite when the rejected token is already replaced', async () => {
    const config = seedConfig(fx.sandbox, 'fresh');
    const { deps } = await setup(config, { windowMs: 0 });
    const outcome = await refreshToken(deps, { failedAccessToken: 'an-older-token-someone-cached' });
    expect(outcome).toMatchObject({ status: 'already_fresh', accessToken: config.api_secret });
    expect(renewals()).toBe(0);
  });

  it('renews a token that is not due by the clock when a caller saw Kite reject it', async () => {
    const config = seedConfig(fx.sandbox, 'fresh');
    fx.sandbox.revokeAccessToken(config.api_secret);
    const { deps } = await setup(config, { windowMs: 0 });
    const outcome = await refreshToken(deps, { failedAccessToken: config.api_secret });
    expect(outcome).toMatchObject({ status: 'refreshed', reason: 'rejected' });
    expect(renewals()).toBe(1);
  });

  it('asks Kite once when two refreshers race on the same file', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config);
    const other: RefreshDeps = { ...deps, store: new FileStore({ path: store.location }) };

    const outcomes = await Promise.all([refreshToken(deps), refreshToken(other)]);

    expect(renewals()).toBe(1);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['already_fresh', 'refreshed']);
    const tokens = outcomes.map((o) => ('accessToken' in o ? o.accessToken : ''));
    expect(tokens[0]).toBe(tokens[1]);
    expect((await store.read()).config.api_secret).toBe(tokens[0]);
  });

  it('waits for a live lease and returns the token its holder stores', async () => {
    const config = seedConfig(fx.sandbox, 'expired', {
      refresh_lease: { owner: 'someone-else', until: new Date(Date.now() + 10_000).toISOString() },
    });
    const { deps, store } = await setup(config);
    const newer = seedConfig(fx.sandbox, 'fresh');

    const waiting = refreshToken(deps);
    await new Promise((r) => setTimeout(r, 50));
    const { version } = await store.read();
    await store.write(
      {
        ...config,
        api_secret: newer.api_secret,
        access_token_expires_at: newer.access_token_expires_at,
        refresh_lease: undefined,
      },
      version,
    );

    const outcome = await waiting;
    expect(outcome).toMatchObject({ status: 'already_fresh', accessToken: newer.api_secret });
    expect(renewals()).toBe(0);
  });

  it('takes over a lease whose holder died', async () => {
    const config = seedConfig(fx.sandbox, 'expired', {
      refresh_lease: { owner: 'dead-refresher', until: new Date(Date.now() - 1_000).toISOString() },
    });
    const { deps, store } = await setup(config);
    const outcome = await refreshToken(deps);
    expect(outcome.status).toBe('refreshed');
    expect((await store.read()).config.refresh_lease).toBeUndefined();
  });

  it('does not start a renewal when the caller has less time left than a renewal may take', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config);

    const error = await refreshToken(deps, { deadline: Date.now() + 5_000 }).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'RefreshBusyError' });
    expect((error as Error).message).toMatch(/s left in this invocation/);
    expect(renewals()).toBe(0);
    expect((await store.read()).config).toEqual(config);
  });

  it('gives up with a clear error when a live lease outlasts the wait', async () => {
    const config = seedConfig(fx.sandbox, 'expired', {
      refresh_lease: { owner: 'slow-refresher', until: new Date(Date.now() + 60_000).toISOString() },
    });
    const { deps } = await setup(config, { leaseWaitMs: 100 });
    await expect(refreshToken(deps)).rejects.toMatchObject({ name: 'RefreshBusyError' });
    expect(renewals()).toBe(0);
  });

  it('keeps a renewed token it cannot store and stores it on the next run without asking Kite again', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store, log } = await setup(config, { writeRetry: { attempts: 3, baseDelayMs: 1 } });
    // The lease write succeeds; every write after it conflicts, as if the document kept changing under us.
    let writes = 0;
    const flaky: ConfigStore = {
      location: store.location,
      read: () => store.read(),
      write: (doc, version) =>
        ++writes > 1 ? Promise.reject(new ConflictError('moved')) : store.write(doc, version),
      saveRescue: (t) => store.saveRescue(t),
      loadRescue: () => store.loadRescue(),
      clearRescue: () => store.clearRescue(),
    };

    const error = await refreshToken({ ...deps, store: flaky, leaseTtlMs: 1 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TokenNotStoredError);
    const kept = (error as TokenNotStoredError).kept;
    expect(kept).toContain(localRescuePath(store.location, tmpdir()));
    expect((await stat(localRescuePath(store.location, tmpdir()))).mode & 0o777).toBe(0o600);
    expect(leakedTokens(fx.sandbox, `${String(error)} ${log.text()}`)).toEqual([]);

    const next = await refreshToken(deps);
    expect(next.status).toBe('refreshed');
    expect(next.kiteCalls).toBe(0);
    expect(renewals()).toBe(1);
    expect(fx.sandbox.isAccessTokenValid((await store.read()).config.api_secret)).toBe(true);
    expect(await store.loadRescue()).toBeNull();
  });

  it('never logs a whole token', async () => {
    const { deps, log } = await setup(seedConfig(fx.sandbox, 'expired'));
    await refreshToken(deps);
    fx.sandbox.revokeRefreshTokens();
    await refreshToken(deps, { force: true }).catch(() => {});
    expect(log.lines.length).toBeGreaterThan(2);
    expect(leakedTokens(fx.sandbox, log.text())).toEqual([]);
  });

  it('shares one run between concurrent identical requests in a process', async () => {
    const { store, log } = await setup(seedConfig(fx.sandbox, 'expired'));
    const refresher = await createRefresher({
      configUri: store.location,
      appSecret: fx.appSecret,
      log,
      store,
    });

    const outcomes = await Promise.all(Array.from({ length: 10 }, () => refresher.refresh()));

    expect(renewals()).toBe(1);
    expect(new Set(outcomes).size).toBe(1);
    expect(outcomes[0]?.status).toBe('refreshed');
    // A later request is a new run.
    expect((await refresher.refresh()).status).toBe('fresh');
  });

  it('treats a 403 that is not a TokenException (a proxy page, say) as a failure to retry, not a dead refresh token', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config);
    fx.sandbox.failNext({
      endpoint: 'POST /session/refresh_token',
      times: 1,
      status: 403,
      rawBody: '<html>Forbidden</html>',
    });

    const error = await refreshToken(deps).catch((e: unknown) => e);

    expect(error).not.toBeInstanceOf(LoginRequiredError);
    expect(error).toMatchObject({ name: 'KiteApiError', status: 403 });
    expect((await store.read()).config).toEqual(config);
  });

  it('does not write back kept tokens older than the stored token, and drops them', async () => {
    const config = seedConfig(fx.sandbox, 'expired', { refreshed_at: new Date().toISOString() });
    const { deps, store } = await setup(config);
    const older = fx.sandbox.mintSession();
    const path = localRescuePath(store.location, tmpdir());
    await writeFile(
      path,
      JSON.stringify({
        access_token: older.accessToken,
        refresh_token: older.refreshToken,
        access_token_expires_at: older.expiresAt.toISOString(),
        issued_at: new Date(Date.now() - 3_600_000).toISOString(),
      }),
      { mode: 0o600 },
    );

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'refreshed', kiteCalls: 1 });
    expect((await store.read()).config.api_secret).not.toBe(older.accessToken);
    await expect(stat(path)).rejects.toThrow();
  });

  it('ignores kept tokens in a file that others could have written', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config);
    const planted = fx.sandbox.mintSession();
    const path = localRescuePath(store.location, tmpdir());
    await writeFile(
      path,
      JSON.stringify({
        access_token: planted.accessToken,
        access_token_expires_at: planted.expiresAt.toISOString(),
        issued_at: new Date().toISOString(),
      }),
      { mode: 0o644 },
    );
    await chmod(path, 0o644);

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'refreshed', kiteCalls: 1 });
    expect((await store.read()).config.api_secret).not.toBe(planted.accessToken);
  });
});
