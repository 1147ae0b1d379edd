// broker-config.json on a local disk, with compare-and-swap and crash-safe writes.
// The version is a hash of the bytes, so any change by anyone (this tool, an editor, the trading system) is seen.
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, open, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type BrokerConfig, parseConfig, serializeConfig } from '../engine/broker-config.ts';
import { backoffDelay, EQUAL_JITTER, sleep } from '../shared/backoff.ts';
import { ConflictError, NotFoundError, StoreError } from '../shared/errors.ts';
import {
  asidePathFor,
  errnoCode,
  processIsGone,
  readPrivateFile,
  removeAbandonedTemps,
  tempPathFor,
} from '../shared/private-file.ts';
import { type ConfigStore, type KeptTokens, parseKeptTokens, type StoredConfig } from './config-store.ts';

const LOCK_STALE_MS = 10_000;
const LOCK_WAIT_MS = 3_000;
/** Pauses between tries for a held lock: about 5–10 ms at first, growing to 25–50 ms. */
const LOCK_BACKOFF = { baseMs: 10, maxMs: 50, jitter: EQUAL_JITTER } as const;

export interface FileStoreOptions {
  path: string;
  /** Test hook: runs after the temp file is written and synced, before it replaces the document. */
  beforeRename?: () => void | Promise<void>;
  /** How long a write waits for another writer's lock. Default 3 s. */
  lockWaitMs?: number;
  /** Test hook: runs after a writer judged the lock stale, before it removes it. */
  onStaleLock?: () => void | Promise<void>;
}

function versionOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 32);
}

/**
 * One lock file: its inode and its content (pid and a random token). Both together tell it from a lock made at the
 * same path later, since a file system may give a new file the inode number of one just removed.
 */
interface LockId {
  ino: number;
  content: string;
}

async function lockAt(path: string): Promise<LockId | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  return { ino: info.ino, content: await readFile(path, 'utf8').catch(() => '') };
}

const sameLock = (a: LockId | undefined, b: LockId): boolean => a?.ino === b.ino && a.content === b.content;

/**
 * The lock at `lockPath` when it may be removed: older than any write takes, or its writer process is gone (killed
 * mid-write). Anything but a plain file is not a lock this store made, and is left alone.
 */
async function staleLock(lockPath: string): Promise<LockId | undefined> {
  const info = await stat(lockPath).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  const content = await readFile(lockPath, 'utf8').catch(() => '');
  const stale = Date.now() - info.mtimeMs > LOCK_STALE_MS || processIsGone(Number.parseInt(content, 10));
  return stale ? { ino: info.ino, content } : undefined;
}

/**
 * Removes the lock at `lockPath` only if it is still the lock `expected`. Renaming it aside first makes taking it
 * away one step: two waiters that both judged the same lock stale cannot both remove something, and a fresh lock
 * that took the stale one's place is put back. (Put back with link, which never replaces: should a third lock be
 * made in the microseconds between, the fresh lock's writer sees at its commit that the lock is no longer its own.)
 */
async function removeLockIf(lockPath: string, expected: LockId): Promise<void> {
  const aside = asidePathFor(lockPath);
  try {
    await rename(lockPath, aside);
  } catch {
    return;
  }
  if (!sameLock(await lockAt(aside), expected)) await link(aside, lockPath).catch(() => {});
  await unlink(aside).catch(() => {});
}

export class FileStore implements ConfigStore {
  readonly location: string;
  readonly path: string;
  readonly #beforeRename: FileStoreOptions['beforeRename'];
  readonly #lockWaitMs: number;
  readonly #onStaleLock: FileStoreOptions['onStaleLock'];

