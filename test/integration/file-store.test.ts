import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
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

    const error = await store.write({ ...base, api_secret: 'new' }, version).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(true);
    expect((await store.read()).config.api_secret).toBe('old-access-token-0000');
  });
});
