// The notification channels over real HTTP: Telegram's Bot API, Slack/Discord/JSON webhooks and SNS on loopback,
// their secrets read through the real Secrets Manager client from the test server, and the fan-out between them.
import { inspect } from 'node:util';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ChannelSettings, configuredChannels } from '../../lib/notify/channels.ts';
import type { Notice } from '../../lib/notify/notice.ts';
import { fanOut, type NotifyMetricsSink } from '../../lib/notify/notify.ts';
import { ConfigError, NotifyError } from '../../lib/shared/errors.ts';
import type { Log } from '../../lib/shared/log.ts';
import {
  type SecretsManagerEmulator,
  startSecretsManagerEmulator,
} from '../../testing/secrets-manager-server.ts';
import { type SnsEmulator, startSnsEmulator } from '../../testing/sns-server.ts';
import { startTelegramEmulator, type TelegramEmulator } from '../../testing/telegram-server.ts';
import { startWebhookEmulator, type WebhookEmulator } from '../../testing/webhook-server.ts';

const BOT_TOKEN = '7741852963:AAFleakyBotTokenQx9Zr2Lm4Np6Vt8Wb0Yc';
const CHAT_ID = '-1001234567890';
const HOOK_PATH = '/services/T0LEAKY/B0LEAKY/leakyWebhookSecretPath9f8e7d';
const LOGIN_LINK =
  'https://kite.zerodha.com/connect/login?v=3&api_key=testapikey&redirect_params=state%3Dabc';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const FAST = { baseMs: 10, maxMs: 20 };

let telegram: TelegramEmulator;
let hooks: WebhookEmulator;
let sns: SnsEmulator;
let sm: SecretsManagerEmulator;
let topicArn: string;
/** A port nothing listens on: a channel pointed at it is down. */
let deadUrl: string;

const notice = (extra: Partial<Notice> = {}): Notice => ({
  event: 'login_needed',
  subject: 'Kite login needed for XX0000',
  body: `The Kite access token expired.\n\nLog in here:\n${LOGIN_LINK}\n\nThe link works once.`,
  buttons: [{ label: 'Log in to Kite', url: LOGIN_LINK }],
  accounts: ['XX0000'],
  ...extra,
});

interface Recorded {
  lines: string[];
  metrics: Array<{ dimensions: Record<string, string>; name: string; value: number }>;
  log: Log;
  sink: NotifyMetricsSink;
}

function recorder(): Recorded {
  const lines: string[] = [];
  const metrics: Recorded['metrics'] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    void lines.push(`${level} ${message} ${inspect(fields, { depth: 10 })}`);
  return {
    lines,
    metrics,
    log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    sink: {
      singleMetric() {
        const dimensions: Record<string, string> = {};
        return {
          addDimension: (name: string, value: string) => {
            dimensions[name] = value;
          },
          addMetric: (name: string, _unit: string, value: number) =>
            void metrics.push({ dimensions, name, value }),
        };
      },
    },
  };
}

let secretCount = 0;
/** A secret of its own per call, so no channel's cached value carries over. */
function secret(value: unknown): string {
  const name = `notify-test/${++secretCount}`;
  sm.createSecret(name, typeof value === 'string' ? value : JSON.stringify(value));
  return name;
}

function notifier(settings: Partial<ChannelSettings>, r: Recorded, options: { backoff?: typeof FAST } = {}) {
  const channels = configuredChannels(
    { telegramApiUrl: telegram.url, ...settings },
    {
      sns: new SNSClient({ endpoint: sns.endpoint, region: 'ap-south-1', credentials, maxAttempts: 1 }),
      secrets: new SecretsManagerClient({ endpoint: sm.endpoint, region: 'ap-south-1', credentials }),
      backoff: options.backoff ?? FAST,
    },
  );
  return fanOut(channels, { log: r.log, metrics: r.sink });
}

const telegramSecret = () => secret({ bot_token: BOT_TOKEN, chat_id: CHAT_ID });
const webhookSecret = (format: string, url = `${hooks.url}${HOOK_PATH}`) => secret({ url, format });
const failedChannels = (r: Recorded) =>
  r.metrics.filter((m) => m.name === 'NotifyFailed').map((m) => m.dimensions.Channel);

