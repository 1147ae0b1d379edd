// Renewing under the lease: take it, ask Kite once, store the new tokens with compare-and-swap. On failure the
// lease goes back at once, and only Kite's own TokenException counts as a dead refresh token.
import { sleep } from '../shared/backoff.ts';
import {
  ConflictError,
  describeError,
  isTokenRejected,
  KiteApiError,
  KiteNetworkError,
  LoginRequiredError,
  TokenNotStoredError,
} from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';
import { maskToken } from '../shared/mask.ts';
import { mustFinish } from '../shared/shutdown.ts';
import type { ConfigStore, KeptTokens, StoredConfig } from '../store/config-store.ts';
import { type BrokerConfig, refreshTokenRotates, unansweredRenewalAt } from './broker-config.ts';
import { expiryOf, formatIst, storedIssuedAt } from './expiry.ts';
import {
  clearLocalRescue,
  keptTokensUsable,
  markRenewing,
  saveLocalRescue,
  tokensFromAnswer,
  tokensFromSession,
} from './kept-tokens.ts';
import type { RefreshOutcome } from './refresh-engine.ts';
import { near, type Reading, type RefreshRun, type RoundEnd, storeKept } from './refresh-steps.ts';
import { TokensNotWrittenError, withTokens, writeTokens } from './token-write.ts';

/** Takes the lease, so other refreshers wait for this one, then renews with Kite and writes the result. */
export async function renewUnderLease(run: RefreshRun, doc: Reading): Promise<RoundEnd> {
  if (!run.announced) {
    run.log.info('🔄 Refreshing Kite access token...', {
      location: run.deps.store.location,
      reason: doc.decision.reason,
    });
    run.announced = true;
  }
  const leased: BrokerConfig = {
    ...doc.config,
    refresh_lease: {
      owner: run.owner,
      since: run.now().toISOString(),
      until: new Date(run.now().getTime() + run.leaseTtlMs).toISOString(),
    },
  };
  let leaseVersion: string;
  try {
    leaseVersion = await run.deps.store.write(leased, doc.version);
  } catch (e: unknown) {
    if (!(e instanceof ConflictError)) throw e;
    // Someone else just took the lease: their renewal takes about expectedRenewalMs, so read again after it.
    await sleep(near(run.expectedRenewalMs));
    return 'again';
  }
  // Until this run stores its renewal or ends, its local copy is its own to write (see keptByLiveRenewal).
  const stopRenewing = markRenewing(run.owner);
  try {
    return { done: await renewAndWrite(run, doc, { config: leased, version: leaseVersion }) };
  } finally {
    stopRenewing();
  }
}

/** Asks Kite for a new token and stores it; the lease in `held` is this run's. */
async function renewAndWrite(run: RefreshRun, doc: Reading, held: StoredConfig): Promise<RefreshOutcome> {
  const kiteStarted = Date.now();
  let tokens: KeptTokens;
  try {
    // A stop signal waits for this: once Kite may have acted, its answer must reach the disk.
    tokens = await mustFinish(renewKeepingAnswer(run, doc));
  } catch (e: unknown) {
    return await afterKiteFailure(run, doc, held, e, kiteStarted);
  }
  const written = await writeKeptRenewal(run, doc, held, tokens);
  const kiteMs = Date.now() - kiteStarted;
  run.log.info('✅ Token refreshed successfully', {
    oldToken: maskToken(doc.config.api_secret),
    newToken: maskToken(written.api_secret),
    expiresAt: formatIst(new Date(tokens.access_token_expires_at)),
    userId: written.user_id,
  });
  return {
    status: 'refreshed',
    accessToken: written.api_secret,
    expiresAt: expiryOf(written),
    userId: written.user_id,
    reason: doc.decision.reason,
    config: written,
    kiteCalls: 1,
    kiteMs,
  };
}

/** Stores the renewal, then drops the local copy. */
async function writeKeptRenewal(
  run: RefreshRun,
  doc: Reading,
  held: StoredConfig,
  tokens: KeptTokens,
): Promise<BrokerConfig> {
  const rotated = Boolean(tokens.refresh_token) && tokens.refresh_token !== doc.config.refresh_token;
  const written = await writeRenewal(run, held, tokens, rotated);
  await clearLocalRescue(run.localPath);
  return written;
}

function keepLocally(path: string, tokens: KeptTokens): void {
  try {
    saveLocalRescue(path, tokens);
  } catch {
    // The store's rescue slot takes a copy if the write fails; the run goes on.
  }
}

/**
 * Renews with Kite and keeps the new tokens on local disk the moment the answer's bytes arrive, before anything parses
 * them or yields to the event loop: a process stopped after that still leaves them for the next run.
 */
async function renewKeepingAnswer(run: RefreshRun, doc: Reading): Promise<KeptTokens> {
  const userId = doc.config.user_id ?? '';
  const keptBy = { kept_by: { owner: run.owner, pid: process.pid } };
  let kept: KeptTokens | undefined;
  const session = await run.deps.kite(doc.config).renewAccessToken(doc.config.refresh_token ?? '', {
    onAnswer: (body) => {
      const tokens = tokensFromAnswer(body, run.now(), userId);
      kept = tokens && { ...tokens, ...keptBy };
      if (kept) keepLocally(run.localPath, kept);
    },
    retryOnlyUnsent: refreshTokenRotates(doc.config),
  });
  if (kept?.access_token === session.accessToken) return kept;
  // An answer the quick reading could not take, or a renewer without the hook: keep it now.
  const tokens = {
    ...tokensFromSession({ ...session, userId: session.userId || userId }, run.now(), 'renewal'),
    ...keptBy,
  };
  keepLocally(run.localPath, tokens);
  return tokens;
}

