// Telegram: one sendMessage through the Bot API, plain text (no parse_mode, so nothing in a body can break the
// markup), the login links as inline-keyboard buttons. The bot token is part of the URL path: it is only ever
// passed to fetch, never into a message, a log line or an error.
import type { Notice } from './notice.ts';
import type { SendOptions } from './notify.ts';
import { type PostOptions, postJson, truncate } from './post.ts';

/** Telegram's limit on a message's text. */
export const TELEGRAM_TEXT_LIMIT = 4096;

export interface TelegramTarget {
  /** TELEGRAM_API_URL, no trailing slash. */
  apiUrl: string;
  botToken: string;
  chatId: string | number;
}

/** The sendMessage request body for a notice: subject, a blank line, the body; one button row per link. */
export function telegramMessage(notice: Notice, chatId: string | number): Record<string, unknown> {
  const message: Record<string, unknown> = {
    chat_id: chatId,
    text: truncate(`${notice.subject}\n\n${notice.body}`, TELEGRAM_TEXT_LIMIT),
    link_preview_options: { is_disabled: true },
  };
  if (notice.buttons?.length) {
    message.reply_markup = {
      inline_keyboard: notice.buttons.map((b) => [{ text: b.label, url: b.url }]),
    };
  }
  return message;
}

/** Telegram's description of a refusal ("Bad Request: chat not found"), short, without the token should it echo it. */
function describer(botToken: string): PostOptions['describe'] {
  return (answer) => {
    const description = (answer as { description?: unknown } | undefined)?.description;
    if (typeof description !== 'string' || !description) return undefined;
    return description.split(botToken).join('<bot token>').replace(/\s+/g, ' ').slice(0, 120);
  };
}

/** Sends a notice to the chat; throws NotifyError naming only the channel and the status or errno. */
export async function sendTelegram(
  target: TelegramTarget,
  notice: Notice,
  options: SendOptions & Pick<PostOptions, 'fetch' | 'backoff'> = {},
): Promise<void> {
  await postJson({
    channel: 'Telegram',
    url: `${target.apiUrl}/bot${target.botToken}/sendMessage`,
    body: telegramMessage(notice, target.chatId),
    describe: describer(target.botToken),
    ...options,
  });
}
