// Tokens Kite issued that the store would not take are kept: in a 0600 file on this machine and in the store's
// rescue slot. The next run stores them before it asks Kite again, so a failed write never costs a renewal.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConfigStore, isKeptTokens, type KeptTokens } from '../store/config-store.ts';
import type { BrokerConfig } from './broker-config.ts';
import { storedIssuedAt } from './expiry.ts';

/** The local file that keeps tokens a failed store write would otherwise lose (0600, one per config location). */
export function localRescuePath(location: string, dir = tmpdir()): string {
  const id = createHash('sha256').update(location).digest('hex').slice(0, 16);
  return join(dir, `kite-token-rescue-${id}.json`);
}

/**
 * Tokens a failed write kept on this machine, or null. Only a file this user owns with mode 0600 counts: the temp
 * folder is shared, and a planted file must not reach the document.
 */
export async function loadLocalRescue(path: string): Promise<KeptTokens | null> {
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0 || (process.getuid && info.uid !== process.getuid())) return null;
    const value: unknown = JSON.parse(await readFile(path, 'utf8'));
    return isKeptTokens(value) ? value : null;
  } catch {
    return null;
  }
}

export async function saveLocalRescue(path: string, tokens: KeptTokens): Promise<void> {
  await unlink(path).catch(() => {});
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(tokens)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Keeps tokens on local disk and in the store's rescue slot. Returns where they went. */
export async function keepTokens(
  store: ConfigStore,
  tokens: KeptTokens,
  rescueDir?: string,
): Promise<string[]> {
  const kept: string[] = [];
  const path = localRescuePath(store.location, rescueDir);
  try {
    await saveLocalRescue(path, tokens);
    kept.push(path);
  } catch {
    // The store's slot is the other copy; one is enough.
  }
  try {
    await store.saveRescue(tokens);
    kept.push(`${store.location} (rescue slot)`);
  } catch {
    // Reported through `kept`.
  }
  return kept;
}

/** Kept tokens are worth storing only if they are newer than the document's and not yet expired. */
export function keptTokensUsable(kept: KeptTokens, config: BrokerConfig, now: Date): boolean {
  return (
    kept.access_token !== config.api_secret &&
    Date.parse(kept.issued_at) > storedIssuedAt(config) &&
    Date.parse(kept.access_token_expires_at) > now.getTime()
  );
}

/** Removes kept copies once the tokens (or newer ones) are in the document. */
export async function clearKeptTokens(store: ConfigStore, rescueDir?: string): Promise<void> {
  await unlink(localRescuePath(store.location, rescueDir)).catch(() => {});
  await store.clearRescue().catch(() => {});
}
