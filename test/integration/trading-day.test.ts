// A whole trading day on a frozen clock, through the scheduled handler, against the Kite sandbox and the S3 and SNS
// test servers: an auto-renew account (alice) and a daily-login account (bob). The 06:00 flush, a late flush at
// 07:30, the 09:01 ready check, a login elsewhere at 11:00; then a Saturday, a listed holiday and a special session.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

import { handler as scheduledHandler } from '../../functions/scheduled-refresh.ts';
import type { AccountsTickResult } from '../../lib/accounts/tick.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { toIsoIst } from '../../lib/engine/expiry.ts';
import { metrics, resetLambdaContext } from '../../lib/lambda/context.ts';
import { type SnsEmulator, startSnsEmulator } from '../../testing/sns-server.ts';
import {
  captureStdio,
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
} from '../support/fixtures.ts';
import { lambdaContextFor } from '../support/lambda-context.ts';
import { BUCKET, type CloudStores, endpointEnv, startCloud } from '../support/stores.ts';

const APP_SECRET = 'trading-day-app-secret';
const USERS = { alice: 'AL0001', bob: 'BO0002' } as const;
type Name = keyof typeof USERS;
/** Tuesday 3 March 2026 trades; Wednesday 4 March is listed as a holiday, Sunday 8 March as a special session. */
const DAY = '2026-03-03';
const HOLIDAY = '2026-03-04';
const SATURDAY = '2026-03-07';
const SPECIAL = '2026-03-08';

let cloud: CloudStores;
let sns: SnsEmulator;
let kite: Record<Name, SandboxFixture>;
let output = '';
const saved = { ...process.env };

