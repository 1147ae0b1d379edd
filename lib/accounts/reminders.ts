// Daily-login reminders for several accounts: each account's reminder is decided and claimed in its own document
// (compare-and-swap, as for one account), then every account due goes out in one message, each with its own link.
import type { BrokerConfig } from '../engine/broker-config.ts';
import type { TradingCalendar } from '../engine/trading-calendar.ts';
import {
  loginNotice,
  planReminder,
  type ReminderKind,
  readReminderState,
  statusLines,
  withReminderState,
} from '../login/reminders.ts';
import type { Notice, Notify } from '../notify/notice.ts';
import { ConflictError } from '../shared/errors.ts';
import { settleEach } from './concurrency.ts';
import type { Account } from './registry.ts';
import type { LoginNeed } from './tick.ts';

export interface AccountRemindersDeps {
  /** Every configured channel; rejects only when none took the notice. */
  notify: Notify;
  appSecret: string;
  /** LOGIN_STATE_SCOPE: the login callback verifies links with the same. */
  stateScope?: string | undefined;
  firstAtIst: string;
  followUpAtIst: string;
  /** TRADING_HOLIDAYS and SPECIAL_SESSIONS: no reminders on a closed day. */
  calendar?: TradingCalendar | undefined;
  /** A fresh signed status page link for the message (STATUS_PAGE_URL set); undefined: no status line. */
  statusLink?: ((now: Date) => string) | undefined;
  now?: () => Date;
}

interface Claimed {
  account: Account;
  kind: ReminderKind;
  subject: string;
  body: string;
  /** The login link the body writes out. */
  link: string;
  /** The document as it was, and the version the claim wrote: a failed send gives the claim back. */
  before: BrokerConfig;
  claimedVersion: string;
  claimedConfig: BrokerConfig;
}

async function claim(deps: AccountRemindersDeps, need: LoginNeed, now: Date): Promise<Claimed | null> {
  const { store } = need.account.refresher;
  const { config, version } = await store.read();
  // Kite refused a token a login has since replaced (the login killed it): nobody needs reminding.
  if (need.refusedToken !== undefined && config.api_secret !== need.refusedToken) return null;
  const plan = planReminder({
    config,
    now,
    firstAtIst: deps.firstAtIst,
    followUpAtIst: deps.followUpAtIst,
    calendar: deps.calendar,
    renewalRejected: need.reason === 'refresh_token_rejected',
    tokenRejected: need.reason === 'access_token_rejected',
    appSecret: deps.appSecret,
    stateScope: deps.stateScope,
    account: need.account.linkAccount,
  });
  if (!plan) return null;
  try {
    const claimedVersion = await store.write(plan.config, version);
    const { kind, subject, body, link } = plan;
    return {
      account: need.account,
      kind,
      subject,
      body,
      link,
      before: config,
      claimedVersion,
      claimedConfig: plan.config,
    };
  } catch (e: unknown) {
    // Someone else changed the document (a login, another tick): the next tick decides again.
    if (e instanceof ConflictError) return null;
    throw e;
  }
}

/**
 * One message for every account due: the subject counts them, the body has a section (and a link) per account,
 * and one "Status:" line at the end when there is a status link.
 */
export function combinedMessage(
  claimed: readonly Claimed[],
  statusLink?: string,
): { subject: string; body: string } {
  const only = claimed[0];
  const status = ['', ...statusLines(statusLink)].join('\n');
  // A single-document deployment's reminder reads as it always has; an account of several is named.
  if (claimed.length === 1 && only) {
    const named = only.account.linkAccount !== undefined;
    return {
      subject: only.subject,
      body: `${named ? `Account ${only.account.name}\n\n${only.body}` : only.body}${status}`,
    };
  }
  const subject = `Kite login needed for ${claimed.length} accounts`;
  const body = claimed
    .map(
      (c) =>
        `=== Account ${c.account.name}${c.account.userId ? ` (${c.account.userId})` : ''} ===\n\n${c.body}`,
    )
    .join('\n\n');
  return { subject, body: `${body}${status}` };
}

/** combinedMessage as a notice, each account's link a button of its own, then the status page's. */
export function combinedNotice(claimed: readonly Claimed[], statusLink?: string): Notice {
  return loginNotice(
    combinedMessage(claimed, statusLink),
    claimed.map((c) => ({ account: c.account.name, url: c.link })),
    statusLink,
  );
}

/**
 * The reminder step of a tick over several accounts: claims every reminder due, sends one notice on every channel,
 * and gives every claim back when no channel took it.
 */
export function remindAccounts(
  deps: AccountRemindersDeps,
): (needs: LoginNeed[], deadline?: number) => Promise<Map<Account, ReminderKind>> {
  return async (needs, deadline) => {
    const now = (deps.now ?? (() => new Date()))();
    const settled = await settleEach(needs, 4, (need) => claim(deps, need, now));
    const claimed = settled.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
    const sent = new Map<Account, ReminderKind>();
    if (claimed.length > 0) {
      try {
        await deps.notify(combinedNotice(claimed, deps.statusLink?.(now)), { deadline });
      } catch (e: unknown) {
        await Promise.all(
          claimed.map((c) =>
            c.account.refresher.store
              .write(withReminderState(c.claimedConfig, readReminderState(c.before)), c.claimedVersion)
              .catch(() => {}),
          ),
        );
        throw e;
      }
      for (const c of claimed) sent.set(c.account, c.kind);
    }
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return sent;
  };
}
