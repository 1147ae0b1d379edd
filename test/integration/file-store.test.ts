import { spawnSync } from 'node:child_process';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { ConfigError, ConflictError, NotFoundError, StoreError } from '../../lib/shared/errors.ts';
import { FileStore } from '../../lib/store/file-store.ts';
import { cleanEnv } from '../../testing/clean-env.ts';

const base: BrokerConfig = {
  type: 'kite',
  api_key: 'kitekey1',
  api_secret: 'old-access-token-0000',
  refresh_token: 'refresh-token-0000000',
  strategy: 'momentum',
};

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-store-'));
  path = join(dir, 'broker-config.json');
});

describe('FileStore', () => {
  it('writes through a symlinked document to the file it points to, keeping the link', async () => {
    const real = join(dir, 'shared', 'broker-config.json');
    await mkdir(join(dir, 'shared'));
    await writeFile(real, JSON.stringify(base), { mode: 0o600 });
    await symlink(real, path);
    const store = new FileStore({ path });
    const { version } = await store.read();

    await store.write({ ...base, api_secret: 'new-access-token-1111' }, version);

    expect((await lstat(path)).isSymbolicLink()).toBe(true);
    expect(JSON.parse(await readFile(real, 'utf8')).api_secret).toBe('new-access-token-1111');
    expect((await store.read()).config.api_secret).toBe('new-access-token-1111');
  });

  it('refuses to write through a symlink whose target does not exist, leaving the link', async () => {
    await symlink(join(dir, 'missing.json'), path);
    const store = new FileStore({ path });

    await expect(store.write(base, null)).rejects.toThrow(/symlink to a file that does not exist/);
    expect((await lstat(path)).isSymbolicLink()).toBe(true);
  });

  it('creates the document only when it does not exist yet', async () => {
    const store = new FileStore({ path });
    await store.write(base, null);
    await expect(store.write(base, null)).rejects.toBeInstanceOf(ConflictError);
  });

  it('writes the document with mode 0600', async () => {
    await writeFile(path, JSON.stringify(base), { mode: 0o644 });
    const store = new FileStore({ path });
    const { version } = await store.read();
    await store.write({ ...base, api_secret: 'new' }, version);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('lets one of two writers with the same version win and loses nothing', async () => {
    await writeFile(path, JSON.stringify(base));
    const a = new FileStore({ path });
    const b = new FileStore({ path });
    const { version } = await a.read();

    const results = await Promise.allSettled([
      a.write({ ...base, api_secret: 'token-from-a' }, version),
      b.write({ ...base, api_secret: 'token-from-b' }, version),
    ]);

    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    const stored = (await a.read()).config;
    const winner = results[0]?.status === 'fulfilled' ? 'token-from-a' : 'token-from-b';
    expect(stored.api_secret).toBe(winner);
    expect(stored.strategy).toBe('momentum');
  });

  it('sees a change made by anyone else as a conflict', async () => {
    await writeFile(path, JSON.stringify(base));
    const store = new FileStore({ path });
    const { version } = await store.read();
    await writeFile(path, JSON.stringify({ ...base, edited: true }));
    await expect(store.write(base, version)).rejects.toBeInstanceOf(ConflictError);
  });

  it('reports a missing document as NotFoundError', async () => {
    await expect(new FileStore({ path }).read()).rejects.toBeInstanceOf(NotFoundError);
  });

  it('reports malformed JSON as a ConfigError and leaves the file alone', async () => {
    await writeFile(path, '{"type": "kite",');
    await expect(new FileStore({ path }).read()).rejects.toBeInstanceOf(ConfigError);
    expect(await readFile(path, 'utf8')).toBe('{"type": "kite",');
  });

  it('leaves the old document whole when the writer dies before the rename', async () => {
    await writeFile(path, JSON.stringify(base));
    const script = `
      import { FileStore } from ${JSON.stringify(join(process.cwd(), 'lib/store/file-store.ts'))};
      const store = new FileStore({ path: ${JSON.stringify(path)}, beforeRename: () => process.kill(process.pid, 'SIGKILL') });
      const { config, version } = await store.read();
      await store.write({ ...config, api_secret: 'never-stored' }, version);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: cleanEnv(),
    });
    expect(child.signal).toBe('SIGKILL');

    const store = new FileStore({ path });
    const { config, version } = await store.read();
    expect(config.api_secret).toBe('old-access-token-0000');
    // The dead writer's lock does not block the next writer.
    await store.write({ ...config, api_secret: 'next' }, version);
    expect((await store.read()).config.api_secret).toBe('next');
    expect((await readdir(dir)).filter((f) => f.endsWith('.lock'))).toEqual([]);
  });

  it('keeps rescued tokens beside the document with mode 0600 and clears them', async () => {
    const store = new FileStore({ path });
    const tokens = {
      access_token: 'rescued-access',
      refresh_token: 'rescued-refresh',
      access_token_expires_at: '2025-11-08T06:00:00+05:30',
      issued_at: '2025-11-07T09:00:00+05:30',
    };
    await store.saveRescue(tokens);
    expect((await stat(store.rescuePath)).mode & 0o777).toBe(0o600);
    expect(await store.loadRescue()).toEqual(tokens);
    await store.clearRescue();
    expect(await store.loadRescue()).toBeNull();
  });
});

describe('FileStore rescue slot', () => {
  const tokens = {
    access_token: 'planted-access',
    user_id: 'EVIL01',
    access_token_expires_at: '2099-01-02T06:00:00+05:30',
    issued_at: '2099-01-01T09:00:00+05:30',
  };

  it.skipIf(process.getuid?.() !== 0)(
    'does not load a rescue file another user owns (another owner needs root: chown to uid 65534)',
    async () => {
      const store = new FileStore({ path });
      await writeFile(store.rescuePath, JSON.stringify(tokens), { mode: 0o600 });
      await chown(store.rescuePath, 65534, 65534);
      expect(await store.loadRescue()).toBeNull();
    },
  );

  it('does not load a rescue file others may write to, or one reached through a symlink', async () => {
    const store = new FileStore({ path });
    await writeFile(store.rescuePath, JSON.stringify(tokens), { mode: 0o666 });
    await chmod(store.rescuePath, 0o666);
    expect(await store.loadRescue()).toBeNull();

    const elsewhere = join(dir, 'elsewhere.json');
    await writeFile(elsewhere, JSON.stringify(tokens), { mode: 0o600 });
    await rm(store.rescuePath);
    await symlink(elsewhere, store.rescuePath);
    expect(await store.loadRescue()).toBeNull();
  });
});

describe('FileStore after a killed writer', () => {
  it('removes the lock and the temp file a killed writer left behind at the next write', async () => {
    await writeFile(path, JSON.stringify(base));
    const script = `
      import { FileStore } from ${JSON.stringify(join(process.cwd(), 'lib/store/file-store.ts'))};
      const store = new FileStore({ path: ${JSON.stringify(path)}, beforeRename: () => process.kill(process.pid, 'SIGKILL') });
      const { config, version } = await store.read();
      await store.write({ ...config, api_secret: 'never-stored' }, version);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock'))).toHaveLength(2);

    const store = new FileStore({ path });
    const { config, version } = await store.read();
    await store.write({ ...config, api_secret: 'next' }, version);

    expect((await readdir(dir)).sort()).toEqual(['broker-config.json']);
  });
});

describe('FileStore leftovers', () => {
  it('removes a stale lock a killed writer had moved aside, at the next write', async () => {
    await writeFile(path, JSON.stringify(base));
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid;
    const aside = join(dir, `.broker-config.json.lock.${deadPid}.0a1b2c3d4e5f.aside`);
    await writeFile(aside, `${deadPid}\n`, { mode: 0o600 });
    const store = new FileStore({ path });
    const { version } = await store.read();

    await store.write({ ...base, api_secret: 'next' }, version);

    expect((await readdir(dir)).sort()).toEqual(['broker-config.json']);
  });
});

describe('FileStore lock', () => {
  it('waits for a live writer and gives up with a retryable StoreError after the lock wait', async () => {
    await writeFile(path, JSON.stringify(base));
    const store = new FileStore({ path, lockWaitMs: 200 });
    const { version } = await store.read();
    await writeFile(`${path}.lock`, `${process.pid}\n`);
    const started = Date.now();

    const error = await store.write({ ...base, api_secret: 'new' }, version).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect((await store.read()).config.api_secret).toBe('old-access-token-0000');
  });

  it('takes over a lock older than any write', async () => {
    await writeFile(path, JSON.stringify(base));
    const store = new FileStore({ path, lockWaitMs: 200 });
    const { version } = await store.read();
    await writeFile(`${path}.lock`, `${process.pid}\n`);
    const old = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, old, old);

    await store.write({ ...base, api_secret: 'new' }, version);

    expect((await store.read()).config.api_secret).toBe('new');
    expect((await readdir(dir)).filter((f) => f.endsWith('.lock'))).toEqual([]);
  });

  it('gives up at the deadline, without spinning, when a stale lock cannot be removed', async () => {
    await writeFile(path, JSON.stringify(base));
    const store = new FileStore({ path, lockWaitMs: 200 });
    const { version } = await store.read();
    // A folder in the lock's place: stale by age, but unlink cannot remove it.
    await mkdir(`${path}.lock`);
    const old = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, old, old);

    const cpu = process.cpuUsage();

    const error = await store.write({ ...base, api_secret: 'new' }, version).catch((e: unknown) => e);

    const { user, system } = process.cpuUsage(cpu);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(true);
    expect((await store.read()).config.api_secret).toBe('old-access-token-0000');
    // Waiting 200 ms between tries with backoff costs a few ms of CPU; a loop without pauses burns all 200.
    expect((user + system) / 1000, 'CPU ms spent waiting for the lock').toBeLessThan(100);
  });
});

