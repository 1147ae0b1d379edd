import { describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { formatStatus, marketReadiness, needsLogin, tokenStatus } from '../../lib/engine/status.ts';
import { nextMarketOpen, parseTradingCalendar } from '../../lib/engine/trading-calendar.ts';
import { withVerdict } from '../../lib/engine/verdict.ts';

const ist = (s: string) => new Date(`${s}+05:30`);

const config = (fields: Partial<BrokerConfig>): BrokerConfig => ({
  type: 'kite',
  api_key: 'key',
  api_secret: 'tok',
  access_token_expires_at: '2025-11-08T06:00:00+05:30',
  ...fields,
});

describe('tokenStatus', () => {
  it("shows Kite's last word on the stored token, and none once the token has changed", () => {
    const now = ist('2025-11-07T10:30:00');
    const asked = withVerdict(config({}), false, ist('2025-11-07T08:01:00'));

    expect(formatStatus(tokenStatus(asked, 'x', now))).toContain(
      'Kite says:     REJECTED at 2025-11-07 08:01:00 IST: log in or renew',
    );
    expect(
      formatStatus(tokenStatus(withVerdict(asked, true, ist('2025-11-07T09:01:00')), 'x', now)),
    ).toContain('Kite says:     accepted at 2025-11-07 09:01:00 IST');
    expect(formatStatus(tokenStatus({ ...asked, api_secret: 'new' }, 'x', now))).toContain(
      'Kite says:     not asked about this token yet (the previous one was asked at 2025-11-07 08:01:00 IST)',
    );
    expect(formatStatus(tokenStatus(config({}), 'x', now)).join('\n')).toMatch(/Kite says: +not asked yet/);
  });

  it('reports the age of the token from refreshed_at', () => {
    const status = tokenStatus(
      config({ refreshed_at: '2025-11-07T09:00:00+05:30' }),
      'file:///tmp/broker-config.json',
      ist('2025-11-07T10:30:00'),
    );
    expect(status).toMatchObject({
      refreshedAt: '2025-11-07 09:00:00 IST',
      ageMinutes: 90,
      refreshDue: false,
    });
  });

  it('reads a refreshed_at with milliseconds', () => {
    const status = tokenStatus(
      config({ refreshed_at: '2025-11-07T09:00:00.123+05:30' }),
      'file:///tmp/broker-config.json',
      ist('2025-11-07T10:30:00'),
    );
    expect(status).toMatchObject({ refreshedAt: '2025-11-07 09:00:00 IST', ageMinutes: 89 });
  });

  it('reports an unreadable refreshed_at as unknown, as the refresh engine reads it', () => {
    const status = tokenStatus(
      config({ refreshed_at: 'not a time' }),
      'file:///tmp/broker-config.json',
      ist('2025-11-07T10:30:00'),
    );
    expect(status).toMatchObject({ refreshedAt: undefined, ageMinutes: undefined });
  });
});

describe('readiness for the next market open', () => {
  const istAt = (s: string) => new Date(`${s}+05:30`);
  const weekdays = parseTradingCalendar(undefined, undefined);
  /** A daily-login token issued on Tuesday 3 March 2026 at 08:00 IST, Kite-accepted at 09:01. */
  const morning = withVerdict(
    config({
      api_secret: 'TuesdayToken0123456789',
      refresh_token: '',
      access_token_expires_at: '2026-03-04T06:00:00+05:30',
      refreshed_at: '2026-03-03T08:00:00+05:30',
    }),
    true,
    istAt('2026-03-03T09:01:00'),
  );
  const minutesToOpen = (now: Date) =>
    Math.floor((nextMarketOpen(weekdays, now).getTime() - now.getTime()) / 60_000);
  const readiness = (c: BrokerConfig, at: string) => {
    const now = istAt(at);
    const s = tokenStatus(c, 'x', now);
    return { ...marketReadiness(s, minutesToOpen(now)), login: needsLogin(s, minutesToOpen(now)) };
  };

  it('finds the next open: today before 09:15 on a trading day, else the next trading day', () => {
    expect(nextMarketOpen(weekdays, istAt('2026-03-03T09:15:00'))).toEqual(istAt('2026-03-03T09:15:00'));
    expect(nextMarketOpen(weekdays, istAt('2026-03-03T09:16:00'))).toEqual(istAt('2026-03-04T09:15:00'));
    expect(nextMarketOpen(weekdays, istAt('2026-03-06T20:00:00'))).toEqual(istAt('2026-03-09T09:15:00'));
    const holiday = parseTradingCalendar('2026-03-09', undefined);
    expect(nextMarketOpen(holiday, istAt('2026-03-06T20:00:00'))).toEqual(istAt('2026-03-10T09:15:00'));
  });

  it('calls a token ready before the open it lives through, and not after it, when it dies before the next one', () => {
    expect(readiness(morning, '2026-03-03T09:10:00')).toMatchObject({ state: 'ready', login: false });
    // After the close the token is Kite-accepted, but dies at 06:00, before tomorrow's open: no login helps yet.
    expect(readiness(morning, '2026-03-03T20:00:00')).toMatchObject({
      state: 'unknown',
      why: 'this token expires before the next market open: log in after 06:00 IST',
      login: false,
    });
    expect(readiness(morning, '2026-03-04T05:59:00').state).toBe('unknown');
    expect(readiness(morning, '2026-03-04T06:00:00')).toMatchObject({ state: 'not_ready', login: true });
    expect(readiness(morning, '2026-03-04T06:01:00')).toMatchObject({ state: 'not_ready', login: true });
  });

  it('offers an auto-renew account no login for an expired or refused token, only when it holds none', () => {
    const renewing = { ...morning, refresh_token: 'RefreshToken0123456789' };
    expect(readiness(renewing, '2026-03-04T06:00:30')).toMatchObject({ state: 'not_ready', login: false });
    expect(
      readiness(withVerdict(renewing, false, istAt('2026-03-03T11:01:00')), '2026-03-03T11:02:00'),
    ).toMatchObject({
      state: 'not_ready',
      login: false,
    });
    expect(readiness({ ...renewing, api_secret: '' }, '2026-03-03T11:02:00')).toMatchObject({ login: true });
  });
});
