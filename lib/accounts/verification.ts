// The part of a scheduled tick that asks Kite, not the clock: on trading days from 06:01 through the 15:30 IST close,
// one GET /user/profile per account per tick. A token Kite refuses (a late flush, a login elsewhere with the same
// app) is renewed at once when the account can renew, and otherwise needs a login. Once a trading day, at
// READY_CHECK_IST, the answer becomes the account's "ready for market open".
import { type BrokerConfig, hasRefreshToken } from '../engine/broker-config.ts';
import type { RefreshOutcome } from '../engine/refresh-engine.ts';
import type { TradingCalendar } from '../engine/trading-calendar.ts';
import {
  inVerificationHours,
  readyCheckDue,
  verdictChanged,
  withReadyCheck,
  withVerdict,
} from '../engine/verdict.ts';
import { type TokenVerdict, verifyToken } from '../engine/verify.ts';
import { ConflictError, describeError, LoginRequiredError } from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';
import type { Account } from './registry.ts';

export interface VerificationSettings {
  /** TRADING_HOLIDAYS and SPECIAL_SESSIONS: no Kite verification and no ready check on a closed day. */
  calendar: TradingCalendar;
  /** READY_CHECK_IST, "HH:mm". */
  readyCheckIst: string;
}

/** What asking Kite found for one account at this tick. */
export interface KiteCheck {
  /** Kite's verdict on the stored token; undefined when Kite was not asked (closed day, outside hours). */
  verdict: TokenVerdict['verdict'] | undefined;
  /** The outcome to report: the refresh's, or the renewal's that replaced a token Kite refused. */
  outcome: RefreshOutcome;
  /** Kite refused the token and only a human login can replace it. */
  loginNeeded: LoginRequiredError['reason'] | 'access_token_rejected' | undefined;
  /** This tick was the account's ready check: whether it is ready for market open, and why not. */
  ready: { ready: boolean; why: string } | undefined;
}

/**
 * Kite's retries for one verification: a hanging Kite costs an account at most this much per tick (the next tick asks
 * again), so a tick over many accounts stays inside the function's 60 s.
 */
export const VERIFY_BUDGET_MS = 8_000;

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
): Promise<Pick<KiteCheck, 'outcome' | 'loginNeeded'>> {
  if (!hasRefreshToken(outcome.config)) return { outcome, loginNeeded: 'access_token_rejected' };
  try {
    const renewed = await account.refresher.refresh({
      failedAccessToken: outcome.config.api_secret,
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

const NOT_READY: Record<TokenVerdict['verdict'], string> = {
  valid: '',
  dead: 'Kite rejected the token',
  unknown: 'Kite could not be asked',
};

/** Whether the account is ready for market open after this tick's check. */
function readiness(verdict: TokenVerdict, check: Pick<KiteCheck, 'outcome' | 'loginNeeded'>) {
  // A token Kite issued at this very tick (it refused the old one, and the refresh token renewed it) is ready.
  if (check.outcome.status === 'refreshed')
    return { ready: true, why: 'renewed after Kite refused the old token' };
  if (verdict.verdict === 'valid') return { ready: true, why: 'Kite accepted the token' };
  if (check.loginNeeded)
    return { ready: false, why: `${NOT_READY[verdict.verdict]}: a Kite login is needed` };
  return {
    ready: false,
    why: verdict.verdict === 'unknown' ? `${NOT_READY.unknown} (${verdict.error})` : NOT_READY.dead,
  };
}

/**
 * Writes what changed: Kite's verdict when it is news about the stored token, and the day's ready check. Written
 * with compare-and-swap on a fresh read; when the document moved on (a login, a renewal), the verdict is about a
 * token no longer stored and is dropped, and the next tick asks again.
 */
async function recordCheck(
  deps: CheckDeps,
  account: Account,
  read: BrokerConfig,
  accepted: boolean | undefined,
  readyCheck: boolean,
): Promise<void> {
  // Decided on the tick's own read first: a warm tick with nothing new reads nothing more.
  if (!readyCheck && (accepted === undefined || !verdictChanged(read, accepted))) return;
  const token = read.api_secret;
  const { store } = account.refresher;
  const { config, version } = await store.read();
  const sameToken = config.api_secret === token;
  const writeVerdict = accepted !== undefined && sameToken && verdictChanged(config, accepted);
  if (!writeVerdict && !readyCheck) return;
  let next = writeVerdict ? withVerdict(config, accepted, deps.now) : config;
  if (readyCheck) next = withReadyCheck(next, deps.now);
  try {
    await store.write(next, version);
  } catch (e: unknown) {
    if (!(e instanceof ConflictError)) throw e;
    deps.log.info('The document changed while the Kite verdict was written; the next tick asks again', {
      account: account.label,
      error: describeError(e),
    });
  }
}

/** The tick's answer when Kite is not asked: no token to ask about, outside trading hours, or one Kite just issued. */
async function withoutAsking(
  deps: CheckDeps,
  account: Account,
  outcome: RefreshOutcome,
  readyCheck: boolean,
): Promise<KiteCheck | undefined> {
  const answer = (ready: KiteCheck['ready'], loginNeeded?: KiteCheck['loginNeeded']): KiteCheck => ({
    verdict: undefined,
    outcome,
    loginNeeded,
    ready: readyCheck ? ready : undefined,
  });
  if (outcome.status === 'login_required') {
    if (readyCheck) await recordCheck(deps, account, outcome.config, undefined, true);
    return answer({ ready: false, why: 'no usable token: a Kite login is needed' }, outcome.reason);
  }
  if (!inVerificationHours(deps.now, deps.settings.calendar)) return answer(undefined);
  if (outcome.status === 'refreshed') {
    // Kite issued this token moments ago: asking again would only cost a call.
    if (readyCheck) await recordCheck(deps, account, outcome.config, undefined, true);
    return answer({ ready: true, why: 'Kite issued a new token at this check' });
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
  const verdict = await verifyToken(account.refresher.kiteFor(outcome.config), outcome.config.api_secret, {
    budgetMs: VERIFY_BUDGET_MS,
  });
  const replaced =
    verdict.verdict === 'dead'
      ? await replaceRefused(deps, account, outcome)
      : { outcome, loginNeeded: undefined };
  logVerdict(deps, account, verdict, replaced.outcome);
  const accepted = verdict.verdict === 'unknown' ? undefined : verdict.verdict === 'valid';
  await recordCheck(deps, account, outcome.config, accepted, readyCheck);
  return {
    verdict: verdict.verdict,
    ...replaced,
    ready: readyCheck ? readiness(verdict, replaced) : undefined,
  };
}