  constructor(options: FileStoreOptions) {
    this.path = resolve(options.path);
    this.location = this.path;
    this.#beforeRename = options.beforeRename;
    this.#lockWaitMs = options.lockWaitMs ?? LOCK_WAIT_MS;
    this.#onStaleLock = options.onStaleLock;
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
    const target = await this.#target();
    return this.#withLock(target, async (stillHeld) => {
      const current = await this.#readBytes(target);
      const currentVersion = current === undefined ? null : versionOf(current);
      if (currentVersion !== expectedVersion) {
        throw new ConflictError(
          expectedVersion === null
            ? `${this.location} already exists`
            : `${this.location} changed since it was read`,
        );
      }
      await this.#atomicReplace(target, bytes, stillHeld);
      return versionOf(bytes);
    });
  }

  /**
   * The file a write replaces: the document itself or, when the path is a symlink, the file it points to. Renaming
   * over the link would replace the link with a file and leave the target, which the trading system reads, stale.
   */
  async #target(): Promise<string> {
    try {
      return await realpath(this.path);
    } catch (e: unknown) {
      if (errnoCode(e) !== 'ENOENT') {
        throw new StoreError(`cannot resolve ${this.path}: ${errnoCode(e) ?? 'I/O error'}`, {
          retryable: false,
        });
      }
      const link = await lstat(this.path).catch(() => undefined);
      if (link?.isSymbolicLink()) {
        throw new StoreError(
          `${this.path} is a symlink to a file that does not exist; not replacing the link`,
          {
            retryable: false,
          },
        );
      }
      return this.path;
    }
  }

  async saveRescue(tokens: KeptTokens): Promise<void> {
    await this.#atomicReplace(this.rescuePath, Buffer.from(`${JSON.stringify(tokens, null, 2)}\n`, 'utf8'));
  }

  /**
   * The rescued tokens, or null. The document's folder may be shared (sticky and world-writable), so only a file this
   * user owns with mode 0600, not a symlink, counts: anything else could be someone else's plant.
   */
  async loadRescue(): Promise<KeptTokens | null> {
    const text = await readPrivateFile(this.rescuePath);
    if (text === null) return null;
    return parseKeptTokens(text, this.rescuePath);
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
   * folder. A crash at any point leaves either the old document or the new one, never half of one. `check` runs just
   * before the rename (the lock is still this writer's).
   */
  async #atomicReplace(path: string, bytes: Buffer, check?: () => Promise<void>): Promise<void> {
    const dir = dirname(path);
    const temp = tempPathFor(path);
    try {
      const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.#beforeRename?.();
      await check?.();
      await rename(temp, path);
    } catch (e: unknown) {
      await unlink(temp).catch(() => {});
      if (e instanceof StoreError) throw e;
      throw new StoreError(`cannot write ${path}: ${errnoCode(e) ?? 'I/O error'}`, {
        retryable: false,
        cause: e,
      });
    }
    const dirHandle = await open(dir, constants.O_RDONLY).catch(() => undefined);
    await dirHandle?.sync().catch(() => {});
    await dirHandle?.close();
    // Temp files a killed writer left behind hold tokens: its pid is in the name, so they go at once.
    await removeAbandonedTemps(path);
  }

  /** A lock file (O_EXCL) makes compare-then-rename one step across processes. A dead holder's lock goes stale. */
  async #withLock<T>(target: string, fn: (stillHeld: () => Promise<void>) => Promise<T>): Promise<T> {
    const lockPath = `${target}.lock`;
    const held = await this.#acquireLock(lockPath);
    await removeAbandonedTemps(lockPath);
    const stillHeld = async () => {
      if (!sameLock(await lockAt(lockPath), held)) {
        throw new StoreError(`${this.path}: another writer took the lock over; not writing`, {
          retryable: true,
        });
      }
    };
    try {
      return await fn(stillHeld);
    } finally {
      // Never remove a lock that is no longer this writer's.
      await removeLockIf(lockPath, held);
    }
  }

  /**
   * Waits for the lock until the deadline, pausing with backoff between tries. A stale lock is removed (only that
   * lock: see removeLockIf) and the lock tried again after the same pause, so a stale lock that cannot be removed
   * does not spin past the deadline.
   */
  async #acquireLock(lockPath: string): Promise<LockId> {
    const deadline = Date.now() + this.#lockWaitMs;
    for (let attempt = 1; ; attempt++) {
      const held = await this.#tryLock(lockPath);
      if (held) return held;
      const stale = await staleLock(lockPath);
      if (stale !== undefined) {
        await this.#onStaleLock?.();
        await removeLockIf(lockPath, stale);
      }
      if (Date.now() > deadline) {
        throw new StoreError(`${this.path} is locked by another writer`, { retryable: true });
      }
      await sleep(backoffDelay(attempt, LOCK_BACKOFF));
    }
  }

  /**
   * The lock, when this process now holds it; undefined when someone else does. The lock appears whole, pid and token
   * already in it (a temp file linked into place: link never replaces), so a writer killed at any point leaves either
   * no lock or one that names its dead pid, never an empty lock nobody can judge.
   */
  async #tryLock(lockPath: string): Promise<LockId | undefined> {
    const content = `${process.pid} ${randomBytes(6).toString('hex')}\n`;
    const temp = tempPathFor(lockPath);
    try {
      await writeFile(temp, content, { flag: 'wx', mode: 0o600 });
      await link(temp, lockPath);
      return { ino: (await stat(temp)).ino, content };
    } catch (e: unknown) {
      if (errnoCode(e) === 'EEXIST') return undefined;
      throw new StoreError(`cannot lock ${this.path}: ${errnoCode(e) ?? 'I/O error'}`, {
        retryable: false,
        cause: e,
      });
    } finally {
      await unlink(temp).catch(() => {});
    }
  }
}
