// The part of a scheduled tick that asks Kite, not the clock: on trading days from 06:01 through the 15:30 IST close,
// one GET /user/profile per account per tick. A token Kite refuses (a late flush, a login elsewhere with the same
// app) is renewed at once when the account can renew, and otherwise needs a login. Once a trading day, at
// READY_CHECK_IST, the answer becomes the account's "ready for market open".
import { type BrokerConfig, hasRefreshToken } from '../engine/broker-config.ts';
import { expiryOf, istDate } from '../engine/expiry.ts';
import type { RefreshOutcome } from '../engine/refresh-engine.ts';
import type { TradingCalendar } from '../engine/trading-calendar.ts';
import {
  inVerificationHours,
  readVerdict,
  readyCheckDue,
  verdictChanged,
  withReadyCheck,
  withVerdict,
} from '../engine/verdict.ts';
import { type TokenVerdict, verifyToken } from '../engine/verify.ts';
import { ConflictError, LoginRequiredError } from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';
import type { Account } from './registry.ts';

export interface VerificationSettings {
  /** TRADING_HOLIDAYS and SPECIAL_SESSIONS: no Kite verification and no ready check on a closed day. */
  calendar: TradingCalendar;
  /** READY_CHECK_IST, "HH:mm". */
  readyCheckIst: string;
}

/** Whether an account is ready for market open at its ready check, why not, and whether a login would fix it. */
export interface Readiness {
  ready: boolean;
  why: string;
  /** Only a human login makes it ready. */
  loginNeeded: boolean;
}

/** What asking Kite found for one account at this tick. */
export interface KiteCheck {
  /** Kite's verdict on the stored token; undefined when Kite was not asked (closed day, outside hours). */
  verdict: TokenVerdict['verdict'] | undefined;
  /** The outcome to report: the refresh's, or the renewal's that replaced a token Kite refused. */
  outcome: RefreshOutcome;
  /** Kite refused the token and only a human login can replace it. */
  loginNeeded: LoginRequiredError['reason'] | 'access_token_rejected' | undefined;
  /** The token Kite refused, when a login is needed for it: a reminder is about this token, not a later one. */
  refusedToken?: string | undefined;
  /** This tick ran the account's ready check (and owns the day's mark). */
  ready: Readiness | undefined;
}

/**
 * Kite's retries for one verification: a hanging Kite costs an account at most this much per tick (the next tick asks
 * again). Never more than the invocation has left, less a reserve for the writes and the messages.
 */
export const VERIFY_BUDGET_MS = 8_000;
const DEADLINE_RESERVE_MS = 5_000;
/** Less than this left in the invocation: Kite is not asked, and the ready check waits for the retry. */
const MIN_VERIFY_MS = 1_000;
/** Compare-and-swap rounds for the verdict and the ready mark. */
const RECORD_ATTEMPTS = 3;

interface CheckDeps {
  settings: VerificationSettings;
  log: Log;
  now: Date;
  deadline?: number | undefined;
}

/** Kite refused the token: an auto-renew account renews now through the lease; a daily-login one needs a login. */
async function replaceRefused(
  deps: CheckDeps,
  account: Account,
  outcome: RefreshOutcome,
): Promise<Pick<KiteCheck, 'outcome' | 'loginNeeded' | 'refusedToken'>> {
  const refusedToken = outcome.config.api_secret;
  if (!hasRefreshToken(outcome.config))
    return { outcome, loginNeeded: 'access_token_rejected', refusedToken };
  try {
    const renewed = await account.refresher.refresh({
      failedAccessToken: refusedToken,
      ...(deps.deadline !== undefined ? { deadline: deps.deadline } : {}),
    });
    return renewed.status === 'login_required'
      ? { outcome: renewed, loginNeeded: renewed.reason }
      : { outcome: renewed, loginNeeded: undefined };
  } catch (e: unknown) {
    if (e instanceof LoginRequiredError) return { outcome, loginNeeded: e.reason };
    throw e;
  }
}

