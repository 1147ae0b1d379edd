// Kept tokens: which copies the engine trusts (this user's private files, the pinned user, a past issue time), where
// the local copy lives, and that a copy newer than the document goes in first, whatever lease is in the way.
import { chmod, chown, mkdir, mkdtemp, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { toIsoIst } from '../../lib/engine/expiry.ts';
import { keptTokenSource, localRescuePath } from '../../lib/engine/kept-tokens.ts';
import { type RefreshDeps, refreshToken } from '../../lib/engine/refresh-engine.ts';
import { ConflictError, TokenNotStoredError } from '../../lib/shared/errors.ts';
import type { ConfigStore, KeptTokens } from '../../lib/store/config-store.ts';
import { FileStore } from '../../lib/store/file-store.ts';
import {
  captureLog,
  type SandboxFixture,
  seedConfig,
  startSandbox,
  writeTempConfig,
} from '../support/fixtures.ts';

let fx: SandboxFixture;
let rescueDir: string;

beforeEach(async () => {
  fx = await startSandbox();
  rescueDir = await mkdtemp(join(tmpdir(), 'kept-tokens-'));
});

afterEach(async () => {
  await fx.sandbox.close();
});

const renewals = () => fx.sandbox.calls['POST /session/refresh_token'] ?? 0;
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

async function setup(config: BrokerConfig, overrides: Partial<RefreshDeps> = {}) {
  const path = await writeTempConfig(config);
  const store = new FileStore({ path });
  const log = captureLog();
  const deps: RefreshDeps = { store, kite: () => fx.kite, log, pollMs: 5, rescueDir, ...overrides };
  return { path, store, log, deps };
}

/** Kept tokens of a session the sandbox minted, issued now unless told otherwise. */
function keptTokens(overrides: Partial<KeptTokens> = {}): KeptTokens {
  const session = fx.sandbox.mintSession();
  return {
    access_token: session.accessToken,
    refresh_token: session.refreshToken,
    user_id: session.userId,
    access_token_expires_at: toIsoIst(session.expiresAt),
    issued_at: new Date().toISOString(),
    ...overrides,
  };
}

/** Writes a local copy where the engine looks for one, as a run whose write failed would have left it. */
async function plantLocal(location: string, tokens: KeptTokens): Promise<string> {
  const path = localRescuePath(location, rescueDir);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, JSON.stringify(tokens), { mode: 0o600 });
  return path;
}

/** A store whose writes all conflict after the lease write, so a renewal ends kept, not stored. */
function failingAfterLease(store: ConfigStore): ConfigStore {
  let writes = 0;
  return {
    location: store.location,
    read: () => store.read(),
    write: (doc, version) =>
      ++writes > 1 ? Promise.reject(new ConflictError('moved')) : store.write(doc, version),
    saveRescue: (t) => store.saveRescue(t),
    loadRescue: () => store.loadRescue(),
    clearRescue: () => store.clearRescue(),
  };
}

