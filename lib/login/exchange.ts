// The daily Kite login's exchange: the callback's query (or a request token pasted at a terminal) is checked, the
// request token is exchanged once, the document of the account the state names is read, its pinned user is
// enforced and the tokens are stored there with compare-and-swap.
import type { BrokerConfig } from '../engine/broker-config.ts';
import { formatIst, storedIssuedAt } from '../engine/expiry.ts';
import { clearKeptTokens, tokensFromSession } from '../engine/kept-tokens.ts';
import { TokensNotWrittenError, type WriteRetry, withTokens, writeTokens } from '../engine/token-write.ts';
import { describeError } from '../shared/errors.ts';
import { type Log, silentLog } from '../shared/log.ts';
import { maskToken } from '../shared/mask.ts';
import type { ConfigStore, KeptTokens } from '../store/config-store.ts';
import {
  type CallbackQuery,
  checkRequestToken,
  checkState,
  readCallback,
  type VerifiedState,
} from './callback-query.ts';
import {
  type LoginSession,
  type LoginTarget,
  loginTarget,
  type ManyAccounts,
  type OneDocument,
  type SessionExchanger,
} from './login-account.ts';
import { LoginError, type LoginFailure, type LoginResult } from './outcome.ts';
import { checkAccount, exchangeFailure, tooManyAttemptsError, usedStateError } from './refusals.ts';
import { containerAttempts, isStateUsed, type LoginAttempts, withStateUsed } from './single-use.ts';
import { loginStateKey } from './state.ts';

export type {
  AccountResolver,
  LoginAccount,
  LoginSession,
  SessionExchanger,
} from './login-account.ts';

/** What every login needs besides the account's document: the state key, the rules, and where it logs. */
export interface LoginOptions {
  /** The Kite app secret: the state key is derived from it. */
  appSecret: string;
  /**
   * The deployment's state scope (its stage, LOGIN_STATE_SCOPE): part of the state key, so only links minted with
   * the same scope verify. Default none: the key every earlier release used.
   */
  stateScope?: string | undefined;
  /**
   * Let a login pin user_id in a document that has none. Default false: such a login is refused (and its Kite
   * session logged out), since whoever clicks a forwarded link first would otherwise decide whose token is kept.
   */
  allowFirstLoginPin?: boolean | undefined;
  /** Failed attempts per login link. Default: one record per process (per Lambda container). */
  attempts?: LoginAttempts;
  now?: () => Date;
  log?: Log;
  /** Retries of the token write; a token Kite issued is worth waiting for. */
  writeRetry?: WriteRetry;
  /** Folder for the local copy of tokens a failed write could not store. Default: the OS temp folder. */
  rescueDir?: string;
}

/**
 * A login's dependencies: the deployment's one document (store and kite, as before accounts), or `resolveAccount`,
 * which finds the account a login link names.
 */
export type LoginDeps = LoginOptions & (OneDocument | ManyAccounts);

export type { CallbackQuery } from './callback-query.ts';

/**
 * Handles Kite's redirect to the login callback: status must be "success", action "login", request_token present
 * and well-formed, state valid and not used before. Then exchanges the request token (see exchangeRequestToken).
 * Throws LoginError. A state works for one login: a replayed callback gets 410 without asking Kite.
 */
export async function completeLogin(deps: LoginDeps & { query: CallbackQuery }): Promise<LoginResult> {
  const now = deps.now ?? (() => new Date());
  const { requestToken, state } = readCallback(deps.query);
  const verified = checkState(loginStateKey(deps.appSecret, deps.stateScope), state, now());
  return exchange(deps, requestToken, verified);
}

/**
 * Exchanges a request token pasted at a terminal. The state is optional here: it protects a browser from being
 * steered into someone else's login, and at a terminal the person pasting the token started the login. When it
 * is given it must be valid and unused, and it is spent like the callback's. `account` (the --account asked for)
 * must agree with the account the state names. The user_id pin is enforced either way. Throws LoginError.
 */
export async function exchangeRequestToken(
  deps: LoginDeps & { requestToken: string; state?: string | undefined; account?: string | undefined },
): Promise<LoginResult> {
  const now = deps.now ?? (() => new Date());
  const token = checkRequestToken(deps.requestToken.trim());
  const verified =
    deps.state === undefined
      ? undefined
      : checkState(loginStateKey(deps.appSecret, deps.stateScope), deps.state, now());
  return exchange(deps, token, verified, deps.account);
}

async function readConfig(store: ConfigStore): Promise<{ config: BrokerConfig; version: string }> {
  try {
    return await store.read();
  } catch (e: unknown) {
    throw new LoginError(
      'store_unavailable',
      'The token store could not be read, so nothing was changed. Try again in a minute; if it persists, check the service’s logs.',
      { detail: describeError(e), cause: e },
    );
  }
}

/** The document after a login: the login's tokens, the account pinned, no lease and no pending reminder. */
function applyLogin(base: BrokerConfig, tokens: KeptTokens): BrokerConfig {
  // A login answers the reminders: their state goes with it.
  const { login_reminder: _reminder, ...rest } = withTokens(base, tokens, 'login') as BrokerConfig & {
    login_reminder?: unknown;
  };
  return rest as BrokerConfig;
}

/** Failures a caller of the callback can cause: they count against the link. Store failures do not. */
const NOT_COUNTED = new Set<LoginFailure>(['store_unavailable', 'not_stored', 'too_many_attempts']);
/** Refusals after Kite issued a session: that session is logged out rather than left live. */
const LOG_OUT = new Set<LoginFailure>(['wrong_account', 'account_not_pinned', 'state_used']);

