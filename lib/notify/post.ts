// One JSON POST to a chat service (Telegram's Bot API, a Slack or Discord webhook) with the retries they call for:
// a 429 waits as long as the service asks (briefly, and never past the deadline), a 5xx or a lost connection backs
// off and tries again, any other 4xx is final. The URL is a credential, so no error here ever carries it.
import { STATUS_CODES } from 'node:http';
import { backoffDelay, EQUAL_JITTER, sleep } from '../shared/backoff.ts';
import { NotifyError } from '../shared/errors.ts';

/** The longest a 429's retry_after or Retry-After is waited out; a longer ask fails the channel for this notice. */
export const MAX_RETRY_AFTER_MS = 10_000;
/** A send that names no deadline gives up after this long, so a slow channel cannot hold a tick. */
export const DEFAULT_SEND_BUDGET_MS = 20_000;

export interface PostOptions {
  /** How errors name the channel: "Telegram", "webhook". */
  channel: string;
  /** Secret: never logged, never in an error. */
  url: string;
  body: unknown;
  /** Epoch ms after which nothing is started or waited for. */
  deadline?: number | undefined;
  fetch?: typeof fetch;
  /** Attempts in all, 429s included. Default 3. */
  attempts?: number;
  /** Per attempt. Default 5 s. */
  timeoutMs?: number;
  /** The pause before the n-th retry after a 5xx or a network error. */
  backoff?: { baseMs: number; maxMs: number };
  /** Text from the answer worth showing (Telegram's description), already free of secrets; default none. */
  describe?: (answer: unknown) => string | undefined;
}

interface Answer {
  status: number;
  /** Seconds a 429 asks to wait. */
  retryAfter: number | undefined;
  json: unknown;
}

/** Cuts `text` to `limit` UTF-16 units, ending in "…", without splitting a surrogate pair. */
export function truncate(text: string, limit: number): string {
  if (text.length <= limit) return text;
  let cut = limit - 1;
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return `${text.slice(0, cut)}…`;
}

function statusText(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

/** Seconds from Retry-After (Slack, Discord), Telegram's parameters.retry_after or Discord's retry_after. */
function retryAfterOf(headers: Headers, json: unknown): number | undefined {
  const header = Number(headers.get('retry-after'));
  if (headers.get('retry-after') !== null && Number.isFinite(header) && header >= 0) return header;
  const body = (typeof json === 'object' && json !== null ? json : {}) as {
    retry_after?: unknown;
    parameters?: { retry_after?: unknown };
  };
  const value = body.parameters?.retry_after ?? body.retry_after;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** The errno (ECONNREFUSED) or kind (timeout) of a failed fetch, never its message: undici's can quote the host. */
function failureCode(e: unknown): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return 'timeout';
  const cause = e instanceof Error ? (e.cause as { code?: unknown } | undefined) : undefined;
  const code = cause?.code ?? (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code) ? code : 'unknown';
}

async function attempt(options: PostOptions, timeoutMs: number): Promise<Answer> {
  const doFetch = options.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(options.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e: unknown) {
    throw new NotifyError(`${options.channel}: network error ${failureCode(e)}`, {
      channel: options.channel,
      retryable: true,
    });
  }
  const text = await res.text().catch(() => '');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, retryAfter: retryAfterOf(res.headers, json), json };
}

function answerError(options: PostOptions, answer: Answer, note = ''): NotifyError {
  const described = options.describe?.(answer.json);
  // Telegram's description often only repeats the status ("Unauthorized"): say it once.
  const said = described === STATUS_CODES[answer.status] ? undefined : described;
  return new NotifyError(
    `${options.channel} answered ${statusText(answer.status)}${said ? `: ${said}` : ''}${note}`,
    {
      channel: options.channel,
      status: answer.status,
      retryable: answer.status === 429 || answer.status >= 500,
    },
  );
}

/** How long to wait before the next attempt, or undefined when this failure is final. */
function pauseBefore(retry: number, failure: Answer | NotifyError, options: PostOptions): number | undefined {
  const answered = failure instanceof NotifyError ? undefined : failure.status;
  if (answered === 429) {
    const askedMs = ((failure as Answer).retryAfter ?? 1) * 1000;
    // Retrying sooner than asked only earns another 429.
    return askedMs > MAX_RETRY_AFTER_MS ? undefined : askedMs;
  }
  if (answered !== undefined && answered < 500) return undefined;
  // A 5xx or no answer at all: back off briefly.
  const backoff = options.backoff ?? { baseMs: 250, maxMs: 2_000 };
  return backoffDelay(retry, { ...backoff, jitter: EQUAL_JITTER });
}

/** One attempt: the answer, or the NotifyError of a request that got none. */
async function tryOnce(options: PostOptions, timeoutMs: number): Promise<Answer | NotifyError> {
  try {
    return await attempt(options, timeoutMs);
  } catch (e: unknown) {
    if (e instanceof NotifyError) return e;
    throw e;
  }
}

const succeeded = (a: Answer | NotifyError): a is Answer =>
  !(a instanceof NotifyError) && a.status >= 200 && a.status < 300;

function finalError(options: PostOptions, result: Answer | NotifyError, n: number): NotifyError {
  if (result instanceof NotifyError) return result;
  return answerError(options, result, n > 1 ? ` after ${n} attempts` : '');
}

/** POSTs `body` as JSON; resolves with the parsed answer of a 2xx, throws NotifyError otherwise. */
export async function postJson(options: PostOptions): Promise<unknown> {
  const deadline = options.deadline ?? Date.now() + DEFAULT_SEND_BUDGET_MS;
  const attempts = options.attempts ?? 3;
  const perAttemptMs = options.timeoutMs ?? 5_000;
  for (let n = 1; ; n++) {
    const result = await tryOnce(options, Math.max(1, Math.min(perAttemptMs, deadline - Date.now())));
    if (succeeded(result)) return result.json;
    const pause = n < attempts ? pauseBefore(n, result, options) : undefined;
    if (pause === undefined || Date.now() + pause >= deadline) throw finalError(options, result, n);
    await sleep(pause);
  }
}
