// What a person is told at the ready check: every trading morning, after the tick at READY_CHECK_IST asked Kite
// about each account. Not ready is always said; ready ("all green") only with NOTIFY_READY.
import { tokenSourceOf } from '../engine/broker-config.ts';
import { formatIst } from '../engine/expiry.ts';
import type { RefreshOutcome } from '../engine/refresh-engine.ts';
import { STATUS_BUTTON_LABEL, statusLines } from '../login/reminders.ts';
import type { Notice } from '../notify/notice.ts';

export interface ReadyResult {
  /** The account's name, and its Kite user when known. */
  account: string;
  userId: string | undefined;
  ready: boolean;
  why: string;
  /** Only a human login makes it ready. */
  loginNeeded: boolean;
  outcome: RefreshOutcome | undefined;
}

const SOURCE: Record<string, string> = {
  login: 'from the daily login',
  renewal: 'renewed (read-only by Kite’s description)',
};

function line(r: ReadyResult): string {
  const who = r.userId ? `${r.account} (${r.userId})` : r.account;
  if (!r.ready) return `❌ ${who}: not ready. ${r.why}.`;
  const config = r.outcome?.config;
  const source = config ? SOURCE[tokenSourceOf(config) ?? ''] : undefined;
  const expires =
    r.outcome && 'expiresAt' in r.outcome && r.outcome.expiresAt ? r.outcome.expiresAt : undefined;
  return `✅ ${who}: ready. ${r.why}${source ? `; token ${source}` : ''}${expires ? `; expires ${formatIst(expires)}` : ''}.`;
}

/**
 * The ready check's notice: "not ready" naming each account that is not (with why and what to do), or, when every
 * account is ready and `notifyReady` is set, "ready". Undefined when there is nothing to say. A status link (a
 * signed link to the status page) adds a "Status:" line and a "Status page" button.
 */
export function readyNotice(
  results: readonly ReadyResult[],
  notifyReady: boolean,
  statusLink?: string,
): Notice | undefined {
  if (results.length === 0) return undefined;
  const status = statusLines(statusLink);
  const buttons = statusLink ? { buttons: [{ label: STATUS_BUTTON_LABEL, url: statusLink }] } : {};
  const notReady = results.filter((r) => !r.ready);
  const accounts = results.map((r) => r.account);
  const lines = results.map(line);
  if (notReady.length > 0) {
    const needsLogin = notReady.some((r) => r.loginNeeded);
    return {
      event: 'not_ready',
      subject:
        results.length === 1
          ? 'NOT ready for market open: the Kite token does not work'
          : `NOT ready for market open: ${notReady.length} of ${results.length} Kite accounts`,
      body: [
        ...lines,
        '',
        needsLogin
          ? 'Log in with the link in the login reminder, or from a terminal: kite-token login-url'
          : 'Check with: kite-token verify (it asks Kite about the stored token)',
        ...status,
      ].join('\n'),
      ...buttons,
      accounts,
    };
  }
  if (!notifyReady) return undefined;
  return {
    event: 'ready',
    subject:
      results.length === 1
        ? 'Ready for market open'
        : `Ready for market open: all ${results.length} Kite accounts`,
    body: [...lines, ...status].join('\n'),
    ...buttons,
    accounts,
  };
}
