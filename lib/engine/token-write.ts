// Storing tokens Kite just issued (a renewal or a login): compare-and-swap with retries, re-applying them on top
// of whatever changed meanwhile, and when the store will not take them, keeping them (kept-tokens.ts).
import { backoffDelay, EQUAL_JITTER, sleep } from '../shared/backoff.ts';
import { AppError, ConflictError, describeError, StoreError } from '../shared/errors.ts';
import type { ConfigStore, KeptTokens, StoredConfig } from '../store/config-store.ts';
import { type BrokerConfig, type TokenSource, tokenDigest } from './broker-config.ts';
import { keepTokens, saveStoreRescue } from './kept-tokens.ts';

export interface WriteRetry {
  attempts?: number;
  baseDelayMs?: number;
  budgetMs?: number;
}

const DEFAULTS = { attempts: 6, baseDelayMs: 200, budgetMs: 15_000 };
/** Equal jitter keeps a floor under each pause: a store that just failed gets at least half the backoff to recover. */
const WRITE_BACKOFF = { maxMs: 2_000, jitter: EQUAL_JITTER };

/**
 * `base` with the tokens in place, where they came from (`source`), and no refresh lease (whoever held it is done,
 * or superseded).
 */
export function withTokens(base: BrokerConfig, tokens: KeptTokens, source: TokenSource): BrokerConfig {
  // A stored token answers any renewal whose answer was lost: that note goes with the lease.
  const {
    refresh_lease: _lease,
    unanswered_renewal_at: _unanswered,
    ...rest
  } = base as BrokerConfig & {
    unanswered_renewal_at?: unknown;
  };
  return {
    ...rest,
    api_secret: tokens.access_token,
    // Kite answers "" to apps it issues no refresh token to; keep the one the config has then.
    refresh_token: tokens.refresh_token || base.refresh_token,
    access_token_expires_at: tokens.access_token_expires_at,
    refreshed_at: tokens.issued_at,
    token_source: source,
    ...(tokens.user_id ? { user_id: tokens.user_id } : {}),
    // The token just replaced, as a digest: a caller still holding it is recognised as this account's in a
    // deployment of several accounts, in any container, though the document no longer holds the token itself.
    ...(base.api_secret && base.api_secret !== tokens.access_token
      ? { replaced_token_sha256: tokenDigest(base.api_secret) }
      : {}),
  } as BrokerConfig;
}

/** The tokens could not be written; `kept` says where copies are (empty: nowhere). */
export class TokensNotWrittenError extends AppError {
  override name = 'TokensNotWrittenError';
  readonly kept: string[];
  constructor(message: string, options: { kept: string[]; cause: unknown }) {
    super(message, { retryable: true, cause: options.cause });
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

/** Where the write loop stands: the document to write on, the last failure, and whether the store's slot has a copy. */
interface WriteState {
  current: StoredConfig;
  lastError: unknown;
  inStoreSlot: boolean;
}

/**
 * After a failed attempt: a conflict applies again at once on the latest document; a store failure first puts a copy
 * in the store's rescue slot (at the first failure, and again after each failure until one lands), then pauses.
 * Returns false when the loop should stop.
 */
async function afterFailure(
  options: WriteTokensOptions,
  state: WriteState,
  result: Exclude<WriteAttempt, { done: BrokerConfig }>,
  pause: {
    attempt: number;
    started: number;
    budgetMs: number;
    backoff: typeof WRITE_BACKOFF & { baseMs: number };
  },
): Promise<boolean> {
  state.lastError = result.error;
  if ('latest' in result) {
    state.current = result.latest;
    return true;
  }
  if (!state.inStoreSlot) state.inStoreSlot = await saveStoreRescue(options.store, options.tokens);
  if (!result.retryable) return false;
  const delay = backoffDelay(pause.attempt, pause.backoff);
  if (Date.now() - pause.started + delay > pause.budgetMs) return false;
  await sleep(delay);
  return true;
}

/**
 * Writes `apply(document)` with compare-and-swap. Retries transient store failures with backoff; on a conflict,
 * re-reads and applies again, unless `superseded(latest)` says the document already holds something newer, which
 * then stands. From the first failed write on, a copy sits in the store's rescue slot (removed once the write lands).
 * When it cannot write, keeps the tokens (keepTokens) and throws TokensNotWrittenError.
 */
export async function writeTokens(options: WriteTokensOptions): Promise<BrokerConfig> {
  const attempts = options.retry?.attempts ?? DEFAULTS.attempts;
  const backoff = { baseMs: options.retry?.baseDelayMs ?? DEFAULTS.baseDelayMs, ...WRITE_BACKOFF };
  const budgetMs = options.retry?.budgetMs ?? DEFAULTS.budgetMs;
  const started = Date.now();
  const state: WriteState = { current: options.start, lastError: undefined, inStoreSlot: false };
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const result = await attemptWrite(options, state.current).catch(async (refusal: unknown) => {
      // `apply` refused these tokens on the latest document (a login for another account, a used link): the copy
      // an earlier failed attempt put in the store's slot must not be stored by a later run either.
      if (state.inStoreSlot) await options.store.clearRescue().catch(() => {});
      throw refusal;
    });
    if ('done' in result) {
      if (state.inStoreSlot) await options.store.clearRescue().catch(() => {});
      return result.done;
    }
    if (!(await afterFailure(options, state, result, { attempt, started, budgetMs, backoff }))) break;
  }
  const kept = await keepTokens(options.store, options.tokens, {
    rescueDir: options.rescueDir,
    inStoreSlot: state.inStoreSlot,
  });
  const { lastError } = state;
  throw new TokensNotWrittenError(describeError(lastError), { kept, cause: lastError });
}
