// Telegram's Bot API sendMessage on loopback, answering as api.telegram.org does ({ok, result} or
// {ok: false, error_code, description, parameters}), so the Telegram channel is tested over real HTTP: the token in
// the path, the JSON body, the inline keyboard's shape, 429 with retry_after, 5xx and 401.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback, readBody } from './loopback.ts';

export interface TelegramButton {
  text: string;
  url: string;
}

export interface TelegramMessage {
  chatId: string | number;
  text: string;
  /** The inline keyboard's rows; empty without reply_markup. */
  keyboard: TelegramButton[][];
  /** The whole request body, as sent. */
  body: Record<string, unknown>;
  /** When the request arrived (Date.now()). */
  at: number;
}

export type TelegramFault =
  | { kind: 'rate_limit'; times: number; retryAfter: number }
  | { kind: 'server_error'; times: number; status?: number }
  | { kind: 'unauthorized'; times: number };

export interface TelegramEmulator {
  /** http://127.0.0.1:<port>, for TELEGRAM_API_URL. */
  readonly url: string;
  /** Messages accepted, in order. */
  readonly messages: TelegramMessage[];
  /** Every request, accepted or not, with its status and arrival time. */
  readonly requests: Array<{ path: string; status: number; at: number }>;
  /** The next `times` sendMessage calls get this answer instead of delivery. */
  injectFault(fault: TelegramFault): void;
  reset(): void;
  close(): Promise<void>;
}

const MAX_TEXT = 4096;

function answer(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function refuse(
  res: ServerResponse,
  status: number,
  description: string,
  extra: Record<string, unknown> = {},
) {
  answer(res, status, { ok: false, error_code: status, description, ...extra });
}

/** The inline keyboard's rows when `markup` is a valid one, or a reason it is not. */
function keyboardOf(markup: unknown): TelegramButton[][] | string {
  if (markup === undefined) return [];
  const rows = (markup as { inline_keyboard?: unknown } | null)?.inline_keyboard;
  if (!Array.isArray(rows)) return 'Bad Request: field "inline_keyboard" must be an Array';
  for (const row of rows) {
    if (!Array.isArray(row)) return 'Bad Request: field "inline_keyboard" must be an Array of Arrays';
    for (const button of row) {
      const b = button as { text?: unknown; url?: unknown } | null;
      if (typeof b?.text !== 'string' || !b.text)
        return 'Bad Request: text buttons are unallowed in the inline keyboard';
      if (typeof b.url !== 'string' || !/^https?:\/\//.test(b.url)) return 'Bad Request: BUTTON_URL_INVALID';
    }
  }
  return rows as TelegramButton[][];
}

/** Starts the emulator for one bot: only `/bot<botToken>/sendMessage` exists. */
export async function startTelegramEmulator(options: { botToken: string }): Promise<TelegramEmulator> {
  const messages: TelegramMessage[] = [];
  const requests: TelegramEmulator['requests'] = [];
  const faults: TelegramFault[] = [];
  let nextId = 1;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== `/bot${options.botToken}/sendMessage`) {
      // Telegram answers an unknown token or method the same way.
      refuse(res, 404, 'Not Found');
      return 404;
    }
    if (req.method !== 'POST') {
      refuse(res, 405, 'Method Not Allowed');
      return 405;
    }
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
      refuse(res, 400, 'Bad Request: message text is empty');
      return 400;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse((await readBody(req)).toString('utf8')) as Record<string, unknown>;
    } catch {
      refuse(res, 400, "Bad Request: can't parse JSON object");
      return 400;
    }
    const fault = faults[0];
    if (fault) {
      if (--fault.times <= 0) faults.shift();
      if (fault.kind === 'rate_limit') {
        refuse(res, 429, `Too Many Requests: retry after ${fault.retryAfter}`, {
          parameters: { retry_after: fault.retryAfter },
        });
        return 429;
      }
      if (fault.kind === 'unauthorized') {
        refuse(res, 401, 'Unauthorized');
        return 401;
      }
      const status = fault.status ?? 502;
      refuse(res, status, status === 502 ? 'Bad Gateway' : 'Internal Server Error');
      return status;
    }
    const chatId = body.chat_id;
    if ((typeof chatId !== 'string' || !chatId) && typeof chatId !== 'number') {
      refuse(res, 400, 'Bad Request: chat_id is empty');
      return 400;
    }
    if (typeof body.text !== 'string' || !body.text.trim()) {
      refuse(res, 400, 'Bad Request: message text is empty');
      return 400;
    }
    if (body.text.length > MAX_TEXT) {
      refuse(res, 400, 'Bad Request: message is too long');
      return 400;
    }
    const keyboard = keyboardOf(body.reply_markup);
    if (typeof keyboard === 'string') {
      refuse(res, 400, keyboard);
      return 400;
    }
    messages.push({ chatId, text: body.text, keyboard, body, at: Date.now() });
    answer(res, 200, {
      ok: true,
      result: {
        message_id: nextId++,
        date: Math.floor(Date.now() / 1000),
        chat: { id: chatId },
        text: body.text,
      },
    });
    return 200;
  };

  const server = createServer((req, res) => {
    const at = Date.now();
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    void handle(req, res).then((status) => requests.push({ path, status, at }));
  });
  const port = await listenOnLoopback(server);

  return {
    url: `http://127.0.0.1:${port}`,
    messages,
    requests,
    injectFault(fault) {
      faults.push({ ...fault });
    },
    reset() {
      messages.length = 0;
      requests.length = 0;
      faults.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
