// Kite Connect session API client (token exchange, renewal, profile check, logout) on the platform fetch.
// Tokens, checksums and the app secret go only into request bodies, query strings and headers: never into an error.
import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { apiRootFrom } from '../engine/broker-config.ts';
import { KiteApiError, KiteNetworkError } from '../shared/errors.ts';
import { maskToken } from '../shared/mask.ts';
import {
  type AttemptContext,
  type RetryOptions,
  type RetryPolicy,
  resolveRetryPolicy,
  withRetry,
} from './retry.ts';

/** Where a human logs in; the API root is separate (https://api.kite.trade). */
export const KITE_LOGIN_ROOT = 'https://kite.zerodha.com';

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

export interface KiteCallInfo {
  /** e.g. "POST /session/refresh_token". Never carries a query string. */
  endpoint: string;
  status: number | 'network';
  durationMs: number;
  /** 1-based. */
  attempt: number;
}

export interface KiteClientOptions {
  apiKey: string;
  /** The Kite app secret, used only to compute checksums. */
  apiSecret: string;
  /** API root. Default https://api.kite.trade; must be https, or http to a loopback address. */
  baseUrl?: string;
  /** Per attempt. Default 7000 ms, like the official clients. */
  timeoutMs?: number;
  retry?: RetryOptions;
  fetch?: typeof fetch;
  /** Called once per attempt, for latency metrics. Exceptions it throws are ignored. */
  onCall?: (info: KiteCallInfo) => void;
}

/** Hex SHA-256 of api_key + token + api_secret: the checksum Kite requires for /session/token and /session/refresh_token. */
export function checksum(apiKey: string, token: string, apiSecret: string): string {
  return createHash('sha256')
    .update(apiKey + token + apiSecret, 'utf8')
    .digest('hex');
}

/**
 * The Kite login page for an app. `redirectParams` come back, decoded, as query parameters on the app's redirect URL.
 * `loginRoot` points the link at a sandbox instead of Kite.
 */
export function loginUrl(
  apiKey: string,
  redirectParams?: Record<string, string>,
  loginRoot = KITE_LOGIN_ROOT,
): string {
  const url = new URL('/connect/login', loginRoot);
  url.searchParams.set('v', '3');
  url.searchParams.set('api_key', apiKey);
  if (redirectParams && Object.keys(redirectParams).length > 0) {
    url.searchParams.set('redirect_params', new URLSearchParams(redirectParams).toString());
  }
  return url.href;
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

interface CallSpec<T> {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  /** Sent form-encoded in the body (POST) or in the query string (GET, DELETE), as the official clients do. */
  params: Record<string, string>;
  accessToken?: string;
  /** Values to scrub from anything that could end up in an error. */
  secrets: string[];
  parse: (data: unknown, endpoint: string, status: number) => T;
}

const MAX_MESSAGE_CHARS = 300;

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join(maskToken(secret));
  }
  return out.length > MAX_MESSAGE_CHARS ? `${out.slice(0, MAX_MESSAGE_CHARS)}…` : out;
}

function describeInvalid(error: z.core.$ZodError, what: string, endpoint: string): string {
  const fields = [...new Set(error.issues.map((issue) => issue.path.join('.') || '(body)'))].join(', ');
  return `Kite's response to ${endpoint} is not a valid ${what}: missing or invalid ${fields}`;
}

