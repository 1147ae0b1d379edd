// Signed, short-lived login states: the `state` a login link carries through Kite's redirect_params, so the callback
// can tell a login this service started from one it did not, and which account's document the login is for.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

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
const SCOPE_SHAPE = /^[A-Za-z0-9._:/-]{1,128}$/;

/**
 * The HMAC key for login states, derived (HKDF-SHA256) from the Kite app secret. `scope` (the deployment's stage,
 * LOGIN_STATE_SCOPE) goes into the HKDF info, so a state minted for one stage does not verify on another that shares
 * the app secret. Without a scope the key is the unscoped one every earlier release used.
 */
export function loginStateKey(appSecret: string, scope?: string): Buffer {
  if (!appSecret) throw new RangeError('loginStateKey: the Kite app secret is required');
  if (scope !== undefined && scope !== '' && !SCOPE_SHAPE.test(scope)) {
    throw new RangeError('loginStateKey: the scope must be 1 to 128 letters, digits or . _ : / -');
  }
  const info = scope ? `${STATE_KEY_INFO}/scope=${scope}` : STATE_KEY_INFO;
  return Buffer.from(hkdfSync('sha256', appSecret, Buffer.alloc(0), info, 32));
}

function mac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(payload, 'utf8').digest();
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
  return `${payload}.${mac(key, payload).toString('base64url')}`;
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
  if (!state) return { ok: false, reason: 'missing' };
  const match = STATE_SHAPE.exec(state);
  if (!match) return { ok: false, reason: 'malformed' };
  const [issued = '', ttl = '', nonce = '', encodedAccount] = match[4]
    ? match.slice(4, 8)
    : match.slice(1, 4);
  const signature = match[8] ?? '';
  const payload = state.slice(0, state.lastIndexOf('.'));
  // Compared as canonical text: decoding would let several spellings of one MAC through.
  const given = Buffer.from(signature, 'ascii');
  const expected = Buffer.from(mac(key, payload).toString('base64url'), 'ascii');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'bad_signature' };
  }
  // Signed, so this service wrote it; the check only keeps a name that is not text from ever reaching a lookup.
  const account = encodedAccount === undefined ? undefined : decodeAccount(encodedAccount);
  if (encodedAccount !== undefined && account === undefined) return { ok: false, reason: 'malformed' };
  const issuedAt = Number(issued);
  const ttlMs = Math.min(Number(ttl) * 1000, MAX_LOGIN_STATE_TTL_MS);
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