/** Whether the account is ready for market open after this tick's check. */
function readiness(verdict: TokenVerdict, check: Pick<KiteCheck, 'outcome' | 'loginNeeded'>): Readiness {
  const yes = (why: string): Readiness => ({ ready: true, why, loginNeeded: false });
  // Kite refused the old token and issued a new one at this very tick (or another refresher just had).
  if (verdict.verdict === 'dead' && check.outcome.status === 'refreshed')
    return yes('renewed after Kite refused the old token');
  if (verdict.verdict === 'dead' && check.outcome.status === 'already_fresh')
    return yes('another refresher replaced the refused token at this check');
  if (verdict.verdict === 'valid') return yes('Kite accepted the token');
  if (check.loginNeeded)
    return { ready: false, why: 'Kite rejected the token: a Kite login is needed', loginNeeded: true };
  if (verdict.verdict === 'unknown')
    return { ready: false, why: `Kite could not be asked (${verdict.error})`, loginNeeded: false };
  return { ready: false, why: `Kite rejected the token (${verdict.reason})`, loginNeeded: false };
}

/** The document with what this tick learnt: Kite's verdict when it is news about this token, and the day's mark. */
function recorded(
  config: BrokerConfig,
  token: string,
  accepted: boolean | undefined,
  markReady: boolean,
  now: Date,
): BrokerConfig | undefined {
  const newer = (readVerdict(config)?.at.getTime() ?? 0) > now.getTime();
  // The verdict is written when it is news, and once a day at the ready check.
  const writeVerdict =
    accepted !== undefined &&
    config.api_secret === token &&
    !newer &&
    (markReady || verdictChanged(config, accepted));
  if (!writeVerdict && !markReady) return undefined;
  const next = writeVerdict ? withVerdict(config, accepted, now) : config;
  return markReady ? withReadyCheck(next, now) : next;
}

/**
 * Writes what this tick learnt with compare-and-swap on a fresh read: Kite's verdict when it is news about the token
 * asked about (a verdict about a token no longer stored, or older than the stored one, is dropped), and the day's
 * ready mark. True when this tick holds the mark: a concurrent tick that marked first owns the day's check, and a
 * conflict with any other write is read again and retried.
 */
async function record(
  deps: CheckDeps,
  account: Account,
  read: BrokerConfig,
  accepted: boolean | undefined,
  readyCheck: boolean,
): Promise<boolean> {
  // Decided on the tick's own read first: a warm tick with nothing new reads nothing more.
  if (!readyCheck && (accepted === undefined || !verdictChanged(read, accepted))) return false;
  const { store } = account.refresher;
  const today = istDate(deps.now);
  for (let round = 1; round <= RECORD_ATTEMPTS; round++) {
    const { config, version } = await store.read();
    const markReady = readyCheck && (config as { ready_checked_on?: unknown }).ready_checked_on !== today;
    const next = recorded(config, read.api_secret, accepted, markReady, deps.now);
    if (!next) return false;
    try {
      await store.write(next, version);
      return markReady;
    } catch (e: unknown) {
      if (!(e instanceof ConflictError)) throw e;
    }
  }
  deps.log.info('The document kept changing while the Kite verdict was written; the next tick asks again', {
    account: account.label,
  });
  return false;
}

/** The tick's answer when Kite is not asked: no token to ask about, outside trading hours, or one Kite just issued. */
async function withoutAsking(
  deps: CheckDeps,
  account: Account,
  outcome: RefreshOutcome,
  readyCheck: boolean,
): Promise<KiteCheck | undefined> {
  const answer = async (ready: Readiness | undefined, loginNeeded?: KiteCheck['loginNeeded']) => {
    const owned = ready !== undefined && (await record(deps, account, outcome.config, undefined, true));
    return { verdict: undefined, outcome, loginNeeded, ready: owned ? ready : undefined };
  };
  if (outcome.status === 'login_required') {
    const ready = { ready: false, why: 'no usable token: a Kite login is needed', loginNeeded: true };
    return answer(readyCheck ? ready : undefined, outcome.reason);
  }
  if (!inVerificationHours(deps.now, deps.settings.calendar)) return answer(undefined);
  // Kite issued this token moments ago (a renewal that reached Kite, not a kept copy stored again): asking again
  // would only cost a call.
  if (outcome.status === 'refreshed' && outcome.kiteCalls > 0) {
    const ready = { ready: true, why: 'Kite issued a new token at this check', loginNeeded: false };
    return answer(readyCheck ? ready : undefined);
  }
  return undefined;
}