function optional(value: string | null | undefined): string | undefined {
  return value === null || value === undefined || value === '' ? undefined : value;
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

export class KiteClient {
  readonly apiKey: string;
  readonly baseUrl: string;
  readonly #apiSecret: string;
  readonly #timeoutMs: number;
  readonly #retry: RetryPolicy;
  readonly #fetch: typeof fetch;
  readonly #onCall: ((info: KiteCallInfo) => void) | undefined;

  static checksum = checksum;

  constructor(options: KiteClientOptions) {
    if (!options.apiKey) throw new RangeError('KiteClient: apiKey is required');
    if (!options.apiSecret) throw new RangeError('KiteClient: apiSecret is required');
    const timeoutMs = options.timeoutMs ?? 7000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new RangeError('KiteClient: timeoutMs must be positive');
    this.apiKey = options.apiKey;
    this.#apiSecret = options.apiSecret;
    this.baseUrl = apiRootFrom(options.baseUrl, 'KiteClient').url;
    this.#timeoutMs = timeoutMs;
    this.#retry = resolveRetryPolicy(options.retry);
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#onCall = options.onCall;
  }

  /** Exchanges the request token from the login redirect for a session. A request token works once, for a few minutes. */
  generateSession(requestToken: string): Promise<KiteSession> {
    return this.#call({
      method: 'POST',
      path: '/session/token',
      params: {
        api_key: this.apiKey,
        request_token: requestToken,
        checksum: checksum(this.apiKey, requestToken, this.#apiSecret),
      },
      secrets: [requestToken],
      parse: (data, endpoint, status) => this.#parseSession(data, endpoint, status),
    });
  }

  /** Gets a new access token with a refresh token (issued only to exchange-approved platforms). */
  renewAccessToken(refreshToken: string): Promise<KiteSession> {
    return this.#call({
      method: 'POST',
      path: '/session/refresh_token',
      params: {
        api_key: this.apiKey,
        refresh_token: refreshToken,
        checksum: checksum(this.apiKey, refreshToken, this.#apiSecret),
      },
      secrets: [refreshToken],
      parse: (data, endpoint, status) => this.#parseSession(data, endpoint, status),
    });
  }

  /** The cheapest authenticated call: succeeds only while the access token is alive. */
  getProfile(accessToken: string): Promise<KiteProfile> {
    return this.#call({
      method: 'GET',
      path: '/user/profile',
      params: {},
      accessToken,
      secrets: [accessToken],
      parse: (data, endpoint, status) => {
        const result = profileSchema.safeParse(data);
        if (!result.success) {
          throw new KiteApiError(describeInvalid(result.error, 'profile', endpoint), {
            status,
            errorType: 'DataException',
          });
        }
        const profile: KiteProfile = { userId: result.data.user_id };
        const userName = optional(result.data.user_name);
        const email = optional(result.data.email);
        if (userName !== undefined) profile.userName = userName;
        if (email !== undefined) profile.email = email;
        return profile;
      },
    });
  }

  /** Logs the session out. Resolves true when Kite confirms. */
  invalidateAccessToken(accessToken: string): Promise<boolean> {
    return this.#call({
      method: 'DELETE',
      path: '/session/token',
      params: { api_key: this.apiKey, access_token: accessToken },
      secrets: [accessToken],
      parse: (data) => data === true,
    });
  }

  /** Invalidates a refresh token. Resolves true when Kite confirms. */
  invalidateRefreshToken(refreshToken: string): Promise<boolean> {
    return this.#call({
      method: 'DELETE',
      path: '/session/token',
      params: { api_key: this.apiKey, refresh_token: refreshToken },
      secrets: [refreshToken],
      parse: (data) => data === true,
    });
  }

  #parseSession(data: unknown, endpoint: string, status: number): KiteSession {
    const result = sessionSchema.safeParse(data);
    if (!result.success) {
      throw new KiteApiError(describeInvalid(result.error, 'session', endpoint), {
        status,
        errorType: 'DataException',
      });
    }
    const d = result.data;
    const session: KiteSession = {
      userId: d.user_id ?? '',
      accessToken: d.access_token,
      refreshToken: d.refresh_token ?? '',
    };
    const publicToken = optional(d.public_token);
    const loginTime = optional(d.login_time);
    const apiKey = optional(d.api_key);
    const userName = optional(d.user_name);
    if (publicToken !== undefined) session.publicToken = publicToken;
    if (loginTime !== undefined) session.loginTime = loginTime;
    if (apiKey !== undefined) session.apiKey = apiKey;
    if (userName !== undefined) session.userName = userName;
    return session;
  }

  #call<T>(spec: CallSpec<T>): Promise<T> {
    const endpoint = `${spec.method} ${spec.path}`;
    // The checksum is derived from the secret, so it is scrubbed too.
    const secrets = [
      ...spec.secrets,
      this.#apiSecret,
      ...(spec.params.checksum ? [spec.params.checksum] : []),
    ];
    return withRetry((context) => this.#attempt(spec, endpoint, secrets, context), this.#retry, {
      timeoutMs: this.#timeoutMs,
    });
  }

  async #attempt<T>(
    spec: CallSpec<T>,
    endpoint: string,
    secrets: string[],
    context: AttemptContext,
  ): Promise<T> {
    const url = new URL(this.baseUrl + spec.path);
    const headers: Record<string, string> = { 'X-Kite-Version': '3', Accept: 'application/json' };
    let body: string | undefined;
    if (spec.method === 'POST') {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(spec.params).toString();
    } else {
      for (const [key, value] of Object.entries(spec.params)) url.searchParams.set(key, value);
    }
    if (spec.accessToken !== undefined) headers.Authorization = `token ${this.apiKey}:${spec.accessToken}`;

    const started = performance.now();
    const report = (status: number | 'network') => {
      try {
        this.#onCall?.({
          endpoint,
          status,
          durationMs: performance.now() - started,
          attempt: context.attempt,
        });
      } catch {
        // Metrics must never break a token refresh.
      }
    };

    let status: number;
    let contentType: string;
    let text: string;
    try {
      const response = await this.#fetch(url, {
        method: spec.method,
        headers,
        body,
        // A redirect would re-send the token somewhere else; Kite's API never redirects.
        redirect: 'manual',
        signal: AbortSignal.timeout(context.timeoutMs),
      });
      status = response.status;
      contentType = response.headers.get('content-type') ?? '';
      text = await response.text();
    } catch (error: unknown) {
      report('network');
      throw this.#networkError(error, endpoint, context.timeoutMs, secrets);
    }
    report(status);
    return this.#interpret(spec, endpoint, status, contentType, text, secrets, context.previousError);
  }

  #networkError(error: unknown, endpoint: string, timeoutMs: number, secrets: string[]): KiteNetworkError {
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
      cause,
    });
  }

  #interpret<T>(
    spec: CallSpec<T>,
    endpoint: string,
    status: number,
    contentType: string,
    text: string,
    secrets: string[],
    previousError: unknown,
  ): T {
    let envelope: Envelope | undefined;
    if (/json/i.test(contentType) || /^\s*[{[]/.test(text)) {
      try {
        const parsed = envelopeSchema.safeParse(JSON.parse(text));
        if (parsed.success) envelope = parsed.data;
      } catch {
        envelope = undefined;
      }
    }
    const ok = status >= 200 && status < 300;
    const kiteError =
      envelope !== undefined && (envelope.status === 'error' || typeof envelope.error_type === 'string');
    // An earlier attempt whose fate is unknown (timeout, 5xx) may have used up a one-time token; keep it as the cause.
    const cause = previousError === undefined ? undefined : { cause: previousError };

    if (kiteError && envelope) {
      const errorType =
        typeof envelope.error_type === 'string' && envelope.error_type
          ? envelope.error_type
          : 'GeneralException';
      const message =
        typeof envelope.message === 'string' && envelope.message
          ? scrub(envelope.message, secrets)
          : `Kite ${endpoint} failed with HTTP ${status}`;
      throw new KiteApiError(message, { status, errorType, ...cause });
    }
    if (!ok) {
      const errorType = status === 429 || status >= 500 ? 'NetworkException' : 'GeneralException';
      const kind = envelope
        ? 'a body without an error_type'
        : `a non-JSON body${contentType ? ` (${contentType.split(';')[0]})` : ''}`;
      throw new KiteApiError(`Kite ${endpoint} failed with HTTP ${status} and ${kind}`, {
        status,
        errorType,
        ...cause,
      });
    }
    if (envelope === undefined || envelope.status !== 'success' || !('data' in envelope)) {
      throw new KiteApiError(`Kite's response to ${endpoint} is not a Kite JSON success body`, {
        status,
        errorType: 'DataException',
      });
    }
    return spec.parse(envelope.data, endpoint, status);
  }
}
