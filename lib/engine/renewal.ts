// Renewing under the lease: take it, ask Kite once, store the new tokens with compare-and-swap. On failure the
// lease goes back at once, and only Kite's own TokenException counts as a dead refresh token.
import { unlink } from 'node:fs/promises';
import { sleep } from '../shared/backoff.ts';
import {
  ConflictError,
  describeError,
  isTokenRejected,
  KiteApiError,
  LoginRequiredError,
  TokenNotStoredError,
} from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';
import { maskToken } from '../shared/mask.ts';
import type { ConfigStore, KeptTokens, StoredConfig } from '../store/config-store.ts';
import type { BrokerConfig } from './broker-config.ts';
import { expiryOf, formatIst, storedIssuedAt } from './expiry.ts';
import { keptTokensUsable, saveLocalRescue } from './kept-tokens.ts';
import type { RefreshOutcome, RenewedSession } from './refresh-engine.ts';
import { near, type Reading, type RefreshRun, type RoundEnd, storeKept } from './refresh-steps.ts';
import { TokensNotWrittenError, tokensFromSession, withTokens, writeTokens } from './token-write.ts';

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
  return { done: await renewAndWrite(run, doc, { config: leased, version: leaseVersion }) };
}

/** Asks Kite for a new token and stores it; the lease in `held` is this run's. */
async function renewAndWrite(run: RefreshRun, doc: Reading, held: StoredConfig): Promise<RefreshOutcome> {
  const kiteStarted = Date.now();
  let session: RenewedSession;
  try {
    session = await run.deps.kite(doc.config).renewAccessToken(doc.config.refresh_token ?? '');
  } catch (e: unknown) {
    return await afterKiteFailure(run, doc, held, e, kiteStarted);
  }
  const kiteMs = Date.now() - kiteStarted;
  const tokens = tokensFromSession(session, run.now());
  // Kept on local disk before the store is touched: if the function is stopped mid-write, the next run in this
  // container still has them.
  await saveLocalRescue(run.localPath, tokens).catch(() => {});
  const written = await writeRenewal(run, held, tokens);
  await unlink(run.localPath).catch(() => {});
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

/** Gives the lease back, then recovers a rotated refresh token or reports the failure. Returns only on recovery. */
async function afterKiteFailure(
  run: RefreshRun,
  doc: Reading,
  held: StoredConfig,
  e: unknown,
  kiteStarted: number,
): Promise<RefreshOutcome> {
  await releaseLease(run.deps.store, held);
  const kiteMs = Date.now() - kiteStarted;
  // Only Kite's TokenException means the refresh token is dead; a 403 page from anything in between is not.
  if (isTokenRejected(e)) {
    // A refresh token Kite rotated during a write that failed is kept in the store's rescue slot.
    const recovered = await recoverFromStoreRescue(run, doc.config);
    if (recovered) return { ...recovered, kiteCalls: 1, kiteMs };
  }
  logFailure(run.log, e);
  if (isTokenRejected(e)) {
    throw new LoginRequiredError(
      `Kite rejected the refresh token (403 ${e.errorType}: ${e.message}); log in again to get a new one`,
      { reason: 'refresh_token_rejected', cause: e },
    );
  }
  throw e;
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

/** Gives the lease back so the next refresher need not wait for it to expire. Best effort: it expires anyway. */
async function releaseLease(store: ConfigStore, held: StoredConfig): Promise<void> {
  const { refresh_lease: _lease, ...rest } = held.config;
  try {
    await store.write(rest as BrokerConfig, held.version);
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
async function writeRenewal(run: RefreshRun, start: StoredConfig, tokens: KeptTokens): Promise<BrokerConfig> {
  const { deps, owner } = run;
  try {
    return await writeTokens({
      store: deps.store,
      start,
      tokens,
      apply: (base) => withTokens(base, tokens),
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
