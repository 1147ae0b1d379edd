// Signed, short-lived login states: the `state` a login link carries through Kite's redirect_params, so the callback
// can tell a login this service started from one it did not, and which account's document the login is for.
import { randomBytes } from 'node:crypto';
import { derivedKey, signature, signatureMatches } from './signing.ts';

/** How long a login link works when nobody says otherwise: long enough to type a password and a TOTP. */
export const LOGIN_STATE_TTL_MS = 10 * 60_000;
/**
 * No state lives longer than this, whatever TTL it was signed with: a morning's reminder at 08:00 needs its link
 * until a bit after the 09:15 market open, and a link that lives longer is only a longer chance for someone else.
 */
export const MAX_LOGIN_STATE_TTL_MS = 3 * 60 * 60_000;
/** A state stamped slightly ahead of this clock (a laptop's link checked by Lambda) is still accepted. */
const CLOCK_SKEW_MS = 2 * 60_000;
/**
 * HKDF `info` for the state key. The key is derived from the Kite app secret, so it lives wherever that secret
 * lives (KITE_API_SECRET or the KITE_API_SECRET_ID secret) and rotates with it: no second secret to provision.
 * The fixed label keeps the derived key useless for anything but login states.
 */
const STATE_KEY_INFO = 'kite-token-refresh/login-state/v1';

/**
 * The HMAC key for login states, derived (HKDF-SHA256) from the Kite app secret. `scope` (the deployment's stage,
 * LOGIN_STATE_SCOPE) goes into the HKDF info, so a state minted for one stage does not verify on another that shares
 * the app secret. Without a scope the key is the unscoped one every earlier release used.
 */
export function loginStateKey(appSecret: string, scope?: string): Buffer {
  return derivedKey(appSecret, STATE_KEY_INFO, scope, 'loginStateKey');
}

/**
 * The longest account name a state carries, in UTF-8 bytes: document keys (file names, object keys, secret names)
 * fit, and the link stays well inside what a browser and Kite's redirect_params carry.
 */
export const MAX_STATE_ACCOUNT_BYTES = 256;

