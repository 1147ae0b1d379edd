// What Kite sent back, or the failure to get an answer, turned into data or a typed error. Every message that
// could quote a token, checksum or secret is scrubbed here, since these errors reach logs and callers.
import * as z from 'zod/mini';
import { KiteApiError, KiteNetworkError } from '../shared/errors.ts';
import { maskToken } from '../shared/mask.ts';

export interface KiteSession {
  userId: string;
  accessToken: string;
  /** "" when Kite did not issue one (ordinary apps never get one). */
  refreshToken: string;
  publicToken?: string;
  /** "YYYY-MM-DD HH:mm:ss" in IST, as Kite sends it. */
  loginTime?: string;
  apiKey?: string;
  userName?: string;
}

export interface KiteProfile {
  userId: string;
  userName?: string;
  email?: string;
}

/** One HTTP answer, read in full. */
export interface KiteResponse {
  status: number;
  contentType: string;
  text: string;
}

/** What an answer is judged against: which call it was, what to scrub, and what the attempt before it threw. */
export interface CallContext {
  endpoint: string;
  secrets: readonly string[];
  previousError: unknown;
}

const nullableString = z.optional(z.nullable(z.string()));

// Loose: Kite adds fields over time, and the renew endpoint answers either the full session or just the tokens.
const sessionSchema = z.looseObject({
  user_id: nullableString,
  access_token: z.string().check(z.minLength(1)),
  refresh_token: nullableString,
  public_token: nullableString,
  login_time: nullableString,
  api_key: nullableString,
  user_name: nullableString,
});

const profileSchema = z.looseObject({
  user_id: z.string().check(z.minLength(1)),
  user_name: nullableString,
  email: nullableString,
});

const envelopeSchema = z.looseObject({
  status: z.optional(z.unknown()),
  message: z.optional(z.unknown()),
  error_type: z.optional(z.unknown()),
  data: z.optional(z.unknown()),
});

type Envelope = z.infer<typeof envelopeSchema>;

const MAX_MESSAGE_CHARS = 300;

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join(maskToken(secret));
  }
  return out.length > MAX_MESSAGE_CHARS ? `${out.slice(0, MAX_MESSAGE_CHARS)}…` : out;
}

function invalidData(error: z.core.$ZodError, what: string, endpoint: string, status: number): KiteApiError {
  const fields = [...new Set(error.issues.map((issue) => issue.path.join('.') || '(body)'))].join(', ');
  return new KiteApiError(
    `Kite's response to ${endpoint} is not a valid ${what}: missing or invalid ${fields}`,
    {
      status,
      errorType: 'DataException',
    },
  );
}

function optional(value: string | null | undefined): string | undefined {
  return value === null || value === undefined || value === '' ? undefined : value;
}

/** `target` with the fields whose values are present; Kite sends "" or null for fields it leaves out. */
function withPresent<T extends object>(target: T, fields: { [K in keyof T]?: string | null | undefined }): T {
  for (const [key, value] of Object.entries(fields) as [string, string | null | undefined][]) {
    const present = optional(value);
    if (present !== undefined) Object.assign(target, { [key]: present });
  }
  return target;
}

export function parseSession(data: unknown, endpoint: string, status: number): KiteSession {
  const result = sessionSchema.safeParse(data);
  if (!result.success) throw invalidData(result.error, 'session', endpoint, status);
  const d = result.data;
  return withPresent<KiteSession>(
    { userId: d.user_id ?? '', accessToken: d.access_token, refreshToken: d.refresh_token ?? '' },
    { publicToken: d.public_token, loginTime: d.login_time, apiKey: d.api_key, userName: d.user_name },
  );
}

export function parseProfile(data: unknown, endpoint: string, status: number): KiteProfile {
  const result = profileSchema.safeParse(data);
  if (!result.success) throw invalidData(result.error, 'profile', endpoint, status);
  return withPresent<KiteProfile>(
    { userId: result.data.user_id },
    { userName: result.data.user_name, email: result.data.email },
  );
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
}

