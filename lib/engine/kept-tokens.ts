// Tokens Kite issued that the store would not take are kept: in a 0600 file in a private folder of this user and in
// the store's rescue slot. The next run stores them before it asks Kite again, so a failed write never costs a renewal.
import { createHash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  ensurePrivateFolderSync,
  isPrivateFolder,
  processIsGone,
  readPrivateFile,
  removeAbandonedTemps,
  writePrivateFileSync,
} from '../shared/private-file.ts';
import { type ConfigStore, isKeptTokens, type KeptTokens } from '../store/config-store.ts';
import type { BrokerConfig, RefreshLease, TokenSource } from './broker-config.ts';
import { nextExpiry, parseKiteLoginTime, storedIssuedAt, toIsoIst } from './expiry.ts';

/** Clocks differ a little between machines; an issue time further ahead than this is not believed. */
const FUTURE_SKEW_MS = 2 * 60_000;
/** A temp file older than this was left by a writer that died: each local write takes milliseconds. */

/**
 * This user's private folder for local copies, under `dir` (default the OS temp folder, which others share: the
 * folder must be ours and 0700, so nobody else can place or replace a file in it).
 */
export function localRescueFolder(dir = tmpdir()): string {
  return join(dir, `kite-token-${process.getuid?.() ?? 'user'}`);
}

/** The local file that keeps tokens a failed store write would otherwise lose (0600, one per config location). */
export function localRescuePath(location: string, dir = tmpdir()): string {
  const id = createHash('sha256').update(location).digest('hex').slice(0, 16);
  return join(localRescueFolder(dir), `kite-token-rescue-${id}.json`);
}

/**
 * Kite's login_time, when it is close to now. A renewal may echo the original login's time, or a clock may be off;
 * either would put the 06:00 expiry a day early (a token that looks dead at once) or far away (never renewed).
 */
function plausibleLoginTime(loginTime: string | undefined, issuedAt: Date): Date | undefined {
  const at = parseKiteLoginTime(loginTime);
  if (!at) return undefined;
  const skew = at.getTime() - issuedAt.getTime();
  return skew > -10 * 60_000 && skew < 2 * 60_000 ? at : undefined;
}

/** The tokens of a session Kite just issued, with their 06:00 IST expiry (from Kite's login_time when it sent one). */
export function tokensFromSession(
  session: { userId: string; accessToken: string; refreshToken: string; loginTime?: string | undefined },
  issuedAt: Date,
  source: TokenSource,
): KeptTokens {
  return {
    access_token: session.accessToken,
    refresh_token: session.refreshToken,
    user_id: session.userId,
    access_token_expires_at: toIsoIst(
      nextExpiry(plausibleLoginTime(session.loginTime, issuedAt) ?? issuedAt),
    ),
    // To the millisecond: two renewals within one second must still tell which is newer.
    issued_at: toIsoIst(issuedAt, { ms: true }),
    token_source: source,
  };
}

/**
 * Where kept tokens came from. Copies kept before the source was recorded lack it: a refresh token among them means
 * a renewal (or a login on an approved platform, which gets one too), none means a login.
 */