const dayAfter = (day: string) =>
  new Date(Date.parse(`${day}T12:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
const at = (day: string, hhmm: string) => new Date(`${day}T${hhmm}:00+05:30`);
const stored = (name: Name): BrokerConfig =>
  JSON.parse(cloud.s3.getObject(BUCKET, `accounts/${name}.json`)?.body.toString('utf8') ?? '{}');
const put = (name: Name, config: BrokerConfig) =>
  cloud.s3.putObjectRaw(BUCKET, `accounts/${name}.json`, `${JSON.stringify(config, null, 2)}\n`);
const profileCalls = (name: Name) => kite[name].sandbox.calls['GET /user/profile'] ?? 0;
const renewals = (name: Name) => kite[name].sandbox.calls['POST /session/refresh_token'] ?? 0;

/** What a person saw: the subjects published to the alert topic since the last look. */
function newMessages(): string[] {
  const subjects = sns.published.map((m) => m.subject ?? '');
  sns.published.length = 0;
  return subjects;
}

interface SeenMetric {
  name: string;
  value: number;
  /** The Account dimension; undefined for the stack-level metric the alarms watch. */
  account?: string | undefined;
}

/** Every metric the ticks record from now on, through Powertools' addMetric and singleMetric (spied). */
function captureMetrics(): SeenMetric[] {
  const seen: SeenMetric[] = [];
  vi.spyOn(metrics, 'addMetric').mockImplementation((name, _unit, value) => {
    seen.push({ name, value });
    return metrics;
  });
  vi.spyOn(metrics, 'singleMetric').mockImplementation(() => {
    let account: string | undefined;
    const single = {
      addDimension: (name: string, value: string) => {
        if (name === 'Account') account = value;
        return single;
      },
      addMetric: (name: string, _unit: unknown, value: number) => {
        seen.push({ name, value, account });
        return single;
      },
    };
    return single as unknown as ReturnType<typeof metrics.singleMetric>;
  });
  return seen;
}

/** The stack-level values of a metric (what the alarms watch), emptying nothing. */
const stackLevel = (seen: SeenMetric[], name: string) =>
  seen.filter((m) => m.name === name && m.account === undefined).map((m) => m.value);

/** Runs the hourly tick at an IST time of `day`; returns each account's part by name. */
async function tickAt(day: string, hhmm: string) {
  vi.setSystemTime(at(day, hhmm));
  for (const fx of Object.values(kite)) fx.sandbox.resetCalls();
  const result = (await scheduledHandler(
    { source: 'aws.events', 'detail-type': 'Scheduled Event' },
    lambdaContextFor('scheduled'),
  )) as AccountsTickResult;
  return Object.fromEntries(result.accounts.map((a) => [a.account, a]));
}

/** The human's daily login, as the callback stores it: a new token from Kite, issued now. */
function logIn(name: Name): string {
  const session = kite[name].sandbox.mintSession();
  put(name, {
    ...stored(name),
    api_secret: session.accessToken,
    access_token_expires_at: toIsoIst(session.expiresAt),
    refreshed_at: toIsoIst(new Date(), { ms: true }),
    token_source: 'login',
  } as BrokerConfig);
  return session.accessToken;
}

beforeAll(async () => {
  cloud = await startCloud();
  sns = await startSnsEmulator();
});

afterAll(async () => {
  await Promise.all([cloud.close(), sns.close()]);
});

beforeEach(async () => {
  vi.setSystemTime(at('2026-03-02', '20:00'));
  const [alice, bob] = await Promise.all(
    Object.values(USERS).map((userId) => startSandbox({ apiSecret: APP_SECRET, userId })),
  );
  kite = { alice, bob } as Record<Name, SandboxFixture>;
  cloud.sm.reset();
  cloud.sm.createSecret('kite-app', JSON.stringify({ api_secret: APP_SECRET }));
  const topicArn = sns.createTopic('kite-token-alerts');
  sns.published.length = 0;
  Object.assign(process.env, endpointEnv(cloud), {
    AWS_ENDPOINT_URL_SNS: sns.endpoint,
    KITE_API_SECRET_ID: 'kite-app',
    ALERT_TOPIC_ARN: topicArn,
    BROKER_CONFIG_URI: `s3://${BUCKET}/accounts/`,
    TRADING_HOLIDAYS: HOLIDAY,
    SPECIAL_SESSIONS: SPECIAL,
    NOTIFY_READY: 'false',
  });
  delete process.env.READY_CHECK_IST;
  resetLambdaContext();
  // Monday evening: alice renews by herself; bob logged in on Monday morning. Both tokens die at 06:00 Tuesday.
  put('alice', seedConfig(kite.alice.sandbox, 'fresh', { user_id: USERS.alice }));
  put('bob', seedConfig(kite.bob.sandbox, 'fresh', { user_id: USERS.bob, refresh_token: '' }));
  output = '';
  captureStdio((chunk) => {
    output += chunk;
  });
});

afterEach(async () => {
  for (const fx of Object.values(kite)) expect(leakedTokens(fx.sandbox, output)).toEqual([]);
  vi.restoreAllMocks();
  vi.useRealTimers();
  process.env = { ...saved };
  await Promise.all(Object.values(kite).map((fx) => fx.sandbox.close()));
});

