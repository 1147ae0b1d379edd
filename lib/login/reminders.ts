// When to remind a human to do the daily Kite login, and what to say. The decision is a pure function of the
// config and the clock; the small state that keeps it to one reminder and one follow-up lives in the document.
import { type BrokerConfig, hasRefreshToken, tokenDigest } from '../engine/broker-config.ts';
import { formatIst, istDate, istTimeOn, toIsoIst } from '../engine/expiry.ts';
import { isTradingDay, type TradingCalendar } from '../engine/trading-calendar.ts';
import type { Notice } from '../notify/notice.ts';
import { ConfigError } from '../shared/errors.ts';
import { buildLoginLink, loginRootFor } from './link.ts';

export const DEFAULT_FIRST_REMINDER_IST = '08:00';
export const DEFAULT_FOLLOW_UP_IST = '09:00';
/**
 * A reminder's link outlives the ten minutes of a terminal's, since people read mail late, but only by what a morning
 * needs: the 08:00 reminder's link works until 10:00, past the 09:15 market open, and the 09:00 follow-up brings a
 * fresh one. A mailbox holds no link that still works in the afternoon.
 */
export const REMINDER_LINK_TTL_MS = 2 * 60 * 60_000;
const FOLLOW_UP_SLACK_MS = 10 * 60_000;

/**
 * `login_reminder` in broker-config.json. Reminders are counted per IST day *and* per stored expiry: a new token
 * (a login) or a new day starts over, so a token left expired over a weekend still gets Monday's reminder.
 */
export interface LoginReminderState {
  /** IST calendar day ("YYYY-MM-DD") the reminders were sent on. */
  for_day: string;
  /** access_token_expires_at of the unusable token they were about ("" when the config had none). */
  for_expiry: string;
  /**
   * The first 16 hex digits of that token's SHA-256 ("" when there was none): two logins on one day give two tokens
   * with the same expiry, and Kite refusing the second (a login elsewhere) must remind again.
   */
  for_token?: string;
  /** 1 after the first reminder, 2 after the follow-up. */
  sent: 0 | 1 | 2;
  /** ISO-8601 (+05:30) of the last reminder sent. */
  last_sent_at: string;
}

/** Why there is no usable token. */
export type TokenProblem = 'missing' | 'unknown_expiry' | 'expired' | 'rejected' | 'renewal_rejected';

export type ReminderKind = 'first' | 'follow_up';

export interface ReminderInput {
  config: BrokerConfig;
  now: Date;
  /** IST "HH:mm" from which the first reminder may go out. Default 08:00. */
  firstAtIst?: string;
  /** IST "HH:mm" from which the follow-up may go out. Default 09:00. Must be later than firstAtIst. */
  followUpAtIst?: string;
  /** This run saw Kite reject the refresh token (LoginRequiredError reason refresh_token_rejected). */
  renewalRejected?: boolean;
  /** This run saw Kite reject the stored access token (403 on an API call). */
  tokenRejected?: boolean;
  /** The exchange's trading days: on a closed day nobody is asked to log in. Default: every day. */
  calendar?: TradingCalendar | undefined;
}

export interface ReminderDecision {
  send: ReminderKind | null;
  /** What to store as `login_reminder` together with sending; undefined when nothing is sent. */
  state: LoginReminderState | undefined;
  /** Why the token is unusable; undefined when it is usable. */
  problem: TokenProblem | undefined;
  /** Why this decision, for logs. */
  why:
    | 'token_usable'
    | 'renews_without_login'
    | 'market_closed'
    | 'before_first'
    | 'first_due'
    | 'follow_up_due'
    | 'before_follow_up'
    | 'done';
}

function parseInstant(value: unknown): Date | undefined {
  if (typeof value !== 'string' || !value) return undefined;
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/** The stored reminder state, or undefined when absent or not in the expected shape (then it starts over). */
export function readReminderState(config: BrokerConfig): LoginReminderState | undefined {
  const value = (config as { login_reminder?: unknown }).login_reminder;
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.for_day !== 'string' || typeof v.for_expiry !== 'string') return undefined;
  if (v.sent !== 0 && v.sent !== 1 && v.sent !== 2) return undefined;
  if (typeof v.last_sent_at !== 'string') return undefined;
  const forToken = typeof v.for_token === 'string' ? { for_token: v.for_token } : {};
  return {
    for_day: v.for_day,
    for_expiry: v.for_expiry,
    ...forToken,
    sent: v.sent,
    last_sent_at: v.last_sent_at,
  };
}

/** The config with `login_reminder` set to `state`, or removed when `state` is undefined. */
export function withReminderState(config: BrokerConfig, state: LoginReminderState | undefined): BrokerConfig {
  const { login_reminder: _old, ...rest } = config as BrokerConfig & { login_reminder?: unknown };
  return (state ? { ...rest, login_reminder: state } : rest) as BrokerConfig;
}

