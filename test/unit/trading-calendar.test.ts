import { describe, expect, it } from 'vitest';
import { isTradingDay, nextTradingDay, parseTradingCalendar } from '../../lib/engine/trading-calendar.ts';
import { ConfigError } from '../../lib/shared/errors.ts';

const ist = (s: string) => new Date(`${s}+05:30`);
const weekdaysOnly = parseTradingCalendar(undefined, undefined);

function calendarError(holidays: string, specialSessions: string): ConfigError {
  try {
    parseTradingCalendar(holidays, specialSessions);
  } catch (e: unknown) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('parseTradingCalendar accepted the lists');
}

describe('isTradingDay', () => {
  it('trades Monday to Friday when nothing is listed', () => {
    for (const day of ['2026-01-26', '2026-01-27', '2026-01-28', '2026-01-29', '2026-01-30']) {
      expect(isTradingDay(weekdaysOnly, ist(`${day}T09:15:00`)), day).toBe(true);
    }
  });

  it('is closed on Saturday and Sunday by default', () => {
    expect(isTradingDay(weekdaysOnly, ist('2026-01-31T09:15:00'))).toBe(false);
    expect(isTradingDay(weekdaysOnly, ist('2026-02-01T09:15:00'))).toBe(false);
  });

  it('is closed on a listed holiday that falls on a weekday', () => {
    const calendar = parseTradingCalendar('2026-01-26,2026-03-03', '');
    expect(isTradingDay(calendar, ist('2026-01-26T09:15:00'))).toBe(false);
    expect(isTradingDay(calendar, ist('2026-03-03T09:15:00'))).toBe(false);
    expect(isTradingDay(calendar, ist('2026-01-27T09:15:00'))).toBe(true);
  });

  it('trades on a special Saturday session and on Muhurat trading on a Sunday', () => {
    const calendar = parseTradingCalendar('', '2026-01-31,2026-11-08');
    expect(isTradingDay(calendar, ist('2026-01-31T09:15:00'))).toBe(true);
    expect(isTradingDay(calendar, ist('2026-11-08T18:00:00'))).toBe(true);
    expect(isTradingDay(calendar, ist('2026-02-07T09:15:00'))).toBe(false);
  });

  it('counts Friday 23:59 IST as Friday and Saturday 00:00 IST as Saturday, though both are Friday in UTC', () => {
    expect(isTradingDay(weekdaysOnly, new Date('2026-01-30T18:29:00Z'))).toBe(true);
    expect(isTradingDay(weekdaysOnly, new Date('2026-01-30T18:30:00Z'))).toBe(false);
  });

  it('counts Monday 00:00 IST as Monday though it is still Sunday in UTC', () => {
    expect(isTradingDay(weekdaysOnly, new Date('2026-02-01T18:29:59Z'))).toBe(false);
    expect(isTradingDay(weekdaysOnly, new Date('2026-02-01T18:30:00Z'))).toBe(true);
  });

  it('starts and ends a listed holiday at IST midnight', () => {
    const calendar = parseTradingCalendar('2026-03-03', '');
    expect(isTradingDay(calendar, new Date('2026-03-02T18:29:59Z'))).toBe(true);
    expect(isTradingDay(calendar, new Date('2026-03-02T18:30:00Z'))).toBe(false);
    expect(isTradingDay(calendar, new Date('2026-03-03T18:29:59Z'))).toBe(false);
    expect(isTradingDay(calendar, new Date('2026-03-03T18:30:00Z'))).toBe(true);
  });
});

describe('nextTradingDay', () => {
  it('goes from Friday to Monday over a weekend', () => {
    expect(nextTradingDay(weekdaysOnly, ist('2026-01-30T15:30:00'))).toBe('2026-02-02');
  });

  it('skips a holiday on the Monday after a weekend', () => {
    const calendar = parseTradingCalendar('2026-01-26', '');
    expect(nextTradingDay(calendar, ist('2026-01-23T10:00:00'))).toBe('2026-01-27');
  });

  it('stops at a special Saturday session', () => {
    const calendar = parseTradingCalendar('', '2026-01-31');
    expect(nextTradingDay(calendar, ist('2026-01-30T10:00:00'))).toBe('2026-01-31');
  });

  it('takes the IST day of the instant, so Friday 23:59 IST leads to Monday', () => {
    expect(nextTradingDay(weekdaysOnly, new Date('2026-01-30T18:29:00Z'))).toBe('2026-02-02');
  });
});

describe('parseTradingCalendar', () => {
  it('reads comma-separated dates, with spaces around them, and takes blank lists as empty', () => {
    const calendar = parseTradingCalendar(' 2026-01-26 , 2026-03-03 ', '   ');
    expect([...calendar.holidays]).toEqual(['2026-01-26', '2026-03-03']);
    expect(calendar.specialSessions.size).toBe(0);
    expect(parseTradingCalendar('', '')).toEqual(weekdaysOnly);
  });

  it('refuses a date that is not of the form YYYY-MM-DD, naming the setting', () => {
    expect(calendarError('26-01-2026', '')).toMatchObject({
      field: 'TRADING_HOLIDAYS',
      message: 'TRADING_HOLIDAYS lists "26-01-2026", which is not a date of the form YYYY-MM-DD',
    });
    expect(calendarError('', '2026-1-31').field).toBe('SPECIAL_SESSIONS');
    expect(calendarError('2026-01-26 2026-03-03', '').field).toBe('TRADING_HOLIDAYS');
  });

  it('refuses an empty entry between commas', () => {
    expect(calendarError('2026-01-26,,2026-03-03', '').message).toBe(
      'TRADING_HOLIDAYS lists "", which is not a date of the form YYYY-MM-DD',
    );
  });

  it('refuses dates that do not exist, such as 2026-02-30, 2026-13-01 and 2026-02-29 in a common year', () => {
    expect(calendarError('2026-02-30', '').field).toBe('TRADING_HOLIDAYS');
    expect(calendarError('2026-13-01', '').field).toBe('TRADING_HOLIDAYS');
    expect(calendarError('', '2026-02-29').field).toBe('SPECIAL_SESSIONS');
    expect([...parseTradingCalendar('2028-02-29', '').holidays]).toEqual(['2028-02-29']);
  });

  it('refuses a date listed both as a holiday and as a special session', () => {
    expect(calendarError('2026-01-26,2026-11-09', '2026-11-08,2026-11-09')).toMatchObject({
      field: 'SPECIAL_SESSIONS',
      message:
        '2026-11-09 is listed in both TRADING_HOLIDAYS and SPECIAL_SESSIONS: a date is either closed or a special session',
    });
  });
});