beforeAll(async () => {
  [telegram, hooks, sns, sm] = await Promise.all([
    startTelegramEmulator({ botToken: BOT_TOKEN }),
    startWebhookEmulator(),
    startSnsEmulator(),
    startSecretsManagerEmulator(),
  ]);
  topicArn = sns.createTopic('kite-token-alerts');
  const closed = await startWebhookEmulator();
  deadUrl = closed.url;
  await closed.close();
});

afterAll(async () => {
  await Promise.all([telegram.close(), hooks.close(), sns.close(), sm.close()]);
});

beforeEach(() => {
  telegram.reset();
  hooks.reset();
  sns.published.length = 0;
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the Telegram channel', () => {
  it('sends the subject, a blank line and the body as plain text, with the login link as an inline button', async () => {
    const r = recorder();

    await notifier({ telegramSecretId: telegramSecret() }, r)(notice());

    expect(telegram.messages).toHaveLength(1);
    const [message] = telegram.messages;
    expect(message?.chatId).toBe(CHAT_ID);
    expect(message?.text).toBe(`${notice().subject}\n\n${notice().body}`);
    expect(message?.keyboard).toEqual([[{ text: 'Log in to Kite', url: LOGIN_LINK }]]);
    expect(message?.body).toMatchObject({ link_preview_options: { is_disabled: true } });
    expect(message?.body).not.toHaveProperty('parse_mode');
    expect(r.metrics).toEqual([]);
  });

  it('accepts a numeric chat_id in the secret', async () => {
    await notifier(
      { telegramSecretId: secret({ bot_token: BOT_TOKEN, chat_id: 123456789 }) },
      recorder(),
    )(notice());

    expect(telegram.messages[0]?.chatId).toBe(123456789);
  });

  it('waits as long as a 429 asks (retry_after) before trying again, then delivers', async () => {
    telegram.injectFault({ kind: 'rate_limit', times: 1, retryAfter: 1 });
    const r = recorder();

    await notifier({ telegramSecretId: telegramSecret() }, r)(notice());

    expect(telegram.requests.map((q) => q.status)).toEqual([429, 200]);
    const [first, second] = telegram.requests;
    const waited = (second?.at ?? 0) - (first?.at ?? 0);
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(2_500);
    expect(telegram.messages).toHaveLength(1);
    expect(r.metrics).toEqual([]);
  });

  it('gives up at the deadline rather than wait out a long retry_after', async () => {
    telegram.injectFault({ kind: 'rate_limit', times: 1, retryAfter: 5 });
    const r = recorder();
    const started = Date.now();

    await expect(
      notifier({ telegramSecretId: telegramSecret() }, r)(notice(), { deadline: Date.now() + 1_000 }),
    ).rejects.toThrow(NotifyError);

    expect(Date.now() - started).toBeLessThan(1_000);
    expect(telegram.requests).toHaveLength(1);
  });

  it('fails the channel at once when a 429 asks for a longer wait than a notice may take', async () => {
    telegram.injectFault({ kind: 'rate_limit', times: 1, retryAfter: 30 });
    const r = recorder();
    const started = Date.now();

    await expect(notifier({ telegramSecretId: telegramSecret() }, r)(notice())).rejects.toThrow(
      'Telegram answered 429',
    );

    expect(Date.now() - started).toBeLessThan(1_000);
    expect(telegram.requests).toHaveLength(1);
  });

  it('retries a 5xx briefly, then counts NotifyFailed with Channel=telegram', async () => {
    telegram.injectFault({ kind: 'server_error', times: 5 });
    const r = recorder();

    const sent = notifier({ telegramSecretId: telegramSecret() }, r)(notice());

    await expect(sent).rejects.toMatchObject({
      name: 'NotifyError',
      message: expect.stringContaining(
        'telegram (NotifyError: Telegram answered 502 Bad Gateway after 3 attempts)',
      ),
    });
    expect(telegram.requests.map((q) => q.status)).toEqual([502, 502, 502]);
    expect(r.metrics).toEqual([{ dimensions: { Channel: 'telegram' }, name: 'NotifyFailed', value: 1 }]);
    expect(r.lines.filter((l) => l.startsWith('warn'))).toHaveLength(1);
  });

  it('does not retry a 401, and names the status once', async () => {
    telegram.injectFault({ kind: 'unauthorized', times: 1 });
    const r = recorder();

    await expect(notifier({ telegramSecretId: telegramSecret() }, r)(notice())).rejects.toThrow(
      'every notification channel failed: telegram (NotifyError: Telegram answered 401 Unauthorized)',
    );
    expect(telegram.requests).toHaveLength(1);
  });

  it('passes on what Telegram says about a message it refuses', async () => {
    const r = recorder();

    await expect(
      notifier({ telegramSecretId: telegramSecret() }, r)(notice({ body: ' ', subject: ' ' })),
    ).rejects.toThrow('Telegram answered 400 Bad Request: Bad Request: message text is empty');
  });

  it('keeps a long body within Telegram’s 4096 characters', async () => {
    await notifier({ telegramSecretId: telegramSecret() }, recorder())(notice({ body: 'x'.repeat(6000) }));

    expect(telegram.messages[0]?.text).toHaveLength(4096);
    expect(telegram.messages[0]?.text.endsWith('…')).toBe(true);
  });
});

