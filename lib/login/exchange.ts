// The daily Kite login's exchange: the callback's query (or a request token pasted at a terminal) is checked, the
// request token is exchanged once, the pinned account is enforced and the tokens are stored with compare-and-swap.
import type { BrokerConfig } from '../engine/broker-config.ts';
import { formatIst, storedIssuedAt } from '../engine/expiry.ts';
import { clearKeptTokens, tokensFromSession } from '../engine/kept-tokens.ts';
import { TokensNotWrittenError, type WriteRetry, withTokens, writeTokens } from '../engine/token-write.ts';
import { classifyError, describeError } from '../shared/errors.ts';
import { type Log, silentLog } from '../shared/log.ts';
import { maskToken } from '../shared/mask.ts';
import type { ConfigStore, KeptTokens } from '../store/config-store.ts';
import { LoginError, type LoginFailure, type LoginResult } from './outcome.ts';
import { type LoginStateProblem, loginStateKey, verifyLoginState } from './state.ts';

const REQUEST_TOKEN = /^[A-Za-z0-9]{16,64}$/;
const USER_ID = /^[A-Za-z0-9]{2,16}$/;

/** What the login needs from a Kite session: KiteClient's session type fits. */
export interface LoginSession {
  userId: string;
  accessToken: string;
  refreshToken: string;
  loginTime?: string | undefined;
}

/** What the login needs from Kite: KiteClient fits. */
export interface SessionExchanger {
  generateSession(requestToken: string): Promise<LoginSession>;
  /** Used to log out a session of an account this config is not for. */
  invalidateAccessToken?(accessToken: string): Promise<boolean>;
}

export interface LoginDeps {
  store: ConfigStore;
  /** A Kite client for the config (api_key and base_url come from it): Refresher.kiteFor fits. */
  kite: (config: BrokerConfig) => SessionExchanger;
  /** The Kite app secret: the state key is derived from it. */
  appSecret: string;
  now?: () => Date;
  log?: Log;
  /** Retries of the token write; a token Kite issued is worth waiting for. */
  writeRetry?: WriteRetry;
  /** Folder for the local copy of tokens a failed write could not store. Default: the OS temp folder. */
  rescueDir?: string;
}

/** The callback's query: Lambda's queryStringParameters, or URLSearchParams (which sees repeated names). */
export type CallbackQuery = URLSearchParams | Record<string, string | undefined> | null | undefined;

const START_AGAIN = 'Start again from a fresh login link (kite-token login-url, or the latest reminder).';

function single(query: CallbackQuery, name: string): string | undefined {
  if (!query) return undefined;
  if (query instanceof URLSearchParams) {
    const all = query.getAll(name);
    if (all.length > 1) {
      throw new LoginError(
        'bad_request',
        `The login callback carried "${name}" more than once. ${START_AGAIN}`,
      );
    }
    return all[0];
  }
  return query[name];
}

const stateFailure: Record<Exclude<LoginStateProblem, 'missing'>, [LoginFailure, string]> = {
  malformed: ['bad_state', 'The login link’s state is not one this service issued.'],
  bad_signature: ['bad_state', 'The login link’s state is not one this service issued.'],
  from_the_future: ['bad_state', 'The login link’s state is dated in the future.'],
  expired: ['expired_state', 'The login link has expired.'],
};

function checkState(appSecret: string, state: string | undefined, now: Date): Date {
  if (!state) {
    throw new LoginError(
      'missing_state',
      `The login callback carried no state, so it cannot be tied to a login this service started. ${START_AGAIN}`,
    );
  }
  const check = verifyLoginState(loginStateKey(appSecret), state, now);
  if (!check.ok) {
    const [code, text] = stateFailure[check.reason as Exclude<LoginStateProblem, 'missing'>];
    throw new LoginError(code, `${text} Nothing was changed. ${START_AGAIN}`, {
      detail: `state ${check.reason}`,
    });
  }
  return check.issuedAt;
}

function checkRequestToken(requestToken: string | undefined): string {
  if (!requestToken) {
    throw new LoginError('bad_request', `The login callback carried no request_token. ${START_AGAIN}`);
  }
  if (!REQUEST_TOKEN.test(requestToken)) {
    throw new LoginError('bad_request', `The request_token is not one Kite issues. ${START_AGAIN}`);
  }
  return requestToken;
}

/**
 * Handles Kite's redirect to the login callback: status must be "success", action "login", request_token present
 * and well-formed, state valid. Then exchanges the request token (see exchangeRequestToken). Throws LoginError.
 * The state is not single-use; Kite's request token is, so a replayed callback gets 410 and writes nothing.
 */
export async function completeLogin(deps: LoginDeps & { query: CallbackQuery }): Promise<LoginResult> {
  const now = deps.now ?? (() => new Date());
  const status = single(deps.query, 'status');
  const action = single(deps.query, 'action');
  const requestToken = single(deps.query, 'request_token');
  const state = single(deps.query, 'state');
  if (status !== undefined && status !== 'success') {
    const shown = /^[a-z_]{1,20}$/.test(status) ? ` (status=${status})` : '';
    throw new LoginError('cancelled', `The Kite login was cancelled or failed${shown}. Nothing was changed.`);
  }
  if (status === undefined) {
    throw new LoginError('bad_request', `The login callback carried no status from Kite. ${START_AGAIN}`);
  }
  if (action !== 'login') {
    throw new LoginError('bad_request', `The login callback is not a Kite login (action). ${START_AGAIN}`);
  }
  const token = checkRequestToken(requestToken);
  const stateIssuedAt = checkState(deps.appSecret, state, now());
  return exchange(deps, token, stateIssuedAt);
}

