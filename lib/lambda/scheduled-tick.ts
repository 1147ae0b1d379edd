// One hourly tick: refresh if due, say which mode the account is in, record metrics, and for accounts that need
// a human login, report it (metric, and a reminder with the login link) instead of failing into Lambda's retries.

import { remindAccounts } from '../accounts/reminders.ts';
import type { AccountsTickDeps } from '../accounts/tick.ts';
import type { RefreshOutcome } from '../engine/refresh-engine.ts';
import type { Refresher } from '../engine/refresher.ts';
import { type LoginMode, loginMode } from '../engine/status.ts';
import type { TradingCalendar } from '../engine/trading-calendar.ts';
import { planReminder, readReminderState, withReminderState } from '../login/reminders.ts';
import type { Notify } from '../notify/notice.ts';
import { ConflictError, LoginRequiredError } from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';
import type { LambdaContext } from './context.ts';
import { notifierFor } from './notifier.ts';

export { notifierFor } from './notifier.ts';

/** Where a tick's metrics go: Powertools' Metrics in Lambda, nowhere in a terminal. */
export interface MetricsSink {
  addMetric(name: string, unit: 'Count' | 'Milliseconds', value: number): unknown;
}

export interface TickDeps {
  refresher: Refresher;
  log: Log;
  metrics: MetricsSink;
  now?: () => Date;
  /** When this invocation will be stopped (epoch ms), so no renewal starts that could be cut off. */
  deadline?: number | undefined;
  /** Called when a human login is needed; sends at most the reminders due now. Absent without any channel. */
  remind?: (reason: LoginRequiredError['reason'], deadline?: number) => Promise<'first' | 'follow_up' | null>;
}

export interface TickResult {
  status: RefreshOutcome['status'];
  mode: LoginMode;
  expiresAt?: string | undefined;
  reminder?: 'first' | 'follow_up' | null;
}

/** Runs one scheduled tick. Throws on failures Lambda should retry and alarm on; a needed login is not one. */
export async function scheduledTick(deps: TickDeps): Promise<TickResult> {
  const now = deps.now ?? (() => new Date());
  let outcome: RefreshOutcome;
  try {
    outcome = await deps.refresher.refresh(deps.deadline !== undefined ? { deadline: deps.deadline } : {});
  } catch (e: unknown) {
    if (e instanceof LoginRequiredError) return loginRequired(deps, e.reason, 'auto-renew');
    deps.metrics.addMetric('RefreshFailed', 'Count', 1);
    throw e;
  }
  const mode = loginMode(outcome.config);
  if (outcome.status === 'login_required') return loginRequired(deps, outcome.reason, mode);

  if (outcome.status === 'refreshed') deps.metrics.addMetric('RefreshSucceeded', 'Count', 1);
  if (outcome.expiresAt) {
    deps.metrics.addMetric(
      'MinutesToExpiry',
      'Count',
      Math.floor((outcome.expiresAt.getTime() - now().getTime()) / 60_000),
    );
  }
  deps.log.info(`Mode: ${mode === 'auto-renew' ? 'auto-renew (refresh token present)' : 'daily login'}`, {
    status: outcome.status,
    expiresAt: outcome.config.access_token_expires_at,
  });
  return { status: outcome.status, mode, expiresAt: outcome.config.access_token_expires_at };
}

async function loginRequired(
  deps: TickDeps,
  reason: LoginRequiredError['reason'],
  mode: LoginMode,
): Promise<TickResult> {
  deps.metrics.addMetric('LoginRequired', 'Count', 1);
  const reminder = deps.remind ? await deps.remind(reason, deps.deadline) : null;
  if (reminder) deps.metrics.addMetric('LoginReminderSent', 'Count', 1);
  deps.log.warn(
    mode === 'daily-login'
      ? 'Mode: daily login (no refresh token): a Kite login is needed today'
      : 'Mode: auto-renew, but Kite rejected the refresh token: a Kite login is needed',
    { reason, reminder: reminder ?? 'none due now' },
  );
  return { status: 'login_required', mode, reminder };
}

/**
 * The reminder step for a tick that found a human login needed: decides from the document and the clock whether a
 * reminder (08:00 IST) or the follow-up (09:00 IST) is due, claims it in the document with compare-and-swap so
 * two ticks never both send, then sends the login link on every channel. When no channel took it, the claim is
 * given back.
 */
export function remindByAlert(deps: {
  refresher: Refresher;
  notify: Notify;
  appSecret: string;
  /** LOGIN_STATE_SCOPE: the login callback verifies links with the same. */
  stateScope?: string | undefined;
  firstAtIst: string;
  followUpAtIst: string;
  /** TRADING_HOLIDAYS and SPECIAL_SESSIONS: no reminders on a closed day. */
  calendar?: TradingCalendar | undefined;
  now?: () => Date;
}): NonNullable<TickDeps['remind']> {
  return async (reason, deadline) => {
    const { config, version } = await deps.refresher.store.read();
    const plan = planReminder({
      config,
      now: (deps.now ?? (() => new Date()))(),
      appSecret: deps.appSecret,
      stateScope: deps.stateScope,
      firstAtIst: deps.firstAtIst,
      calendar: deps.calendar,
      followUpAtIst: deps.followUpAtIst,
      renewalRejected: reason === 'refresh_token_rejected',
    });
    if (!plan) return null;
    let claimed: string;
    try {
      claimed = await deps.refresher.store.write(plan.config, version);
    } catch (e: unknown) {
      // Someone else changed the document (a login, another tick): the next tick decides again.
      if (e instanceof ConflictError) return null;
      throw e;
    }
    try {
      await deps.notify(plan.notice, { deadline });
    } catch (e: unknown) {
      await deps.refresher.store
        .write(withReminderState(plan.config, readReminderState(config)), claimed)
        .catch(() => {});
      throw e;
    }
    return plan.kind;
  };
}

/** The reminder step of a container's ticks: on every configured channel, or none when no channel is configured. */
export function reminderFor(context: LambdaContext): TickDeps['remind'] {
  const notify = notifierFor(context);
  if (!notify) return undefined;
  const { settings, refresher, appSecret } = context;
  return remindByAlert({
    refresher,
    notify,
    appSecret,
    stateScope: settings.stateScope,
    firstAtIst: settings.reminderFirstIst,
    followUpAtIst: settings.reminderFollowUpIst,
    calendar: settings.calendar,
  });
}

/** The reminder step of a tick over several accounts: one notice for all of them, when any channel is configured. */
export function accountRemindersFor(context: LambdaContext): AccountsTickDeps['remind'] {
  const notify = notifierFor(context);
  if (!notify) return undefined;
  const { settings, appSecret } = context;
  return remindAccounts({
    notify,
    appSecret,
    stateScope: settings.stateScope,
    firstAtIst: settings.reminderFirstIst,
    followUpAtIst: settings.reminderFollowUpIst,
    calendar: settings.calendar,
  });
}
