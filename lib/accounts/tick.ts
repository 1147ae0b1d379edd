// One scheduled tick over every account, a few at a time: each account is refreshed if due and measured with its
// own Account dimension; one account's failure never stops the others, and the tick throws once all have run.
import type { RefreshOutcome } from '../engine/refresh-engine.ts';
import { type LoginMode, loginMode } from '../engine/status.ts';
import { isTradingDay } from '../engine/trading-calendar.ts';
import type { TokenVerdict } from '../engine/verify.ts';
import type { Notify } from '../notify/notice.ts';
import { AppError, describeError, LoginRequiredError } from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';
import { settleEach } from './concurrency.ts';
import type { ReadyResult } from './ready-check.ts';
import type { Account, AccountRegistry } from './registry.ts';
import type { KiteCheck, VerificationSettings } from './verification.ts';

type Unit = 'Count' | 'Milliseconds';

/** Powertools' Metrics fits: stack-level metrics, and single metrics that carry their own dimensions. */
export interface AccountMetricsSink {
  addMetric(name: string, unit: Unit, value: number): unknown;
  singleMetric(): {
    addDimension(name: string, value: string): unknown;
    addMetric(n: string, u: Unit, v: number): unknown;
  };
}

/** Where a tick's metrics go when nobody collects them (a terminal, the bench). */
export const NO_METRICS: AccountMetricsSink = {
  addMetric: () => {},
  singleMetric: () => ({ addDimension: () => {}, addMetric: () => {} }),
};

/** An account that needs a human login, for the reminder step. */
export interface LoginNeed {
  account: Account;
  /** The engine's reason, or access_token_rejected: Kite refused a token its expiry calls fresh. */
  reason: NonNullable<KiteCheck['loginNeeded']>;
  /** The token Kite refused (access_token_rejected): no reminder once the document holds another. */
  refusedToken?: string | undefined;
}

export interface AccountsTickDeps {
  accounts: AccountRegistry;
  log: Log;
  metrics: AccountMetricsSink;
  /** How many accounts are served at once (ACCOUNT_CONCURRENCY). */
  concurrency: number;
  now?: () => Date;
  deadline?: number | undefined;
  /** Sends the reminders due now for every account that needs a login, in one message; returns the accounts reminded. */
  remind?: (needs: LoginNeed[], deadline?: number) => Promise<Map<Account, 'first' | 'follow_up'>>;
  /** Asks Kite about each stored token in trading hours, and runs the ready check. Absent: the clock alone decides. */
  verification?: VerificationSettings | undefined;
  /** Where the ready check's message goes (every configured channel). */
  notify?: Notify | undefined;
  /** NOTIFY_READY: say "ready for market open" too, not only "not ready". */
  notifyReady?: boolean;
  /** A fresh signed status page link for the ready check's message (STATUS_PAGE_URL set). */
  statusLink?: ((now: Date) => string) | undefined;
}

/** One account's part of the tick: as a single-account tick's result, and which account. */
export interface AccountTickResult {
  account: string;
  status?: RefreshOutcome['status'];
  mode?: LoginMode;
  expiresAt?: string | undefined;
  reminder?: 'first' | 'follow_up' | null;
  userId?: string | undefined;
  /** Kite's verdict on the stored token at this tick, when it was asked. */
  verified?: TokenVerdict['verdict'];
  /** This tick was the account's ready check: whether it is ready for market open. */
  ready?: boolean;
  /** Why the account failed (no token, no secret): the tick throws after the others have run. */
  error?: string;
}

export interface AccountsTickResult {
  /** Every account was served: a tick in which one failed throws instead of answering. */
  status: 'served';
  accounts: AccountTickResult[];
}

/** Thrown by a tick in which any account failed, after every account has been served. */
export class AccountsFailedError extends AppError {
  override name = 'AccountsFailedError';
  readonly failed: string[];
  constructor(failed: AccountTickResult[], cause: unknown) {
    super(
      `${failed.length} account(s) failed: ${failed.map((f) => `${f.account} (${f.error})`).join('; ')}`,
      { retryable: true, cause },
    );
    this.failed = failed.map((f) => f.account);
  }
}

