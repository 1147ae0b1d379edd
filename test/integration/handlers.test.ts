import { LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

// Logs are captured here (for the leak sweep), so the logger must be on before lib/lambda/context.ts builds it.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

import { handler as onDemandHandler } from '../../functions/on-demand-refresh.ts';
import { handler as scheduledHandler } from '../../functions/scheduled-refresh.ts';
import { createKiteAuth, isKiteAuthError } from '../../lib/client/index.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { toIsoIst } from '../../lib/engine/expiry.ts';
import { metrics, resetLambdaContext } from '../../lib/lambda/context.ts';
import { loginStateKey, verifyLoginState } from '../../lib/login/state.ts';
import { KiteApiError } from '../../lib/shared/errors.ts';
import { type LambdaEmulator, startLambdaEmulator } from '../../testing/lambda-server.ts';
import { type SnsEmulator, startSnsEmulator } from '../../testing/sns-server.ts';
import { startTelegramEmulator, type TelegramEmulator } from '../../testing/telegram-server.ts';
import {
  captureStdio,
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
} from '../support/fixtures.ts';
import { lambdaContextFor } from '../support/lambda-context.ts';
import {
  BUCKET,
  type CloudStores,
  endpointEnv,
  KEY,
  locationOf,
  seedCloud,
  startCloud,
  storeOn,
} from '../support/stores.ts';

const APP_SECRET = 'handler-test-app-secret';
const BOT_TOKEN = '5550001111:AAHandlerTestBotTokenZz9Yy8Xx7Ww6Vv';
const NOW = new Date('2026-03-02T12:00:00+05:30');

let cloud: CloudStores;
let sns: SnsEmulator;
let telegram: TelegramEmulator;
let lambda: LambdaEmulator;
let fx: SandboxFixture;
let topicArn: string;
let output = '';
const saved = { ...process.env };

const context = (name: string) => lambdaContextFor(name);

const scheduled = () =>
  scheduledHandler({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, context('scheduled'));
const onDemand = (event: unknown) => onDemandHandler(event, context('on-demand'));
const renewals = () => fx.sandbox.calls['POST /session/refresh_token'] ?? 0;
const s3Calls = (method: string) =>
  cloud.s3.requests.filter((r) => r.method === method && r.key === KEY).length;

beforeAll(async () => {
  cloud = await startCloud();
  sns = await startSnsEmulator();
  lambda = await startLambdaEmulator();
  telegram = await startTelegramEmulator({ botToken: BOT_TOKEN });
  topicArn = sns.createTopic('kite-token-alerts');
});

afterAll(async () => {
  await Promise.all([cloud.close(), sns.close(), lambda.close(), telegram.close()]);
});

beforeEach(async () => {
  vi.setSystemTime(NOW);
  fx = await startSandbox({ apiSecret: APP_SECRET });
  cloud.sm.reset();
  cloud.sm.createSecret('kite-app', JSON.stringify({ api_secret: APP_SECRET }));
  telegram.reset();
  Object.assign(process.env, endpointEnv(cloud), {
    AWS_ENDPOINT_URL_SNS: sns.endpoint,
    AWS_ENDPOINT_URL_LAMBDA: lambda.endpoint,
    BROKER_CONFIG_URI: locationOf('s3'),
    KITE_API_SECRET_ID: 'kite-app',
    ALERT_TOPIC_ARN: topicArn,
  });
  resetLambdaContext();
  output = '';
  captureStdio((chunk) => {
    output += chunk;
  });
});

afterEach(async () => {
  expect(leakedTokens(fx.sandbox, output)).toEqual([]);
  expect(output).not.toContain(BOT_TOKEN.slice(11));
  vi.restoreAllMocks();
  vi.useRealTimers();
  process.env = { ...saved };
  await fx.sandbox.close();
});

function seed(config: BrokerConfig): void {
  seedCloud(cloud, 's3', config);
  cloud.s3.resetRequests();
  fx.sandbox.resetCalls();
}

describe('scheduled-refresh handler', () => {
  it('does one store read and no Kite call on a warm tick with a fresh token outside trading hours', async () => {
    vi.setSystemTime(new Date('2026-03-02T20:01:00+05:30'));
    seed(seedConfig(fx.sandbox, 'fresh'));
    await scheduled(); // cold start: reads the app secret too
    cloud.s3.resetRequests();

    const result = await scheduled();

    expect(result).toMatchObject({ status: 'fresh', mode: 'auto-renew' });
    expect(cloud.s3.requests.filter((r) => r.key === KEY).map((r) => r.method)).toEqual(['GET']);
    expect(renewals()).toBe(0);
    expect(output).toContain('"message":"Mode: auto-renew (refresh token present)"');
  });

  it('asks Kite once per tick in trading hours: the verdict is written once, then a warm tick reads once and writes nothing', async () => {
    seed(seedConfig(fx.sandbox, 'fresh'));
    const first = await scheduled();
    expect(first).toMatchObject({ status: 'fresh', verified: 'valid' });
    expect(s3Calls('PUT')).toBe(1);
    expect((await storeOn(cloud, 's3').read()).config).toMatchObject({ verified: true });
    cloud.s3.resetRequests();
    fx.sandbox.resetCalls();

    const warm = await scheduled();

    expect(warm).toMatchObject({ status: 'fresh', verified: 'valid' });
    expect(cloud.s3.requests.filter((r) => r.key === KEY).map((r) => r.method)).toEqual(['GET']);
    expect(fx.sandbox.calls).toEqual({ 'GET /user/profile': 1 });
  });

  it('renews once inside the window: one read, a lease write and one token write', async () => {
    const config = seedConfig(fx.sandbox, 'fresh');
    seed({ ...config, access_token_expires_at: toIsoIst(new Date(NOW.getTime() + 90 * 60_000)) });
    const addMetric = vi.spyOn(metrics, 'addMetric');

    const result = await scheduled();

    expect(result.status).toBe('refreshed');
    expect(renewals()).toBe(1);
    expect(s3Calls('GET')).toBe(1);
    expect(s3Calls('PUT')).toBe(2);
    const stored = (await storeOn(cloud, 's3').read()).config;
    expect(stored.api_secret).not.toBe(config.api_secret);
    expect(addMetric).toHaveBeenCalledWith('RefreshSucceeded', 'Count', 1);
    expect(output).toContain('"message":"✅ Token refreshed successfully"');
    expect(output).toMatch(/"function_name":"scheduled"/);
  });

  it('throws when Kite stays down, so Lambda retries and alarms, and leaves the config as it was', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    seed(config);
    fx.sandbox.failNext({ times: 10, status: 503 });
    const addMetric = vi.spyOn(metrics, 'addMetric');

    await expect(scheduled()).rejects.toMatchObject({ name: 'KiteApiError', status: 503 });
    expect(addMetric).toHaveBeenCalledWith('RefreshFailed', 'Count', 1);
    expect((await storeOn(cloud, 's3').read()).config).toEqual(config);
  });

  it('stops at cold start when the follow-up reminder is not later than the first', async () => {
    Object.assign(process.env, { REMINDER_FIRST_IST: '09:00', REMINDER_FOLLOW_UP_IST: '08:30' });
    resetLambdaContext();
    await expect(scheduled()).rejects.toThrow(
      'environment variable REMINDER_FOLLOW_UP_IST must be later than REMINDER_FIRST_IST',
    );
  });

  it('stops at cold start when the trading holidays list an impossible date', async () => {
    process.env.TRADING_HOLIDAYS = '2026-01-26,2026-02-30';
    resetLambdaContext();
    await expect(scheduled()).rejects.toMatchObject({
      name: 'ConfigError',
      message: 'TRADING_HOLIDAYS lists "2026-02-30", which is not a date of the form YYYY-MM-DD',
    });
  });

  it('stops at cold start with a message naming a missing setting', async () => {
    delete process.env.BROKER_CONFIG_URI;
    resetLambdaContext();
    await expect(scheduled()).rejects.toThrow('environment variable BROKER_CONFIG_URI is missing');
  });
});

describe('scheduled-refresh handler without a refresh token', () => {
  it('asks nobody to log in on a Saturday, and does on a Saturday listed as a special session', async () => {
    vi.setSystemTime(new Date('2026-03-07T08:01:00+05:30')); // a Saturday
    seed(seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000' }));
    const before = sns.published.length;

    const closed = await scheduled();

    expect(closed).toMatchObject({ status: 'login_required', reminder: null });
    expect(sns.published).toHaveLength(before);

    process.env.SPECIAL_SESSIONS = '2026-03-07';
    resetLambdaContext();
    const session = await scheduled();

    expect(session).toMatchObject({ status: 'login_required', reminder: 'first' });
    expect(sns.published).toHaveLength(before + 1);
    sns.published.length = 0;
  });

  it('reports login_required with one alert and no retry storm, then one follow-up, then nothing after a login', async () => {
    vi.setSystemTime(new Date('2026-03-03T08:01:00+05:30'));
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000' });
    seed(config);
    const addMetric = vi.spyOn(metrics, 'addMetric');

    const ticks = [await scheduled(), await scheduled(), await scheduled()];

    expect(ticks.map((t) => t.status)).toEqual(['login_required', 'login_required', 'login_required']);
    expect(ticks[0]).toMatchObject({ mode: 'daily-login', reminder: 'first' });
    expect(sns.published).toHaveLength(1);
    expect(sns.published[0]?.topicArn).toBe(topicArn);
    expect(sns.published[0]?.message).toContain(`${fx.sandbox.url}/connect/login?v=3&api_key=`);
    expect(sns.published[0]?.message).toContain('redirect_params=');
    expect(addMetric).toHaveBeenCalledWith('LoginRequired', 'Count', 1);
    expect(renewals()).toBe(0);

    vi.setSystemTime(new Date('2026-03-03T09:01:00+05:30'));
    expect(await scheduled()).toMatchObject({
      status: 'login_required',
      reminder: 'follow_up',
      ready: false,
    });
    expect(await scheduled()).toMatchObject({ status: 'login_required', reminder: null });
    // The follow-up, and the ready check's "not ready", once however often the tick runs.
    expect(sns.published.map((m) => m.subject)).toEqual([
      'Kite login needed for XX0000',
      'Reminder: Kite login still needed for XX0000',
      'NOT ready for market open: the Kite token does not work',
    ]);

    // The human logs in: a fresh token is stored, and the next ticks say nothing.
    const store = storeOn(cloud, 's3');
    const { config: current, version } = await store.read();
    const fresh = seedConfig(fx.sandbox, 'fresh');
    await store.write(
      { ...current, api_secret: fresh.api_secret, access_token_expires_at: fresh.access_token_expires_at },
      version,
    );
    vi.setSystemTime(new Date('2026-03-03T10:01:00+05:30'));
    expect(await scheduled()).toMatchObject({ status: 'fresh', mode: 'daily-login', verified: 'valid' });
    expect(sns.published).toHaveLength(3);
    sns.published.length = 0;
  });
});

describe('scheduled-refresh handler with Telegram', () => {
  beforeEach(() => {
    cloud.sm.createSecret('kite-telegram', JSON.stringify({ bot_token: BOT_TOKEN, chat_id: 424242 }));
    Object.assign(process.env, { TELEGRAM_SECRET_ID: 'kite-telegram', TELEGRAM_API_URL: telegram.url });
    sns.published.length = 0;
  });

  it('sends the login reminder to Telegram alone, the login link as a button, when no alert topic is set', async () => {
    delete process.env.ALERT_TOPIC_ARN;
    resetLambdaContext();
    vi.setSystemTime(new Date('2026-03-03T08:01:00+05:30'));
    seed(seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000' }));

    const result = await scheduled();

    expect(result).toMatchObject({ status: 'login_required', reminder: 'first' });
    expect(sns.published).toHaveLength(0);
    expect(telegram.messages).toHaveLength(1);
    const [message] = telegram.messages;
    expect(message?.chatId).toBe(424242);
    expect(message?.text.startsWith('Kite login needed for XX0000\n\n')).toBe(true);
    const [[button] = []] = message?.keyboard ?? [];
    expect(button?.text).toBe('Log in to Kite');
    expect(button?.url).toContain(`${fx.sandbox.url}/connect/login?v=3&api_key=`);
    expect(message?.text).toContain(button?.url);
  });

  it('reminds on SNS while Telegram refuses, and counts NotifyFailed for Telegram', async () => {
    resetLambdaContext();
    vi.setSystemTime(new Date('2026-03-03T08:01:00+05:30'));
    seed(seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000' }));
    telegram.injectFault({ kind: 'unauthorized', times: 1 });

    const result = await scheduled();

    expect(result).toMatchObject({ status: 'login_required', reminder: 'first' });
    expect(sns.published).toHaveLength(1);
    expect(telegram.messages).toHaveLength(0);
    expect(output).toMatch(/"NotifyFailed"/);
    expect(output).toMatch(/"Channel":"telegram"/);
    expect(output).toContain('Telegram answered 401 Unauthorized');
    sns.published.length = 0;
  });

  it('does not wait out a Telegram 429 past the invocation’s end, and still reminds on SNS', async () => {
    resetLambdaContext();
    vi.setSystemTime(new Date('2026-03-03T08:01:00+05:30'));
    seed(seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000' }));
    telegram.injectFault({ kind: 'rate_limit', times: 1, retryAfter: 5 });
    const started = performance.now();

    const result = await scheduledHandler({ source: 'aws.events' }, lambdaContextFor('scheduled', 4_000));

    expect(result).toMatchObject({ status: 'login_required', reminder: 'first' });
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(telegram.requests.map((q) => q.status)).toEqual([429]);
    expect(sns.published).toHaveLength(1);
    expect(output).toContain('Telegram answered 429 Too Many Requests');
    sns.published.length = 0;
  });

  it('gives the reminder claim back when every channel fails, so the next tick reminds again', async () => {
    resetLambdaContext();
    vi.setSystemTime(new Date('2026-03-03T08:01:00+05:30'));
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'XX0000' });
    seed(config);
    // The SDK tries a 500 three times, and Telegram's channel a 502 three times: all of them fail.
    sns.injectFault({ times: 3, status: 500, code: 'InternalError' });
    telegram.injectFault({ kind: 'server_error', times: 3 });

    await expect(scheduled()).rejects.toMatchObject({
      name: 'NotifyError',
      message: expect.stringContaining('every notification channel failed'),
    });
    expect((await storeOn(cloud, 's3').read()).config).not.toHaveProperty('login_reminder');

    expect(await scheduled()).toMatchObject({ status: 'login_required', reminder: 'first' });
    expect(sns.published).toHaveLength(1);
    expect(telegram.messages).toHaveLength(1);
    expect((await storeOn(cloud, 's3').read()).config).toHaveProperty('login_reminder.sent', 1);
    sns.published.length = 0;
  });
});

describe('on-demand-refresh handler', () => {
  it('answers fifty concurrent calls after a flush with one renewal and one token', async () => {
    const config = seedConfig(fx.sandbox, 'fresh');
    seed(config);
    fx.sandbox.flushAll();
    fx.sandbox.setLatency(50);

    const answers = await Promise.all(
      Array.from({ length: 50 }, () => onDemand({ failedAccessToken: config.api_secret, status: 403 })),
    );

    expect(renewals()).toBe(1);
    const tokens = new Set(answers.map((a) => ('accessToken' in a ? a.accessToken : a.status)));
    expect(tokens.size).toBe(1);
    const [token] = [...tokens];
    expect(fx.sandbox.isAccessTokenValid(token ?? '')).toBe(true);
    expect(answers.every((a) => a.status === 'refreshed' || a.status === 'already_fresh')).toBe(true);
    expect(answers[0]).toMatchObject({ expiresAt: expect.stringMatching(/T06:00:00\+05:30$/) });
  });

  it.each([
    ['a string', 'junk'],
    ['a number', 42],
    ['an array', [1, 2]],
    ['a token of the wrong type', { failedAccessToken: 5 }],
    ['an empty token', { failedAccessToken: '' }],
    ['a status other than 401 or 403', { status: 500 }],
    ['an unknown field', { failedToken: 'abc' }],
  ])('answers a structured error for %s and writes nothing', async (_, payload) => {
    seed(seedConfig(fx.sandbox, 'expired'));

    const answer = await onDemand(payload);

    expect(answer).toMatchObject({ status: 'error', error: { type: 'InvalidPayload', retryable: false } });
    expect(s3Calls('PUT')).toBe(0);
    expect(renewals()).toBe(0);
  });

  it('counts unknown payload keys without naming them, so a token sent as a key reaches no log and no answer', async () => {
    const config = seedConfig(fx.sandbox, 'fresh');
    seed(config);

    const answer = await onDemand({ [config.api_secret]: 1, other: 2 });

    expect(answer).toMatchObject({
      status: 'error',
      error: { type: 'InvalidPayload', message: expect.stringMatching(/^2 unknown field\(s\);/) },
    });
    expect(JSON.stringify(answer)).not.toContain(config.api_secret);
    expect(output).not.toContain(config.api_secret);
    expect(output).toContain('Rejected on-demand payload');
  });

  it('answers login_required with a login link when no refresh token is configured, without asking Kite', async () => {
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '' });
    seed(config);
    const answer = await onDemand({ failedAccessToken: config.api_secret, status: 403 });
    expect(answer).toMatchObject({ status: 'login_required', reason: 'no_refresh_token' });
    expect('loginUrl' in answer && answer.loginUrl).toMatch(
      /\/connect\/login\?v=3&api_key=testapikey&redirect_params=state/,
    );
    expect(renewals()).toBe(0);
    expect(s3Calls('PUT')).toBe(0);
  });

  it('signs its login link for the stage LOGIN_STATE_SCOPE names', async () => {
    const config = seedConfig(fx.sandbox, 'expired', { refresh_token: '' });
    seed(config);
    process.env.LOGIN_STATE_SCOPE = 'prod';

    const answer = await onDemand({ failedAccessToken: config.api_secret, status: 403 });

    const link = new URL('loginUrl' in answer && answer.loginUrl ? answer.loginUrl : 'http://missing/');
    const state = new URLSearchParams(link.searchParams.get('redirect_params') ?? '').get('state');
    expect(verifyLoginState(loginStateKey(APP_SECRET, 'prod'), state).ok).toBe(true);
    expect(verifyLoginState(loginStateKey(APP_SECRET), state).ok).toBe(false);
  });

  it('answers a structured error naming the field when the stored config is malformed, and writes nothing', async () => {
    cloud.s3.putObjectRaw(BUCKET, KEY, JSON.stringify({ type: 'kite', api_secret: 'x' }));
    cloud.s3.resetRequests();

    const answer = await onDemand({ status: 403 });

    expect(answer).toEqual({
      status: 'error',
      error: {
        type: 'ConfigInvalid',
        message: `s3://${BUCKET}/${KEY}: missing required field "api_key"`,
        retryable: false,
      },
    });
    expect(s3Calls('PUT')).toBe(0);
  });

  it('does not start a renewal the invocation has no time left to finish', async () => {
    const config = seedConfig(fx.sandbox, 'expired');
    seed(config);

    const answer = await onDemandHandler(
      { failedAccessToken: config.api_secret },
      { ...context('on-demand'), getRemainingTimeInMillis: () => 10_000 },
    );

    expect(answer).toMatchObject({ status: 'error', error: { type: 'RefreshBusy', retryable: true } });
    expect(renewals()).toBe(0);
    expect(s3Calls('PUT')).toBe(0);
  });

  it('returns the stored token without calling Kite when the failed token was already replaced', async () => {
    const config = seedConfig(fx.sandbox, 'fresh');
    seed(config);
    const answer = await onDemand({ failedAccessToken: 'OLDTOKENfromAnotherContainer', status: 401 });
    expect(answer).toEqual({
      status: 'already_fresh',
      accessToken: config.api_secret,
      expiresAt: config.access_token_expires_at,
    });
    expect(renewals()).toBe(0);
  });
});

describe('withKiteAuth', () => {
  it('gets a new token from the on-demand function after a 403 and retries once', async () => {
    const config = seedConfig(fx.sandbox, 'fresh');
    seed(config);
    lambda.register('kite-token-refresh-dev-onDemandRefresh', (event, ctx) => onDemandHandler(event, ctx));
    fx.sandbox.revokeAccessToken(config.api_secret);
    const auth = createKiteAuth({
      configUri: locationOf('s3'),
      refreshFunction: 'kite-token-refresh-dev-onDemandRefresh',
      lambda: new LambdaClient({ endpoint: lambda.endpoint, region: 'ap-south-1' }),
    });

    const profile = await auth.withKiteAuth((token) => fx.kite.getProfile(token));

    expect(profile.userId).toBe('XX0000');
    expect(lambda.invocations['kite-token-refresh-dev-onDemandRefresh']).toBe(1);
    expect(renewals()).toBe(1);
  });

  it('caches the token in a warm container until near its expiry', async () => {
    seed(seedConfig(fx.sandbox, 'fresh'));
    const auth = createKiteAuth({ configUri: `s3://${BUCKET}/${KEY}` });

    const first = await auth.getAccessToken();
    const second = await auth.getAccessToken();

    expect(second).toBe(first);
    expect(s3Calls('GET')).toBe(1);
    vi.setSystemTime(new Date('2026-03-03T05:56:00+05:30')); // inside the 5-minute margin before 06:00 IST
    await auth.getAccessToken();
    expect(s3Calls('GET')).toBe(2);
  });

  it('does not count a 403 PermissionException (an API the app lacks) as a rejected token', () => {
    expect(
      isKiteAuthError({
        status: 'error',
        error_type: 'PermissionException',
        message: 'Insufficient permission',
      }),
    ).toBe(false);
    expect(isKiteAuthError(new KiteApiError('no', { status: 403, errorType: 'PermissionException' }))).toBe(
      false,
    );
    expect(isKiteAuthError(new KiteApiError('dead', { status: 403, errorType: 'TokenException' }))).toBe(
      true,
    );
    expect(isKiteAuthError({ error_type: 'TokenException' })).toBe(true);
    expect(isKiteAuthError(Object.assign(new Error('Kite 401'), { status: 401 }))).toBe(true);
  });

  it('forgets the cached token when the token it got back is rejected too', async () => {
    const config = seedConfig(fx.sandbox, 'fresh', { refresh_token: '' });
    seed(config);
    lambda.register('refresher', (event, ctx) => onDemandHandler(event, ctx));
    const auth = createKiteAuth({
      configUri: locationOf('s3'),
      refreshFunction: 'refresher',
      lambda: new LambdaClient({ endpoint: lambda.endpoint, region: 'ap-south-1' }),
    });
    await auth.getAccessToken();
    fx.sandbox.revokeAccessToken(config.api_secret);

    await expect(auth.withKiteAuth((token) => fx.kite.getProfile(token))).rejects.toMatchObject({
      name: 'LoginRequiredError',
    });
    cloud.s3.resetRequests();
    await auth.getAccessToken();
    expect(s3Calls('GET')).toBe(1);
  });

  it('passes other errors through without invoking the refresher', async () => {
    seed(seedConfig(fx.sandbox, 'fresh'));
    const auth = createKiteAuth({ configUri: locationOf('s3'), refreshFunction: 'unused' });
    await expect(
      auth.withKiteAuth(async () => {
        throw Object.assign(new Error('order rejected'), { status: 400 });
      }),
    ).rejects.toThrow('order rejected');
    expect(lambda.invocations.unused).toBeUndefined();
  });
});