describe('the webhook channel', () => {
  it('posts Slack markup: the subject in bold and the link as <url|label>', async () => {
    await notifier({ webhookSecretId: webhookSecret('slack') }, recorder())(notice());

    const [post] = hooks.postsTo(HOOK_PATH);
    const escaped = LOGIN_LINK.replace(/&/g, '&amp;');
    expect(Object.keys(post?.body ?? {})).toEqual(['text']);
    expect(post?.body.text).toBe(
      `*Kite login needed for XX0000*\n\nThe Kite access token expired.\n\nLog in here:\n<${escaped}|Log in to Kite>\n\nThe link works once.`,
    );
  });

  it('posts Discord markup within 2000 characters, the link as [label](url), mentioning nobody', async () => {
    const long = notice({ body: `${'@everyone '.repeat(300)}\n${LOGIN_LINK}` });

    await notifier({ webhookSecretId: webhookSecret('discord') }, recorder())(notice());
    await notifier({ webhookSecretId: webhookSecret('discord') }, recorder())(long);

    const [short, cut] = hooks.postsTo(HOOK_PATH);
    expect(short?.body).toMatchObject({ allowed_mentions: { parse: [] } });
    expect(short?.body.content).toBe(
      `**Kite login needed for XX0000**\n\nThe Kite access token expired.\n\nLog in here:\n[Log in to Kite](${LOGIN_LINK})\n\nThe link works once.`,
    );
    expect(String(cut?.body.content).length).toBeLessThanOrEqual(2000);
    expect(cut?.body.content).toContain(`[Log in to Kite](${LOGIN_LINK})`);
    expect(cut?.body).toMatchObject({ allowed_mentions: { parse: [] } });
  });

  it('posts the notice as JSON: event, subject, text, accounts and links', async () => {
    await notifier({ webhookSecretId: webhookSecret('json') }, recorder())(notice());

    expect(hooks.postsTo(HOOK_PATH)[0]?.body).toEqual({
      event: 'login_needed',
      subject: 'Kite login needed for XX0000',
      text: notice().body,
      accounts: ['XX0000'],
      links: [{ label: 'Log in to Kite', url: LOGIN_LINK }],
    });
  });

  it('counts a 404 (a deleted webhook) once and does not retry it', async () => {
    hooks.injectFault({ kind: 'not_found', times: 5 });
    const r = recorder();

    await expect(notifier({ webhookSecretId: webhookSecret('slack') }, r)(notice())).rejects.toThrow(
      'webhook (NotifyError: webhook answered 404 Not Found)',
    );
    expect(hooks.requests).toHaveLength(1);
    expect(failedChannels(r)).toEqual(['webhook']);
  });

  it('honours a 429’s Retry-After header, then delivers', async () => {
    hooks.injectFault({ kind: 'rate_limit', times: 1, retryAfter: 1 });

    await notifier({ webhookSecretId: webhookSecret('discord') }, recorder())(notice());

    expect(hooks.requests.map((q) => q.status)).toEqual([429, 200]);
    const waited = (hooks.requests[1]?.at ?? 0) - (hooks.requests[0]?.at ?? 0);
    expect(waited).toBeGreaterThanOrEqual(950);
  });

  it('retries a 5xx and delivers when the webhook recovers', async () => {
    hooks.injectFault({ kind: 'server_error', times: 2, status: 503 });

    await notifier({ webhookSecretId: webhookSecret('json') }, recorder())(notice());

    expect(hooks.requests.map((q) => q.status)).toEqual([503, 503, 200]);
  });
});

