// The refresh engine: read → decide → take the lease → renew with Kite → write back with compare-and-swap.
// It knows stores only through ConfigStore, so the same code runs against a file, S3 or Secrets Manager.
import { randomUUID } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ConflictError,
  describeError,
  isTokenRejected,
  KiteApiError,
  LoginRequiredError,
  RefreshBusyError,
  TokenNotStoredError,
} from '../shared/errors.ts';
import { type Log, silentLog } from '../shared/log.ts';
import { maskToken } from '../shared/mask.ts';
import type { ConfigStore, KeptTokens } from '../store/config-store.ts';
import { type BrokerConfig, hasRefreshToken } from './broker-config.ts';
import { type DueReason, formatIst, parseStoredInstant, refreshDue } from './expiry.ts';
import {
  clearKeptTokens,
  keptTokensUsable,
  loadLocalRescue,
  localRescuePath,
  saveLocalRescue,
  storedIssuedAt,
  TokensNotWrittenError,
  tokensFromSession,
  type WriteRetry,
  withTokens,
  writeTokens,
} from './token-write.ts';

/** What the engine needs from a Kite session: KiteClient's session type fits. */
export interface RenewedSession {
  userId: string;
  accessToken: string;
  refreshToken: string;
  loginTime?: string | undefined;
}

/** What the engine needs from Kite: KiteClient fits. */
export interface TokenRenewer {
  renewAccessToken(refreshToken: string): Promise<RenewedSession>;
}

export interface RefreshDeps {
  store: ConfigStore;
  /** Builds a Kite client for this config (api_key and base_url come from it). */
  kite: (config: BrokerConfig) => TokenRenewer;
  log?: Log;
  now?: () => Date;
  /** Renew when less than this remains. Default 2 h. */
  windowMs?: number;
  /** Identifies this refresher in the lease. Default host:pid:random. */
  owner?: string;
  /** How long a lease protects a renewal in progress: Kite's 20 s retry budget plus the 15 s write budget, with room. */
  leaseTtlMs?: number;
  /** How long to wait for another refresher's lease before giving up. */
  leaseWaitMs?: number;
  /** How often a waiting refresher re-reads the document, at most; it starts at a quarter of this and backs off. */
  pollMs?: number;
  /** How long a renewal (lease, Kite, write) usually takes: waiters sleep through it before polling. */
  expectedRenewalMs?: number;
  /** The longest a renewal may take: Kite's 20 s retry budget plus the 15 s write budget. */
  renewalBudgetMs?: number;
  /** Retries of the final write; a token Kite issued is worth waiting for. */
  writeRetry?: WriteRetry;
  /** Folder for the local copy of tokens a failed write could not store. Default: the OS temp folder. */
  rescueDir?: string;
}

export interface RefreshRequest {
  /** Renew even if the token is not due. */
  force?: boolean;
  /** The access token a caller saw Kite reject (401/403). */
  failedAccessToken?: string;
  /**
   * When the caller will be stopped (epoch ms; a Lambda's remaining time). A renewal needs `renewalBudgetMs`:
   * one that could be cut off mid-write is not started, and waiting for another refresher ends in time.
   */
  deadline?: number;
}

interface TokenOutcome {
  status: 'fresh' | 'refreshed' | 'already_fresh';
  accessToken: string;
  expiresAt: Date | undefined;
  userId: string | undefined;
  /** Why a refresh was due (refreshed only). */
  reason?: DueReason;
  config: BrokerConfig;
}

interface LoginOutcome {
  status: 'login_required';
  reason: LoginRequiredError['reason'];
  config: BrokerConfig;
}

export type RefreshOutcome = (TokenOutcome | LoginOutcome) & {
  /** Requests that reached Kite's renew endpoint (0 or 1). */
  kiteCalls: number;
  /** Wall time of the Kite renewal, when there was one. */
  kiteMs?: number;
};

const DEFAULTS = {
  leaseTtlMs: 60_000,
  leaseWaitMs: 20_000,
  pollMs: 50,
  expectedRenewalMs: 100,
  renewalBudgetMs: 35_000,
};

function withoutLease(config: BrokerConfig): BrokerConfig {
  const { refresh_lease: _lease, ...rest } = config;
  return rest as BrokerConfig;
}

function expiryOf(config: BrokerConfig): Date | undefined {
  return parseStoredInstant(config.access_token_expires_at, 'access_token_expires_at');
}

/**
 * Keeps the config's access token fresh. Returns what happened; throws LoginRequiredError when Kite rejects the
 * refresh token, TokenNotStoredError when a renewed token could not be written (it is kept for the next run),
 * RefreshBusyError when another refresher's lease outlasted the wait, and the Kite or store error otherwise.
 */
