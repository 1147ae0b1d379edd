// Typed errors: callers branch on the class and its fields, never on message text. Every error the product throws
// extends AppError, which says whether trying again may help and keeps the original error as `cause`.
// Messages never carry a whole token or secret; use maskToken() when one must be named.

export interface AppErrorOptions {
  cause?: unknown;
}

/** The one error base: `retryable` says whether the same call may succeed later; `cause` keeps what went wrong below. */
export abstract class AppError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: AppErrorOptions & { retryable: boolean }) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable;
  }
}

/** broker-config.json (or a setting) is malformed. `field` names the offending setting. */
export class ConfigError extends AppError {
  override name = 'ConfigError';
  readonly field: string | undefined;
  constructor(message: string, options?: AppErrorOptions & { field?: string }) {
    super(message, { retryable: false, cause: options?.cause });
    this.field = options?.field;
  }
}

/** A compare-and-swap write lost: the stored document changed since it was read. Read again and retry. */
export class ConflictError extends AppError {
  override name = 'ConflictError';
  constructor(message: string, options?: AppErrorOptions) {
    super(message, { retryable: true, cause: options?.cause });
  }
}

/** The document (file, object or secret) does not exist. */
export class NotFoundError extends AppError {
  override name = 'NotFoundError';
  constructor(message: string, options?: AppErrorOptions) {
    super(message, { retryable: false, cause: options?.cause });
  }
}

/** A store could not be reached or refused for a reason other than a conflict. */
export class StoreError extends AppError {
  override name = 'StoreError';
}

/** Kite answered with an error body (or an HTTP error). 429 and 5xx are worth retrying; other 4xx are not. */
export class KiteApiError extends AppError {
  override name = 'KiteApiError';
  /** HTTP status, e.g. 403. */
  readonly status: number;
  /** Kite's error_type, e.g. TokenException, InputException, NetworkException. */
  readonly errorType: string;
  constructor(message: string, options: AppErrorOptions & { status: number; errorType: string }) {
    super(message, { retryable: options.status === 429 || options.status >= 500, cause: options.cause });
    this.status = options.status;
    this.errorType = options.errorType;
  }
}

/** Kite could not be reached at all (DNS, connection refused, reset, timeout). */
export class KiteNetworkError extends AppError {
  override name = 'KiteNetworkError';
  readonly timedOut: boolean;
  /**
   * False only when the request certainly never left this machine (connection refused, DNS): a timeout or a
   * connection cut after sending may have reached Kite, which may have acted on it.
   */
  readonly mayHaveReachedKite: boolean;
  constructor(
    message: string,
    options: AppErrorOptions & { timedOut: boolean; mayHaveReachedKite?: boolean },
  ) {
    super(message, { retryable: true, cause: options.cause });
    this.timedOut = options.timedOut;
    this.mayHaveReachedKite = options.mayHaveReachedKite ?? true;
  }
}

/** A failed Kite call that Kite certainly did not act on: it never arrived, or Kite turned it away (429). */
export function certainlyNotActedOn(e: unknown): boolean {
  if (e instanceof KiteNetworkError) return !e.mayHaveReachedKite;
  return e instanceof KiteApiError && e.status === 429;
}

/**
 * No refresh token, or Kite rejected it: a human must log in (once a day for ordinary Kite apps). `loginUrl`, when
 * known, is a one-click login link; it carries a live signed state, so it is a field, never part of the message,
 * which ends up in logs.
 */
export class LoginRequiredError extends AppError {
  override name = 'LoginRequiredError';
  readonly reason: 'no_refresh_token' | 'refresh_token_rejected';
  readonly #loginUrl: string | undefined;
  constructor(
    message: string,
    options: AppErrorOptions & { reason: LoginRequiredError['reason']; loginUrl?: string | undefined },
  ) {
    super(message, { retryable: false, cause: options.cause });
    this.reason = options.reason;
    this.#loginUrl = options.loginUrl;
  }
  /** A getter over a private field: logging the error (inspect, JSON, a logger's error formatter) leaves it out. */
  get loginUrl(): string | undefined {
    return this.#loginUrl;
  }
}

