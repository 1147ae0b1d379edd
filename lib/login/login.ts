// The daily Kite login made one click: a signed, short-lived `state` rides through Kite's redirect_params, and the
// callback checks it, exchanges the request token once, enforces the pinned account and stores the tokens with CAS.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { apiRootFrom, type BrokerConfig, KITE_API_ROOT } from '../engine/broker-config.ts';
import { formatIst, istDate, storedIssuedAt } from '../engine/expiry.ts';
import { clearKeptTokens } from '../engine/kept-tokens.ts';
import {
  TokensNotWrittenError,
  tokensFromSession,
  type WriteRetry,
  withTokens,
  writeTokens,
} from '../engine/token-write.ts';
import { KITE_LOGIN_ROOT, loginUrl } from '../kite/client.ts';
import { classifyError, describeError } from '../shared/errors.ts';
import { type Log, silentLog } from '../shared/log.ts';
import { maskToken } from '../shared/mask.ts';
import type { ConfigStore, KeptTokens } from '../store/config-store.ts';

/** How long a login link works when nobody says otherwise: long enough to type a password and a TOTP. */
export const LOGIN_STATE_TTL_MS = 10 * 60_000;
/** No state lives longer than this, whatever TTL it was signed with. */
export const MAX_LOGIN_STATE_TTL_MS = 24 * 60 * 60_000;
/** A state stamped slightly ahead of this clock (a laptop's link checked by Lambda) is still accepted. */
const CLOCK_SKEW_MS = 2 * 60_000;
/**
 * HKDF `info` for the state key. The key is derived from the Kite app secret, so it lives wherever that secret
 * lives (KITE_API_SECRET or the KITE_API_SECRET_ID secret) and rotates with it: no second secret to provision.
 * The fixed label keeps the derived key useless for anything but login states.
 */
const STATE_KEY_INFO = 'kite-token-refresh/login-state/v1';
const STATE_VERSION = 'v1';
const REQUEST_TOKEN = /^[A-Za-z0-9]{16,64}$/;
const USER_ID = /^[A-Za-z0-9]{2,16}$/;

/** The HMAC key for login states, derived (HKDF-SHA256) from the Kite app secret. */
export function loginStateKey(appSecret: string): Buffer {
  if (!appSecret) throw new RangeError('loginStateKey: the Kite app secret is required');
  return Buffer.from(hkdfSync('sha256', appSecret, Buffer.alloc(0), STATE_KEY_INFO, 32));
}

function mac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(payload, 'utf8').digest();
}

/**
 * A state for one login link: "v1.<issued ms>.<ttl s>.<nonce>.<HMAC-SHA256 of the rest>", URL-safe. The TTL is
 * signed into it, so a reminder's link can live longer than one printed at a terminal.
 */
export function createLoginState(key: Buffer, now = new Date(), ttlMs = LOGIN_STATE_TTL_MS): string {
  if (!Number.isFinite(ttlMs) || ttlMs < 1000 || ttlMs > MAX_LOGIN_STATE_TTL_MS) {
    throw new RangeError(`login state TTL must be between 1 s and ${MAX_LOGIN_STATE_TTL_MS / 3_600_000} h`);
  }
  const payload = [
    STATE_VERSION,
    String(now.getTime()),
    String(Math.floor(ttlMs / 1000)),
    randomBytes(12).toString('base64url'),
  ].join('.');
  return `${payload}.${mac(key, payload).toString('base64url')}`;
}

export type LoginStateProblem = 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'from_the_future';

export type LoginStateCheck =
  | { ok: true; issuedAt: Date; expiresAt: Date }
  | { ok: false; reason: LoginStateProblem };

const STATE_SHAPE = /^v1\.(\d{1,15})\.(\d{1,6})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;

/**
 * Checks a state's signature (constant time) and age. It expires after the TTL signed into it, or after
 * `maxAgeMs` when that is shorter; a state stamped more than two minutes ahead of `now` is refused.
 */