/**
 * Exchanges a request token pasted at a terminal. The state is optional here: it protects a browser from being
 * steered into someone else's login, and at a terminal the person pasting the token started the login. When it
 * is given it must be valid. The user_id pin is enforced either way. Throws LoginError.
 */
export async function exchangeRequestToken(
  deps: LoginDeps & { requestToken: string; state?: string | undefined },
): Promise<LoginResult> {
  const now = deps.now ?? (() => new Date());
  const token = checkRequestToken(deps.requestToken.trim());
  const stateIssuedAt = deps.state === undefined ? undefined : checkState(deps.appSecret, deps.state, now());
  return exchange(deps, token, stateIssuedAt);
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

function exchangeFailure(e: unknown, config: BrokerConfig, stateIssuedAt: Date | undefined): LoginError {
  const failure = classifyError(e);
  const fromKite = failure.kind === 'token_rejected' || failure.kind === 'kite_rejected';
  const detail = fromKite ? `Kite ${failure.message}` : failure.message;
  if (failure.kind === 'token_rejected') {
    // A browser refresh of the success page replays the callback: say so instead of alarming anyone.
    const refreshed = storedIssuedAt(config);
    const already =
      stateIssuedAt !== undefined && refreshed > 0 && refreshed >= stateIssuedAt.getTime() - 1000;
    return new LoginError(
      'request_token_used',
      already
        ? `This login was already completed: the request token works only once. Nothing was changed.`
        : `Kite no longer accepts this request token: it works once and only for a few minutes. Nothing was changed. ${START_AGAIN}`,
      { detail, cause: e },
    );
  }
  if (failure.kind === 'kite_rejected') {
    return new LoginError(
      'kite_refused',
      'Kite refused to finish the login. Nothing was changed; check the service’s logs (a wrong app secret shows up here).',
      { detail, cause: e },
    );
  }
  return new LoginError(
    'kite_unavailable',
    failure.kind === 'kite_unavailable'
      ? `Kite could not be reached to finish the login. Nothing was changed. ${START_AGAIN}`
      : `The login could not be finished with Kite. Nothing was changed. ${START_AGAIN}`,
    { detail, cause: e },
  );
}

function checkAccount(config: BrokerConfig, userId: string): void {
  const pinned = config.user_id;
  if (pinned && userId !== pinned) {
    throw new LoginError(
      'wrong_account',
      `You logged in to Kite as ${USER_ID.test(userId) ? userId : 'another account'}, but this service keeps the ` +
        `token of ${pinned}. Nothing was changed. Log out of Kite and log in as ${pinned}.`,
    );
  }
}

/** The document after a login: the login's tokens, the account pinned, no lease and no pending reminder. */
function applyLogin(base: BrokerConfig, tokens: KeptTokens): BrokerConfig {
  // A login answers the reminders: their state goes with it.
  const { login_reminder: _reminder, ...rest } = withTokens(base, tokens) as BrokerConfig & {
    login_reminder?: unknown;
  };
  return rest as BrokerConfig;
}

async function exchange(
  deps: LoginDeps,
  requestToken: string,
  stateIssuedAt: Date | undefined,
): Promise<LoginResult> {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? silentLog;
  const first = await readConfig(deps.store);
  const kite = deps.kite(first.config);

  let session: LoginSession;
  try {
    session = await kite.generateSession(requestToken);
  } catch (e: unknown) {
    throw exchangeFailure(e, first.config, stateIssuedAt);
  }
  if (!session.userId) {
    throw new LoginError(
      'kite_refused',
      'Kite’s answer did not say which account logged in. Nothing was changed.',
    );
  }
  try {
    checkAccount(first.config, session.userId);
  } catch (e: unknown) {
    // A session of an account this config is not for has no use here; end it rather than leave it live.
    await kite.invalidateAccessToken?.(session.accessToken).catch(() => false);
    throw e;
  }

  const tokens = tokensFromSession(session, now());
  const written = await writeLogin(deps, first, tokens, log);
  // Tokens kept by an earlier failed write are older than the login's: drop them so no run writes them back.
  await clearKeptTokens(deps.store, deps.rescueDir);
  // The stored expiry: a newer token that won a race (see writeLogin) is the one in force.
  const expiresAt = new Date(written.access_token_expires_at ?? tokens.access_token_expires_at);
  const pinned = !first.config.user_id;
  log.info(`✅ Logged in as ${session.userId}`, {
    oldToken: maskToken(first.config.api_secret),
    newToken: maskToken(session.accessToken),
    expiresAt: formatIst(expiresAt),
    location: deps.store.location,
    ...(pinned ? { reason: `user_id ${session.userId} pinned by this first login` } : {}),
  });
  return { userId: session.userId, expiresAt, pinned, config: written };
}

/**
 * Writes the login's tokens with compare-and-swap, re-reading on a conflict. A refresh lease does not hold a
 * login back: the login's token replaces the document's and the lease is dropped (a refresher still holding it
 * sees its lease gone and keeps the newer token). If the tokens cannot be stored they are kept in the store's
 * rescue slot and on local disk, and LoginError('not_stored') says where.
 */
async function writeLogin(
  deps: LoginDeps,
  first: { config: BrokerConfig; version: string },
  tokens: KeptTokens,
  log: Log,
): Promise<BrokerConfig> {
  try {
    return await writeTokens({
      store: deps.store,
      start: first,
      tokens,
      apply: (base) => {
        // The pin may have been set by someone else meanwhile: check it on every attempt.
        checkAccount(base, tokens.user_id ?? '');
        return applyLogin(base, tokens);
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
