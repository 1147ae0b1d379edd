// broker-config.json on a local disk, with compare-and-swap and crash-safe writes.
// The version is a hash of the bytes, so any change by anyone (this tool, an editor, the trading system) is seen.
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { type BrokerConfig, parseConfig, serializeConfig } from '../engine/broker-config.ts';
import { backoffDelay, EQUAL_JITTER, sleep } from '../shared/backoff.ts';
import { ConflictError, NotFoundError, StoreError } from '../shared/errors.ts';
import { type ConfigStore, type KeptTokens, parseKeptTokens, type StoredConfig } from './config-store.ts';

const LOCK_STALE_MS = 10_000;
const LOCK_WAIT_MS = 3_000;
/** Pauses between tries for a held lock: about 5–10 ms at first, growing to 25–50 ms. */
const LOCK_BACKOFF = { baseMs: 10, maxMs: 50, jitter: EQUAL_JITTER } as const;
const TEMP_STALE_MS = 60_000;

export interface FileStoreOptions {
  path: string;
  /** Test hook: runs after the temp file is written and synced, before it replaces the document. */
  beforeRename?: () => void | Promise<void>;
  /** How long a write waits for another writer's lock. Default 3 s. */
  lockWaitMs?: number;
}

function versionOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 32);
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}

/** A lock older than any write takes, or whose writer process is gone (killed mid-write), may be removed. */
async function lockIsStale(lockPath: string): Promise<boolean> {
  const info = await stat(lockPath).catch(() => undefined);
  return (
    (info !== undefined && Date.now() - info.mtimeMs > LOCK_STALE_MS) || (await lockHolderIsDead(lockPath))
  );
}

async function lockHolderIsDead(lockPath: string): Promise<boolean> {
  const pid = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e: unknown) {
    return errnoCode(e) === 'ESRCH';
  }
}

export class FileStore implements ConfigStore {
  readonly location: string;
  readonly path: string;
  readonly #beforeRename: FileStoreOptions['beforeRename'];
  readonly #lockWaitMs: number;

  constructor(options: FileStoreOptions) {
    this.path = resolve(options.path);
    this.location = this.path;
    this.#beforeRename = options.beforeRename;
    this.#lockWaitMs = options.lockWaitMs ?? LOCK_WAIT_MS;
  }

  get rescuePath(): string {
    return `${this.path}.rescue.json`;
  }

  async read(): Promise<StoredConfig> {
    const bytes = await this.#readBytes(this.path);
    if (bytes === undefined) throw new NotFoundError(`${this.location} does not exist`);
    return { config: parseConfig(bytes.toString('utf8'), this.location), version: versionOf(bytes) };
  }

  async write(config: BrokerConfig, expectedVersion: string | null): Promise<string> {
    const bytes = Buffer.from(serializeConfig(config), 'utf8');
    return this.#withLock(async () => {
      const current = await this.#readBytes(this.path);
      const currentVersion = current === undefined ? null : versionOf(current);
      if (currentVersion !== expectedVersion) {
        throw new ConflictError(
          expectedVersion === null
            ? `${this.location} already exists`
            : `${this.location} changed since it was read`,
        );
      }
      await this.#atomicReplace(this.path, bytes);
      return versionOf(bytes);
    });
  }

  async saveRescue(tokens: KeptTokens): Promise<void> {
    await this.#atomicReplace(this.rescuePath, Buffer.from(`${JSON.stringify(tokens, null, 2)}\n`, 'utf8'));
  }

  async loadRescue(): Promise<KeptTokens | null> {
    const bytes = await this.#readBytes(this.rescuePath);
    if (bytes === undefined) return null;
    return parseKeptTokens(bytes.toString('utf8'), this.rescuePath);
  }

  async clearRescue(): Promise<void> {
    await unlink(this.rescuePath).catch((e: unknown) => {
      if (errnoCode(e) !== 'ENOENT') throw e;
    });
  }

  async #readBytes(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(path);
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw new StoreError(`cannot read ${path}: ${errnoCode(e) ?? 'I/O error'}`, {
        retryable: false,
        cause: e,
      });
    }
  }

  /**
   * Temp file in the same folder (same file system, so rename is atomic), mode 0600, fsync, rename, fsync the
   * folder. A crash at any point leaves either the old document or the new one, never half of one.
   */
  async #atomicReplace(path: string, bytes: Buffer): Promise<void> {
    const dir = dirname(path);
    const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.#beforeRename?.();
      await rename(temp, path);
    } catch (e: unknown) {
      await unlink(temp).catch(() => {});
      throw new StoreError(`cannot write ${path}: ${errnoCode(e) ?? 'I/O error'}`, {
        retryable: false,
        cause: e,
      });
    }
    const dirHandle = await open(dir, constants.O_RDONLY).catch(() => undefined);
    await dirHandle?.sync().catch(() => {});
    await dirHandle?.close();
    await this.#removeStaleTemps(dir, basename(path));
  }

  /** Temp files a killed writer left behind hold tokens: remove them once they are clearly abandoned. */
  async #removeStaleTemps(dir: string, name: string): Promise<void> {
    const prefix = `.${name}.`;
    const entries = await readdir(dir).catch(() => [] as string[]);
    for (const entry of entries) {
      if (!entry.startsWith(prefix) || !entry.endsWith('.tmp')) continue;
      const full = join(dir, entry);
      const info = await stat(full).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > TEMP_STALE_MS) await unlink(full).catch(() => {});
    }
  }

  /** A lock file (O_EXCL) makes compare-then-rename one step across processes. A dead holder's lock goes stale. */
  async #withLock<T>(fn: () => Promise<T>): Promise<T> {
    const lockPath = `${this.path}.lock`;
    await this.#acquireLock(lockPath);
    try {
      return await fn();
    } finally {
      await unlink(lockPath).catch(() => {});
    }
  }

  /**
   * Waits for the lock until the deadline, pausing with backoff between tries. A stale lock is removed and the lock
   * tried again after the same pause, so a stale lock that cannot be removed does not spin past the deadline.
   */
  async #acquireLock(lockPath: string): Promise<void> {
    const deadline = Date.now() + this.#lockWaitMs;
    for (let attempt = 1; ; attempt++) {
      if (await this.#tryLock(lockPath)) return;
      if (await lockIsStale(lockPath)) await unlink(lockPath).catch(() => {});
      if (Date.now() > deadline) {
        throw new StoreError(`${this.path} is locked by another writer`, { retryable: true });
      }
      await sleep(backoffDelay(attempt, LOCK_BACKOFF));
    }
  }

  /** True when this process now holds the lock; false when someone else does. */
  async #tryLock(lockPath: string): Promise<boolean> {
    try {
      const handle = await open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return true;
    } catch (e: unknown) {
      if (errnoCode(e) === 'EEXIST') return false;
      throw new StoreError(`cannot lock ${this.path}: ${errnoCode(e) ?? 'I/O error'}`, {
        retryable: false,
        cause: e,
      });
    }
  }
}
