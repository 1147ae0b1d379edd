// The phases of one refresh round, in the order refreshToken runs them. Each looks at one read of the document and
// finishes the run, asks for a fresh read, or hands on; what outlives a round is in RefreshRun.
import { backoffDelay, sleep } from '../shared/backoff.ts';
import { ConflictError, RefreshBusyError } from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';
import { maskToken } from '../shared/mask.ts';
import type { KeptTokens, StoredConfig } from '../store/config-store.ts';
import { hasRefreshToken, type RefreshLease } from './broker-config.ts';
import { type DueDecision, expiryOf, formatIst, refreshDue, withCallerReason } from './expiry.ts';
import {
  clearKeptTokens,
  clearLocalRescue,
  keptByLiveRenewal,
  keptTokenSource,
  keptTokensProblem,
  loadLocalRescue,
} from './kept-tokens.ts';
import type { RefreshDeps, RefreshOutcome, RefreshRequest } from './refresh-engine.ts';
import { withTokens } from './token-write.ts';

/** One refreshToken call: its settings, and what it remembers from round to round. */
export interface RefreshRun {
  deps: RefreshDeps;
  request: RefreshRequest;
  log: Log;
  now: () => Date;
  owner: string;
  leaseTtlMs: number;
  leaseWaitMs: number;
  pollMs: number;
  expectedRenewalMs: number;
  renewalBudgetMs: number;
  /** Where this machine keeps tokens a failed write could not store. */
  localPath: string;
  started: number;
  /** Polls so far while another refresher held the lease; each waits longer. */
  waits: number;
  /** The access token of the first read: a different one later means someone else renewed. */
  firstSeenToken: string | undefined;
  announced: boolean;
}

/** One read of the document and what it means by the clock and for this caller. */
export interface Reading extends StoredConfig {
  round: number;
  expiresAt: Date | undefined;
  byClock: DueDecision;
  decision: DueDecision;
}

/** How a round ends: finished with this outcome, or read the document again. */
export type RoundEnd = { done: RefreshOutcome } | 'again';
/** A phase's answer: a RoundEnd, or undefined to hand on to the next phase. */
export type PhaseResult = RoundEnd | undefined;

/** A lease wait stays near the expected time: about ±20 %, enough to keep waiters from reading in step. */
const NEAR = [0.8, 1.2] as const;

/** About `ms`, jittered: the sleep through another refresher's expected renewal. */
export const near = (ms: number): number => backoffDelay(1, { baseMs: ms, maxMs: ms, jitter: NEAR });

/** Reads the document and decides by the clock once; the caller's rejection or force goes on top of that. */
export async function readDocument(run: RefreshRun, round: number): Promise<Reading> {
  const { config, version } = await run.deps.store.read();
  const expiresAt = expiryOf(config);
  run.firstSeenToken ??= config.api_secret;
  const byClock = refreshDue({
    accessToken: config.api_secret,
    expiresAt,
    now: run.now(),
    windowMs: run.deps.windowMs,
  });
  const failed = run.request.failedAccessToken;
  const decision = withCallerReason(byClock, {
    rejected: failed !== undefined && failed === config.api_secret,
    force: run.request.force === true && config.api_secret === run.firstSeenToken,
  });
  return { config, version, round, expiresAt, byClock, decision };
}

function tokenOutcome(doc: Reading, status: 'fresh' | 'already_fresh'): { done: RefreshOutcome } {
  const { config } = doc;
  return {
    done: {
      status,
      accessToken: config.api_secret,
      expiresAt: doc.expiresAt,
      userId: config.user_id,
      config,
      kiteCalls: 0,
    },
  };
}

/** Someone else renewed while this run waited, or the caller's rejected token is already replaced. */
function replacedMeanwhile(run: RefreshRun, doc: Reading): boolean {
  const token = doc.config.api_secret;
  const failed = run.request.failedAccessToken;
  return (doc.round > 0 && token !== run.firstSeenToken) || (failed !== undefined && failed !== token);
}

/** Nothing to do when the token is fresh, or when the one that was not is already replaced. */
export function decide(run: RefreshRun, doc: Reading): PhaseResult {
  if (!doc.byClock.due && replacedMeanwhile(run, doc)) return tokenOutcome(doc, 'already_fresh');
  return doc.decision.due ? undefined : tokenOutcome(doc, 'fresh');
}

function heldByOther(run: RefreshRun, lease: RefreshLease | undefined): lease is RefreshLease {
  return lease !== undefined && lease.owner !== run.owner && Date.parse(lease.until) > run.now().getTime();
}

/**
 * Another refresher is renewing: wait for its result rather than ask Kite again. Its lease says when it started,
 * so a waiter sleeps through the expected renewal and then polls briskly, backing off if Kite is slow.
 */