describe('kept tokens from a slot others can write', () => {
  it.skipIf(!isRoot)(
    'ignores a rescue file beside the config that another user planted (another owner needs root: chown to uid 65534)',
    async () => {
      const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000' });
      const { deps, store } = await setup(config);
      const planted = keptTokens({ user_id: 'EVIL01', issued_at: '2099-01-01T09:00:00+05:30' });
      await writeFile(store.rescuePath, JSON.stringify(planted), { mode: 0o600 });
      await chown(store.rescuePath, NOBODY, NOBODY);

      const outcome = await refreshToken(deps);

      expect(outcome).toMatchObject({ status: 'login_required' });
      expect((await store.read()).config).toEqual(config);
    },
  );

  it('ignores a rescue file beside the config that others may write to', async () => {
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000' });
    const { deps, store } = await setup(config);
    await writeFile(store.rescuePath, JSON.stringify(keptTokens()), { mode: 0o666 });
    await chmod(store.rescuePath, 0o666);

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'login_required' });
    expect((await store.read()).config).toEqual(config);
  });

  it.each(['local copy', 'store rescue slot'])(
    'ignores kept tokens of a user other than the pinned one (%s)',
    async (slot) => {
      const daily = slot === 'store rescue slot';
      const config = seedConfig(fx.sandbox, 'expired', {
        user_id: 'XX0000',
        ...(daily ? { refresh_token: '' } : {}),
      });
      const { deps, store } = await setup(config);
      const other = keptTokens({ user_id: 'ZZ9999' });
      if (daily) await store.saveRescue(other);
      else await plantLocal(store.location, other);

      await refreshToken(deps);

      const stored = (await store.read()).config;
      expect(stored.api_secret).not.toBe(other.access_token);
      expect(stored.user_id).toBe('XX0000');
    },
  );

  it.each(['local copy', 'store rescue slot'])(
    'ignores kept tokens whose issue time is in the future (%s)',
    async (slot) => {
      const daily = slot === 'store rescue slot';
      const config = seedConfig(fx.sandbox, 'expired', {
        user_id: 'XX0000',
        ...(daily ? { refresh_token: '' } : {}),
      });
      const { deps, store, log } = await setup(config);
      const future = keptTokens({ issued_at: '2099-01-01T09:00:00+05:30' });
      if (daily) await store.saveRescue(future);
      else await plantLocal(store.location, future);

      await refreshToken(deps);

      expect((await store.read()).config.api_secret).not.toBe(future.access_token);
      expect(log.lines.find((l) => l.message === '⚠️  Kept tokens ignored')?.fields?.reason).toMatch(/future/);
    },
  );

  it('still stores kept tokens issued a minute ahead of this clock (clock skew)', async () => {
    const config = seedConfig(fx.sandbox, 'expired', { user_id: 'XX0000' });
    const { deps, store } = await setup(config);
    const kept = keptTokens({ issued_at: new Date(Date.now() + 60_000).toISOString() });
    await plantLocal(store.location, kept);

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'refreshed', kiteCalls: 0, accessToken: kept.access_token });
  });
});

describe('the local copy', () => {
  it('lives in a private 0700 folder of this user, even when the temp folder is shared', async () => {
    await chmod(rescueDir, 0o1777);
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config, { writeRetry: { attempts: 2, baseDelayMs: 1 } });

    const error = await refreshToken({ ...deps, store: failingAfterLease(store) }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TokenNotStoredError);
    const local = (error as TokenNotStoredError).kept.find((k) => k.startsWith(rescueDir));
    expect(local).toBeDefined();
    const folder = await stat(dirname(local ?? ''));
    expect(folder.mode & 0o777).toBe(0o700);
    expect(folder.uid).toBe(process.getuid?.());
    expect((await stat(local ?? '')).mode & 0o777).toBe(0o600);
  });

  it('does not follow a symlink planted where the local copy is looked for', async () => {
    await chmod(rescueDir, 0o1777);
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config);
    // Tokens of some other file of this user's, 0600 and fresh: reached only through the link.
    const elsewhere = join(await mkdtemp(join(tmpdir(), 'elsewhere-')), 'tokens.json');
    const other = keptTokens();
    await writeFile(elsewhere, JSON.stringify(other), { mode: 0o600 });
    const path = localRescuePath(store.location, rescueDir);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await symlink(elsewhere, path);

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'refreshed', kiteCalls: 1 });
    expect((await store.read()).config.api_secret).not.toBe(other.access_token);
  });

  it('ignores a copy in a folder others may write to', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config);
    const kept = keptTokens();
    const path = await plantLocal(store.location, kept);
    await chmod(dirname(path), 0o777);

    expect(await refreshToken(deps)).toMatchObject({ status: 'refreshed', kiteCalls: 1 });
    expect((await store.read()).config.api_secret).not.toBe(kept.access_token);
  });

  it('ignores an empty copy', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config);
    const path = localRescuePath(store.location, rescueDir);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, '', { mode: 0o600 });

    expect(await refreshToken(deps)).toMatchObject({ status: 'refreshed', kiteCalls: 1 });
  });
});

