// Storing tokens Kite just issued (a renewal or a login): compare-and-swap with retries, re-applying them on top
// of whatever changed meanwhile, and when the store will not take them, keeping them (kept-tokens.ts).
import { backoffDelay, EQUAL_JITTER, sleep } from '../shared/backoff.ts';
import { ConflictError, StoreError } from '../shared/errors.ts';
import type { ConfigStore, KeptTokens, StoredConfig } from '../store/config-store.ts';
import type { BrokerConfig } from './broker-config.ts';
import { nextExpiry, parseKiteLoginTime, toIsoIst } from './expiry.ts';
import { keepTokens } from './kept-tokens.ts';

export interface WriteRetry {
  attempts?: number;
  baseDelayMs?: number;
  budgetMs?: number;
}

const DEFAULTS = { attempts: 6, baseDelayMs: 200, budgetMs: 15_000 };
/** Equal jitter keeps a floor under each pause: a store that just failed gets at least half the backoff to recover. */
const WRITE_BACKOFF = { maxMs: 2_000, jitter: EQUAL_JITTER };

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

/** The tokens could not be written; `kept` says where copies are (empty: nowhere). */
export class TokensNotWrittenError extends Error {
  override name = 'TokensNotWrittenError';
  readonly kept: string[];
  constructor(message: string, options: { kept: string[]; cause: unknown }) {
    super(message, { cause: options.cause });
    this.kept = options.kept;
  }
}

interface WriteTokensOptions {
  store: ConfigStore;
  start: StoredConfig;
  tokens: KeptTokens;
  apply: (config: BrokerConfig) => BrokerConfig;
  superseded: (latest: BrokerConfig) => boolean;
  retry?: WriteRetry | undefined;
  rescueDir?: string | undefined;
}

type WriteAttempt =
  | { done: BrokerConfig }
  | { latest: StoredConfig; error: unknown }
  | { error: unknown; retryable: boolean };

/** One compare-and-swap write; on a conflict, the latest document (or what reading it threw). */
async function attemptWrite(
  options: Pick<WriteTokensOptions, 'store' | 'apply' | 'superseded'>,
  current: StoredConfig,
): Promise<WriteAttempt> {
  const updated = options.apply(current.config);
  try {
    await options.store.write(updated, current.version);
    return { done: updated };
  } catch (e: unknown) {
    if (!(e instanceof ConflictError)) return { error: e, retryable: e instanceof StoreError && e.retryable };
    try {
      const latest = await options.store.read();
      return options.superseded(latest.config) ? { done: latest.config } : { latest, error: e };
    } catch (readError: unknown) {
      return { error: readError, retryable: true };
    }
  }
}

/**
 * Writes `apply(document)` with compare-and-swap. Retries transient store failures with backoff; on a conflict,
 * re-reads and applies again, unless `superseded(latest)` says the document already holds something newer, which
 * then stands. When it cannot write, keeps the tokens (keepTokens) and throws TokensNotWrittenError.
 */
export async function writeTokens(options: WriteTokensOptions): Promise<BrokerConfig> {
  const attempts = options.retry?.attempts ?? DEFAULTS.attempts;
  const backoff = { baseMs: options.retry?.baseDelayMs ?? DEFAULTS.baseDelayMs, ...WRITE_BACKOFF };
  const budgetMs = options.retry?.budgetMs ?? DEFAULTS.budgetMs;
  const started = Date.now();
  let current = options.start;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const result = await attemptWrite(options, current);
    if ('done' in result) return result.done;
    lastError = result.error;
    if ('latest' in result) {
      // A conflict: apply again on top of what is there now, at once.
      current = result.latest;
      continue;
    }
    if (!result.retryable) break;
    const delay = backoffDelay(attempt, backoff);
    if (Date.now() - started + delay > budgetMs) break;
    await sleep(delay);
  }
  const kept = await keepTokens(options.store, options.tokens, options.rescueDir);
  const cause = lastError instanceof Error ? `${lastError.name}: ${lastError.message}` : String(lastError);
  throw new TokensNotWrittenError(cause, { kept, cause: lastError });
}