export async function waitForOtherLease(run: RefreshRun, doc: Reading): Promise<PhaseResult> {
  const lease = doc.config.refresh_lease;
  if (!heldByOther(run, lease)) return undefined;
  if (Date.now() - run.started > run.leaseWaitMs || timeLeft(run) < run.expectedRenewalMs) {
    throw new RefreshBusyError(
      `another refresher (${lease.owner}) holds the refresh lease on ${run.deps.store.location} until ${lease.until}`,
    );
  }
  const expectedDone = lease.since ? Date.parse(lease.since) + run.expectedRenewalMs : Number.NaN;
  const untilExpected = expectedDone - run.now().getTime();
  if (untilExpected > 0) {
    await sleep(near(untilExpected));
  } else {
    run.waits++;
    const poll = { baseMs: run.pollMs / 4, maxMs: run.pollMs * 4, factor: 1.5, jitter: NEAR };
    await sleep(backoffDelay(run.waits, poll));
  }
  return 'again';
}

/**
 * Whether kept tokens may go in; a copy that must never go in (another user's, dated in the future) is reported,
 * since only someone else can have put it there.
 */
function trustKept(run: RefreshRun, doc: Reading, kept: KeptTokens, where: string): boolean {
  const problem = keptTokensProblem(kept, doc.config, run.now());
  if (problem === 'other_user' || problem === 'from_the_future') {
    run.log.warn('⚠️  Kept tokens ignored', {
      location: where,
      reason:
        problem === 'other_user'
          ? `they belong to ${kept.user_id || 'no user'}, not to the pinned ${doc.config.user_id}`
          : 'they claim to be issued in the future',
    });
  }
  return problem === undefined;
}

/**
 * Tokens a failed write kept on this machine go in before anything asks Kite again, and before any lease is waited
 * for: the lease may be this machine's own dead run, and compare-and-swap keeps the write safe. Storing them clears
 * the lease they supersede.
 */
export async function storeLocalKept(run: RefreshRun, doc: Reading): Promise<PhaseResult> {
  const local = await loadLocalRescue(run.localPath);
  if (!local || keptByLiveRenewal(local, doc.config.refresh_lease, run.now())) return undefined;
  if (!trustKept(run, doc, local, run.localPath)) {
    // Older than what is stored, expired, or not this user's: a later run must not write it back.
    await clearLocalRescue(run.localPath);
    return undefined;
  }
  const stored = await storeKept(run, doc, local);
  if (!stored) return 'again';
  await clearKeptTokens(run.deps.store, run.deps.rescueDir);
  return { done: stored };
}

/** A login whose write failed kept its token in the store's rescue slot: store it rather than ask a human. */
export async function storeSlotKept(run: RefreshRun, doc: Reading): Promise<PhaseResult> {
  if (hasRefreshToken(doc.config)) return undefined;
  const rescued = await run.deps.store.loadRescue().catch(() => null);
  if (!rescued || !trustKept(run, doc, rescued, `${run.deps.store.location} (rescue slot)`)) return undefined;
  const stored = await storeKept(run, doc, rescued);
  if (!stored) return 'again';
  await run.deps.store.clearRescue().catch(() => {});
  return { done: stored };
}

/** Without a refresh token only a human can renew: Kite issues them only to exchange-approved platforms. */
export function askForLogin(run: RefreshRun, doc: Reading): PhaseResult {
  if (hasRefreshToken(doc.config)) return undefined;
  run.log.warn('⚠️  No refresh token configured', {
    location: run.deps.store.location,
    reason: 'a daily Kite login is needed (Kite issues refresh tokens only to exchange-approved platforms)',
  });
  return { done: { status: 'login_required', reason: 'no_refresh_token', config: doc.config, kiteCalls: 0 } };
}

function timeLeft(run: RefreshRun): number {
  const { deadline } = run.request;
  return deadline === undefined ? Number.POSITIVE_INFINITY : deadline - Date.now();
}

/** A renewal cut off between Kite and the write would cost a token: do not start one without the time for it. */
export function ensureTimeToRenew(run: RefreshRun): PhaseResult {
  if (timeLeft(run) >= run.renewalBudgetMs) return undefined;
  throw new RefreshBusyError(
    `only ${Math.max(0, Math.round(timeLeft(run) / 1000))} s left in this invocation, less than a renewal may take; not starting one`,
  );
}

/** Writes kept tokens into the document. Returns the outcome, or undefined when the document moved meanwhile. */
export async function storeKept(
  run: RefreshRun,
  doc: StoredConfig,
  tokens: KeptTokens,
): Promise<RefreshOutcome | undefined> {
  const updated = withTokens(doc.config, tokens, keptTokenSource(tokens));
  try {
    await run.deps.store.write(updated, doc.version);
  } catch (e: unknown) {
    if (e instanceof ConflictError) return undefined;
    throw e;
  }
  run.log.info('✅ Token refreshed successfully', {
    oldToken: maskToken(doc.config.api_secret),
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