describe('the fan-out', () => {
  it('delivers on SNS and the webhook while Telegram is down, counting only Telegram', async () => {
    const r = recorder();
    const notify = notifier(
      {
        alertTopicArn: topicArn,
        telegramSecretId: telegramSecret(),
        telegramApiUrl: deadUrl,
        webhookSecretId: webhookSecret('json'),
      },
      r,
    );

    await notify(notice());

    expect(sns.published).toHaveLength(1);
    expect(sns.published[0]).toMatchObject({ subject: notice().subject, message: notice().body });
    expect(hooks.postsTo(HOOK_PATH)).toHaveLength(1);
    expect(failedChannels(r)).toEqual(['telegram']);
    expect(r.lines.find((l) => l.startsWith('warn'))).toContain('Telegram: network error ECONNREFUSED');
  });

  it('does not wait for a slow channel to give up before the others deliver', async () => {
    telegram.injectFault({ kind: 'rate_limit', times: 1, retryAfter: 1 });
    const notify = notifier(
      { alertTopicArn: topicArn, telegramSecretId: telegramSecret(), webhookSecretId: webhookSecret('json') },
      recorder(),
    );
    const started = Date.now();

    await notify(notice());

    const webhookAt = hooks.requests[0]?.at ?? Number.POSITIVE_INFINITY;
    expect(webhookAt - started).toBeLessThan(500);
    expect(telegram.messages).toHaveLength(1);
  });

  it('rejects when every channel failed, counting each', async () => {
    sns.injectFault({ times: 1, status: 400, code: 'InvalidParameter' });
    telegram.injectFault({ kind: 'unauthorized', times: 1 });
    hooks.injectFault({ kind: 'not_found', times: 1 });
    const r = recorder();
    const notify = notifier(
      {
        alertTopicArn: topicArn,
        telegramSecretId: telegramSecret(),
        webhookSecretId: webhookSecret('slack'),
      },
      r,
    );

    await expect(notify(notice())).rejects.toMatchObject({
      name: 'NotifyError',
      message: expect.stringMatching(/^every notification channel failed: sns .*; telegram .*; webhook /),
    });
    expect(failedChannels(r)).toEqual(['sns', 'telegram', 'webhook']);
  });

  it('sends nothing and loads no secret before the first notice', async () => {
    sm.resetRequests();

    notifier({ telegramSecretId: telegramSecret(), webhookSecretId: webhookSecret('json') }, recorder());

    expect(sm.requests).toEqual([]);
  });

  it('reads each secret once for many notices, and again after a failed read', async () => {
    const id = telegramSecret();
    sm.resetRequests();
    sm.injectFault({ operation: 'GetSecretValue', times: 1, status: 400, type: 'AccessDeniedException' });
    const r = recorder();
    const notify = notifier({ telegramSecretId: id }, r);

    await expect(notify(notice())).rejects.toThrow('AccessDeniedException');
    await notify(notice());
    await notify(notice());

    expect(sm.requests.filter((q) => q.operation === 'GetSecretValue')).toHaveLength(2);
    expect(telegram.messages).toHaveLength(2);
  });
});

