// Kite Connect session API client (token exchange, renewal, profile check, logout) on the platform fetch.
// Tokens, checksums and the app secret go only into request bodies, query strings and headers: never into an error.
import { createHash } from 'node:crypto';
import { apiRootFrom } from '../engine/broker-config.ts';
import { certainlyNotActedOn } from '../shared/errors.ts';
import { limiterFor, type RateLimiter } from './rate-limit.ts';
import {
  interpretResponse,
  type KiteProfile,
  type KiteResponse,
  type KiteSession,
  networkError,
  parseProfile,
  parseSession,
} from './response.ts';
import {
  type AttemptContext,
  type RetryOptions,
  type RetryPolicy,
  resolveRetryPolicy,
  withRetry,
} from './retry.ts';

/** Where a human logs in; the API root is separate (https://api.kite.trade). */
export const KITE_LOGIN_ROOT = 'https://kite.zerodha.com';

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
  /** Paces every attempt. Default: the process's limiter for this API key (10 a second), shared by all clients. */
  limiter?: RateLimiter;
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

/** How one renewal goes: a sink for Kite's answer, and which failures may be tried again. */
export interface RenewOptions {
  /**
   * Gets the raw body of a 2xx answer the moment it has arrived, before it is parsed, so the tokens in it can be kept
   * before anything else runs. Synchronous on purpose; what it throws is ignored.
   */
  onAnswer?: (body: string) => void;
  /**
   * Retry only failures Kite certainly did not act on (connection refused, DNS, 429). For a Kite that retires the
   * refresh token on renewal: a retry after a lost answer would only get 403 for a token that renewal retired.
   */
  retryOnlyUnsent?: boolean;
}

interface CallSpec<T> {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  /** Sent form-encoded in the body (POST) or in the query string (GET, DELETE), as the official clients do. */
  params: Record<string, string>;
  accessToken?: string;
  /** Values to scrub from anything that could end up in an error. */
  secrets: string[];
  parse: (data: unknown, endpoint: string, status: number) => T;
  onAnswer?: ((body: string) => void) | undefined;
  retryIf?: ((error: unknown) => boolean) | undefined;
  /** A retry budget shorter than the client's. */
  budgetMs?: number | undefined;
}

function handOver(onAnswer: ((body: string) => void) | undefined, body: string): void {
  try {
    onAnswer?.(body);
  } catch {
    // Keeping a copy is the caller's business; the answer still goes back to it.
  }
}

export class KiteClient {
  readonly apiKey: string;
  readonly baseUrl: string;
  readonly #apiSecret: string;
  readonly #timeoutMs: number;
  readonly #retry: RetryPolicy;
  readonly #fetch: typeof fetch;
  readonly #onCall: ((info: KiteCallInfo) => void) | undefined;
  readonly #limiter: RateLimiter;

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
    this.#limiter = options.limiter ?? limiterFor(this.apiKey, this.baseUrl);
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
      parse: parseSession,
    });
  }

  /** Gets a new access token with a refresh token (issued only to exchange-approved platforms). */
  renewAccessToken(refreshToken: string, options: RenewOptions = {}): Promise<KiteSession> {
    return this.#call({
      method: 'POST',
      path: '/session/refresh_token',
      params: {
        api_key: this.apiKey,
        refresh_token: refreshToken,
        checksum: checksum(this.apiKey, refreshToken, this.#apiSecret),
      },
      secrets: [refreshToken],
      parse: parseSession,
      onAnswer: options.onAnswer,
      retryIf: options.retryOnlyUnsent ? certainlyNotActedOn : undefined,
    });
  }

  /**
   * The cheapest authenticated call: succeeds only while the access token is alive. `budgetMs` shortens the retry
   * budget (a check that may wait for the next tick need not take Kite's whole 20 s).
   */
  getProfile(accessToken: string, options: { budgetMs?: number } = {}): Promise<KiteProfile> {
    return this.#call({
      method: 'GET',
      path: '/user/profile',
      params: {},
      accessToken,
      secrets: [accessToken],
      parse: parseProfile,
      budgetMs: options.budgetMs,
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

  #call<T>(spec: CallSpec<T>): Promise<T> {
    const endpoint = `${spec.method} ${spec.path}`;
    // The checksum is derived from the secret, so it is scrubbed too.
    const secrets = [
      ...spec.secrets,
      this.#apiSecret,
      ...(spec.params.checksum ? [spec.params.checksum] : []),
    ];
    const policy =
      spec.budgetMs !== undefined && spec.budgetMs < this.#retry.totalBudgetMs
        ? { ...this.#retry, totalBudgetMs: Math.max(1, spec.budgetMs) }
        : this.#retry;
    return withRetry((context) => this.#attempt(spec, endpoint, secrets, context), policy, {
      timeoutMs: this.#timeoutMs,
      ...(spec.retryIf ? { retryIf: spec.retryIf } : {}),
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

    // The slot is held until the answer is in: Kite counts a request when it arrives, somewhere in between.
    const finished = await this.#limiter.take();
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

    let response: KiteResponse;
    try {
      const answer = await this.#fetch(url, {
        method: spec.method,
        headers,
        body,
        // A redirect would re-send the token somewhere else; Kite's API never redirects.
        redirect: 'manual',
        signal: AbortSignal.timeout(context.timeoutMs),
      });
      response = {
        status: answer.status,
        contentType: answer.headers.get('content-type') ?? '',
        text: await answer.text(),
      };
    } catch (error: unknown) {
      report('network');
      throw networkError(error, endpoint, context.timeoutMs, secrets);
    } finally {
      finished();
    }
    report(response.status);
    if (response.status >= 200 && response.status < 300) handOver(spec.onAnswer, response.text);
    return interpretResponse(
      response,
      { endpoint, secrets, previousError: context.previousError },
      spec.parse,
    );
  }
}
