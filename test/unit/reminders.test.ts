import { describe, expect, it } from 'vitest';
import { type BrokerConfig, tokenDigest } from '../../lib/engine/broker-config.ts';
import { formatIst } from '../../lib/engine/expiry.ts';
import { parseTradingCalendar } from '../../lib/engine/trading-calendar.ts';
import {
  decideReminder,
  loginNotice,
  planReminder,
  type ReminderInput,
  readReminderState,
  reminderMessage,
  withReminderState,
} from '../../lib/login/reminders.ts';
import { loginStateKey, verifyLoginState } from '../../lib/login/state.ts';
import { ConfigError } from '../../lib/shared/errors.ts';

const MINUTE = 60_000;
const APP_SECRET = 'reminder-test-app-secret';

/** An IST wall-clock instant, e.g. ist('2025-11-07', '08:00'). */
const ist = (day: string, hhmm: string) => new Date(`${day}T${hhmm}:00+05:30`);

/** A daily-login account whose token died at 06:00 IST on `day`. */
function dailyLogin(day = '2025-11-07', extra: Partial<BrokerConfig> = {}): BrokerConfig {
  return {
    type: 'kite',
    api_key: 'testapikey',
    api_secret: 'AccessTokenOfYesterday0123456789',
    refresh_token: '',
    access_token_expires_at: `${day}T06:00:00+05:30`,
    refreshed_at: '2025-11-06T08:31:00+05:30',
    user_id: 'XX0000',
    strategy_id: 'momentum-7',
    ...extra,
  };
}

/** Every 15 minutes from 06:01 to 23:46 IST, plus 23:59 and any `extra` times ("HH:mm"). */
function ticks(day: string, extra: string[] = []): Date[] {
  const times = new Set<number>();
  for (let at = ist(day, '06:01').getTime(); at <= ist(day, '23:59').getTime(); at += 15 * MINUTE)
    times.add(at);
  times.add(ist(day, '23:59').getTime());
  for (const hhmm of extra) times.add(ist(day, hhmm).getTime());
  return [...times].sort((a, b) => a - b).map((t) => new Date(t));
}

/** The hourly schedule: hh:01 IST. */
function hourly(day: string): Date[] {
  return Array.from({ length: 24 }, (_, h) => ist(day, `${String(h).padStart(2, '0')}:01`));
}

interface Sent {
  kind: string;
  at: string;
}

/**
 * Runs the scheduled function's part: decide, and on a send store the new state as its CAS write would.
 * `events` change the document at given instants (a login).
 */
function runDay(
  start: BrokerConfig,
  times: Date[],
  options: Partial<Omit<ReminderInput, 'config' | 'now'>> & {
    events?: Array<{ at: Date; apply: (c: BrokerConfig) => BrokerConfig }>;
  } = {},
): { sent: Sent[]; config: BrokerConfig } {
  let config = start;
  const sent: Sent[] = [];
  const pending = [...(options.events ?? [])];
  for (const now of times) {
    while (pending[0] && pending[0].at.getTime() <= now.getTime()) {
      config = (pending.shift() as { apply: (c: BrokerConfig) => BrokerConfig }).apply(config);
    }
    const decision = decideReminder({ ...options, config, now });
    if (decision.send) {
      sent.push({ kind: decision.send, at: formatIst(now).slice(11, 16) });
      config = withReminderState(config, decision.state);
    }
  }
  return { sent, config };
}

/** What completeLogin stores: a new token valid to the next 06:00 IST and no reminder state. */
const loginAt = (day: string, nextDay: string) => (config: BrokerConfig) =>
  withReminderState(
    {
      ...config,
      api_secret: `AccessTokenOf${day.replaceAll('-', '')}LoginABCDEFGH`,
      access_token_expires_at: `${nextDay}T06:00:00+05:30`,
      refreshed_at: `${day}T08:30:00+05:30`,
    },
    undefined,
  );