export function verifyLoginState(
  key: Buffer,
  state: string | null | undefined,
  now = new Date(),
  maxAgeMs?: number,
): LoginStateCheck {
  if (!state) return { ok: false, reason: 'missing' };
  const match = STATE_SHAPE.exec(state);
  if (!match) return { ok: false, reason: 'malformed' };
  const [, issued, ttl, , signature] = match as unknown as [string, string, string, string, string];
  const payload = state.slice(0, state.lastIndexOf('.'));
  // Compared as canonical text: decoding would let several spellings of one MAC through.
  const given = Buffer.from(signature, 'ascii');
  const expected = Buffer.from(mac(key, payload).toString('base64url'), 'ascii');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'bad_signature' };
  }
  const issuedAt = Number(issued);
  const ttlMs = Number(ttl) * 1000;
  if (ttlMs > MAX_LOGIN_STATE_TTL_MS) return { ok: false, reason: 'malformed' };
  const age = now.getTime() - issuedAt;
  if (age < -CLOCK_SKEW_MS) return { ok: false, reason: 'from_the_future' };
  const limit = Math.min(ttlMs, maxAgeMs ?? ttlMs);
  if (age > limit) return { ok: false, reason: 'expired' };
  return { ok: true, issuedAt: new Date(issuedAt), expiresAt: new Date(issuedAt + limit) };
}

/** Where a human logs in for this config: Kite's login site, or the sandbox when base_url is a loopback sandbox. */
export function loginRootFor(config: Pick<BrokerConfig, 'base_url'>): string {
  const root = apiRootFrom(config.base_url).url;
  if (root === KITE_API_ROOT) return KITE_LOGIN_ROOT;
  const host = new URL(root).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host) ? root : KITE_LOGIN_ROOT;
}

export interface LoginLinkInput {
  apiKey: string;
  appSecret: string;
  now?: Date;
  /** Default Kite's login site; the sandbox serves /connect/login at its url. */
  loginRoot?: string;
  /** How long the link works. Default 10 minutes. */
  ttlMs?: number;
}

/** The Kite login URL with a fresh signed state in redirect_params; Kite hands it back to the redirect URL. */
export function buildLoginLink(input: LoginLinkInput): string {
  const state = createLoginState(loginStateKey(input.appSecret), input.now ?? new Date(), input.ttlMs);
  return loginUrl(input.apiKey, { state }, input.loginRoot ?? KITE_LOGIN_ROOT);
}

export type LoginFailure =
  | 'bad_request'
  | 'cancelled'
  | 'missing_state'
  | 'bad_state'
  | 'expired_state'
  | 'wrong_account'
  | 'request_token_used'
  | 'kite_unavailable'
  | 'kite_refused'
  | 'store_unavailable'
  | 'not_stored';

const STATUS: Record<LoginFailure, number> = {
  bad_request: 400,
  cancelled: 400,
  missing_state: 400,
  bad_state: 403,
  expired_state: 403,
  wrong_account: 403,
  request_token_used: 410,
  kite_unavailable: 502,
  kite_refused: 502,
  store_unavailable: 500,
  not_stored: 500,
};

/**
 * A login that did not store a token. `message` is written for the person who clicked the link and carries no
 * token; `detail` adds operator context for the log. Only `not_stored` follows a successful exchange.
 */
export class LoginError extends Error {
  override name = 'LoginError';
  readonly code: LoginFailure;
  /** The HTTP status the callback answers with. */
  readonly status: number;
  readonly detail: string | undefined;
  constructor(code: LoginFailure, message: string, options?: { detail?: string; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.code = code;
    this.status = STATUS[code];
    this.detail = options?.detail;
  }
}

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

export interface LoginResult {
  userId: string;
  expiresAt: Date;
  /** True when this login pinned user_id in a config that had none. */
  pinned: boolean;
  config: BrokerConfig;
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

/** "06:00 IST tomorrow (2025-11-08 06:00:00 IST)", relative to `now` in IST. */
export function describeValidity(expiresAt: Date, now = new Date()): string {
  const full = formatIst(expiresAt);
  const clock = `${full.slice(11, 16)} IST`;
  const day = istDate(expiresAt);
  const when =
    day === istDate(now)
      ? 'today'
      : day === istDate(new Date(now.getTime() + 24 * 60 * 60_000))
        ? 'tomorrow'
        : `on ${day}`;
  return `${clock} ${when} (${full})`;
}

/** "Logged in as XX0000 — valid until 06:00 IST tomorrow (2025-11-08 06:00:00 IST)". */
export function loginSummary(result: Pick<LoginResult, 'userId' | 'expiresAt'>, now = new Date()): string {
  return `Logged in as ${result.userId} — valid until ${describeValidity(result.expiresAt, now)}`;
}