describe('FileStore stale lock takeover', () => {
  /** A pid no process has: a child that has already exited. */
  function deadPid(): number {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    return Number(child.stdout);
  }

  it('never removes a fresh lock that took the place of a stale lock two waiters both judged stale', async () => {
    await writeFile(path, JSON.stringify(base));
    await writeFile(`${path}.lock`, `${deadPid()}\n`);
    let entered!: () => void;
    const judged = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let paused = false;
    // B judges the dead writer's lock stale, then stalls before removing it.
    const b = new FileStore({
      path,
      onStaleLock: async () => {
        if (paused) return;
        paused = true;
        entered();
        await gate;
      },
    });
    // A removes the same stale lock, takes a fresh one and, mid-write, lets B go on.
    const a = new FileStore({
      path,
      beforeRename: async () => {
        release();
        await new Promise((r) => setTimeout(r, 100));
      },
    });
    const { version } = await a.read();

    const writeB = b.write({ ...base, api_secret: 'token-from-b' }, version);
    await judged;
    const results = await Promise.allSettled([
      a.write({ ...base, api_secret: 'token-from-a' }, version),
      writeB,
    ]);

    expect(results[0].status).toBe('fulfilled');
    expect(results[1].status === 'rejected' && results[1].reason).toBeInstanceOf(ConflictError);
    expect((await a.read()).config.api_secret).toBe('token-from-a');
    expect((await readdir(dir)).filter((f) => f.includes('.lock'))).toEqual([]);
  });
});