/** The account name as the state carries it: base64url of its UTF-8 bytes, so it holds no '.' and needs no escaping. */
function encodeAccount(account: string): string {
  const bytes = Buffer.from(account, 'utf8');
  // A lone surrogate would not survive the round trip: such a name is not one a document can have.
  if (account === '' || bytes.length > MAX_STATE_ACCOUNT_BYTES || bytes.toString('utf8') !== account) {
    throw new RangeError(`login state account must be 1 to ${MAX_STATE_ACCOUNT_BYTES} bytes of UTF-8 text`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
  if (/[\u0000-\u001f\u007f]/.test(account))
    throw new RangeError('login state account has a control character');
  return bytes.toString('base64url');
}

/** The account a verified state names; undefined for text that is not the canonical encoding of a name. */
function decodeAccount(encoded: string): string | undefined {
  const bytes = Buffer.from(encoded, 'base64url');
  if (bytes.toString('base64url') !== encoded) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * A state for one login link, URL-safe: "v1.<issued ms>.<ttl s>.<nonce>.<HMAC-SHA256 of the rest>", or with an
 * account "v2.<issued ms>.<ttl s>.<nonce>.<account>.<HMAC>". The TTL is signed into it, so a reminder's link can
 * live longer than one printed at a terminal; the account is signed into it, so a link made for one account's
 * document can never write another's.
 */
export function createLoginState(
  key: Buffer,
  now = new Date(),
  ttlMs = LOGIN_STATE_TTL_MS,
  account?: string,
): string {
  if (!Number.isFinite(ttlMs) || ttlMs < 1000 || ttlMs > MAX_LOGIN_STATE_TTL_MS) {
    throw new RangeError(`login state TTL must be between 1 s and ${MAX_LOGIN_STATE_TTL_MS / 3_600_000} h`);
  }
  const fields = [
    account === undefined ? 'v1' : 'v2',
    String(now.getTime()),
    String(Math.floor(ttlMs / 1000)),
    randomBytes(12).toString('base64url'),
  ];
  if (account !== undefined) fields.push(encodeAccount(account));
  const payload = fields.join('.');
  return `${payload}.${signature(key, payload)}`;
}

export type LoginStateProblem = 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'from_the_future';

/**
 * On success, `nonce` names this state (and no other) for single use; it is not a secret on its own. `account` is
 * the account the state was made for; a v1 state names none.
 */
export type LoginStateCheck =
  | { ok: true; issuedAt: Date; expiresAt: Date; nonce: string; account?: string }
  | { ok: false; reason: LoginStateProblem };

const ACCOUNT_CHARS = Math.ceil((MAX_STATE_ACCOUNT_BYTES * 4) / 3);
const STATE_SHAPE = new RegExp(
  '^(?:v1\\.(\\d{1,15})\\.(\\d{1,6})\\.([A-Za-z0-9_-]{16})' +
    `|v2\\.(\\d{1,15})\\.(\\d{1,6})\\.([A-Za-z0-9_-]{16})\\.([A-Za-z0-9_-]{1,${ACCOUNT_CHARS}}))` +
    '\\.([A-Za-z0-9_-]{43})$',
);

interface SignedState {
  issuedAt: number;
  /** The TTL signed into it, capped at MAX_LOGIN_STATE_TTL_MS. */
  ttlMs: number;
  nonce: string;
  account: string | undefined;
}

/** A state's fields once its shape and signature check out; why not otherwise. Says nothing about its age. */
function readSignedState(
  key: Buffer,
  state: string | null | undefined,
): SignedState | { problem: LoginStateProblem } {
  if (!state) return { problem: 'missing' };
  const match = STATE_SHAPE.exec(state);
  if (!match) return { problem: 'malformed' };
  const [issued = '', ttl = '', nonce = '', encodedAccount] = match[4]
    ? match.slice(4, 8)
    : match.slice(1, 4);
  const payload = state.slice(0, state.lastIndexOf('.'));
  if (!signatureMatches(key, payload, match[8] ?? '')) return { problem: 'bad_signature' };
  // Signed, so this service wrote it; the check only keeps a name that is not text from ever reaching a lookup.
  const account = encodedAccount === undefined ? undefined : decodeAccount(encodedAccount);
  if (encodedAccount !== undefined && account === undefined) return { problem: 'malformed' };
  return {
    issuedAt: Number(issued),
    ttlMs: Math.min(Number(ttl) * 1000, MAX_LOGIN_STATE_TTL_MS),
    nonce,
    account,
  };
}

/**
 * Checks a state's signature (constant time) and age. It expires after the TTL signed into it, capped at
 * MAX_LOGIN_STATE_TTL_MS (a longer-lived link from an earlier release lives only that long), or after `maxAgeMs`
 * when that is shorter; a state stamped more than two minutes ahead of `now` is refused.
 */
export function verifyLoginState(
  key: Buffer,
  state: string | null | undefined,
  now = new Date(),
  maxAgeMs?: number,
): LoginStateCheck {
  const signed = readSignedState(key, state);
  if ('problem' in signed) return { ok: false, reason: signed.problem };
  const { issuedAt, ttlMs, nonce, account } = signed;
  const age = now.getTime() - issuedAt;
  if (age < -CLOCK_SKEW_MS) return { ok: false, reason: 'from_the_future' };
  const limit = Math.min(ttlMs, maxAgeMs ?? ttlMs);
  if (age > limit) return { ok: false, reason: 'expired' };
  const verified = {
    ok: true as const,
    issuedAt: new Date(issuedAt),
    expiresAt: new Date(issuedAt + limit),
    nonce,
  };
  return account === undefined ? verified : { ...verified, account };
}

/**
 * How long after its expiry a state may still be read for a fresh link on a failed login's page. The fresh link
 * keeps the first link's issue time (retry-link.ts), so however often it is retried, no chain of them outlives the
 * first link by more than MAX_LOGIN_STATE_TTL_MS.
 */
export const RETRY_GRACE_MS = MAX_LOGIN_STATE_TTL_MS;

/**
 * Whom a failed login may be offered a fresh link for: a state this service signed (valid, or expired no more than
 * `graceMs` ago, and not dated in the future) gives `{ account }`, the account it names (undefined for a v1 state).
 * Anything else, a tampered or forged state above all, gives undefined: it must not earn a fresh link.
 */
export function retryableLoginState(
  key: Buffer,
  state: string | null | undefined,
  now = new Date(),
  graceMs = RETRY_GRACE_MS,
): { account: string | undefined; issuedAt: Date } | undefined {
  const signed = readSignedState(key, state);
  if ('problem' in signed) return undefined;
  const age = now.getTime() - signed.issuedAt;
  if (age < -CLOCK_SKEW_MS || age > signed.ttlMs + graceMs) return undefined;
  return { account: signed.account, issuedAt: new Date(signed.issuedAt) };
}