/** Why the stored token cannot be used now, or undefined when it can. An unknown expiry counts as unusable. */
export function tokenProblem(
  input: Omit<ReminderInput, 'firstAtIst' | 'followUpAtIst'>,
): TokenProblem | undefined {
  const { config, now } = input;
  if (!config.api_secret) return 'missing';
  if (input.renewalRejected) return 'renewal_rejected';
  if (input.tokenRejected) return 'rejected';
  const expiresAt = parseInstant(config.access_token_expires_at);
  if (!expiresAt) return 'unknown_expiry';
  return now.getTime() >= expiresAt.getTime() ? 'expired' : undefined;
}

/** Why no reminder is due at all at this tick, before the day's reminder state is looked at; undefined when one may be. */
function whyNoReminderYet(
  input: ReminderInput,
  problem: TokenProblem | undefined,
  firstAt: Date,
): ReminderDecision['why'] | undefined {
  if (!problem) return 'token_usable';
  if (hasRefreshToken(input.config) && !input.renewalRejected) return 'renews_without_login';
  // A Sunday or an exchange holiday: a login then is noise; the next trading morning reminds again.
  if (input.calendar && !isTradingDay(input.calendar, input.now)) return 'market_closed';
  if (input.now.getTime() < firstAt.getTime()) return 'before_first';
  return undefined;
}

/**
 * Whether to publish a login reminder now. Only when the token is unusable and only a human login can fix it
 * (no refresh token, or Kite rejected it): the first at/after `firstAtIst`, one follow-up at/after
 * `followUpAtIst` (and at least as long after the first as the two times are apart), then nothing more that day
 * for that token. A login stores a new, fresh token, and a fresh token never gets a reminder.
 */
export function decideReminder(input: ReminderInput): ReminderDecision {
  const firstAtIst = input.firstAtIst ?? DEFAULT_FIRST_REMINDER_IST;
  const followUpAtIst = input.followUpAtIst ?? DEFAULT_FOLLOW_UP_IST;
  const { config, now } = input;
  const firstAt = istTimeOn(now, firstAtIst);
  const followUpAt = istTimeOn(now, followUpAtIst);
  const gapMs = followUpAt.getTime() - firstAt.getTime();
  if (gapMs <= 0) {
    throw new ConfigError(`the follow-up reminder time ${followUpAtIst} must be later than ${firstAtIst}`, {
      field: 'REMINDER_FOLLOW_UP_IST',
    });
  }

  const problem = tokenProblem(input);
  const none = (why: ReminderDecision['why']): ReminderDecision => ({
    send: null,
    state: undefined,
    problem,
    why,
  });
  const notNow = whyNoReminderYet(input, problem, firstAt);
  if (notNow) return none(notNow);

  const day = istDate(now);
  const forExpiry = config.access_token_expires_at ?? '';
  const forToken = config.api_secret ? tokenDigest(config.api_secret).slice(0, 16) : '';
  const stamp = toIsoIst(now);
  const previous = readReminderState(config);
  const same =
    previous &&
    previous.for_day === day &&
    previous.for_expiry === forExpiry &&
    (previous.for_token === undefined || previous.for_token === forToken)
      ? previous
      : undefined;
  if (!same || same.sent === 0) {
    return {
      send: 'first',
      state: { for_day: day, for_expiry: forExpiry, for_token: forToken, sent: 1, last_sent_at: stamp },
      problem,
      why: 'first_due',
    };
  }
  if (same.sent >= 2) return none('done');
  const lastSent = parseInstant(same.last_sent_at) ?? firstAt;
  // Ticks drift by seconds (start-up, retries): without slack a follow-up due "an hour after 08:01:20" would miss
  // the 09:01:05 tick and go out at 10:01, after market open.
  const due = Math.max(followUpAt.getTime(), lastSent.getTime() + gapMs - FOLLOW_UP_SLACK_MS);
  if (now.getTime() < due) return none('before_follow_up');
  return {
    send: 'follow_up',
    state: { ...same, sent: 2, last_sent_at: stamp },
    problem,
    why: 'follow_up_due',
  };
}

const PROBLEM_TEXT: Record<TokenProblem, (expiry: string) => string> = {
  missing: () => 'There is no Kite access token stored',
  unknown_expiry: () => 'The stored Kite access token has no known expiry',
  expired: (expiry) => `The Kite access token expired at ${expiry}`,
  rejected: () => 'Kite rejected the stored access token',
  renewal_rejected: () => 'Kite rejected the refresh token, so the access token cannot be renewed',
};

export interface ReminderMessageInfo {
  now: Date;
  userId?: string | undefined;
  /** Expiry of the unusable token. */
  expiresAt?: Date | undefined;
  problem?: TokenProblem | undefined;
  /** Until when the link works. */
  linkExpiresAt?: Date | undefined;
  /** A signed link to the status page (STATUS_PAGE_URL): written out as a "Status:" line. */
  statusLink?: string | undefined;
}

/** The "Status: <link>" line the morning messages end with, after a blank line; none without a link. */
export function statusLines(statusLink: string | undefined): string[] {
  return statusLink ? ['', `Status: ${statusLink}`] : [];
}