describe('kept tokens and the lease', () => {
  it('stores kept tokens newer than the stored ones at once though a dead refresher’s lease is live, and clears that lease', async () => {
    const config = seedConfig(fx.sandbox, 'expired', {
      user_id: 'XX0000',
      refresh_lease: { owner: 'dead-refresher', until: new Date(Date.now() + 60_000).toISOString() },
    });
    const { deps, store } = await setup(config, { leaseWaitMs: 200 });
    const kept = keptTokens();
    await plantLocal(store.location, kept);

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'refreshed', kiteCalls: 0, accessToken: kept.access_token });
    const stored = (await store.read()).config;
    expect(stored.api_secret).toBe(kept.access_token);
    expect(stored.refresh_lease).toBeUndefined();
    expect(renewals()).toBe(0);
  });
});

describe('kept tokens before the clock', () => {
  it('stores the kept copy of a forced renewal whose write failed, though the stored token still looks fresh', async () => {
    const config = seedConfig(fx.sandbox, 'fresh');
    const { deps, store } = await setup(config, {
      writeRetry: { attempts: 1, baseDelayMs: 1 },
      leaseTtlMs: 1,
    });
    const error = await refreshToken({ ...deps, store: failingAfterLease(store) }, { force: true }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TokenNotStoredError);
    expect((await store.read()).config.api_secret).toBe(config.api_secret);

    const outcome = await refreshToken(deps);

    expect(outcome).toMatchObject({ status: 'refreshed', kiteCalls: 0 });
    expect((await store.read()).config.api_secret).not.toBe(config.api_secret);
    expect(renewals()).toBe(1);
  });
});

describe('where kept tokens came from', () => {
  it('stores the kept copy of a renewal whose write failed as a renewal', async () => {
    const config = seedConfig(fx.sandbox, 'fresh', { token_source: 'login' } as Partial<BrokerConfig>);
    const { deps, store } = await setup(config, {
      writeRetry: { attempts: 1, baseDelayMs: 1 },
      leaseTtlMs: 1,
    });
    await refreshToken({ ...deps, store: failingAfterLease(store) }, { force: true }).catch(() => {});

    await refreshToken(deps);

    expect((await store.read()).config).toMatchObject({ token_source: 'renewal' });
  });

  it('stores a kept copy of a login as a login, though the document holds a refresh token', async () => {
    const config = seedConfig(fx.sandbox, 'expired', { user_id: 'XX0000' });
    const { deps, store } = await setup(config);
    await plantLocal(store.location, keptTokens({ token_source: 'login' }));

    await refreshToken(deps);

    expect((await store.read()).config).toMatchObject({ token_source: 'login' });
  });

  it('takes a copy kept before the source was recorded for a renewal when it holds a refresh token, else a login', () => {
    expect(keptTokenSource(keptTokens())).toBe('renewal');
    expect(keptTokenSource(keptTokens({ refresh_token: '' }))).toBe('login');
    expect(keptTokenSource(keptTokens({ refresh_token: '', token_source: 'renewal' }))).toBe('renewal');
  });
});

describe('issue times', () => {
  it('stores the kept copy of a second renewal made within the same second as the first', async () => {
    const t0 = new Date(Math.floor(Date.now() / 1000) * 1000 + 100);
    const config = seedConfig(fx.sandbox, 'expired');
    const { deps, store } = await setup(config, {
      writeRetry: { attempts: 2, baseDelayMs: 1 },
      leaseTtlMs: 1,
    });
    await refreshToken({ ...deps, now: () => t0 });
    const first = (await store.read()).config;

    const t1 = new Date(t0.getTime() + 300);
    const error = await refreshToken(
      { ...deps, now: () => t1, store: failingAfterLease(store) },
      { force: true },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenNotStoredError);

    const outcome = await refreshToken({ ...deps, now: () => new Date(t1.getTime() + 100) }, { force: true });

    expect(outcome).toMatchObject({ status: 'refreshed', kiteCalls: 0 });
    const stored = (await store.read()).config;
    expect(stored.api_secret).not.toBe(first.api_secret);
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    expect(stored.refreshed_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.400\+05:30$/);
    expect(renewals()).toBe(2);
  });
});
