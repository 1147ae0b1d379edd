// Signed, expiring links to the status page: the token in `?s=` is "s1.<expiry, epoch seconds>.<HMAC>", under a key
// derived from the Kite app secret and the deployment's scope for this purpose only, so a login state never opens
// the status page and a status token never starts a login.
import { derivedKey, signature, signatureMatches } from './signing.ts';

/** How long a status link works when nobody says otherwise: a trading day, from the morning message to the close. */
export const STATUS_LINK_TTL_MS = 12 * 60 * 60_000;
/** No status link lives longer than this, whatever it asks for. */
export const MAX_STATUS_LINK_TTL_MS = 7 * 24 * 60 * 60_000;
/** A token minted on a clock slightly ahead of this one (a laptop's link checked by Lambda) is still accepted. */
const CLOCK_SKEW_MS = 2 * 60_000;
/** HKDF `info` for the status key: distinct from the login-state key's, so neither verifies as the other. */
const STATUS_KEY_INFO = 'kite-token-refresh/status-page/v1';
const TOKEN_SHAPE = /^s1\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/** The HMAC key for status tokens: from the Kite app secret and the deployment's scope (LOGIN_STATE_SCOPE). */
export function statusLinkKey(appSecret: string, scope?: string): Buffer {
  return derivedKey(appSecret, STATUS_KEY_INFO, scope, 'statusLinkKey');
}

/** A status token that works until `now + ttlMs` (1 minute to 7 days): compact and URL-safe. */
export function createStatusToken(key: Buffer, now = new Date(), ttlMs = STATUS_LINK_TTL_MS): string {
  if (!Number.isFinite(ttlMs) || ttlMs < 60_000 || ttlMs > MAX_STATUS_LINK_TTL_MS) {
    throw new RangeError(
      `status link TTL must be between 1 minute and ${MAX_STATUS_LINK_TTL_MS / 3_600_000} h`,
    );
  }
  const payload = `s1.${Math.floor((now.getTime() + ttlMs) / 1000)}`;
  return `${payload}.${signature(key, payload)}`;
}

export type StatusTokenCheck =
  | { ok: true; expiresAt: Date }
  | { ok: false; reason: 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'too_long' };

/**
 * Checks a status token: its signature (constant time), that it has not expired, and that it does not claim to
 * live longer than MAX_STATUS_LINK_TTL_MS from now.
 */
export function verifyStatusToken(
  key: Buffer,
  token: string | null | undefined,
  now = new Date(),
): StatusTokenCheck {
  if (!token) return { ok: false, reason: 'missing' };
  const match = TOKEN_SHAPE.exec(token);
  if (!match) return { ok: false, reason: 'malformed' };
  const payload = token.slice(0, token.lastIndexOf('.'));
  if (!signatureMatches(key, payload, match[2] ?? '')) return { ok: false, reason: 'bad_signature' };
  const expiresAt = Number(match[1]) * 1000;
  if (expiresAt <= now.getTime()) return { ok: false, reason: 'expired' };
  if (expiresAt > now.getTime() + MAX_STATUS_LINK_TTL_MS + CLOCK_SKEW_MS)
    return { ok: false, reason: 'too_long' };
  return { ok: true, expiresAt: new Date(expiresAt) };
}

/** The status page's address on a login callback: "https://<id>.lambda-url.<region>.on.aws/status". */
export function statusPageUrl(callbackUrl: string): string {
  return new URL('/status', callbackUrl).href;
}

export interface StatusLinkInput {
  appSecret: string;
  /** The deployment's scope (LOGIN_STATE_SCOPE): the callback verifies with the same. */
  scope?: string | undefined;
  now?: Date;
  /** Default 12 h, at most 7 days. */
  ttlMs?: number;
}

/** `pageUrl` (the status page's address, STATUS_PAGE_URL) with a fresh signed token in `s`. */
export function buildStatusLink(pageUrl: string, input: StatusLinkInput): string {
  const url = new URL(pageUrl);
  const token = createStatusToken(statusLinkKey(input.appSecret, input.scope), input.now, input.ttlMs);
  url.search = new URLSearchParams({ s: token }).toString();
  url.hash = '';
  return url.href;
}