/** Counts a metric for the stack (the alarms) and for the account (its own dimension). */
function record(metrics: AccountMetricsSink, account: Account, name: string, value: number): void {
  metrics.addMetric(name, 'Count', value);
  const single = metrics.singleMetric();
  single.addDimension('Account', account.label);
  single.addMetric(name, 'Count', value);
}

/**
 * Counts a metric that must not wait for the end of the invocation (Powertools flushes single metrics at once): the
 * ready check's, which a tick cut off later would otherwise lose while its mark in the document stays.
 */
function recordNow(metrics: AccountMetricsSink, account: Account, name: string, value: number): void {
  metrics.singleMetric().addMetric(name, 'Count', value);
  const single = metrics.singleMetric();
  single.addDimension('Account', account.label);
  single.addMetric(name, 'Count', value);
}

/** What one account's tick gathers for the steps after all accounts ran. */
interface Gathered {
  needs: LoginNeed[];
  readies: ReadyResult[];
}

/** The refresh, as an outcome even when Kite rejected the refresh token (then the document says the rest). */
async function refreshOutcome(deps: AccountsTickDeps, account: Account): Promise<RefreshOutcome> {
  try {
    return await account.refresher.refresh(deps.deadline !== undefined ? { deadline: deps.deadline } : {});
  } catch (e: unknown) {
    if (e instanceof LoginRequiredError) {
      const { config } = await account.refresher.store.read();
      return { status: 'login_required', reason: e.reason, config, kiteCalls: 1 };
    }
    record(deps.metrics, account, 'RefreshFailed', 1);
    deps.log.error('Account refresh failed', { account: account.label, error: describeError(e) });
    throw e;
  }
}

/** Asks Kite when the settings say so; without verification settings the refresh's outcome stands as it is. */
async function kiteCheck(
  deps: AccountsTickDeps,
  account: Account,
  outcome: RefreshOutcome,
): Promise<KiteCheck> {
  const now = (deps.now ?? (() => new Date()))();
  // Kite is asked, and the ready check runs, only on trading days: the code that does it loads only then.
  if (!deps.verification || !isTradingDay(deps.verification.calendar, now)) {
    const loginNeeded = outcome.status === 'login_required' ? outcome.reason : undefined;
    return { verdict: undefined, outcome, loginNeeded, ready: undefined };
  }
  const { checkWithKite } = await import('./verification.ts');
  return checkWithKite(
    { settings: deps.verification, log: deps.log, now, deadline: deps.deadline },
    account,
    outcome,
  );
}

/** The check's metrics: Kite's verdict (TokenAccepted 1 or 0, or VerificationInconclusive) and the ready check. */
function recordCheckMetrics(deps: AccountsTickDeps, account: Account, check: KiteCheck): void {
  if (check.verdict === 'unknown') record(deps.metrics, account, 'VerificationInconclusive', 1);
  else if (check.verdict) record(deps.metrics, account, 'TokenAccepted', check.verdict === 'valid' ? 1 : 0);
  if (check.ready) recordNow(deps.metrics, account, 'ReadyForMarketOpen', check.ready.ready ? 1 : 0);
}

async function tickOne(
  deps: AccountsTickDeps,
  account: Account,
  gathered: Gathered,
): Promise<AccountTickResult> {
  const now = deps.now ?? (() => new Date());
  const check = await kiteCheck(deps, account, await refreshOutcome(deps, account));
  recordCheckMetrics(deps, account, check);
  const { outcome } = check;
  if (check.ready) {
    gathered.readies.push({ account: account.name, userId: account.userId, ...check.ready, outcome });
  }
  const checked = {
    ...(check.verdict ? { verified: check.verdict } : {}),
    ...(check.ready ? { ready: check.ready.ready } : {}),
  };
  const mode = loginMode(outcome.config);
  if (check.loginNeeded) {
    gathered.needs.push({ account, reason: check.loginNeeded, refusedToken: check.refusedToken });
    return { ...loginRequired(deps, account, mode), ...checked };
  }
  if (outcome.status === 'login_required') return { ...loginRequired(deps, account, mode), ...checked };
  if (outcome.status === 'refreshed') record(deps.metrics, account, 'RefreshSucceeded', 1);
  if (outcome.expiresAt) {
    const minutes = Math.floor((outcome.expiresAt.getTime() - now().getTime()) / 60_000);
    record(deps.metrics, account, 'MinutesToExpiry', minutes);
  }
  deps.log.info(`Mode: ${mode === 'auto-renew' ? 'auto-renew (refresh token present)' : 'daily login'}`, {
    account: account.label,
    status: outcome.status,
    expiresAt: outcome.config.access_token_expires_at,
  });
  return {
    account: account.name,
    userId: account.userId,
    status: outcome.status,
    mode,
    expiresAt: outcome.config.access_token_expires_at,
    ...checked,
  };
}

