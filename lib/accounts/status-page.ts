// The status page's route: checks the signed status token before anything else (a refused link reads no document),
// then reads every account's document a few at a time and renders one row each, with a fresh login link where
// only a login helps.
import type { BrokerConfig } from '../engine/broker-config.ts';
import { needsLogin, tokenStatus } from '../engine/status.ts';
import { nextMarketOpen, parseTradingCalendar, type TradingCalendar } from '../engine/trading-calendar.ts';
import type { LoginPage } from '../login/pages.ts';
import { REMINDER_LINK_TTL_MS } from '../login/reminders.ts';
import { statusLinkKey, verifyStatusToken } from '../login/status-link.ts';
import { renderStatusPage, type StatusPageRow, statusForbiddenPage } from '../login/status-page.ts';
import { ConfigError, describeError } from '../shared/errors.ts';
import { type Log, silentLog } from '../shared/log.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { settleEach } from './concurrency.ts';
import { loginLinkFor } from './login-link.ts';
import type { Account } from './registry.ts';

/** What the page needs of an account: the registry's Account fits. */
export type StatusAccount = Pick<Account, 'name' | 'userId' | 'linkAccount'> & {
  readonly refresher: { readonly store: ConfigStore };
};

export interface StatusPageDeps {
  /** Every account of the deployment (the registry's `all`). */
  accounts: { all(): Promise<ReadonlyArray<StatusAccount>> };
  /** The Kite app secret: the status key and the login links derive from it. */
  appSecret: string;
  /** LOGIN_STATE_SCOPE: status tokens and login links are verified with the same. */
  stateScope?: string | undefined;
  now?: () => Date;
  log?: Log;
  /** How many documents are read at once. Default 4. */
  concurrency?: number;
  /** TRADING_HOLIDAYS and SPECIAL_SESSIONS: when the next market open is. Default: weekdays. */
  calendar?: TradingCalendar | undefined;
}

const WEEKDAYS = parseTradingCalendar(undefined, undefined);

/** The page's login links live as long as a reminder's: a morning, not a day. */
const LOGIN_LINK_TTL_MS = REMINDER_LINK_TTL_MS;

function rowFor(
  deps: StatusPageDeps,
  account: StatusAccount,
  config: BrokerConfig,
  now: Date,
): StatusPageRow {
  const status = tokenStatus(config, account.refresher.store.location, now);
  const opensAt = nextMarketOpen(deps.calendar ?? WEEKDAYS, now);
  const minutesToOpen = Math.floor((opensAt.getTime() - now.getTime()) / 60_000);
  const row = { name: account.name, userId: config.user_id || account.userId, status, minutesToOpen };
  if (!needsLogin(status, minutesToOpen)) return row;
  const loginLink = loginLinkFor(account.linkAccount, config, {
    appSecret: deps.appSecret,
    scope: deps.stateScope,
    now,
    ttlMs: LOGIN_LINK_TTL_MS,
  });
  return { ...row, loginLink };
}

/** One row per account, in the accounts' order; a document that cannot be read is a row saying so. */
export async function statusRows(deps: StatusPageDeps, now: Date): Promise<StatusPageRow[]> {
  const log = deps.log ?? silentLog;
  const accounts = await deps.accounts.all();
  const settled = await settleEach(accounts, deps.concurrency ?? 4, async (account) => {
    const { config } = await account.refresher.store.read();
    return rowFor(deps, account, config, now);
  });
  return settled.map((result, i): StatusPageRow => {
    const account = accounts[i] as StatusAccount;
    if (result.status === 'fulfilled') return result.value;
    log.error('❌ Status page: a document could not be read', {
      account: account.name,
      error: describeError(result.reason),
    });
    const invalid =
      result.reason instanceof ConfigError ? { invalidField: result.reason.field ?? 'document' } : {};
    return { name: account.name, userId: account.userId, unreadable: true, ...invalid };
  });
}

/**
 * Answers GET /status?s=<token>. A missing, tampered or expired token gets 403 before any account is listed or any
 * document read. Throws only when the accounts cannot be listed.
 */
export async function answerStatusPage(token: string | undefined, deps: StatusPageDeps): Promise<LoginPage> {
  const now = (deps.now ?? (() => new Date()))();
  const check = verifyStatusToken(statusLinkKey(deps.appSecret, deps.stateScope), token, now);
  if (!check.ok) {
    (deps.log ?? silentLog).warn('⛔ Status page refused', { reason: `status link ${check.reason}` });
    return statusForbiddenPage();
  }
  return renderStatusPage({ rows: await statusRows(deps, now), now, linkExpiresAt: check.expiresAt });
}