describe('a whole trading day', () => {
  it('catches the 06:00 flush, a late flush, a login elsewhere, and says at 09:01 who is ready', async () => {
    const seen = captureMetrics();
    let ticks = 0;
    const tick = (hhmm: string) => {
      ticks++;
      return tickAt(DAY, hhmm);
    };

    // 05:01: not yet trading hours, and a renewal before the 06:00 flush would die at 06:00 too: nothing happens.
    let t = await tick('05:01');
    expect(t.alice).toMatchObject({ status: 'fresh' });
    expect(t.bob).toMatchObject({ status: 'fresh' });
    expect([profileCalls('alice'), profileCalls('bob')]).toEqual([0, 0]);

    // 06:01, after the flush: alice renews (and is not asked about the token Kite just issued); bob's token is dead
    // by the clock, and it is too early to remind him.
    t = await tick('06:01');
    expect(t.alice).toMatchObject({ status: 'refreshed' });
    expect(t.bob).toMatchObject({ status: 'login_required', reminder: null });
    expect(newMessages()).toEqual([]);

    // Bob logs in early; at 07:01 Kite accepts both tokens, and the verdicts are written once.
    vi.setSystemTime(at(DAY, '06:45'));
    logIn('bob');
    t = await tick('07:01');
    expect(t.alice).toMatchObject({ status: 'fresh', verified: 'valid' });
    expect(t.bob).toMatchObject({ status: 'fresh', verified: 'valid' });
    expect([profileCalls('alice'), profileCalls('bob')]).toEqual([1, 1]);
    expect(stored('bob')).toMatchObject({ verified: true, verified_at: '2026-03-03T07:01:00+05:30' });

    // 07:30: a late flush kills every token, although the stored expiries say "tomorrow 06:00".
    vi.setSystemTime(at(DAY, '07:30'));
    kite.alice.sandbox.flushAll();
    kite.bob.sandbox.flushAll();
    const flushedBob = stored('bob').api_secret;

    // 08:01: Kite refuses both. Alice renews at once; bob is marked and reminded, with the reason.
    t = await tick('08:01');
    expect(t.alice).toMatchObject({ status: 'refreshed', verified: 'dead' });
    expect(renewals('alice')).toBe(1);
    expect(t.bob).toMatchObject({ status: 'login_required', verified: 'dead', reminder: 'first' });
    expect(stored('bob')).toMatchObject({ api_secret: flushedBob, verified: false });
    expect(newMessages()).toEqual(['Kite login needed for BO0002']);

    // 09:01, the ready check: alice is ready, bob is not (he has not logged in again). Each account's
    // ReadyForMarketOpen is recorded once, the follow-up reminder goes out, and so does "NOT ready".
    seen.length = 0;
    t = await tick('09:01');
    expect(t.alice).toMatchObject({ ready: true, verified: 'valid' });
    expect(t.bob).toMatchObject({ ready: false, reminder: 'follow_up' });
    expect(stackLevel(seen, 'ReadyForMarketOpen').sort()).toEqual([0, 1]);
    const perAccount = seen.filter((m) => m.name === 'ReadyForMarketOpen' && m.account);
    expect(perAccount).toHaveLength(2);
    expect(perAccount).toEqual(
      expect.arrayContaining([
        { name: 'ReadyForMarketOpen', account: USERS.alice, value: 1 },
        { name: 'ReadyForMarketOpen', account: USERS.bob, value: 0 },
      ]),
    );
    const messages = sns.published.map((m) => m.message);
    expect(newMessages()).toEqual([
      'Reminder: Kite login still needed for BO0002',
      'NOT ready for market open: 1 of 2 Kite accounts',
    ]);
    expect(messages[1]).toContain(
      '❌ bob (BO0002): not ready. Kite rejected the token: a Kite login is needed.',
    );
    expect(messages[1]).toContain('✅ alice (AL0001): ready.');
    expect(stored('alice').ready_checked_on).toBe(DAY);

    // A retried 09:xx tick does not check, count or tell twice.
    seen.length = 0;
    t = await tick('09:31');
    expect(t.alice?.ready).toBeUndefined();
    expect(stackLevel(seen, 'ReadyForMarketOpen')).toEqual([]);
    expect(newMessages()).toEqual([]);

    // Bob logs in at 09:20-ish; at 10:01 both are accepted and nobody is told anything.
    vi.setSystemTime(at(DAY, '09:40'));
    const bobToken = logIn('bob');
    t = await tick('10:01');
    expect(t.bob).toMatchObject({ status: 'fresh', verified: 'valid' });
    expect(newMessages()).toEqual([]);

    // A warm tick in market hours: one Kite GET per account, and no write.
    cloud.s3.resetRequests();
    await tick('10:31');
    expect([profileCalls('alice'), profileCalls('bob')]).toEqual([1, 1]);
    expect(cloud.s3.requests.filter((r) => r.method === 'PUT')).toEqual([]);

    // 11:00: someone logs in elsewhere with the same app: both stored tokens die before their expiry.
    vi.setSystemTime(at(DAY, '11:00'));
    kite.alice.sandbox.revokeAccessToken(stored('alice').api_secret);
    kite.bob.sandbox.revokeAccessToken(bobToken);
    t = await tick('11:01');
    expect(t.alice).toMatchObject({ status: 'refreshed', verified: 'dead' });
    expect(t.bob).toMatchObject({ status: 'login_required', verified: 'dead', reminder: 'first' });
    expect(newMessages()).toEqual(['Kite login needed for BO0002']);

    // After the 15:30 close nobody asks Kite.
    await tick('16:01');
    expect([profileCalls('alice'), profileCalls('bob')]).toEqual([0, 0]);

    // Every completed tick is counted for the dead man's switch (the count started over at 09:01 and 09:31).
    expect(stackLevel(seen, 'TickCompleted')).toHaveLength(ticks - 5);
  });

  it('on a Saturday and a listed holiday asks Kite nothing and reminds nobody, but still renews; a special session does remind', async () => {
    for (const day of [SATURDAY, HOLIDAY]) {
      vi.setSystemTime(at(day, '05:00'));
      put('alice', seedConfig(kite.alice.sandbox, 'expired', { user_id: USERS.alice }));
      put('bob', seedConfig(kite.bob.sandbox, 'expired', { user_id: USERS.bob, refresh_token: '' }));
      const seen = captureMetrics();
      for (const hhmm of ['08:01', '09:01', '11:01']) {
        const t = await tickAt(day, hhmm);
        expect(t.bob).toMatchObject({ status: 'login_required', reminder: null });
        expect(t.alice?.verified).toBeUndefined();
        expect([profileCalls('alice'), profileCalls('bob')]).toEqual([0, 0]);
      }
      expect(stackLevel(seen, 'ReadyForMarketOpen')).toEqual([]);
      expect(stackLevel(seen, 'TokenAccepted')).toEqual([]);
      // Renewed once, at 08:01, though the exchange is closed: the new token lives until 06:00 the next day.
      expect(stored('alice').access_token_expires_at).toBe(`${dayAfter(day)}T06:00:00+05:30`);
      expect(stored('alice').token_source).toBe('renewal');
      expect(newMessages()).toEqual([]);
      vi.restoreAllMocks();
    }

    vi.setSystemTime(at(SPECIAL, '05:00'));
    put('bob', seedConfig(kite.bob.sandbox, 'expired', { user_id: USERS.bob, refresh_token: '' }));
    const t = await tickAt(SPECIAL, '09:01');
    expect(t.bob).toMatchObject({ status: 'login_required', reminder: 'first', ready: false });
    expect(t.alice).toMatchObject({ status: 'refreshed', ready: true });
    expect(newMessages()).toEqual([
      'Kite login needed for BO0002',
      'NOT ready for market open: 1 of 2 Kite accounts',
    ]);
    expect((await tickAt(SPECIAL, '10:01')).alice).toMatchObject({ status: 'fresh', verified: 'valid' });
    expect(profileCalls('alice')).toBe(1);
  });

  it('says "ready" every trading morning with NOTIFY_READY, and a Kite outage at the ready check is not ready, not dead', async () => {
    process.env.NOTIFY_READY = 'true';
    resetLambdaContext();
    vi.setSystemTime(at(DAY, '08:30'));
    logIn('bob');
    let t = await tickAt(DAY, '09:01');
    expect(t.alice).toMatchObject({ ready: true });
    expect(t.bob).toMatchObject({ ready: true });
    expect(newMessages()).toEqual(['Ready for market open: all 2 Kite accounts']);

    const next = '2026-03-05';
    vi.setSystemTime(at(next, '08:30'));
    put('alice', {
      ...stored('alice'),
      ...seedConfig(kite.alice.sandbox, 'fresh', { user_id: USERS.alice }),
    });
    kite.bob.sandbox.failNext({ times: 10, status: 503 });
    logIn('bob');
    const before = stored('bob');
    t = await tickAt(next, '09:01');
    expect(t.bob).toMatchObject({ status: 'fresh', verified: 'unknown', ready: false });
    expect(newMessages()).toEqual(['NOT ready for market open: 1 of 2 Kite accounts']);
    // Kite's 5xx is no verdict: the stored one stands, and the token is kept.
    expect(stored('bob')).toMatchObject({ api_secret: before.api_secret, ready_checked_on: next });
    expect(stored('bob').verified).toBe(before.verified);
  });
});