function logVerdict(deps: CheckDeps, account: Account, verdict: TokenVerdict, after: RefreshOutcome): void {
  if (verdict.verdict === 'unknown') {
    deps.log.warn('Kite could not be asked about the token; not a dead token', {
      account: account.label,
      error: verdict.error,
    });
  } else if (verdict.verdict === 'dead') {
    deps.log.warn('Kite rejected the stored access token before its expiry', {
      account: account.label,
      reason: verdict.reason,
      action: after.status === 'refreshed' ? 'renewed' : 'login needed',
    });
  }
}

/** What is left for Kite's retries in this invocation; undefined when too little to ask at all. */
function verifyBudget(deps: CheckDeps): number | undefined {
  if (deps.deadline === undefined) return VERIFY_BUDGET_MS;
  const left = deps.deadline - Date.now() - DEADLINE_RESERVE_MS;
  return left < MIN_VERIFY_MS ? undefined : Math.min(VERIFY_BUDGET_MS, left);
}

/** Kite's verdict, with a token of another Kite user than the document's counted as dead. */
async function askKite(account: Account, config: BrokerConfig, budgetMs: number): Promise<TokenVerdict> {
  const verdict = await verifyToken(account.refresher.kiteFor(config), config.api_secret, { budgetMs });
  if (verdict.verdict === 'valid' && config.user_id && verdict.userId !== config.user_id)
    return { verdict: 'dead', reason: 'the token belongs to another Kite user than the document names' };
  return verdict;
}

/**
 * The token asked about and Kite's verdict. A refusal is checked against a fresh read: when a login or a renewal
 * replaced the token meanwhile (Kite holds one token per app, so the new one killed the old), the new token is what
 * Kite is asked about, once.
 */
async function verdictOnStored(
  account: Account,
  outcome: RefreshOutcome,
  budgetMs: number,
): Promise<{ verdict: TokenVerdict; outcome: RefreshOutcome }> {
  const verdict = await askKite(account, outcome.config, budgetMs);
  if (verdict.verdict !== 'dead') return { verdict, outcome };
  const { config } = await account.refresher.store.read();
  if (!config.api_secret || config.api_secret === outcome.config.api_secret) return { verdict, outcome };
  const replaced: RefreshOutcome = {
    status: 'fresh',
    accessToken: config.api_secret,
    expiresAt: expiryOf(config),
    userId: config.user_id,
    config,
    kiteCalls: outcome.kiteCalls,
  };
  return { verdict: await askKite(account, config, budgetMs), outcome: replaced };
}

/**
 * Asks Kite about the account's stored token when the calendar and the clock say so, acts on a refusal, and records
 * the verdict (only when it changed) and the ready check. Without a question to Kite this costs nothing.
 */
export async function checkWithKite(
  deps: CheckDeps,
  account: Account,
  outcome: RefreshOutcome,
): Promise<KiteCheck> {
  const { calendar, readyCheckIst } = deps.settings;
  const readyCheck = readyCheckDue(outcome.config, deps.now, calendar, readyCheckIst);
  const unasked = await withoutAsking(deps, account, outcome, readyCheck);
  if (unasked) return unasked;
  const budgetMs = verifyBudget(deps);
  if (budgetMs === undefined) {
    // The retry asks, and runs the ready check, with time to do it.
    deps.log.warn('Too little time left in this invocation to ask Kite', { account: account.label });
    return { verdict: undefined, outcome, loginNeeded: undefined, ready: undefined };
  }
  const asked = await verdictOnStored(account, outcome, budgetMs);
  const { verdict } = asked;
  const replaced =
    verdict.verdict === 'dead'
      ? await replaceRefused(deps, account, asked.outcome)
      : { outcome: asked.outcome, loginNeeded: undefined };
  logVerdict(deps, account, verdict, replaced.outcome);
  const accepted = verdict.verdict === 'unknown' ? undefined : verdict.verdict === 'valid';
  const owned = await record(deps, account, asked.outcome.config, accepted, readyCheck);
  return { verdict: verdict.verdict, ...replaced, ready: owned ? readiness(verdict, replaced) : undefined };
}
