import { describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import {
  expiryOf,
  formatIst,
  formatKiteLoginTime,
  istTimeOn,
  nextExpiry,
  parseKiteLoginTime,
  parseStoredInstant,
  refreshDue,
  storedIssuedAt,
  toIsoIst,
  withCallerReason,
} from '../../lib/engine/expiry.ts';
import { ConfigError } from '../../lib/shared/errors.ts';

const ist = (s: string) => new Date(`${s}+05:30`);

describe('nextExpiry', () => {
  it('expires a token issued at 05:50 IST at 06:00 the same day', () => {
    expect(nextExpiry(ist('2025-11-07T05:50:00')).toISOString()).toBe(
      ist('2025-11-07T06:00:00').toISOString(),
    );
  });

  it('expires a token issued at 05:59:59 IST one second later', () => {
    expect(nextExpiry(ist('2025-11-07T05:59:59')).toISOString()).toBe(
      ist('2025-11-07T06:00:00').toISOString(),
    );
  });

  it('expires a token issued exactly at 06:00 IST at 06:00 the next day', () => {
    expect(nextExpiry(ist('2025-11-07T06:00:00')).toISOString()).toBe(
      ist('2025-11-08T06:00:00').toISOString(),
    );
  });

  it('expires a token issued at 06:01 IST at 06:00 the next day', () => {
    expect(nextExpiry(ist('2025-11-07T06:01:00')).toISOString()).toBe(
      ist('2025-11-08T06:00:00').toISOString(),
    );
  });

  it('expires a token issued at 06:30 IST at 06:00 the next day', () => {
    expect(nextExpiry(ist('2025-11-07T06:30:00')).toISOString()).toBe(
      ist('2025-11-08T06:00:00').toISOString(),
    );
  });

  it('uses the IST date, not the UTC date, across midnight UTC', () => {
    // 23:50 UTC on the 7th is 05:20 IST on the 8th: the flush is 40 minutes away, at 00:30 UTC on the 8th.
    expect(nextExpiry(new Date('2025-11-07T23:50:00Z')).toISOString()).toBe('2025-11-08T00:30:00.000Z');
    // 00:40 UTC on the 8th is 06:10 IST on the 8th: past the flush, so 06:00 IST on the 9th.
    expect(nextExpiry(new Date('2025-11-08T00:40:00Z')).toISOString()).toBe('2025-11-09T00:30:00.000Z');
  });

  it('rolls over month and year ends', () => {
    expect(toIsoIst(nextExpiry(ist('2025-12-31T22:00:00')))).toBe('2026-01-01T06:00:00+05:30');
    expect(toIsoIst(nextExpiry(ist('2028-02-28T09:15:00')))).toBe('2028-02-29T06:00:00+05:30');
  });
});

describe('parseKiteLoginTime', () => {
  it('reads login_time as IST wall-clock time', () => {
    expect(parseKiteLoginTime('2021-01-01 16:15:14')?.toISOString()).toBe('2021-01-01T10:45:14.000Z');
  });

  it('returns undefined for a missing, zoned or impossible time', () => {
    expect(parseKiteLoginTime(undefined)).toBeUndefined();
    expect(parseKiteLoginTime('2021-01-01T16:15:14Z')).toBeUndefined();
    expect(parseKiteLoginTime('2021-02-30 10:00:00')).toBeUndefined();
    expect(parseKiteLoginTime('yesterday')).toBeUndefined();
  });
});

describe('formatting', () => {
  it('writes IST wall-clock time without a zone, as Kite sends login_time, and reads it back', () => {
    expect(formatKiteLoginTime(new Date('2026-03-02T10:45:14Z'))).toBe('2026-03-02 16:15:14');
    expect(parseKiteLoginTime('2026-03-02 16:15:14')?.toISOString()).toBe('2026-03-02T10:45:14.000Z');
  });

  it('formats an instant the way the trading system logs it', () => {
    expect(formatIst(new Date('2025-11-08T00:30:00Z'))).toBe('2025-11-08 06:00:00 IST');
  });

  it('stores ISO-8601 with the +05:30 offset and reads it back to the same instant', () => {
    const at = new Date('2025-11-08T00:30:00Z');
    expect(toIsoIst(at)).toBe('2025-11-08T06:00:00+05:30');
    expect(parseStoredInstant(toIsoIst(at), 'access_token_expires_at')?.getTime()).toBe(at.getTime());
  });

  it('rejects a stored timestamp without an offset, naming the field', () => {
    expect(() => parseStoredInstant('2025-11-08 06:00:00', 'access_token_expires_at')).toThrow(
      /access_token_expires_at/,
    );
  });

  it('finds an IST clock time on the IST day of an instant', () => {
    expect(istTimeOn(new Date('2025-11-07T20:00:00Z'), '08:00').toISOString()).toBe(
      '2025-11-08T02:30:00.000Z',
    );
  });
});

describe('refreshDue', () => {
  const expiresAt = ist('2025-11-08T06:00:00');
  const at = (s: string) => refreshDue({ accessToken: 'tok', expiresAt, now: ist(s) });
  // An expiry that is not on Kite's flush (set by hand, or by a tool that assumed a lifetime).
  const offFlush = ist('2025-11-07T15:30:00');
  const offAt = (s: string, windowMs?: number) =>
    refreshDue({ accessToken: 'tok', expiresAt: offFlush, now: ist(s), ...(windowMs ? { windowMs } : {}) });

  it('is not due with more than two hours left', () => {
    expect(offAt('2025-11-07T13:29:00')).toMatchObject({ due: false, reason: undefined });
  });

  it('refreshes when less than two hours remain and a renewal would outlive the token', () => {
    expect(offAt('2025-11-07T13:31:00')).toMatchObject({ due: true, reason: 'within_window' });
  });

  it('honours a configured window', () => {
    expect(offAt('2025-11-07T11:00:00', 5 * 3600_000)).toMatchObject({ due: true, reason: 'within_window' });
    expect(offAt('2025-11-07T11:00:00')).toMatchObject({ due: false });
  });

  it('does not renew before the 06:00 IST flush, since the new token would die at 06:00 too', () => {
    expect(at('2025-11-08T04:01:00')).toMatchObject({ due: false, reason: undefined });
    expect(at('2025-11-08T05:59:00')).toMatchObject({ due: false, reason: undefined });
  });

  it('is due at 06:00 IST and after', () => {
    expect(at('2025-11-08T06:00:00')).toMatchObject({ due: true, reason: 'expired' });
    expect(at('2025-11-08T06:01:00')).toMatchObject({ due: true, reason: 'expired' });
  });

  it('is due when the expiry is unknown, the token is empty, rejected or a refresh is forced', () => {
    const now = ist('2025-11-07T12:00:00');
    expect(refreshDue({ accessToken: 'tok', expiresAt: undefined, now }).reason).toBe('unknown_expiry');
    expect(refreshDue({ accessToken: '', expiresAt, now }).reason).toBe('no_token');
    expect(refreshDue({ accessToken: 'tok', expiresAt, now, rejected: true }).reason).toBe('rejected');
    expect(refreshDue({ accessToken: 'tok', expiresAt, now, force: true }).reason).toBe('forced');
  });

  it('with the hourly tick at hh:01 IST, renews once a day, at 06:01, minutes after the flush', () => {
    let expiry = expiresAt;
    const renewedAt: string[] = [];
    for (let h = 0; h <= 48; h++) {
      const now = new Date(ist('2025-11-07T06:01:00').getTime() + h * 3600_000);
      if (refreshDue({ accessToken: 'tok', expiresAt: expiry, now }).due) {
        renewedAt.push(toIsoIst(now));
        expiry = nextExpiry(now);
      }
    }
    expect(renewedAt).toEqual(['2025-11-08T06:01:00+05:30', '2025-11-09T06:01:00+05:30']);
  });
});

describe('withCallerReason', () => {
  const expiresAt = ist('2025-11-08T06:00:00');
  const byClockAt = (accessToken: string, now: string) =>
    refreshDue({ accessToken, expiresAt, now: ist(now) });

  it('forcing wins over every reason the clock gives, even a missing token', () => {
    expect(withCallerReason(byClockAt('', '2025-11-07T12:00:00'), { force: true }).reason).toBe('forced');
    expect(withCallerReason(byClockAt('tok', '2025-11-08T07:00:00'), { force: true }).reason).toBe('forced');
  });

  it('a reported rejection wins over the clock, but a missing token stays no_token', () => {
    expect(withCallerReason(byClockAt('tok', '2025-11-07T12:00:00'), { rejected: true })).toMatchObject({
      due: true,
      reason: 'rejected',
    });
    expect(withCallerReason(byClockAt('tok', '2025-11-08T07:00:00'), { rejected: true }).reason).toBe(
      'rejected',
    );
    expect(withCallerReason(byClockAt('', '2025-11-07T12:00:00'), { rejected: true }).reason).toBe(
      'no_token',
    );
  });

  it('keeps the clock decision and the time left when the caller adds nothing', () => {
    const byClock = byClockAt('tok', '2025-11-07T12:00:00');
    expect(withCallerReason(byClock, {})).toEqual(byClock);
    expect(withCallerReason(byClock, { rejected: false, force: false })).toEqual(byClock);
  });

  it('gives what refreshDue gives with the same rejected and forced flags', () => {
    for (const accessToken of ['', 'tok']) {
      for (const now of ['2025-11-07T12:00:00', '2025-11-08T05:00:00', '2025-11-08T06:00:00']) {
        for (const rejected of [false, true]) {
          for (const force of [false, true]) {
            const input = { accessToken, expiresAt, now: ist(now) };
            expect(withCallerReason(refreshDue(input), { rejected, force })).toEqual(
              refreshDue({ ...input, rejected, force }),
            );
          }
        }
      }
    }
  });
});

describe('stored times', () => {
  const config = (fields: Partial<BrokerConfig>): BrokerConfig => ({
    type: 'kite',
    api_key: 'key',
    api_secret: 'tok',
    ...fields,
  });

  it('reads refreshed_at as the epoch milliseconds it names', () => {
    expect(storedIssuedAt(config({ refreshed_at: '2025-11-07T09:15:00+05:30' }))).toBe(
      ist('2025-11-07T09:15:00').getTime(),
    );
  });

  it('reads refreshed_at to the second (older documents) and to the millisecond', () => {
    expect(storedIssuedAt(config({ refreshed_at: '2026-12-02T09:12:40+05:30' }))).toBe(
      ist('2026-12-02T09:12:40').getTime(),
    );
    expect(storedIssuedAt(config({ refreshed_at: '2026-12-02T09:12:40.123+05:30' }))).toBe(
      ist('2026-12-02T09:12:40').getTime() + 123,
    );
    expect(parseStoredInstant('2026-12-02T09:12:40.123+05:30', 'refreshed_at')?.getTime()).toBe(
      ist('2026-12-02T09:12:40').getTime() + 123,
    );
  });

  it('writes an issue time with milliseconds in the +05:30 form, and an expiry without', () => {
    const at = new Date(ist('2026-12-02T09:12:40').getTime() + 7);
    expect(toIsoIst(at, { ms: true })).toBe('2026-12-02T09:12:40.007+05:30');
    expect(toIsoIst(at)).toBe('2026-12-02T09:12:40+05:30');
  });

  it('treats a missing, empty or unreadable refreshed_at as unknown (0)', () => {
    expect(storedIssuedAt(config({}))).toBe(0);
    expect(storedIssuedAt(config({ refreshed_at: '' }))).toBe(0);
    expect(storedIssuedAt(config({ refreshed_at: 'yesterday' }))).toBe(0);
  });

  it('reads the expiry, and names the field when it is malformed', () => {
    expect(expiryOf(config({ access_token_expires_at: '2025-11-08T06:00:00+05:30' }))?.getTime()).toBe(
      ist('2025-11-08T06:00:00').getTime(),
    );
    expect(expiryOf(config({}))).toBeUndefined();
    expect(() => expiryOf(config({ access_token_expires_at: 'tomorrow' }))).toThrow(ConfigError);
    expect(() => expiryOf(config({ access_token_expires_at: 'tomorrow' }))).toThrow(
      /access_token_expires_at/,
    );
  });
});