describe('malformed channel secrets', () => {
  it.each([
    ['not JSON', `bot_token=${BOT_TOKEN}`, 'is not valid JSON'],
    ['a JSON string', JSON.stringify(BOT_TOKEN), 'is not a JSON object'],
    ['no bot_token', { chat_id: CHAT_ID }, 'has no "bot_token"'],
    [
      'a bot_token of the wrong shape',
      { bot_token: `x${BOT_TOKEN}`, chat_id: CHAT_ID },
      'has an invalid "bot_token"',
    ],
    ['no chat_id', { bot_token: BOT_TOKEN }, 'has no "chat_id"'],
    ['a chat_id that is an object', { bot_token: BOT_TOKEN, chat_id: { id: 1 } }, 'has an invalid "chat_id"'],
  ])(
    'refuses a Telegram secret with %s, naming the secret and field but no value',
    async (_, value, problem) => {
      const id = secret(value);
      const r = recorder();

      const error = await notifier({ telegramSecretId: id }, r)(notice()).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(NotifyError);
      expect(String((error as Error).message)).toBe(
        `every notification channel failed: telegram (ConfigError: secret ${id} (TELEGRAM_SECRET_ID) ${problem})`,
      );
      expect(inspect(error, { depth: 10 })).not.toContain(BOT_TOKEN.slice(11));
      expect(r.lines.join('\n')).not.toContain(BOT_TOKEN.slice(11));
      expect(telegram.requests).toEqual([]);
    },
  );

  it.each([
    [
      'an http URL that is not loopback',
      { url: `http://hooks.example.com${HOOK_PATH}`, format: 'slack' },
      'has an invalid "url"',
    ],
    ['no format', { url: `https://hooks.slack.com${HOOK_PATH}` }, 'has no "format"'],
    [
      'an unknown format',
      { url: `https://hooks.slack.com${HOOK_PATH}`, format: 'teams' },
      'has an invalid "format"',
    ],
  ])(
    'refuses a webhook secret with %s, naming the secret and field but no value',
    async (_, value, problem) => {
      const id = secret(value);

      const error = await notifier({ webhookSecretId: id }, recorder())(notice()).catch((e: unknown) => e);

      expect((error as Error).message).toBe(
        `every notification channel failed: webhook (ConfigError: secret ${id} (WEBHOOK_SECRET_ID) ${problem})`,
      );
      expect(inspect(error, { depth: 10 })).not.toContain('leakyWebhookSecretPath');
    },
  );

  it('throws ConfigError with the setting as its field', async () => {
    const { parseWebhookSecret } = await import('../../lib/notify/channel-secrets.ts');
    expect(() => parseWebhookSecret('{"url": 1}', 'hooks')).toThrow(ConfigError);
    expect(() => parseWebhookSecret('{"url": 1}', 'hooks')).toThrow(
      expect.objectContaining({ field: 'WEBHOOK_SECRET_ID' }),
    );
  });
});

describe('secrets in logs and errors', () => {
  it('never shows the bot token or the webhook URL, whether sends fail or succeed', async () => {
    const r = recorder();
    let console = '';
    const capture = (chunk: string | Uint8Array) => {
      console += String(chunk);
      return true;
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
    const errors: unknown[] = [];
    const attempt = async (settings: Partial<ChannelSettings>, arrange: () => void = () => {}) => {
      arrange();
      await notifier(settings, r)(notice()).catch((e: unknown) => errors.push(e));
    };
    const both = () => ({ telegramSecretId: telegramSecret(), webhookSecretId: webhookSecret('slack') });

    await attempt(both());
    await attempt(both(), () => {
      telegram.injectFault({ kind: 'unauthorized', times: 1 });
      hooks.injectFault({ kind: 'not_found', times: 1 });
    });
    await attempt(both(), () => {
      telegram.injectFault({ kind: 'server_error', times: 3, status: 500 });
      hooks.injectFault({ kind: 'server_error', times: 3, status: 502 });
    });
    await attempt(both(), () => telegram.injectFault({ kind: 'rate_limit', times: 3, retryAfter: 0 }));
    await attempt({
      telegramSecretId: telegramSecret(),
      telegramApiUrl: deadUrl,
      webhookSecretId: webhookSecret('json', `${deadUrl}${HOOK_PATH}`),
    });
    await attempt({ telegramSecretId: secret({ bot_token: BOT_TOKEN, chat_id: [] }) });
    await attempt({
      webhookSecretId: secret({ url: `https://hooks.slack.com${HOOK_PATH}`, format: 'teams' }),
    });
    await attempt({ webhookSecretId: secret(`{"url": "https://hooks.slack.com${HOOK_PATH}", format`) });

    expect(errors.length).toBeGreaterThanOrEqual(6);
    expect(telegram.messages.length).toBeGreaterThan(0);
    expect(hooks.postsTo(HOOK_PATH).length).toBeGreaterThan(0);
    const seen = [
      ...r.lines,
      console,
      ...errors.flatMap((e) => {
        const chain: unknown[] = [];
        for (let c: unknown = e; c; c = (c as { cause?: unknown }).cause) chain.push(c);
        return chain.map((c) =>
          [String((c as Error).message), String((c as Error).stack), inspect(c, { depth: 10 })].join('\n'),
        );
      }),
    ].join('\n');
    expect(seen).toContain('NotifyError');
    for (const secretPart of [BOT_TOKEN, BOT_TOKEN.slice(11), 'leakyWebhookSecretPath', 'B0LEAKY']) {
      expect(seen).not.toContain(secretPart);
    }
  });
});
