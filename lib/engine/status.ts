// What `kite-token status` reports: the token's age, expiry and mode, never the token itself.
import { type BrokerConfig, hasRefreshToken, type TokenSource, tokenSourceOf } from './broker-config.ts';
import { DEFAULT_REFRESH_WINDOW_MS, expiryOf, formatIst, refreshDue, storedIssuedAt } from './expiry.ts';
import { readVerdict } from './verdict.ts';

export type LoginMode = 'auto-renew' | 'daily-login';

export interface TokenStatus {
  location: string;
  userId: string | undefined;
  /** auto-renew: a refresh token is configured; daily-login: a human logs in once a day. */
  mode: LoginMode;
  hasAccessToken: boolean;
  /** Where the stored token came from; undefined when it predates the record (or there is none). */
  tokenSource: TokenSource | undefined;
  refreshedAt: string | undefined;
  ageMinutes: number | undefined;
  expiresAt: string | undefined;
  minutesToExpiry: number | undefined;
  refreshDue: boolean;
  dueReason: string | undefined;
  leaseHeldUntil: string | undefined;
  /** Kite's last word on the stored token (a scheduled tick asks in trading hours); undefined when never asked. */
  verdict: { accepted: boolean; at: string; current: boolean } | undefined;
  /** The IST day of the last ready check. */
  readyCheckedOn: string | undefined;
}

export function loginMode(config: BrokerConfig): LoginMode {
  return hasRefreshToken(config) ? 'auto-renew' : 'daily-login';
}

export function tokenStatus(
  config: BrokerConfig,
  location: string,
  now = new Date(),
  windowMs = DEFAULT_REFRESH_WINDOW_MS,
): TokenStatus {
  const expiresAt = expiryOf(config);
  // The engine's reading: a refreshed_at it cannot read is "unknown", here as when it compares issue times.
  const issuedAt = storedIssuedAt(config);
  const refreshedAt = issuedAt > 0 ? new Date(issuedAt) : undefined;
  const due = refreshDue({ accessToken: config.api_secret, expiresAt, now, windowMs });
  const lease = config.refresh_lease;
  return {
    location,
    userId: config.user_id,
    mode: loginMode(config),
    hasAccessToken: config.api_secret.length > 0,
    tokenSource: tokenSourceOf(config),
    refreshedAt: refreshedAt ? formatIst(refreshedAt) : undefined,
    ageMinutes: refreshedAt ? Math.floor((now.getTime() - refreshedAt.getTime()) / 60_000) : undefined,
    expiresAt: expiresAt ? formatIst(expiresAt) : undefined,
    minutesToExpiry: due.remainingMs === undefined ? undefined : Math.floor(due.remainingMs / 60_000),
    refreshDue: due.due,
    dueReason: due.reason,
    leaseHeldUntil: lease && Date.parse(lease.until) > now.getTime() ? lease.until : undefined,
    verdict: verdictOf(config),
    readyCheckedOn:
      typeof (config as { ready_checked_on?: unknown }).ready_checked_on === 'string'
        ? ((config as { ready_checked_on?: string }).ready_checked_on as string)
        : undefined,
  };
}

function verdictOf(config: BrokerConfig): TokenStatus['verdict'] {
  const stored = readVerdict(config);
  return stored && { accepted: stored.accepted, at: formatIst(stored.at), current: stored.current };
}

/** Kite's last word, as status says it. */
export function verdictText(s: Pick<TokenStatus, 'verdict'>): string {
  const v = s.verdict;
  if (!v)
    return 'not asked yet (scheduled ticks ask on trading days, 06:01-15:30 IST; or run kite-token verify)';
  if (!v.current) return `not asked about this token yet (the previous one was asked at ${v.at})`;
  return v.accepted ? `accepted at ${v.at}` : `REJECTED at ${v.at}: log in or renew`;
}

const modeText: Record<LoginMode, string> = {
  'auto-renew': 'auto-renew (refresh token present)',
  'daily-login': 'daily login (no refresh token: log in once a day with `kite-token login-url`)',
};

// Kite describes a refresh token as "for getting long standing read permissions": a renewed token may only read.
const sourceText: Record<TokenSource, string> = {
  login: 'daily login',
  renewal: "renewal (read-only by Kite's description; placing orders needs the daily login)",
};

function tokenFrom(s: TokenStatus): string {
  if (!s.hasAccessToken) return 'no token';
  return s.tokenSource ? sourceText[s.tokenSource] : 'unknown (stored before the source was recorded)';
}

export function formatStatus(s: TokenStatus): string[] {
  const lines = [
    `Config:        ${s.location}`,
    `User:          ${s.userId ?? '(unknown until the first refresh or login)'}`,
    `Mode:          ${modeText[s.mode]}`,
    `Access token:  ${s.hasAccessToken ? 'present' : 'missing'}`,
    `Token from:    ${tokenFrom(s)}`,
    `Refreshed at:  ${s.refreshedAt ? `${s.refreshedAt} (${s.ageMinutes} min ago)` : 'unknown'}`,
    `Expires at:    ${s.expiresAt ? `${s.expiresAt} (${s.minutesToExpiry !== undefined && s.minutesToExpiry < 0 ? 'expired' : `in ${s.minutesToExpiry} min`})` : 'unknown'}`,
    `Refresh due:   ${s.refreshDue ? `yes (${s.dueReason?.replace('_', ' ')})` : 'no'}`,
    `Kite says:     ${verdictText(s)}`,
  ];
  if (s.leaseHeldUntil) lines.push(`In progress:   a refresher holds the lease until ${s.leaseHeldUntil}`);
  return lines;
}

/** Whether an account is ready for market open, as far as the document knows. */
export interface Readiness {
  /** ready: unexpired and Kite accepted this very token; unknown: unexpired, Kite not asked about it yet. */
  state: 'ready' | 'not_ready' | 'unknown';
  why: string;
}

/**
 * Ready when the token has not expired by the clock, lives until the next market open (`minutesToOpen` from now,
 * when known), and Kite's last verdict is about this token and accepted; not ready without a token, once expired, or
 * when Kite rejected it; unknown while Kite has not been asked about it, or when the token dies before the next open
 * (its successor comes after the 06:00 flush).
 */
export function marketReadiness(s: TokenStatus, minutesToOpen?: number): Readiness {
  if (!s.hasAccessToken) return { state: 'not_ready', why: 'no token is stored' };
  if (s.minutesToExpiry === undefined) return { state: 'not_ready', why: 'the token’s expiry is unknown' };
  if (s.dueReason === 'expired') return { state: 'not_ready', why: 'the token has expired' };
  const v = s.verdict;
  if (v?.current && !v.accepted) return { state: 'not_ready', why: `Kite rejected the token at ${v.at}` };
  if (minutesToOpen !== undefined && s.minutesToExpiry < minutesToOpen) {
    const next = s.mode === 'auto-renew' ? 'it is renewed after the 06:00 flush' : 'log in after 06:00 IST';
    return { state: 'unknown', why: `this token expires before the next market open: ${next}` };
  }
  if (!v?.current) return { state: 'unknown', why: 'Kite has not been asked about this token yet' };
  return { state: 'ready', why: `Kite accepted the token at ${v.at}` };
}

/**
 * Only a login helps: a daily-login account with no token, an expired (or undated) one, or one Kite rejected. An
 * auto-renew account needs one only when it holds no token at all: otherwise the next tick renews it.
 */
export function needsLogin(s: TokenStatus, minutesToOpen?: number): boolean {
  if (marketReadiness(s, minutesToOpen).state !== 'not_ready') return false;
  return s.mode === 'daily-login' || !s.hasAccessToken;
}