/** The system error code (ECONNREFUSED, ECONNRESET…) buried in fetch's "fetch failed" TypeError. */
function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = current.cause;
  }
  return undefined;
}

/** Failures before a connection existed: the request never left this machine. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The error for an attempt that got no answer: a timeout, or a transport failure with its system code. */
export function networkError(
  error: unknown,
  endpoint: string,
  timeoutMs: number,
  secrets: readonly string[],
): KiteNetworkError {
  if (isTimeout(error)) {
    return new KiteNetworkError(`Kite ${endpoint} did not answer within ${timeoutMs} ms`, {
      timedOut: true,
    });
  }
  const code = networkCode(error);
  const detail =
    error instanceof Error
      ? scrub(error.cause instanceof Error ? error.cause.message : error.message, secrets)
      : '';
  // A fresh cause with scrubbed text: the original may quote the URL, whose query string can hold a token.
  const cause = new Error(detail || 'network failure');
  if (code) Object.assign(cause, { code });
  const reason = [code, detail].filter(Boolean).join(': ');
  return new KiteNetworkError(`Kite ${endpoint}: network failure${reason ? ` (${reason})` : ''}`, {
    timedOut: false,
    mayHaveReachedKite: code === undefined || !NOT_SENT_CODES.has(code),
    cause,
  });
}

/** Kite's JSON envelope, when the body is one; proxies and load balancers answer HTML or plain text. */
function parseEnvelope(response: KiteResponse): Envelope | undefined {
  if (!/json/i.test(response.contentType) && !/^\s*[{[]/.test(response.text)) return undefined;
  try {
    const parsed = envelopeSchema.safeParse(JSON.parse(response.text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Kite's own error answer (status "error" or an error_type), whatever the HTTP status. */
function kiteError(
  envelope: Envelope,
  status: number,
  call: CallContext,
  cause: { cause: unknown } | undefined,
): KiteApiError | undefined {
  if (envelope.status !== 'error' && typeof envelope.error_type !== 'string') return undefined;
  const errorType =
    typeof envelope.error_type === 'string' && envelope.error_type ? envelope.error_type : 'GeneralException';
  const message =
    typeof envelope.message === 'string' && envelope.message
      ? scrub(envelope.message, call.secrets)
      : `Kite ${call.endpoint} failed with HTTP ${status}`;
  return new KiteApiError(message, { status, errorType, ...cause });
}

/** A failure status without Kite's error body: rate limiting and server errors may pass on a retry. */
function httpError(
  response: KiteResponse,
  envelope: Envelope | undefined,
  endpoint: string,
  cause: { cause: unknown } | undefined,
): KiteApiError {
  const { status, contentType } = response;
  const errorType = status === 429 || status >= 500 ? 'NetworkException' : 'GeneralException';
  const kind = envelope
    ? 'a body without an error_type'
    : `a non-JSON body${contentType ? ` (${contentType.split(';')[0]})` : ''}`;
  return new KiteApiError(`Kite ${endpoint} failed with HTTP ${status} and ${kind}`, {
    status,
    errorType,
    ...cause,
  });
}

/** The data of a Kite success answer, parsed; anything else throws KiteApiError. */
export function interpretResponse<T>(
  response: KiteResponse,
  call: CallContext,
  parse: (data: unknown, endpoint: string, status: number) => T,
): T {
  const { status } = response;
  const envelope = parseEnvelope(response);
  // An earlier attempt whose fate is unknown (timeout, 5xx) may have used up a one-time token; keep it as the cause.
  const cause = call.previousError === undefined ? undefined : { cause: call.previousError };
  const rejected = envelope && kiteError(envelope, status, call, cause);
  if (rejected) throw rejected;
  if (status < 200 || status >= 300) throw httpError(response, envelope, call.endpoint, cause);
  if (envelope === undefined || envelope.status !== 'success' || !('data' in envelope)) {
    throw new KiteApiError(`Kite's response to ${call.endpoint} is not a Kite JSON success body`, {
      status,
      errorType: 'DataException',
    });
  }
  return parse(envelope.data, call.endpoint, status);
}
