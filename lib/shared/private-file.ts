// Files only this user may have written: kept tokens on local disk and the file store's rescue slot. A file counts
// only when this user owns it with mode 0600 and it is not a symlink, because both can sit in folders others write to.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { lstat, open, readdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The errno code of a file-system error ("ENOENT", "EEXIST", …), or undefined for anything else. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}
/** True when this user owns the entry (always true where the platform has no user ids). */
export function ownedByMe(info: Pick<Stats, 'uid'>): boolean {
  const uid = process.getuid?.();
  return uid === undefined || info.uid === uid;
}

function privateMode(info: Pick<Stats, 'mode'>): boolean {
  return (info.mode & 0o077) === 0;
}

/** A folder of this user's own, mode 0700 (or stricter), and not a symlink. */
export async function isPrivateFolder(folder: string): Promise<boolean> {
  const info = await lstat(folder).catch(() => undefined);
  return info?.isDirectory() === true && ownedByMe(info) && privateMode(info);
}

/**
 * Creates the folder 0700 when it is missing; throws when something else is in its place: a folder of another
 * user or one others may write to, or a symlink (which could point anywhere).
 */
export function ensurePrivateFolderSync(folder: string): void {
  try {
    mkdirSync(folder, { mode: 0o700 });
  } catch (e: unknown) {
    if (errnoCode(e) !== 'EEXIST') throw e;
  }
  const info = lstatSync(folder);
  if (!info.isDirectory() || !ownedByMe(info) || !privateMode(info)) {
    throw new Error(`${folder} is not a private folder of this user (mode 0700, not a symlink)`);
  }
}

/**
 * The text of a file this user owns with mode 0600, or null for anything else: missing, a symlink (O_NOFOLLOW),
 * not a regular file, another owner, readable or writable by others, or empty.
 */
export async function readPrivateFile(path: string): Promise<string | null> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile() || !ownedByMe(info) || !privateMode(info) || info.size === 0) return null;
    return await handle.readFile('utf8');
  } catch {
    return null;
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Writes `text` to `path` as a 0600 file, synchronously: nothing else runs between the caller having the bytes and
 * the file being in place, so no signal handler or timer can stop the process half-way in JavaScript. A temp file is
 * renamed over the target (a reader never sees half a file) before it is flushed to disk: a kill after the rename
 * leaves the whole file behind, and fsync then guards against a power cut.
 */
export function writePrivateFileSync(path: string, text: string): void {
  const temp = tempPathFor(path);
  const fd = openSync(
    temp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeSync(fd, text);
    renameSync(temp, path);
    fsyncSync(fd);
  } catch (e: unknown) {
    try {
      unlinkSync(temp);
    } catch {
      // Renamed already, or never written.
    }
    throw e;
  } finally {
    closeSync(fd);
  }
  syncFolder(dirname(path));
}

function syncFolder(folder: string): void {
  try {
    const fd = openSync(folder, constants.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some platforms cannot fsync a folder; the rename is done either way.
  }
}

/** A temp file beside `path` that names its writer's pid, so the next writer can tell an abandoned one at once. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** True when no process has this pid any more (a writer that was killed). */
export function processIsGone(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e: unknown) {
    return errnoCode(e) === 'ESRCH';
  }
}

/** A temp file older than this is abandoned even when its writer's pid lives on (a reused pid). */
export const TEMP_STALE_MS = 60_000;
/** What a killed writer can leave beside a file: a temp copy, or a stale lock it had moved aside. */
const LEFTOVER_SUFFIXES = ['.tmp', '.aside'];

/** The name a lock is moved aside under before it is removed: hidden, with this pid, so leftovers are swept. */
export function asidePathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.aside`);
}

/**
 * Temp files of `path` that killed writers left behind hold tokens: removes those whose writer is gone, and any
 * older than `staleMs` (a writer on another machine sharing the folder cannot be asked whether it lives).
 */
export async function removeAbandonedTemps(path: string, staleMs = TEMP_STALE_MS): Promise<void> {
  const folder = dirname(path);
  const prefix = `.${basename(path)}.`;
  const entries = await readdir(folder).catch(() => [] as string[]);
  for (const entry of entries) {
    if (!entry.startsWith(prefix) || !LEFTOVER_SUFFIXES.some((suffix) => entry.endsWith(suffix))) continue;
    const pid = Number(entry.slice(prefix.length).split('.')[0]);
    const full = join(folder, entry);
    const info = await stat(full).catch(() => undefined);
    const abandoned = processIsGone(pid) || (info !== undefined && Date.now() - info.mtimeMs > staleMs);
    if (info && abandoned) await unlink(full).catch(() => {});
  }
}
