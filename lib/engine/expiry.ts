// When a Kite access token dies and when to renew it.
// Kite flushes every session at 06:00 IST, so expiry is a clock time, not a duration after issue.
import { ConfigError } from '../shared/errors.ts';
import type { BrokerConfig } from './broker-config.ts';

const IST_OFFSET_MS = (5 * 60 + 30) * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const FLUSH_HOUR_IST = 6;

/** The default proactive window: renew when less than this remains. With an hourly tick, 1–2 h before expiry. */
export const DEFAULT_REFRESH_WINDOW_MS = 2 * 60 * 60 * 1000;

/** Wall-clock fields of an instant as seen in IST. */
function istParts(at: Date): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  const shifted = new Date(at.getTime() + IST_OFFSET_MS);
  return {
    y: shifted.getUTCFullYear(),
    mo: shifted.getUTCMonth() + 1,
    d: shifted.getUTCDate(),
    h: shifted.getUTCHours(),
    mi: shifted.getUTCMinutes(),
    s: shifted.getUTCSeconds(),
  };
}

/** The instant IST wall-clock y-mo-d h:mi:s denotes. */
function fromIst(y: number, mo: number, d: number, h: number, mi: number, s: number): Date {
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s) - IST_OFFSET_MS);
}

/** A token issued at `issuedAt` expires at the first 06:00 IST strictly after it (05:50 → 06:00 that day; 06:00 or later → 06:00 next day). */
export function nextExpiry(issuedAt: Date): Date {
  const { y, mo, d } = istParts(issuedAt);
  const sameDay = fromIst(y, mo, d, FLUSH_HOUR_IST, 0, 0);
  return sameDay.getTime() > issuedAt.getTime() ? sameDay : new Date(sameDay.getTime() + DAY_MS);
}

/** Parses Kite's `login_time` ("YYYY-MM-DD HH:mm:ss", IST, no zone). Returns undefined for anything else. */
export function parseKiteLoginTime(loginTime: string | undefined): Date | undefined {
  if (!loginTime) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/.exec(loginTime.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const at = fromIst(y, mo, d, h, mi, s);
  const back = istParts(at);
  // Rejects impossible dates such as 2025-02-30 that Date.UTC would roll over.
  if (back.mo !== mo || back.d !== d || back.h !== h) return undefined;
  return at;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** "YYYY-MM-DD HH:mm:ss" in IST without a zone, as Kite writes login_time. */
export function formatKiteLoginTime(at: Date): string {
  const p = istParts(at);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)} ${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`;
}

/** "2025-11-08 06:00:00 IST", the form the trading system logs. */
export function formatIst(at: Date): string {
  return `${formatKiteLoginTime(at)} IST`;
}

/**
 * ISO-8601 in IST with its offset, e.g. "2025-11-08T06:00:00+05:30", as stored in broker-config.json; with `ms`,
 * "2025-11-07T09:12:40.123+05:30" (issue times, which must order two renewals within one second).
 */
export function toIsoIst(at: Date, options: { ms?: boolean } = {}): string {
  const p = istParts(at);
  const fraction = options.ms ? `.${pad(((at.getTime() % 1000) + 1000) % 1000, 3)}` : '';
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}${fraction}+05:30`;
}

/** Parses a stored ISO-8601 timestamp (with an offset or Z). Throws ConfigError naming the field if it is not one. */
export function parseStoredInstant(value: string | undefined, field: string): Date | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    throw new ConfigError(`field "${field}" must be an ISO-8601 timestamp with an offset`, { field });
  }
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) {
    throw new ConfigError(`field "${field}" is not a valid timestamp`, { field });
  }
  return at;
}