/** An invoke payload, CLI argument or callback request is invalid. */
export class InputError extends AppError {
  override name = 'InputError';
  constructor(message: string, options?: AppErrorOptions) {
    super(message, { retryable: false, cause: options?.cause });
  }
}

/** Another refresher held the lease for longer than this one could wait, or too little time was left to renew. */
export class RefreshBusyError extends AppError {
  override name = 'RefreshBusyError';
  constructor(message: string, options?: AppErrorOptions) {
    super(message, { retryable: true, cause: options?.cause });
  }
}

/** Tokens Kite issued could not be written; `kept` says where copies are (empty: nowhere). The next run stores them. */
export class TokenNotStoredError extends AppError {
  override name = 'TokenNotStoredError';
  readonly kept: string[];
  constructor(message: string, options: AppErrorOptions & { kept: string[] }) {
    super(message, { retryable: true, cause: options.cause });
    this.kept = options.kept;
  }
}

/**
 * A notification channel (Telegram, a chat webhook, SNS) did not take a message. The message names the channel and
 * the HTTP status or errno only: a bot token travels in Telegram's URL path and a webhook URL is a credential, so
 * neither the URL nor the fetch error that would quote it is kept, not even as `cause`.
 */
export class NotifyError extends AppError {
  override name = 'NotifyError';
  readonly channel: string;
  /** The HTTP status the channel answered; undefined when it could not be reached. */
  readonly status: number | undefined;
  constructor(message: string, options: { channel: string; status?: number; retryable: boolean }) {
    super(message, { retryable: options.retryable });
    this.channel = options.channel;
    this.status = options.status;
  }
}

/** Kite refused this token as dead: 403 TokenException. A 403 page from anything in between, or a
 *  PermissionException (an API the app is not subscribed to), is not a dead token. */
export function isTokenRejected(e: unknown): e is KiteApiError {
  return e instanceof KiteApiError && e.status === 403 && e.errorType === 'TokenException';
}

/** What callers branch on, whichever part of the product failed. */
export type ErrorKind =
  | 'invalid_input'
  | 'config_invalid'
  | 'login_required'
  | 'token_rejected'
  | 'kite_unavailable'
  | 'kite_rejected'
  | 'refresh_busy'
  | 'store_unavailable'
  | 'token_not_stored'
  | 'unexpected';

export interface ErrorClass {
  kind: ErrorKind;
  retryable: boolean;
  /** One line, safe to show: no token, no secret. */
  message: string;
}

/** The one classifier: the on-demand answer, the CLI's exit code and the login page all start from this. */
export function classifyError(e: unknown): ErrorClass {
  const of = (kind: ErrorKind, message: string, retryable = false): ErrorClass => ({
    kind,
    retryable,
    message,
  });
  if (e instanceof InputError) return of('invalid_input', e.message);
  if (e instanceof ConfigError || e instanceof NotFoundError) return of('config_invalid', e.message);
  if (e instanceof LoginRequiredError) return of('login_required', e.message);
  if (isTokenRejected(e)) return of('token_rejected', `${e.status} ${e.errorType}: ${e.message}`);
  if (e instanceof KiteNetworkError || (e instanceof KiteApiError && e.retryable)) {
    return of('kite_unavailable', e.message, true);
  }
  if (e instanceof KiteApiError) return of('kite_rejected', `${e.status} ${e.errorType}: ${e.message}`);
  if (e instanceof RefreshBusyError) return of('refresh_busy', e.message, true);
  if (e instanceof StoreError) return of('store_unavailable', e.message, e.retryable);
  if (e instanceof TokenNotStoredError) return of('token_not_stored', e.message, true);
  return of('unexpected', describeError(e));
}

/** "Name: message" for a log line; never a stack or a request body. */
export function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