/** The status page's button, after the login buttons. */
export const STATUS_BUTTON_LABEL = 'Status page';

/**
 * Subject and body for the alert topic. The subject is plain ASCII under 100 characters, as SNS requires for
 * e-mail subscriptions. The link carries only a signed state: it grants nothing without the Kite password and TOTP.
 */
export function reminderMessage(
  link: string,
  kind: ReminderKind,
  info: ReminderMessageInfo,
): { subject: string; body: string } {
  const account = info.userId && /^[A-Za-z0-9]{2,16}$/.test(info.userId) ? info.userId : undefined;
  const who = account ? ` for ${account}` : '';
  const subject = kind === 'first' ? `Kite login needed${who}` : `Reminder: Kite login still needed${who}`;
  const problem = PROBLEM_TEXT[info.problem ?? 'expired'](
    info.expiresAt ? formatIst(info.expiresAt) : 'its 06:00 IST flush',
  );
  const body = [
    kind === 'first'
      ? `${problem}${account ? ` (${account})` : ''}, and only a Kite login can replace it.`
      : `Still no Kite login${account ? ` for ${account}` : ''} since the first reminder. ${problem}.`,
    'Kite issues refresh tokens only to exchange-approved platforms, so this app needs one login a day.',
    '',
    'Log in here (your Kite password and TOTP as usual):',
    link,
    '',
    `The link works once, until ${info.linkExpiresAt ? formatIst(info.linkExpiresAt) : 'later today'}. ` +
      `Once you see "Logged in as${account ? ` ${account}` : ' …'}", the token is stored and nothing else is needed.`,
    'From a terminal instead: kite-token login-url',
    ...statusLines(info.statusLink),
  ].join('\n');
  return { subject, body };
}

/**
 * A login reminder as a notice: the body writes each link out (e-mail and SMS show only the body), and each link is
 * a button too, "Log in to Kite", or "Log in to Kite (<account>)" when one notice covers several accounts; a status
 * link becomes a last "Status page" button.
 */
export function loginNotice(
  message: { subject: string; body: string },
  links: ReadonlyArray<{ account?: string | undefined; url: string }>,
  statusLink?: string,
): Notice {
  const label = (account: string | undefined) =>
    links.length > 1 && account ? `Log in to Kite (${account})` : 'Log in to Kite';
  const accounts = links.flatMap((l) => (l.account ? [l.account] : []));
  return {
    event: 'login_needed',
    subject: message.subject,
    body: message.body,
    buttons: [
      ...links.map((l) => ({ label: label(l.account), url: l.url })),
      ...(statusLink ? [{ label: STATUS_BUTTON_LABEL, url: statusLink }] : []),
    ],
    ...(accounts.length > 0 ? { accounts } : {}),
  };
}

export interface ReminderPlan {
  kind: ReminderKind;
  subject: string;
  body: string;
  /** Subject, body and the link as a button, for every channel. */
  notice: Notice;
  /** The login link in the message (fresh signed state). */
  link: string;
  /** The new `login_reminder` value. */
  state: LoginReminderState;
  /** The document with `state` applied: write it with compare-and-swap before publishing. */
  config: BrokerConfig;
}

/**
 * decideReminder plus the message with a fresh login link: everything a scheduled run needs, or null when no
 * reminder is due. `appSecret` is the Kite app secret (the link's state key derives from it, with `stateScope`).
 */
export function planReminder(
  input: ReminderInput & {
    appSecret: string;
    loginRoot?: string;
    linkTtlMs?: number;
    /** The deployment's state scope (LOGIN_STATE_SCOPE): the same the login callback verifies with. */
    stateScope?: string | undefined;
    /** The account the link names (Account.linkAccount); undefined for a single document. */
    account?: string | undefined;
    /** A signed status page link (STATUS_PAGE_URL) for the message's "Status:" line and button. */
    statusLink?: string | undefined;
  },
): ReminderPlan | null {
  const decision = decideReminder(input);
  if (!decision.send || !decision.state) return null;
  const ttlMs = input.linkTtlMs ?? REMINDER_LINK_TTL_MS;
  const link = buildLoginLink({
    apiKey: input.config.api_key,
    appSecret: input.appSecret,
    now: input.now,
    loginRoot: input.loginRoot ?? loginRootFor(input.config),
    ttlMs,
    scope: input.stateScope,
    ...(input.account ? { account: input.account } : {}),
  });
  const { subject, body } = reminderMessage(link, decision.send, {
    now: input.now,
    userId: input.config.user_id,
    expiresAt: parseInstant(input.config.access_token_expires_at),
    problem: decision.problem,
    linkExpiresAt: new Date(input.now.getTime() + ttlMs),
    statusLink: input.statusLink,
  });
  return {
    kind: decision.send,
    subject,
    body,
    notice: loginNotice(
      { subject, body },
      [{ account: input.config.user_id || undefined, url: link }],
      input.statusLink,
    ),
    link,
    state: decision.state,
    config: withReminderState(input.config, decision.state),
  };
}
