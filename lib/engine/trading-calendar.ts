// Which IST dates the exchange trades on: weekdays, less the listed holidays, plus the listed special sessions
// (Muhurat trading, special Saturday sessions). The exchange publishes its holidays once a year, so the lists are
// settings rather than code.
import { ConfigError } from '../shared/errors.ts';
import { istDate, istTimeOn } from './expiry.ts';

export interface TradingCalendar {
  /** TRADING_HOLIDAYS: IST dates ("YYYY-MM-DD") the exchange is closed although they are weekdays. */
  readonly holidays: ReadonlySet<string>;
  /** SPECIAL_SESSIONS: IST dates that trade although they fall on a weekend or a holiday. */
  readonly specialSessions: ReadonlySet<string>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The setting each list comes from, named in every error. */
const HOLIDAYS = 'TRADING_HOLIDAYS';
const SPECIAL_SESSIONS = 'SPECIAL_SESSIONS';

/** Whether "YYYY-MM-DD" is a date that exists: Date.UTC rolls 2026-02-30 over to 2026-03-02, so compare back. */
function isCalendarDate(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return false;
  const [y, mo, d] = m.slice(1).map(Number) as [number, number, number];
  const at = new Date(Date.UTC(y, mo - 1, d));
  return at.getUTCFullYear() === y && at.getUTCMonth() === mo - 1 && at.getUTCDate() === d;
}

/** A comma-separated list of dates; blank is an empty list. Throws one ConfigError naming the setting. */
function parseDates(list: string | undefined, setting: string): Set<string> {
  const dates = new Set<string>();
  if (list === undefined || list.trim() === '') return dates;
  for (const entry of list.split(',')) {
    const date = entry.trim();
    if (!isCalendarDate(date)) {
      throw new ConfigError(`${setting} lists "${date}", which is not a date of the form YYYY-MM-DD`, {
        field: setting,
      });
    }
    dates.add(date);
  }
  return dates;
}

/**
 * The calendar from its two settings, each a comma-separated list of IST dates ("2026-01-26,2026-03-03"). Refuses
 * malformed or impossible dates and a date listed in both: closed and trading at once is a mistake in one list.
 */
export function parseTradingCalendar(
  holidays: string | undefined,
  specialSessions: string | undefined,
): TradingCalendar {
  const closed = parseDates(holidays, HOLIDAYS);
  const open = parseDates(specialSessions, SPECIAL_SESSIONS);
  const both = [...open].find((date) => closed.has(date));
  if (both !== undefined) {
    throw new ConfigError(
      `${both} is listed in both ${HOLIDAYS} and ${SPECIAL_SESSIONS}: a date is either closed or a special session`,
      { field: SPECIAL_SESSIONS },
    );
  }
  return { holidays: closed, specialSessions: open };
}

/** Whether the exchange trades on an IST date ("YYYY-MM-DD"). */
function tradesOn(calendar: TradingCalendar, date: string): boolean {
  if (calendar.specialSessions.has(date)) return true;
  if (calendar.holidays.has(date)) return false;
  const weekday = new Date(`${date}T00:00:00Z`).getUTCDay();
  return weekday !== 0 && weekday !== 6;
}

/** Whether the IST calendar day of `at` is a trading day. */
export function isTradingDay(calendar: TradingCalendar, at: Date): boolean {
  return tradesOn(calendar, istDate(at));
}

/**
 * The IST date ("YYYY-MM-DD") of the first trading day after the IST day of `at`. Ends: the holiday list is finite
 * and every week has weekdays.
 */
export function nextTradingDay(calendar: TradingCalendar, at: Date): string {
  let day = new Date(`${istDate(at)}T00:00:00Z`);
  let date: string;
  do {
    day = new Date(day.getTime() + DAY_MS);
    date = day.toISOString().slice(0, 10);
  } while (!tradesOn(calendar, date));
  return date;
}

/** When the exchange opens, IST. */
export const MARKET_OPEN_IST = '09:15';

/** The next market open at or after `now`: today's 09:15 IST on a trading day not yet past it, else the next day's. */
export function nextMarketOpen(calendar: TradingCalendar, now: Date): Date {
  const today = istTimeOn(now, MARKET_OPEN_IST);
  if (isTradingDay(calendar, now) && now.getTime() <= today.getTime()) return today;
  return new Date(`${nextTradingDay(calendar, now)}T${MARKET_OPEN_IST}:00+05:30`);
}