describe('decideReminder', () => {
  it('sends one reminder at 08:00 IST and one follow-up at 09:00 IST across a whole day without a login', () => {
    const { sent, config } = runDay(dailyLogin(), ticks('2025-11-07', ['08:00', '09:00']));

    expect(sent).toEqual([
      { kind: 'first', at: '08:00' },
      { kind: 'follow_up', at: '09:00' },
    ]);
    expect(readReminderState(config)).toEqual({
      for_day: '2025-11-07',
      for_expiry: '2025-11-07T06:00:00+05:30',
      for_token: tokenDigest(dailyLogin().api_secret).slice(0, 16),
      sent: 2,
      last_sent_at: '2025-11-07T09:00:00+05:30',
    });
  });

  it('reminds again on the same day when Kite refuses a second token that expires at the same time as the first', () => {
    const refused = { now: ist('2025-11-07', '11:01'), tokenRejected: true };
    const first = dailyLogin('2025-11-08', { api_secret: 'MorningLoginToken0123456789' });
    const done = withReminderState(first, {
      for_day: '2025-11-07',
      for_expiry: first.access_token_expires_at ?? '',
      for_token: tokenDigest(first.api_secret).slice(0, 16),
      sent: 2,
      last_sent_at: '2025-11-07T09:01:00+05:30',
    });
    expect(decideReminder({ config: done, ...refused }).send).toBeNull();

    const relogin = { ...done, api_secret: 'SecondLoginToken0123456789' };

    expect(decideReminder({ config: relogin, ...refused })).toMatchObject({
      send: 'first',
      problem: 'rejected',
    });
  });

  it('sends them on the first hourly tick after each time', () => {
    expect(runDay(dailyLogin(), hourly('2025-11-07')).sent).toEqual([
      { kind: 'first', at: '08:01' },
      { kind: 'follow_up', at: '09:01' },
    ]);
  });

  it('sends the follow-up on the 09:01 tick even when the 08:01 tick ran seconds late', () => {
    const late = [ist('2025-11-07', '08:01'), ist('2025-11-07', '09:01')];
    late[0] = new Date((late[0] as Date).getTime() + 20_000);
    expect(runDay(dailyLogin(), late).sent).toEqual([
      { kind: 'first', at: '08:01' },
      { kind: 'follow_up', at: '09:01' },
    ]);
  });

  it('sends nothing more once a login stores a new token, until that token expires', () => {
    const login = { at: ist('2025-11-07', '08:30'), apply: loginAt('2025-11-07', '2025-11-08') };
    const today = runDay(dailyLogin(), ticks('2025-11-07'), { events: [login] });
    expect(today.sent).toEqual([{ kind: 'first', at: '08:01' }]);
    expect(today.config).not.toHaveProperty('login_reminder');

    // The new token dies at 06:00 the next morning: a new expiry, so reminders start over.
    const tomorrow = runDay(today.config, ticks('2025-11-08'));
    expect(tomorrow.sent).toEqual([
      { kind: 'first', at: '08:01' },
      { kind: 'follow_up', at: '09:01' },
    ]);
  });

  it('sends nothing when a login happens before the first reminder time', () => {
    const login = { at: ist('2025-11-07', '07:40'), apply: loginAt('2025-11-07', '2025-11-08') };
    expect(runDay(dailyLogin(), ticks('2025-11-07'), { events: [login] }).sent).toEqual([]);
  });

  it('sends nothing while the token is fresh', () => {
    const fresh = dailyLogin('2025-11-08', { refreshed_at: '2025-11-07T07:00:00+05:30' });
    expect(runDay(fresh, ticks('2025-11-07')).sent).toEqual([]);
    expect(decideReminder({ config: fresh, now: ist('2025-11-07', '08:00') })).toMatchObject({
      send: null,
      why: 'token_usable',
      problem: undefined,
    });
  });

  it('sends nothing for an account that renews itself, unless Kite rejected its refresh token', () => {
    const autoRenew = dailyLogin('2025-11-07', { refresh_token: 'a-refresh-token-value' });
    expect(runDay(autoRenew, ticks('2025-11-07')).sent).toEqual([]);
    expect(runDay(autoRenew, ticks('2025-11-07'), { renewalRejected: true }).sent).toEqual([
      { kind: 'first', at: '08:01' },
      { kind: 'follow_up', at: '09:01' },
    ]);
  });

  it('reminds at most once (plus one follow-up) per token expiry and day, however often it runs', () => {
    const day = runDay(dailyLogin(), ticks('2025-11-07'));
    const again = runDay(day.config, ticks('2025-11-07'));
    expect(again.sent).toEqual([]);
  });

  it('reminds again on the next day when a token is left expired, as over a weekend', () => {
    const saturday = runDay(dailyLogin('2025-11-08'), ticks('2025-11-08'));
    const sunday = runDay(saturday.config, ticks('2025-11-09'));
    expect(sunday.sent).toEqual([
      { kind: 'first', at: '08:01' },
      { kind: 'follow_up', at: '09:01' },
    ]);
  });

  it('counts a missing token, an unknown expiry and a rejected token as unusable', () => {
    const now = ist('2025-11-07', '08:05');
    const fresh = dailyLogin('2025-11-08');
    expect(decideReminder({ config: { ...fresh, api_secret: '' }, now })).toMatchObject({
      send: 'first',
      problem: 'missing',
    });
    expect(decideReminder({ config: { ...fresh, access_token_expires_at: undefined }, now })).toMatchObject({
      send: 'first',
      problem: 'unknown_expiry',
    });
    expect(decideReminder({ config: fresh, now, tokenRejected: true })).toMatchObject({
      send: 'first',
      problem: 'rejected',
    });
  });

  it('spaces the follow-up from a late first reminder by the gap between the two times', () => {
    const fresh = dailyLogin('2025-11-08');
    const afternoon = ticks('2025-11-07').filter((t) => t.getTime() >= ist('2025-11-07', '14:00').getTime());
    expect(runDay(fresh, afternoon, { tokenRejected: true }).sent).toEqual([
      { kind: 'first', at: '14:01' },
      { kind: 'follow_up', at: '15:01' },
    ]);
  });

  it('starts at the configured IST times', () => {
    const { sent } = runDay(dailyLogin(), ticks('2025-11-07', ['07:30', '10:00']), {
      firstAtIst: '07:30',
      followUpAtIst: '10:00',
    });
    expect(sent).toEqual([
      { kind: 'first', at: '07:30' },
      { kind: 'follow_up', at: '10:00' },
    ]);
  });

  it('refuses a follow-up time that is not later than the first', () => {
    const input = { config: dailyLogin(), now: ist('2025-11-07', '08:00') };
    expect(() => decideReminder({ ...input, firstAtIst: '09:00', followUpAtIst: '08:00' })).toThrow(
      ConfigError,
    );
    expect(() => decideReminder({ ...input, firstAtIst: '8am' })).toThrow(ConfigError);
  });

  it('sends nothing on a Saturday or a listed holiday, and reminds on a special session as on any trading day', () => {
    const calendar = parseTradingCalendar('2025-11-05', '2025-11-09');
    // 2025-11-08 is a Saturday, 2025-11-05 a Wednesday listed as a holiday, 2025-11-09 a Sunday special session.
    const saturday = runDay(dailyLogin('2025-11-08'), hourly('2025-11-08'), { calendar });
    const holiday = runDay(dailyLogin('2025-11-05'), hourly('2025-11-05'), { calendar });
    const session = runDay(dailyLogin('2025-11-09'), hourly('2025-11-09'), { calendar });

    expect(saturday.sent).toEqual([]);
    expect(holiday.sent).toEqual([]);
    expect(
      decideReminder({ config: dailyLogin('2025-11-08'), now: ist('2025-11-08', '08:01'), calendar }).why,
    ).toBe('market_closed');
    expect(session.sent.map((s) => s.kind)).toEqual(['first', 'follow_up']);
  });

  it('reminds every day when no calendar is given', () => {
    expect(runDay(dailyLogin('2025-11-08'), hourly('2025-11-08')).sent.map((s) => s.kind)).toEqual([
      'first',
      'follow_up',
    ]);
  });

  it('starts over when the stored reminder state is not in the expected shape', () => {
    const config = dailyLogin('2025-11-07', { login_reminder: 'sent' });
    expect(decideReminder({ config, now: ist('2025-11-07', '08:01') }).send).toBe('first');
  });
});

