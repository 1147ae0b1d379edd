// The channel secrets' shapes: Telegram's {"bot_token", "chat_id"} and the webhook's {"url", "format"}. Loaded with
// a channel's first notice. A malformed secret is one ConfigError naming the secret, the setting and the field,
// never a value: the values are a bot token and a webhook URL.
import * as z from 'zod/mini';
import { ConfigError } from '../shared/errors.ts';
import type { WebhookTarget } from './webhook.ts';

const schemas = {
  telegram: () =>
    z.object({
      // "123456789:AA…": digits, a colon, then letters, digits, _ and -.
      bot_token: z.string().check(z.regex(/^\d{1,20}:[A-Za-z0-9_-]{20,100}$/)),
      // A number is read as its digits (below): the string checks cover both, with no union in the schema.
      chat_id: z.string().check(z.regex(/^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$/)),
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
  prepare: (value: Record<string, unknown>) => Record<string, unknown> = (value) => value,
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
  const result = schema.safeParse(prepare(parsed as Record<string, unknown>));
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
  let numeric = false;
  const s = parseSecret(text, secretId, 'TELEGRAM_SECRET_ID', schemas.telegram(), (value) => {
    numeric = Number.isSafeInteger(value.chat_id);
    return numeric ? { ...value, chat_id: String(value.chat_id) } : value;
  });
  // Telegram takes either; send what the secret holds.
  return { botToken: s.bot_token, chatId: numeric ? Number(s.chat_id) : s.chat_id };
}

/** {"url": "https://…", "format": "slack" | "discord" | "json"}, from the secret WEBHOOK_SECRET_ID names. */
export function parseWebhookSecret(text: string | undefined, secretId: string): WebhookTarget {
  return parseSecret(text, secretId, 'WEBHOOK_SECRET_ID', schemas.webhook());
}