export async function refreshToken(deps: RefreshDeps, request: RefreshRequest = {}): Promise<RefreshOutcome> {
  const log = deps.log ?? silentLog;
  const now = deps.now ?? (() => new Date());
  const owner = deps.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const leaseTtlMs = deps.leaseTtlMs ?? DEFAULTS.leaseTtlMs;
  const leaseWaitMs = deps.leaseWaitMs ?? DEFAULTS.leaseWaitMs;
  const pollMs = deps.pollMs ?? DEFAULTS.pollMs;
  const expectedRenewalMs = deps.expectedRenewalMs ?? DEFAULTS.expectedRenewalMs;
  let waits = 0;
  const started = Date.now();
  const renewalBudgetMs = deps.renewalBudgetMs ?? DEFAULTS.renewalBudgetMs;
  const timeLeft = () =>
    request.deadline === undefined ? Number.POSITIVE_INFINITY : request.deadline - Date.now();
  let firstSeenToken: string | undefined;
  let announced = false;

  for (let round = 0; ; round++) {
    const { config, version } = await deps.store.read();
    const expiresAt = expiryOf(config);
    firstSeenToken ??= config.api_secret;
    const byClock = refreshDue({
      accessToken: config.api_secret,
      expiresAt,
      now: now(),
      windowMs: deps.windowMs,
    });
    const tokenOutcome = (status: TokenOutcome['status'], reason?: DueReason): RefreshOutcome => ({
      status,
      accessToken: config.api_secret,
      expiresAt,
      userId: config.user_id,
      config,
      kiteCalls: 0,
      ...(reason ? { reason } : {}),
    });

    // Someone else renewed while this refresher waited, or the caller's rejected token is already replaced.
    if (!byClock.due && round > 0 && config.api_secret !== firstSeenToken)
      return tokenOutcome('already_fresh');
    const rejected =
      request.failedAccessToken !== undefined && request.failedAccessToken === config.api_secret;
    if (!byClock.due && request.failedAccessToken !== undefined && !rejected)
      return tokenOutcome('already_fresh');

    const decision = refreshDue({
      accessToken: config.api_secret,
      expiresAt,
      now: now(),
      windowMs: deps.windowMs,
      rejected,
      force: request.force === true && config.api_secret === firstSeenToken,
    });
    if (!decision.due) return tokenOutcome('fresh');

    // Another refresher is renewing: wait for its result rather than ask Kite again. Its lease says when it
    // started, so a waiter sleeps through the expected renewal and then polls briskly, backing off if Kite is slow.
    const lease = config.refresh_lease;
    if (lease && lease.owner !== owner && Date.parse(lease.until) > now().getTime()) {
      if (Date.now() - started > leaseWaitMs || timeLeft() < expectedRenewalMs) {
        throw new RefreshBusyError(
          `another refresher (${lease.owner}) holds the refresh lease on ${deps.store.location} until ${lease.until}`,
        );
      }
      const expectedDone = lease.since ? Date.parse(lease.since) + expectedRenewalMs : Number.NaN;
      const untilExpected = expectedDone - now().getTime();
      const delay = untilExpected > 0 ? untilExpected : Math.min((pollMs / 4) * 1.5 ** waits++, pollMs * 4);
      await sleep(delay * (0.8 + Math.random() * 0.4));
      continue;
    }

    // Tokens a failed write kept on this machine go in before anything asks Kite again.
    const localPath = localRescuePath(deps.store.location, deps.rescueDir);
    const local = await loadLocalRescue(localPath);
    if (local && keptTokensUsable(local, config, now())) {
      const stored = await storeRescued(deps, config, version, local, log);
      if (stored) {
        await clearKeptTokens(deps.store, deps.rescueDir);
        return stored;
      }
      continue;
    }
    // Older than what is stored, or expired: a later run must not write it back.
    if (local) await unlink(localPath).catch(() => {});

    if (!hasRefreshToken(config)) {
      // A login whose write failed kept its token in the store's rescue slot: store it rather than ask a human.
      const rescued = await deps.store.loadRescue().catch(() => null);
      if (rescued && keptTokensUsable(rescued, config, now())) {
        const stored = await storeRescued(deps, config, version, rescued, log);
        if (stored) {
          await deps.store.clearRescue().catch(() => {});
          return stored;
        }
        continue;
      }
      log.warn('⚠️  No refresh token configured', {
        location: deps.store.location,
        reason:
          'a daily Kite login is needed (Kite issues refresh tokens only to exchange-approved platforms)',
      });
      return { status: 'login_required', reason: 'no_refresh_token', config, kiteCalls: 0 };
    }

    if (timeLeft() < renewalBudgetMs) {
      throw new RefreshBusyError(
        `only ${Math.max(0, Math.round(timeLeft() / 1000))} s left in this invocation, less than a renewal may take; not starting one`,
      );
    }
    if (!announced) {
      log.info('🔄 Refreshing Kite access token...', {
        location: deps.store.location,
        reason: decision.reason,
      });
      announced = true;
    }
    const leased: BrokerConfig = {
      ...config,
      refresh_lease: {
        owner,
        since: now().toISOString(),
        until: new Date(now().getTime() + leaseTtlMs).toISOString(),
      },
    };
    let leaseVersion: string;
    try {
      leaseVersion = await deps.store.write(leased, version);
    } catch (e: unknown) {
      if (!(e instanceof ConflictError)) throw e;
      // Someone else just took the lease: their renewal takes about expectedRenewalMs, so read again after it.
      await sleep(expectedRenewalMs * (0.8 + Math.random() * 0.4));
      continue;
    }

    const kiteStarted = Date.now();
    let session: RenewedSession;
    try {
      session = await deps.kite(config).renewAccessToken(config.refresh_token ?? '');
    } catch (e: unknown) {
      await releaseLease(deps.store, leased, leaseVersion);
      const kiteMs = Date.now() - kiteStarted;
      // Only Kite's TokenException means the refresh token is dead; a 403 page from anything in between is not.
      if (isTokenRejected(e)) {
        // A refresh token Kite rotated during a write that failed is kept in the store's rescue slot.
        const recovered = await recoverFromStoreRescue(deps, config, now(), log);
        if (recovered) return { ...recovered, kiteCalls: 1, kiteMs };
      }
      logFailure(log, e);
      if (isTokenRejected(e)) {
        throw new LoginRequiredError(
          `Kite rejected the refresh token (403 ${e.errorType}: ${e.message}); log in again to get a new one`,
          { reason: 'refresh_token_rejected', cause: e },
        );
      }
      throw e;
    }
    const kiteMs = Date.now() - kiteStarted;
    const tokens = tokensFromSession(session, now());
    // Kept on local disk before the store is touched: if the function is stopped mid-write, the next run in this
    // container still has them.
    await saveLocalRescue(localPath, tokens).catch(() => {});
    const written = await writeRenewal(deps, { config: leased, version: leaseVersion }, tokens, owner, log);
    await unlink(localPath).catch(() => {});
    log.info('✅ Token refreshed successfully', {
      oldToken: maskToken(config.api_secret),
      newToken: maskToken(written.api_secret),
      expiresAt: formatIst(new Date(tokens.access_token_expires_at)),
      userId: written.user_id,
    });
    return {
      status: 'refreshed',
      accessToken: written.api_secret,
      expiresAt: expiryOf(written),
      userId: written.user_id,
      reason: decision.reason,
      config: written,
      kiteCalls: 1,
      kiteMs,
    };
  }
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
async function releaseLease(store: ConfigStore, leased: BrokerConfig, leaseVersion: string): Promise<void> {
  try {
    await store.write(withoutLease(leased), leaseVersion);
  } catch {
    // The lease times out on its own; the original error matters more.
  }
}

/** Writes rescued tokens into the document. Returns the outcome, or undefined when the document moved meanwhile. */
async function storeRescued(
  deps: RefreshDeps,
  config: BrokerConfig,
  version: string,
  tokens: KeptTokens,
  log: Log,
): Promise<RefreshOutcome | undefined> {
  const updated = withTokens(config, tokens);
  try {
    await deps.store.write(updated, version);
  } catch (e: unknown) {
    if (e instanceof ConflictError) return undefined;
    throw e;
  }
  log.info('✅ Token refreshed successfully', {
    oldToken: maskToken(config.api_secret),
    newToken: maskToken(updated.api_secret),
    expiresAt: formatIst(new Date(tokens.access_token_expires_at)),
    reason: 'stored tokens kept from an earlier run whose write failed',
  });
  return {
    status: 'refreshed',
    accessToken: updated.api_secret,
    expiresAt: expiryOf(updated),
    userId: updated.user_id,
    config: updated,
    kiteCalls: 0,
  };
}

async function recoverFromStoreRescue(
  deps: RefreshDeps,
  config: BrokerConfig,
  at: Date,
  log: Log,
): Promise<RefreshOutcome | undefined> {
  const rescued = await deps.store.loadRescue().catch(() => null);
  if (!rescued || rescued.refresh_token === config.refresh_token || !keptTokensUsable(rescued, config, at)) {
    return undefined;
  }
  const fresh = await deps.store.read();
  const outcome = await storeRescued(deps, fresh.config, fresh.version, rescued, log);
  if (outcome) await deps.store.clearRescue().catch(() => {});
  return outcome;
}

/**
 * The final write (see token-write.ts): on a conflict the tokens are re-applied to the latest document, unless
 * this refresher's lease lapsed and a later refresher stored a newer token, which then stands. If they cannot be
 * stored they are kept and TokenNotStoredError says where: no path returns success having dropped them.
 */
async function writeRenewal(
  deps: RefreshDeps,
  start: { config: BrokerConfig; version: string },
  tokens: KeptTokens,
  owner: string,
  log: Log,
): Promise<BrokerConfig> {
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
    log.error('❌ Token refresh failed', {
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
