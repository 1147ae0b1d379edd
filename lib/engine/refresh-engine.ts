// The refresh engine: read → decide → take the lease → renew with Kite → write back with compare-and-swap.
// It knows stores only through ConfigStore, so the same code runs against a file, S3 or Secrets Manager.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { LoginRequiredError } from '../shared/errors.ts';
import { type Log, silentLog } from '../shared/log.ts';
import type { ConfigStore } from '../store/config-store.ts';
import type { BrokerConfig } from './broker-config.ts';
import type { DueReason } from './expiry.ts';
import { localRescuePath } from './kept-tokens.ts';
import {
  askForLogin,
  decide,
  ensureTimeToRenew,
  type RefreshRun,
  readDocument,
  storeLocalKept,
  storeSlotKept,
  waitForOtherLease,
} from './refresh-steps.ts';
import { renewUnderLease } from './renewal.ts';
import type { WriteRetry } from './token-write.ts';

/** What the engine needs from a Kite session: KiteClient's session type fits. */
export interface RenewedSession {
  userId: string;
  accessToken: string;
  refreshToken: string;
  loginTime?: string | undefined;
}

/** What the engine needs from Kite: KiteClient fits. */
export interface TokenRenewer {
  renewAccessToken(
    refreshToken: string,
    options?: { onAnswer?: (body: string) => void; retryOnlyUnsent?: boolean },
  ): Promise<RenewedSession>;
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
  /** Where this user's private folder (0700) for local copies of kept tokens is made. Default: the OS temp folder. */
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

/**
 * Keeps the config's access token fresh. Returns what happened; throws LoginRequiredError when Kite rejects the
 * refresh token, TokenNotStoredError when a renewed token could not be written (it is kept for the next run),
 * RefreshBusyError when another refresher's lease outlasted the wait, and the Kite or store error otherwise.
 */
export async function refreshToken(deps: RefreshDeps, request: RefreshRequest = {}): Promise<RefreshOutcome> {
  const run = startRun(deps, request);
  // Each phase either finishes the run, asks for a fresh read ('again'), or hands on to the next (undefined).
  for (let round = 0; ; round++) {
    const doc = await readDocument(run, round);
    // Tokens this machine kept go in first, whatever the clock says: a renewal retires the token it replaced, so
    // the stored one may look fresh and be dead.
    const result =
      (await storeLocalKept(run, doc)) ??
      decide(run, doc) ??
      (await storeSlotKept(run, doc)) ??
      (await waitForOtherLease(run, doc)) ??
      askForLogin(run, doc) ??
      ensureTimeToRenew(run) ??
      (await renewUnderLease(run, doc));
    if (result !== 'again') return result.done;
  }
}

function startRun(deps: RefreshDeps, request: RefreshRequest): RefreshRun {
  return {
    deps,
    request,
    log: deps.log ?? silentLog,
    now: deps.now ?? (() => new Date()),
    owner: deps.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    leaseTtlMs: deps.leaseTtlMs ?? DEFAULTS.leaseTtlMs,
    leaseWaitMs: deps.leaseWaitMs ?? DEFAULTS.leaseWaitMs,
    pollMs: deps.pollMs ?? DEFAULTS.pollMs,
    expectedRenewalMs: deps.expectedRenewalMs ?? DEFAULTS.expectedRenewalMs,
    renewalBudgetMs: deps.renewalBudgetMs ?? DEFAULTS.renewalBudgetMs,
    localPath: localRescuePath(deps.store.location, deps.rescueDir),
    started: Date.now(),
    waits: 0,
    firstSeenToken: undefined,
    announced: false,
  };
}
