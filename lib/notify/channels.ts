// Which channels a deployment speaks on, from its settings: SNS when ALERT_TOPIC_ARN is set, Telegram when
// TELEGRAM_SECRET_ID is, a chat webhook when WEBHOOK_SECRET_ID is. Each channel's code, SDK client and secret load
// with its first notice, so a cold start that says nothing pays for none of them.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import * as z from 'zod/mini';
import { ConfigError } from '../shared/errors.ts';
import type { Notice } from './notice.ts';
import type { Channel, SendOptions } from './notify.ts';
import type { PostOptions } from './post.ts';
import type { TelegramTarget } from './telegram.ts';
import type { WebhookTarget } from './webhook.ts';

export interface ChannelSettings {
  alertTopicArn?: string | undefined;
  telegramSecretId?: string | undefined;
  telegramApiUrl: string;
  webhookSecretId?: string | undefined;
}

/** Ready clients and a fetch for tests; in Lambda the defaults. */
export interface ChannelOptions extends Pick<PostOptions, 'fetch' | 'backoff'> {
  sns?: SNSClient;
  secrets?: SecretsManagerClient;
}

const schemas = {
  telegram: () =>
    z.object({
      // "123456789:AA…": digits, a colon, then letters, digits, _ and -.
      bot_token: z.string().check(z.regex(/^\d{1,20}:[A-Za-z0-9_-]{20,100}$/)),
      chat_id: z.union([z.string().check(z.regex(/^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$/)), z.int()]),
    }),
  webhook: () =>
    z.object({
      url: z
        .string()
        .check(z.regex(/^(https:\/\/[^\s/?#]+|http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?)\/\S*$/)),
      format: z.enum(['slack', 'discord', 'json']),
    }),
};

/**
 * The secret's JSON, checked against `schema`. A problem is one ConfigError naming the secret, the setting and the
 * field, never quoting a value: the values are a bot token and a webhook URL.
 */
function parseSecret<T>(
  text: string | undefined,
  secretId: string,
  setting: string,
  schema: z.ZodMiniType<T>,
): T {
  const fail = (problem: string) =>
    new ConfigError(`secret ${secretId} (${setting}) ${problem}`, { field: setting });
  let parsed: unknown;
  try {
    parsed = JSON.parse((text ?? '').trim() || 'null');
  } catch {
    // The parser's message quotes the text, which is the secret: keep none of it.
    throw fail('is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw fail('is not a JSON object');
  const result = schema.safeParse(parsed);
  if (result.success) return result.data;
  const field = String(result.error.issues[0]?.path[0] ?? '');
  const present = (parsed as Record<string, unknown>)[field] !== undefined;
  throw fail(`has ${present ? 'an invalid' : 'no'} "${field}"`);
}

/** {"bot_token": "…", "chat_id": "…" or a number}, from the secret TELEGRAM_SECRET_ID names. */
export function parseTelegramSecret(
  text: string | undefined,
  secretId: string,
): { botToken: string; chatId: string | number } {
  const s = parseSecret(text, secretId, 'TELEGRAM_SECRET_ID', schemas.telegram());
  return { botToken: s.bot_token, chatId: s.chat_id };
}

/** {"url": "https://…", "format": "slack" | "discord" | "json"}, from the secret WEBHOOK_SECRET_ID names. */
export function parseWebhookSecret(text: string | undefined, secretId: string): WebhookTarget {
  return parseSecret(text, secretId, 'WEBHOOK_SECRET_ID', schemas.webhook());
}

/** A value made on first call and kept once it resolves; a failed attempt is forgotten, so the next one tries again. */
function keptOnceResolved<T>(make: () => Promise<T>): () => Promise<T> {
  let kept: Promise<T> | undefined;
  return () => {
    if (!kept) {
      const making = make();
      kept = making;
      making.catch(() => {
        if (kept === making) kept = undefined;
      });
    }
    return kept;
  };
}

function secretOf<T>(
  secretId: string,
  options: ChannelOptions,
  parse: (text: string | undefined, id: string) => T,
): () => Promise<T> {
  return keptOnceResolved(async () => {
    const { getSecretString } = await import('../lambda/secret-string.ts');
    return parse(await getSecretString(secretId, options.secrets), secretId);
  });
}

function snsChannel(topicArn: string, options: ChannelOptions): Channel {
  const publisher = keptOnceResolved(async () =>
    (await import('./sns.ts')).snsPublisher(topicArn, { client: options.sns }),
  );
  return { name: 'sns', send: async (notice) => (await publisher())(notice) };
}

function telegramChannel(secretId: string, apiUrl: string, options: ChannelOptions): Channel {
  const secret = secretOf(secretId, options, parseTelegramSecret);
  return {
    name: 'telegram',
    send: async (notice: Notice, send: SendOptions) => {
      const [{ sendTelegram }, s] = await Promise.all([import('./telegram.ts'), secret()]);
      const target: TelegramTarget = { apiUrl, ...s };
      await sendTelegram(target, notice, { ...send, fetch: options.fetch, backoff: options.backoff });
    },
  };
}

function webhookChannel(secretId: string, options: ChannelOptions): Channel {
  const secret = secretOf(secretId, options, parseWebhookSecret);
  return {
    name: 'webhook',
    send: async (notice: Notice, send: SendOptions) => {
      const [{ sendWebhook }, target] = await Promise.all([import('./webhook.ts'), secret()]);
      await sendWebhook(target, notice, { ...send, fetch: options.fetch, backoff: options.backoff });
    },
  };
}

/** The channels the settings configure, in a fixed order (sns, telegram, webhook); empty when none is. */
export function configuredChannels(settings: ChannelSettings, options: ChannelOptions = {}): Channel[] {
  const channels: Channel[] = [];
  if (settings.alertTopicArn) channels.push(snsChannel(settings.alertTopicArn, options));
  if (settings.telegramSecretId) {
    channels.push(telegramChannel(settings.telegramSecretId, settings.telegramApiUrl, options));
  }
  if (settings.webhookSecretId) channels.push(webhookChannel(settings.webhookSecretId, options));
  return channels;
}
