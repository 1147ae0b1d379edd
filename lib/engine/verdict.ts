// Kite's last word on the stored token, kept in the document: `verified` (Kite accepted it), `verified_at` and
// `verified_token_sha256` (which token it was about, so a verdict never outlives its token), plus the day of the
// last ready check. And when a scheduled tick asks Kite at all: on trading days, from the 06:01 IST tick through
// the 15:30 IST close; the ready check once a trading day at READY_CHECK_IST.
import { type BrokerConfig, tokenDigest } from './broker-config.ts';
import { istDate, istTimeOn, toIsoIst } from './expiry.ts';
import { isTradingDay, type TradingCalendar } from './trading-calendar.ts';

export const VERIFY_FROM_IST = '06:01';
export const VERIFY_UNTIL_IST = '15:30';
export const DEFAULT_READY_CHECK_IST = '09:01';
/** Ticks are hourly: the ready check is the first tick in the hour from READY_CHECK_IST. */
const READY_CHECK_WINDOW_MS = 60 * 60_000;

export interface StoredVerdict {
  /** Kite accepted the token when last asked. */
  accepted: boolean;
  at: Date;
  /** The verdict is about the token stored now (a login or renewal since makes it someone else's). */
  current: boolean;
}

type Fields = Record<string, unknown>;

/** The stored verdict, or undefined when there is none (or it is not in the expected shape). */
export function readVerdict(config: BrokerConfig): StoredVerdict | undefined {
  const f = config as Fields;
  if (typeof f.verified !== 'boolean' || typeof f.verified_at !== 'string') return undefined;
  const at = new Date(f.verified_at);
  if (Number.isNaN(at.getTime())) return undefined;
  const about = f.verified_token_sha256;
  return {
    accepted: f.verified,
    at,
    current:
      typeof about === 'string' && config.api_secret !== '' && about === tokenDigest(config.api_secret),
  };
}

/** The document with Kite's verdict on its current token. */
export function withVerdict(config: BrokerConfig, accepted: boolean, at: Date): BrokerConfig {
  return {
    ...config,
    verified: accepted,
    verified_at: toIsoIst(at),
    verified_token_sha256: tokenDigest(config.api_secret),
  } as BrokerConfig;
}

/** True when `accepted` is news: no verdict is stored about this token, or the stored one says otherwise. */
export function verdictChanged(config: BrokerConfig, accepted: boolean): boolean {
  const stored = readVerdict(config);
  return !stored?.current || stored.accepted !== accepted;
}

/** The document marked as ready-checked on `at`'s IST day. */
export function withReadyCheck(config: BrokerConfig, at: Date): BrokerConfig {
  return { ...config, ready_checked_on: istDate(at) } as BrokerConfig;
}

/** True on a trading day from the 06:01 IST tick through the 15:30 IST close: the hours a token must work. */
export function inVerificationHours(now: Date, calendar: TradingCalendar): boolean {
  if (!isTradingDay(calendar, now)) return false;
  const t = now.getTime();
  return t >= istTimeOn(now, VERIFY_FROM_IST).getTime() && t <= istTimeOn(now, VERIFY_UNTIL_IST).getTime();
}

/**
 * True when this tick is the account's ready check: a trading day, within the hour from `readyAtIst`, and the
 * document has not been ready-checked today (a retried tick does not check, count or tell twice).
 */
export function readyCheckDue(
  config: BrokerConfig,
  now: Date,
  calendar: TradingCalendar,
  readyAtIst = DEFAULT_READY_CHECK_IST,
): boolean {
  if (!isTradingDay(calendar, now)) return false;
  const from = istTimeOn(now, readyAtIst).getTime();
  const t = now.getTime();
  if (t < from || t >= from + READY_CHECK_WINDOW_MS) return false;
  return (config as Fields).ready_checked_on !== istDate(now);
}