describe('reminderMessage', () => {
  it('gives an ASCII subject under 100 characters and a body with the link', () => {
    const link = 'https://kite.zerodha.com/connect/login?v=3&api_key=testapikey&redirect_params=state%3Dabc';
    for (const kind of ['first', 'follow_up'] as const) {
      const message = reminderMessage(link, kind, {
        now: ist('2025-11-07', '08:01'),
        userId: 'XX0000',
        expiresAt: ist('2025-11-07', '06:00'),
        problem: 'expired',
        linkExpiresAt: ist('2025-11-07', '20:01'),
      });
      expect(message.subject).toMatch(/^[\x20-\x7e]{1,99}$/);
      expect(message.subject).toContain('XX0000');
      expect(message.body).toContain(link);
      expect(message.body).toContain('2025-11-07 06:00:00 IST');
      expect(message.body).toContain('until 2025-11-07 20:01:00 IST');
    }
  });
});

describe('planReminder', () => {
  it('returns the message with a fresh login link and the document to store, or null when none is due', () => {
    const now = ist('2025-11-07', '08:01');
    const config = dailyLogin();

    const plan = planReminder({ config, now, appSecret: APP_SECRET });

    expect(plan).not.toBeNull();
    if (!plan) return;
    expect(plan.kind).toBe('first');
    expect(plan.body).toContain(plan.link);
    expect(plan.config).toMatchObject({ ...config, login_reminder: plan.state });
    const link = new URL(plan.link);
    expect(link.origin).toBe('https://kite.zerodha.com');
    const state = new URLSearchParams(link.searchParams.get('redirect_params') ?? '').get('state');
    const key = loginStateKey(APP_SECRET);
    // The 08:01 reminder's link still works past the 09:15 market open, but not into the afternoon.
    expect(verifyLoginState(key, state, ist('2025-11-07', '10:00')).ok).toBe(true);
    expect(verifyLoginState(key, state, ist('2025-11-07', '10:02'))).toEqual({
      ok: false,
      reason: 'expired',
    });
    expect(plan.body).toContain('The link works once, until 2025-11-07 10:01:00 IST.');
    expect(planReminder({ config: plan.config, now, appSecret: APP_SECRET })).toBeNull();
  });

  it('signs the link for the deployment’s state scope when one is given', () => {
    const now = ist('2025-11-07', '08:01');
    const plan = planReminder({ config: dailyLogin(), now, appSecret: APP_SECRET, stateScope: 'prod' });
    const link = new URL(plan?.link ?? '');
    const state = new URLSearchParams(link.searchParams.get('redirect_params') ?? '').get('state');
    expect(verifyLoginState(loginStateKey(APP_SECRET, 'prod'), state, now).ok).toBe(true);
    expect(verifyLoginState(loginStateKey(APP_SECRET), state, now).ok).toBe(false);
  });

  it('never puts the stored access token in the message', () => {
    const config = dailyLogin();
    const plan = planReminder({ config, now: ist('2025-11-07', '08:01'), appSecret: APP_SECRET });
    expect(`${plan?.subject} ${plan?.body}`).not.toContain(config.api_secret);
    expect(`${plan?.subject} ${plan?.body}`).not.toContain(APP_SECRET);
  });
});