export function keptTokenSource(kept: KeptTokens): TokenSource {
  if (kept.token_source === 'login' || kept.token_source === 'renewal') return kept.token_source;
  return kept.refresh_token ? 'renewal' : 'login';
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/**
 * The tokens in Kite's raw success answer to a renewal, read with nothing but JSON.parse so they can be kept the
 * moment the bytes arrive; undefined for anything else (an error body, a page from a proxy). `userId` stands in when
 * the answer names no user: the refresh token that was renewed is the document's, so the user is too.
 */
export function tokensFromAnswer(body: string, issuedAt: Date, userId: string): KeptTokens | undefined {
  let envelope: unknown;
  try {
    envelope = JSON.parse(body);
  } catch {
    return undefined;
  }
  const data = (envelope as { status?: unknown; data?: Record<string, unknown> } | null) ?? {};
  if (data.status !== 'success' || typeof data.data !== 'object' || data.data === null) return undefined;
  const d = data.data;
  if (!text(d.access_token)) return undefined;
  return tokensFromSession(
    {
      userId: text(d.user_id) || userId,
      accessToken: text(d.access_token),
      refreshToken: text(d.refresh_token),
      loginTime: text(d.login_time) || undefined,
    },
    issuedAt,
    'renewal',
  );
}

/**
 * Tokens a failed write kept on this machine, or null. Only a file in this user's private folder, owned by this user
 * with mode 0600, opened without following a symlink, counts; an empty or partial file is ignored.
 */
export async function loadLocalRescue(path: string): Promise<KeptTokens | null> {
  if (!(await isPrivateFolder(dirname(path)))) return null;
  const content = await readPrivateFile(path);
  if (content === null) return null;
  try {
    const value: unknown = JSON.parse(content);
    return isKeptTokens(value) ? value : null;
  } catch {
    return null;
  }
}

/**
 * Keeps tokens on local disk, synchronously (see writePrivateFileSync): called the moment Kite's answer arrives.
 * Throws when the private folder cannot be made or is not ours.
 */
export function saveLocalRescue(path: string, tokens: KeptTokens): void {
  ensurePrivateFolderSync(dirname(path));
  writePrivateFileSync(path, `${JSON.stringify(tokens)}\n`);
  void removeAbandonedTemps(path).catch(() => {});
}

/** Lease owners of the runs in this process that are between asking Kite and storing the answer. */
const renewingHere = new Set<string>();

/** Marks `owner` as renewing in this process until the returned function is called. */
export function markRenewing(owner: string): () => void {
  renewingHere.add(owner);
  return () => renewingHere.delete(owner);
}

/**
 * True when a local copy belongs to a renewal still in progress: the run that kept it holds the document's live lease
 * and is still running (in this process, or in another live process on this machine). That run stores it; anyone
 * else's copy, or one whose run died, goes in at once.
 */
export function keptByLiveRenewal(kept: KeptTokens, lease: RefreshLease | undefined, now: Date): boolean {
  const by = kept.kept_by;
  if (!by || !lease || lease.owner !== by.owner || Date.parse(lease.until) <= now.getTime()) return false;
  if (by.pid === process.pid) return renewingHere.has(by.owner);
  return !processIsGone(by.pid);
}

/** Removes the local copy once its tokens (or newer ones) are in the document. */
export async function clearLocalRescue(path: string): Promise<void> {
  await unlink(path).catch(() => {});
}

/** Keeps tokens on local disk and, unless it already holds them, in the store's rescue slot. Returns where they went. */
export async function keepTokens(
  store: ConfigStore,
  tokens: KeptTokens,
  options: { rescueDir?: string | undefined; inStoreSlot?: boolean } = {},
): Promise<string[]> {
  const kept: string[] = [];
  const path = localRescuePath(store.location, options.rescueDir);
  try {
    saveLocalRescue(path, tokens);
    kept.push(path);
  } catch {
    // The store's slot is the other copy; one is enough.
  }
  if (options.inStoreSlot || (await saveStoreRescue(store, tokens)))
    kept.push(`${store.location} (rescue slot)`);
  return kept;
}

/** Puts the tokens in the store's rescue slot. True when they are there. */
export async function saveStoreRescue(store: ConfigStore, tokens: KeptTokens): Promise<boolean> {
  try {
    await store.saveRescue(tokens);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why kept tokens must not go into the document, or undefined when they may. Kept tokens come from a file or a
 * store others may be able to write, so they must belong to the pinned user and be issued no later than now; and
 * they are worth storing only if newer than the document's token and not yet expired.
 */
export function keptTokensProblem(
  kept: KeptTokens,
  config: BrokerConfig,
  now: Date,
): 'other_user' | 'from_the_future' | 'not_newer' | 'expired' | undefined {
  const issuedAt = Date.parse(kept.issued_at);
  if (config.user_id && kept.user_id !== config.user_id) return 'other_user';
  if (!(issuedAt <= now.getTime() + FUTURE_SKEW_MS)) return 'from_the_future';
  if (kept.access_token === config.api_secret || !(issuedAt > storedIssuedAt(config))) return 'not_newer';
  if (!(Date.parse(kept.access_token_expires_at) > now.getTime())) return 'expired';
  return undefined;
}

/** Kept tokens may go into the document: see keptTokensProblem. */
export function keptTokensUsable(kept: KeptTokens, config: BrokerConfig, now: Date): boolean {
  return keptTokensProblem(kept, config, now) === undefined;
}

/** Removes kept copies once the tokens (or newer ones) are in the document. */
export async function clearKeptTokens(store: ConfigStore, rescueDir?: string): Promise<void> {
  await clearLocalRescue(localRescuePath(store.location, rescueDir));
  await store.clearRescue().catch(() => {});
}