/** Gives the lease back, then recovers a rotated refresh token or reports the failure. Returns only on recovery. */
async function afterKiteFailure(
  run: RefreshRun,
  doc: Reading,
  held: StoredConfig,
  e: unknown,
  kiteStarted: number,
): Promise<RefreshOutcome> {
  const unanswered = mayHaveBeenActedOn(e) ? run.now() : undefined;
  await releaseLease(run.deps.store, held, unanswered);
  const kiteMs = Date.now() - kiteStarted;
  // Only Kite's TokenException means the refresh token is dead; a 403 page from anything in between is not.
  if (isTokenRejected(e)) {
    // A refresh token Kite rotated during a write that failed is kept in the store's rescue slot.
    const recovered = await recoverFromStoreRescue(run, doc.config);
    if (recovered) return { ...recovered, kiteCalls: 1, kiteMs };
  }
  logFailure(run.log, e);
  if (isTokenRejected(e)) throw refreshTokenRejected(e, doc.config);
  throw e;
}

/** A request that may have reached Kite, and Kite may have acted on, but whose answer never came: a cut connection, a timeout. */
function mayHaveBeenActedOn(e: unknown): boolean {
  return e instanceof KiteNetworkError && e.mayHaveReachedKite;
}

/**
 * Kite refused the refresh token. When an earlier attempt (in this run, or a run the document remembers) got no
 * answer, that attempt may have renewed at Kite and retired the token: say so, rather than blame a logout.
 */
function refreshTokenRejected(e: KiteApiError, config: BrokerConfig): LoginRequiredError {
  const rejected = `Kite rejected the refresh token (403 ${e.errorType}: ${e.message})`;
  const earlier = e.cause !== undefined && mayHaveBeenActedOn(e.cause) ? describeError(e.cause) : undefined;
  const unanswered = unansweredRenewalAt(config);
  let story = 'it was revoked (a logout or a password change)';
  if (earlier) {
    story = `an earlier attempt in this run (${earlier}) may have renewed the token at Kite without its answer arriving, which retires the refresh token`;
  } else if (unanswered) {
    story = `a renewal at ${formatIst(new Date(unanswered))} got no answer and may have renewed the token at Kite, which retires the refresh token`;
  }
  return new LoginRequiredError(`${rejected}: ${story}; log in again to get a new one`, {
    reason: 'refresh_token_rejected',
    cause: e,
  });
}

function logFailure(log: Log, e: unknown): void {
  if (e instanceof KiteApiError) {
    log.error('❌ Token refresh failed', {
      status: e.status,
      errorType: e.errorType,
      kiteMessage: e.message,
    });
  } else {
    log.error('❌ Token refresh failed', {
      error: describeError(e),
    });
  }
}

/**
 * Gives the lease back so the next refresher need not wait for it to expire. Best effort: it expires anyway. When
 * Kite may have acted on a renewal whose answer was lost, the document notes when, for the next run's story.
 */
async function releaseLease(
  store: ConfigStore,
  held: StoredConfig,
  unanswered: Date | undefined,
): Promise<void> {
  const { refresh_lease: _lease, ...rest } = held.config;
  const note = unanswered ? { unanswered_renewal_at: unanswered.toISOString() } : {};
  try {
    await store.write({ ...rest, ...note } as BrokerConfig, held.version);
  } catch {
    // The lease times out on its own; the original error matters more.
  }
}

async function recoverFromStoreRescue(
  run: RefreshRun,
  config: BrokerConfig,
): Promise<RefreshOutcome | undefined> {
  const at = run.now();
  const rescued = await run.deps.store.loadRescue().catch(() => null);
  if (!rescued || rescued.refresh_token === config.refresh_token || !keptTokensUsable(rescued, config, at)) {
    return undefined;
  }
  const fresh = await run.deps.store.read();
  const outcome = await storeKept(run, fresh, rescued);
  if (outcome) await run.deps.store.clearRescue().catch(() => {});
  return outcome;
}

/**
 * The final write (see token-write.ts): on a conflict the tokens are re-applied to the latest document, unless
 * this refresher's lease lapsed and a later refresher stored a newer token, which then stands. If they cannot be
 * stored they are kept and TokenNotStoredError says where: no path returns success having dropped them.
 */
async function writeRenewal(
  run: RefreshRun,
  start: StoredConfig,
  tokens: KeptTokens,
  rotated: boolean,
): Promise<BrokerConfig> {
  const { deps, owner } = run;
  // Seen once, remembered: later renewals then retry only what Kite certainly did not act on.
  const rotation = rotated ? { refresh_token_rotates: true } : {};
  try {
    return await writeTokens({
      store: deps.store,
      start,
      tokens,
      apply: (base) => ({ ...withTokens(base, tokens, 'renewal'), ...rotation }),
      superseded: (latest) =>
        latest.refresh_lease?.owner !== owner && storedIssuedAt(latest) > Date.parse(tokens.issued_at),
      retry: deps.writeRetry,
      rescueDir: deps.rescueDir,
    });
  } catch (e: unknown) {
    if (!(e instanceof TokensNotWrittenError)) throw e;
    run.log.error('❌ Token refresh failed', {
      reason: `Kite renewed the token but it could not be stored (${e.message})`,
      newToken: maskToken(tokens.access_token),
      kept: e.kept.length > 0 ? e.kept : 'nowhere: neither local disk nor the store took a copy',
    });
    throw new TokenNotStoredError(
      `Kite renewed the token but writing ${deps.store.location} failed (${e.message}); ` +
        (e.kept.length > 0
          ? `the tokens are kept in ${e.kept.join(' and ')} and the next run stores them`
          : 'no copy could be kept'),
      { kept: e.kept, cause: e.cause },
    );
  }
}