describe('loginNotice', () => {
  const message = { subject: 'Kite login needed', body: 'Log in here:\nhttps://kite.example/one' };

  it('makes the link a "Log in to Kite" button and keeps it written out in the body', () => {
    const notice = loginNotice(message, [{ account: 'XX0000', url: 'https://kite.example/one' }]);

    expect(notice).toEqual({
      event: 'login_needed',
      subject: 'Kite login needed',
      body: message.body,
      buttons: [{ label: 'Log in to Kite', url: 'https://kite.example/one' }],
      accounts: ['XX0000'],
    });
  });

  it('names the account on each button when one notice covers several', () => {
    const notice = loginNotice(message, [
      { account: 'alice', url: 'https://kite.example/a' },
      { account: 'carol', url: 'https://kite.example/c' },
    ]);

    expect(notice.buttons?.map((b) => b.label)).toEqual(['Log in to Kite (alice)', 'Log in to Kite (carol)']);
    expect(notice.accounts).toEqual(['alice', 'carol']);
  });

  it('is what planReminder sends: the plan’s subject, body and link', () => {
    const plan = planReminder({
      config: dailyLogin(),
      now: ist('2025-11-07', '08:01'),
      appSecret: APP_SECRET,
    });

    expect(plan?.notice).toEqual({
      event: 'login_needed',
      subject: plan?.subject,
      body: plan?.body,
      buttons: [{ label: 'Log in to Kite', url: plan?.link }],
      accounts: ['XX0000'],
    });
  });
});
