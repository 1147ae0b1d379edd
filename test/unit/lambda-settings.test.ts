import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LazyStore } from '../../lib/lambda/lazy-store.ts';
import { DEFAULTS, readSettings } from '../../lib/lambda/settings.ts';
import { DEFAULT_FIRST_REMINDER_IST, DEFAULT_FOLLOW_UP_IST } from '../../lib/login/reminders.ts';
import { ConfigError } from '../../lib/shared/errors.ts';
import { S3Store } from '../../lib/store/s3-store.ts';

const BASE = { BROKER_CONFIG_URI: 's3://bucket/broker-config.json', KITE_API_SECRET_ID: 'kite-app' };

function settingError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    readSettings(env);
  } catch (e: unknown) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('readSettings accepted the environment');
}

describe('readSettings', () => {
  it('fills every unset setting from the one table of defaults', () => {
    const settings = readSettings(BASE);
    expect(settings).toEqual({
      configUri: BASE.BROKER_CONFIG_URI,
      accountConcurrency: 4,
      kmsKeyId: undefined,
      expectedBucketOwner: undefined,
      stateScope: undefined,
      allowFirstLoginPin: false,
      appSecret: { secretId: 'kite-app' },
      alertTopicArn: undefined,
      windowMs: 120 * 60_000,
      reminderFirstIst: '08:00',
      reminderFollowUpIst: '09:00',
      calendar: { holidays: new Set(), specialSessions: new Set() },
      readyCheckIst: '09:01',
      notifyReady: false,
      telegramSecretId: undefined,
      telegramApiUrl: 'https://api.telegram.org',
      webhookSecretId: undefined,
      serviceName: 'kite-token-refresh',
      metricsNamespace: 'KiteTokenRefresh',
    });
    expect([DEFAULTS.REMINDER_FIRST_IST, DEFAULTS.REMINDER_FOLLOW_UP_IST]).toEqual([
      DEFAULT_FIRST_REMINDER_IST,
      DEFAULT_FOLLOW_UP_IST,
    ]);
  });

  it('reads the status page address, and refuses one that is not https (or http to loopback)', () => {
    const page = 'https://abc.lambda-url.ap-south-1.on.aws/status';
    expect(readSettings(BASE).statusPageUrl).toBeUndefined();
    expect(readSettings({ ...BASE, STATUS_PAGE_URL: page }).statusPageUrl).toBe(page);
    expect(readSettings({ ...BASE, STATUS_PAGE_URL: 'http://127.0.0.1:8704/status' }).statusPageUrl).toBe(
      'http://127.0.0.1:8704/status',
    );
    for (const bad of ['junk', 'http://example.com/status', 'https://x/status?s=1']) {
      expect(() => readSettings({ ...BASE, STATUS_PAGE_URL: bad })).toThrow(
        'environment variable STATUS_PAGE_URL is invalid',
      );
    }
  });

  it('reads the KMS key for the S3 store from BROKER_CONFIG_KMS_KEY_ID', () => {
    const key = 'arn:aws:kms:ap-south-1:123456789012:key/0f1e2d3c';
    expect(readSettings({ ...BASE, BROKER_CONFIG_KMS_KEY_ID: key }).kmsKeyId).toBe(key);
  });

  it('reads the bucket owner, the login-state scope and the first-login pin rule', () => {
    const settings = readSettings({
      ...BASE,
      BROKER_CONFIG_BUCKET_OWNER: '123456789012',
      LOGIN_STATE_SCOPE: 'prod',
      LOGIN_ALLOW_FIRST_PIN: 'true',
    });
    expect(settings).toMatchObject({
      expectedBucketOwner: '123456789012',
      stateScope: 'prod',
      allowFirstLoginPin: true,
    });
  });

  it('refuses a bucket owner that is no account id, a scope with spaces and a pin rule other than true or false', () => {
    expect(settingError({ ...BASE, BROKER_CONFIG_BUCKET_OWNER: 'my-account' }).field).toBe(
      'BROKER_CONFIG_BUCKET_OWNER',
    );
    expect(settingError({ ...BASE, LOGIN_STATE_SCOPE: 'two words' }).field).toBe('LOGIN_STATE_SCOPE');
    expect(settingError({ ...BASE, LOGIN_ALLOW_FIRST_PIN: 'yes' }).field).toBe('LOGIN_ALLOW_FIRST_PIN');
  });

  it('reads the ready check, the ready message and the chat channels, and refuses a bad ready time or Bot API root', () => {
    const settings = readSettings({
      ...BASE,
      READY_CHECK_IST: '08:45',
      NOTIFY_READY: 'true',
      TELEGRAM_SECRET_ID: 'kite/telegram',
      TELEGRAM_API_URL: 'http://127.0.0.1:8081/',
      WEBHOOK_SECRET_ID: 'kite/webhook',
    });
    expect(settings).toMatchObject({
      readyCheckIst: '08:45',
      notifyReady: true,
      telegramSecretId: 'kite/telegram',
      telegramApiUrl: 'http://127.0.0.1:8081',
      webhookSecretId: 'kite/webhook',
    });
    expect(settingError({ ...BASE, READY_CHECK_IST: '9:01' })).toMatchObject({ field: 'READY_CHECK_IST' });
    expect(settingError({ ...BASE, NOTIFY_READY: 'yes' })).toMatchObject({ field: 'NOTIFY_READY' });
    for (const outside of ['05:59', '15:02', '23:00']) {
      expect(settingError({ ...BASE, READY_CHECK_IST: outside })).toMatchObject({
        field: 'READY_CHECK_IST',
        message:
          'environment variable READY_CHECK_IST must be between 06:00 and 15:01 IST (the ticks that ask Kite)',
      });
    }
    expect(readSettings({ ...BASE, READY_CHECK_IST: '15:01' }).readyCheckIst).toBe('15:01');
    expect(settingError({ ...BASE, TELEGRAM_API_URL: 'http://api.telegram.org' })).toMatchObject({
      field: 'TELEGRAM_API_URL',
    });
  });

  it('reads the trading calendar from TRADING_HOLIDAYS and SPECIAL_SESSIONS', () => {
    const { calendar } = readSettings({
      ...BASE,
      TRADING_HOLIDAYS: '2026-01-26,2026-03-03',
      SPECIAL_SESSIONS: '2026-11-08',
    });
    expect([...calendar.holidays]).toEqual(['2026-01-26', '2026-03-03']);
    expect([...calendar.specialSessions]).toEqual(['2026-11-08']);
  });

  it('stops at a malformed or impossible date, or one in both lists, naming the setting', () => {
    expect(settingError({ ...BASE, TRADING_HOLIDAYS: '2026-01-26;2026-03-03' })).toMatchObject({
      field: 'TRADING_HOLIDAYS',
      message: 'TRADING_HOLIDAYS lists "2026-01-26;2026-03-03", which is not a date of the form YYYY-MM-DD',
    });
    expect(settingError({ ...BASE, SPECIAL_SESSIONS: '2026-02-30' }).field).toBe('SPECIAL_SESSIONS');
    expect(
      settingError({ ...BASE, TRADING_HOLIDAYS: '2026-11-08', SPECIAL_SESSIONS: '2026-11-08' }).message,
    ).toMatch(/TRADING_HOLIDAYS and SPECIAL_SESSIONS/);
  });

  it('prefers the app secret itself over a secret naming it', () => {
    expect(readSettings({ ...BASE, KITE_API_SECRET: 'local' }).appSecret).toEqual({ value: 'local' });
  });

  it('names the setting that is missing or malformed', () => {
    expect(settingError({ KITE_API_SECRET_ID: 'x' }).message).toBe(
      'environment variable BROKER_CONFIG_URI is missing',
    );
    expect(settingError({ BROKER_CONFIG_URI: 's3://b/k' }).message).toBe(
      'environment variable KITE_API_SECRET_ID is missing',
    );
    expect(settingError({ ...BASE, REFRESH_WINDOW_MINUTES: 'two hours' })).toMatchObject({
      message: 'environment variable REFRESH_WINDOW_MINUTES is invalid',
      field: 'REFRESH_WINDOW_MINUTES',
    });
    expect(settingError({ ...BASE, REMINDER_FIRST_IST: '8am' }).field).toBe('REMINDER_FIRST_IST');
    expect(settingError({ ...BASE, BROKER_CONFIG_URI: 's3://bucket-only' }).field).toBe('BROKER_CONFIG_URI');
  });
});

describe('LazyStore', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ktr-lazy-store-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names the same location as the store it opens, before and after opening it', async () => {
    const s3 = new LazyStore(' s3://bucket/broker-config.json ', 'BROKER_CONFIG_URI');
    expect(s3.location).toBe(new S3Store({ bucket: 'bucket', key: 'broker-config.json' }).location);

    const path = join(dir, 'broker-config.json');
    await writeFile(path, `${JSON.stringify({ type: 'kite', api_key: 'k', api_secret: '' })}\n`);
    const file = new LazyStore(`file://${path}`, 'BROKER_CONFIG_URI');
    expect(file.location).toBe(path);
    expect((await file.read()).config.api_key).toBe('k');
    expect(file.location).toBe(path);
  });

  it('rejects a bad location when it is built, naming the setting', () => {
    expect(() => new LazyStore('ftp://host/x', 'BROKER_CONFIG_URI')).toThrow(/BROKER_CONFIG_URI/);
  });
});