async function exchange(
  deps: LoginDeps,
  requestToken: string,
  state: VerifiedState | undefined,
  account?: string,
): Promise<LoginResult> {
  const now = deps.now ?? (() => new Date());
  if (!state) return exchangeOnce(deps, await loginTarget(deps, undefined, account), requestToken, undefined);
  const attempts = deps.attempts ?? containerAttempts;
  const refusal = attempts.refusal(state.nonce, now());
  if (refusal) throw refusal === 'used' ? usedStateError() : tooManyAttemptsError();
  try {
    const target = await loginTarget(deps, state.account, account);
    const result = await exchangeOnce(deps, target, requestToken, state);
    attempts.used(state, now());
    return result;
  } catch (e: unknown) {
    if (e instanceof LoginError && !NOT_COUNTED.has(e.code)) attempts.failed(state, now());
    throw e;
  }
}

async function openSession(
  kite: SessionExchanger,
  requestToken: string,
  config: BrokerConfig,
  state: VerifiedState | undefined,
): Promise<LoginSession> {
  let session: LoginSession;
  try {
    session = await kite.generateSession(requestToken);
  } catch (e: unknown) {
    throw exchangeFailure(e, config, requestToken, state?.issuedAt);
  }
  if (!session.userId) {
    throw new LoginError(
      'kite_refused',
      'Kite’s answer did not say which account logged in. Nothing was changed.',
    );
  }
  return session;
}

async function exchangeOnce(
  deps: LoginOptions,
  target: LoginTarget,
  requestToken: string,
  state: VerifiedState | undefined,
): Promise<LoginResult> {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? silentLog;
  const first = await readConfig(target.store);
  if (state && isStateUsed(first.config, state.nonce, now())) throw usedStateError();
  const kite = target.kite(first.config);
  const session = await openSession(kite, requestToken, first.config, state);

  const tokens = tokensFromSession(session, now(), 'login');
  let written: BrokerConfig;
  try {
    checkAccount(first.config, session.userId, deps.allowFirstLoginPin === true);
    written = await writeLogin(deps, target.store, first, tokens, log, state);
  } catch (e: unknown) {
    // A session this config will not keep has no use here; end it rather than leave it live.
    if (e instanceof LoginError && LOG_OUT.has(e.code)) {
      await kite.invalidateAccessToken?.(session.accessToken).catch(() => false);
    }
    throw e;
  }
  // Tokens kept by an earlier failed write are older than the login's: drop them so no run writes them back.
  await clearKeptTokens(target.store, deps.rescueDir);
  // The stored expiry: a newer token that won a race (see writeLogin) is the one in force.
  const expiresAt = new Date(written.access_token_expires_at ?? tokens.access_token_expires_at);
  const pinned = !first.config.user_id;
  log.info(`✅ Logged in as ${session.userId}`, {
    oldToken: maskToken(first.config.api_secret),
    newToken: maskToken(session.accessToken),
    expiresAt: formatIst(expiresAt),
    location: target.store.location,
    ...(target.account === undefined ? {} : { account: target.account }),
    ...(pinned ? { reason: `user_id ${session.userId} pinned by this first login` } : {}),
  });
  const result = { userId: session.userId, expiresAt, pinned, config: written };
  return target.account === undefined ? result : { ...result, account: target.account };
}

/**
 * Writes the login's tokens with compare-and-swap, re-reading on a conflict, and records the state as used in the
 * same write. A refresh lease does not hold a login back: the login's token replaces the document's and the lease
 * is dropped (a refresher still holding it sees its lease gone and keeps the newer token). If the tokens cannot be
 * stored they are kept in the store's rescue slot and on local disk, and LoginError('not_stored') says where.
 */
async function writeLogin(
  deps: LoginOptions,
  store: ConfigStore,
  first: { config: BrokerConfig; version: string },
  tokens: KeptTokens,
  log: Log,
  state: VerifiedState | undefined,
): Promise<BrokerConfig> {
  const now = deps.now ?? (() => new Date());
  try {
    return await writeTokens({
      store,
      start: first,
      tokens,
      apply: (base) => {
        // Another login with this link, or a pin set by someone else, may have landed meanwhile: check every attempt.
        if (state && isStateUsed(base, state.nonce, now())) throw usedStateError();
        checkAccount(base, tokens.user_id ?? '', deps.allowFirstLoginPin === true);
        const applied = applyLogin(base, tokens);
        return state ? withStateUsed(applied, state, now()) : applied;
      },
      // A later login or renewal stored a newer token meanwhile: that one stands.
      superseded: (latest) =>
        latest.api_secret !== tokens.access_token && storedIssuedAt(latest) > Date.parse(tokens.issued_at),
      retry: deps.writeRetry,
      rescueDir: deps.rescueDir,
    });
  } catch (e: unknown) {
    if (!(e instanceof TokensNotWrittenError)) throw e;
    log.error('❌ Login token not stored', {
      reason: `Kite logged in ${tokens.user_id} but the token could not be stored (${e.message})`,
      newToken: maskToken(tokens.access_token),
      kept: e.kept.length > 0 ? e.kept : 'nowhere',
    });
    throw new LoginError(
      'not_stored',
      `Kite logged you in as ${tokens.user_id}, but the token could not be saved. Log in again from a fresh link in a minute.`,
      {
        detail: `write failed (${e.message}); tokens kept in ${e.kept.join(' and ') || 'nowhere'}`,
        cause: e.cause,
      },
    );
  }
}