function loginRequired(deps: AccountsTickDeps, account: Account, mode: LoginMode): AccountTickResult {
  record(deps.metrics, account, 'LoginRequired', 1);
  return { account: account.name, userId: account.userId, status: 'login_required', mode, reminder: null };
}

/** Sends one reminder for every account that needs a login; a failed send fails the tick like a failed account. */
async function remindAll(deps: AccountsTickDeps, needs: LoginNeed[], results: AccountTickResult[]) {
  if (!deps.remind || needs.length === 0) {
    for (const need of needs)
      deps.log.warn('A Kite login is needed', { account: need.account.label, reason: need.reason });
    return;
  }
  const reminded = await deps.remind(needs, deps.deadline);
  for (const need of needs) {
    const sent = reminded.get(need.account);
    if (sent) record(deps.metrics, need.account, 'LoginReminderSent', 1);
    const result = results.find((r) => r.account === need.account.name);
    if (result && sent) result.reminder = sent;
    deps.log.warn('A Kite login is needed', {
      account: need.account.label,
      reason: need.reason,
      reminder: sent ? 'sent' : 'none due now',
    });
  }
}

/**
 * The ready check's message. A message that cannot be sent does not fail the tick: the ReadyForMarketOpen alarm
 * still fires, and each failed channel is counted (NotifyFailed).
 */
async function tellReadiness(deps: AccountsTickDeps, readies: ReadyResult[]): Promise<void> {
  for (const r of readies) {
    const fields = { account: r.userId ?? r.account, why: r.why };
    if (r.ready) deps.log.info('Ready for market open', fields);
    else deps.log.warn('NOT ready for market open', fields);
  }
  if (!deps.notify || readies.length === 0) return;
  const now = deps.now ?? (() => new Date());
  const { readyNotice } = await import('./ready-check.ts');
  const notice = readyNotice(readies, deps.notifyReady === true, deps.statusLink?.(now()));
  if (!notice) return;
  try {
    await deps.notify(notice, { deadline: deps.deadline });
  } catch (e: unknown) {
    deps.log.error('The ready-for-market-open message could not be sent', { error: describeError(e) });
  }
}

/**
 * Serves every account, `concurrency` at a time, then sends the reminders. Throws AccountsFailedError when any
 * account (or the reminder) failed, so Lambda retries and the alarm fires; a retry redoes only what is still due.
 */
export async function tickAccounts(deps: AccountsTickDeps): Promise<AccountsTickResult> {
  const accounts = await deps.accounts.all({ fresh: true });
  const gathered: Gathered = { needs: [], readies: [] };
  const settled = await settleEach(accounts, deps.concurrency, (account) => tickOne(deps, account, gathered));
  const results = settled.map(
    (r, i): AccountTickResult =>
      r.status === 'fulfilled'
        ? r.value
        : { account: accounts[i]?.name ?? '?', userId: accounts[i]?.userId, error: describeError(r.reason) },
  );
  let remindFailure: unknown;
  try {
    await remindAll(deps, gathered.needs, results);
  } catch (e: unknown) {
    remindFailure = e;
    deps.log.error('Login reminders could not be sent', { error: describeError(e) });
  }
  await tellReadiness(deps, gathered.readies);
  // The dead man's switch: every account was served (one that failed has its own alarms), and the count is flushed
  // at once, since the tick may still throw below. The alarm fires when no tick completed for two hours.
  deps.metrics.singleMetric().addMetric('TickCompleted', 'Count', 1);
  const failed = results.filter((r) => r.error !== undefined);
  const firstFailure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason;
  if (failed.length > 0) throw new AccountsFailedError(failed, firstFailure);
  if (remindFailure !== undefined) throw remindFailure;
  return { status: 'served', accounts: results };
}
