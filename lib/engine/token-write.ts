// Storing tokens Kite just issued (a renewal or a login): compare-and-swap with retries, re-applying them on top
// of whatever changed meanwhile, and when the store will not take them, keeping them where the next run finds them.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError, StoreError } from '../shared/errors.ts';
import { type ConfigStore, isKeptTokens, type KeptTokens, type StoredConfig } from '../store/config-store.ts';
import type { BrokerConfig } from './broker-config.ts';
import { nextExpiry, parseKiteLoginTime, toIsoIst } from './expiry.ts';

export interface WriteRetry {
  attempts?: number;
  baseDelayMs?: number;
  budgetMs?: number;
}

const DEFAULTS = { attempts: 6, baseDelayMs: 200, budgetMs: 15_000 };

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
): KeptTokens {
  return {
    access_token: session.accessToken,
    refresh_token: session.refreshToken,
    user_id: session.userId,
    access_token_expires_at: toIsoIst(
      nextExpiry(plausibleLoginTime(session.loginTime, issuedAt) ?? issuedAt),
    ),
    issued_at: toIsoIst(issuedAt),
  };
}

/** `base` with the tokens in place and no refresh lease (whoever held it is done, or superseded). */
export function withTokens(base: BrokerConfig, tokens: KeptTokens): BrokerConfig {
  const { refresh_lease: _lease, ...rest } = base;
  return {
    ...rest,
    api_secret: tokens.access_token,
    // Kite answers "" to apps it issues no refresh token to; keep the one the config has then.
    refresh_token: tokens.refresh_token || base.refresh_token,
    access_token_expires_at: tokens.access_token_expires_at,
    refreshed_at: tokens.issued_at,
    ...(tokens.user_id ? { user_id: tokens.user_id } : {}),
  } as BrokerConfig;
}

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

/** The tokens could not be written; `kept` says where copies are (empty: nowhere). */
export class TokensNotWrittenError extends Error {
  override name = 'TokensNotWrittenError';
  readonly kept: string[];
  constructor(message: string, options: { kept: string[]; cause: unknown }) {
    super(message, { cause: options.cause });
    this.kept = options.kept;
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

/** When the document's token was issued (epoch ms); 0 when unknown. */
export function storedIssuedAt(config: BrokerConfig): number {
  const at = config.refreshed_at ? Date.parse(config.refreshed_at) : 0;
  return Number.isNaN(at) ? 0 : at;
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

/**
 * Writes `apply(document)` with compare-and-swap. Retries transient store failures with backoff; on a conflict,
 * re-reads and applies again, unless `superseded(latest)` says the document already holds something newer, which
 * then stands. When it cannot write, keeps the tokens (keepTokens) and throws TokensNotWrittenError.
 */
export async function writeTokens(options: {
  store: ConfigStore;
  start: StoredConfig;
  tokens: KeptTokens;
  apply: (config: BrokerConfig) => BrokerConfig;
  superseded: (latest: BrokerConfig) => boolean;
  retry?: WriteRetry | undefined;
  rescueDir?: string | undefined;
}): Promise<BrokerConfig> {
  const attempts = options.retry?.attempts ?? DEFAULTS.attempts;
  const baseDelayMs = options.retry?.baseDelayMs ?? DEFAULTS.baseDelayMs;
  const budgetMs = options.retry?.budgetMs ?? DEFAULTS.budgetMs;
  const started = Date.now();
  let current = options.start;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const updated = options.apply(current.config);
    try {
      await options.store.write(updated, current.version);
      return updated;
    } catch (e: unknown) {
      lastError = e;
      if (e instanceof ConflictError) {
        try {
          const latest = await options.store.read();
          if (options.superseded(latest.config)) return latest.config;
          current = latest;
          continue;
        } catch (readError: unknown) {
          lastError = readError;
        }
      } else if (!(e instanceof StoreError && e.retryable)) {
        break;
      }
      const delay = Math.min(baseDelayMs * 2 ** (attempt - 1), 2_000) * (0.5 + Math.random() / 2);
      if (Date.now() - started + delay > budgetMs) break;
      await sleep(delay);
    }
  }
  const kept = await keepTokens(options.store, options.tokens, options.rescueDir);
  const cause = lastError instanceof Error ? `${lastError.name}: ${lastError.message}` : String(lastError);
  throw new TokensNotWrittenError(cause, { kept, cause: lastError });
}