/** The IST calendar date ("YYYY-MM-DD") of an instant. */
export function istDate(at: Date): string {
  const p = istParts(at);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}`;
}

/** The instant a given IST clock time ("HH:mm") falls on the IST calendar day of `day`. */
export function istTimeOn(day: Date, hhmm: string): Date {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm);
  if (!m) throw new ConfigError(`"${hhmm}" is not an IST time of the form HH:mm`);
  const h = Number(m[1]);
  const mi = Number(m[2]);
  if (h > 23 || mi > 59) throw new ConfigError(`"${hhmm}" is not an IST time of the form HH:mm`);
  const p = istParts(day);
  return fromIst(p.y, p.mo, p.d, h, mi, 0);
}

export type DueReason = 'no_token' | 'unknown_expiry' | 'expired' | 'within_window' | 'rejected' | 'forced';

export interface DueDecision {
  due: boolean;
  /** Why a refresh is due; undefined when it is not. */
  reason: DueReason | undefined;
  /** Time left until expiry in ms (negative once expired); undefined when the expiry is unknown. */
  remainingMs: number | undefined;
}

/**
 * Whether a token renewed now would live longer than one expiring at `expiresAt`. Kite's flush kills every token
 * at 06:00 IST, so before the flush a renewal gains nothing: the new token dies at the same 06:00.
 */
function renewalOutlives(expiresAt: Date | undefined, now: Date): boolean {
  return expiresAt === undefined || nextExpiry(now).getTime() > expiresAt.getTime();
}

/** Why the stored token needs renewing by itself (no token, unknown expiry, expired, inside the window), if it does. */
function clockReason(
  accessToken: string,
  expiresAt: Date | undefined,
  remainingMs: number | undefined,
  now: Date,
  windowMs: number,
): DueReason | undefined {
  if (!accessToken) return 'no_token';
  if (remainingMs === undefined) return 'unknown_expiry';
  if (remainingMs <= 0) return 'expired';
  if (remainingMs < windowMs && renewalOutlives(expiresAt, now)) return 'within_window';
  return undefined;
}

/**
 * A by-clock decision with what the caller knows on top: forcing wins over everything, a reported rejection over
 * every clock reason but a missing token. The engine decides by clock once per read and derives this from it.
 */
export function withCallerReason(
  byClock: DueDecision,
  caller: { rejected?: boolean | undefined; force?: boolean | undefined },
): DueDecision {
  let reason = byClock.reason;
  if (caller.force) reason = 'forced';
  else if (caller.rejected && reason !== 'no_token') reason = 'rejected';
  return { due: reason !== undefined, reason, remainingMs: byClock.remainingMs };
}

/**
 * A refresh is due when there is no token, the expiry is unknown, the token has expired, the token was reported
 * rejected, or the caller forces one; and when less than `windowMs` is left *and* a token renewed now would
 * outlive it. For expiries on Kite's 06:00 IST flush that is never before the flush (a token renewed at 05:00 dies
 * at 06:00 as well), so the hourly tick at 06:01 IST renews; the window matters for stored expiries that are not
 * on the flush.
 */
export function refreshDue(input: {
  accessToken: string;
  expiresAt: Date | undefined;
  now: Date;
  windowMs?: number;
  rejected?: boolean;
  force?: boolean;
}): DueDecision {
  const windowMs = input.windowMs ?? DEFAULT_REFRESH_WINDOW_MS;
  const remainingMs = input.expiresAt ? input.expiresAt.getTime() - input.now.getTime() : undefined;
  const reason = clockReason(input.accessToken, input.expiresAt, remainingMs, input.now, windowMs);
  return withCallerReason({ due: reason !== undefined, reason, remainingMs }, input);
}

/** The stored token's expiry. A malformed value is a ConfigError naming the field: renewing on a guess is worse. */
export function expiryOf(config: BrokerConfig): Date | undefined {
  return parseStoredInstant(config.access_token_expires_at, 'access_token_expires_at');
}

/**
 * When the stored token was issued (epoch ms); 0 when unknown or unreadable. Everything that compares issue times
 * (kept tokens, both write paths, status) reads it here, so a bad value means the same everywhere. refreshed_at is
 * to the second in documents written before issue times carried milliseconds, and to the millisecond since.
 */
export function storedIssuedAt(config: BrokerConfig): number {
  const at = config.refreshed_at ? Date.parse(config.refreshed_at) : 0;
  return Number.isNaN(at) ? 0 : at;
}
