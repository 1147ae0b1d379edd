import { describe, expect, it } from 'vitest';
import { readyNotice } from '../../lib/accounts/ready-check.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { parseTradingCalendar } from '../../lib/engine/trading-calendar.ts';
import {
  inVerificationHours,
  readVerdict,
  readyCheckDue,
  verdictChanged,
  withReadyCheck,
  withVerdict,
} from '../../lib/engine/verdict.ts';

const ist = (day: string, hhmm: string) => new Date(`${day}T${hhmm}:00+05:30`);
const weekdays = parseTradingCalendar(undefined, undefined);
const config: BrokerConfig = { type: 'kite', api_key: 'k', api_secret: 'TokenOne0123456789' };

describe('when Kite is asked', () => {
  it('asks on a trading day from 06:01 through the 15:30 close, and never on a weekend, a holiday or at night', () => {
    const tuesday = '2026-03-03';
    expect(inVerificationHours(ist(tuesday, '06:00'), weekdays)).toBe(false);
    expect(inVerificationHours(ist(tuesday, '06:01'), weekdays)).toBe(true);
    expect(inVerificationHours(ist(tuesday, '15:30'), weekdays)).toBe(true);
    expect(inVerificationHours(ist(tuesday, '15:31'), weekdays)).toBe(false);
    expect(inVerificationHours(ist('2026-03-07', '11:01'), weekdays)).toBe(false);
    expect(inVerificationHours(ist(tuesday, '11:01'), parseTradingCalendar(tuesday, undefined))).toBe(false);
    expect(
      inVerificationHours(ist('2026-03-07', '11:01'), parseTradingCalendar(undefined, '2026-03-07')),
    ).toBe(true);
  });

  it('runs the ready check once, in the hour from READY_CHECK_IST, on trading days only', () => {
    const day = '2026-03-03';
    expect(readyCheckDue(config, ist(day, '09:00'), weekdays)).toBe(false);
    expect(readyCheckDue(config, ist(day, '09:01'), weekdays)).toBe(true);
    expect(readyCheckDue(config, ist(day, '10:00'), weekdays)).toBe(true);
    expect(readyCheckDue(config, ist(day, '10:01'), weekdays)).toBe(false);
    expect(readyCheckDue(withReadyCheck(config, ist(day, '09:01')), ist(day, '09:31'), weekdays)).toBe(false);
    expect(
      readyCheckDue(withReadyCheck(config, ist('2026-03-02', '09:01')), ist(day, '09:01'), weekdays),
    ).toBe(true);
    expect(readyCheckDue(config, ist('2026-03-08', '09:01'), weekdays)).toBe(false);
    expect(readyCheckDue(config, ist(day, '08:31'), weekdays, '08:30')).toBe(true);
  });
});

describe("Kite's verdict in the document", () => {
  it('is news only when it differs, or is about another token', () => {
    const accepted = withVerdict(config, true, ist('2026-03-03', '07:01'));

    expect(readVerdict(accepted)).toEqual({ accepted: true, at: ist('2026-03-03', '07:01'), current: true });
    expect(verdictChanged(config, true)).toBe(true);
    expect(verdictChanged(accepted, true)).toBe(false);
    expect(verdictChanged(accepted, false)).toBe(true);
    const relogin = { ...accepted, api_secret: 'TokenTwo0123456789' };
    expect(readVerdict(relogin)?.current).toBe(false);
    expect(verdictChanged(relogin, true)).toBe(true);
    expect(JSON.stringify(accepted)).not.toContain('"verified_token_sha256":"TokenOne');
  });

  it('reads a verdict in another shape as none', () => {
    expect(
      readVerdict({ ...config, verified: 'yes', verified_at: '2026-03-03T07:01:00+05:30' } as BrokerConfig),
    ).toBe(undefined);
    expect(readVerdict({ ...config, verified: true, verified_at: 'soon' } as BrokerConfig)).toBe(undefined);
  });
});

describe('the ready notice', () => {
  const ready = {
    account: 'alice',
    userId: 'AL0001',
    ready: true,
    why: 'Kite accepted the token',
    loginNeeded: false,
    outcome: undefined,
  };
  const notReady = {
    ...ready,
    account: 'bob',
    userId: 'BO0002',
    ready: false,
    why: 'Kite could not be asked (x)',
  };

  it('says "not ready" whenever an account is not, and "ready" only when asked to', () => {
    expect(readyNotice([ready], false)).toBeUndefined();
    expect(readyNotice([ready], true)).toMatchObject({ event: 'ready', subject: 'Ready for market open' });
    const notice = readyNotice([ready, notReady], false);
    expect(notice).toMatchObject({
      event: 'not_ready',
      subject: 'NOT ready for market open: 1 of 2 Kite accounts',
      accounts: ['alice', 'bob'],
    });
    expect(notice?.body).toContain('❌ bob (BO0002): not ready. Kite could not be asked (x).');
    expect(notice?.body).toContain('kite-token verify');
    const login = readyNotice([{ ...notReady, why: 'no usable token', loginNeeded: true }], false);
    expect(login?.body).toContain('kite-token login-url');
    expect(readyNotice([], true)).toBeUndefined();
  });

  it('keeps the subject to plain ASCII, as SNS e-mail subjects require', () => {
    for (const notice of [readyNotice([ready], true), readyNotice([notReady], false)]) {
      expect(notice?.subject).toMatch(/^[\x20-\x7e]{1,100}$/);
    }
  });
});
