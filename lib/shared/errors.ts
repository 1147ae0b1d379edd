// Typed errors: callers branch on the class and its fields, never on message text.
// Messages never carry a whole token or secret; use maskToken() when one must be named.

/** broker-config.json (or a setting) is malformed. `field` names the offending setting. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly field: string | undefined;
  constructor(message: string, options?: { field?: string; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.field = options?.field;
  }
}

/** A compare-and-swap write lost: the stored document changed since it was read. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** The document (file, object or secret) does not exist. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** A store could not be reached or refused for a reason other than a conflict. `retryable` says whether trying again may help. */
export class StoreError extends Error {
  override name = 'StoreError';
  readonly retryable: boolean;
  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable;
  }
}

/** Kite answered with an error body (or an HTTP error). */
export class KiteApiError extends Error {
  override name = 'KiteApiError';
  /** HTTP status, e.g. 403. */
  readonly status: number;
  /** Kite's error_type, e.g. TokenException, InputException, NetworkException. */
  readonly errorType: string;
  constructor(message: string, options: { status: number; errorType: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.errorType = options.errorType;
  }
  /** 429, 5xx and NetworkException are worth retrying; 4xx are not. */
  get retryable(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

/** Kite could not be reached at all (DNS, connection refused, reset, timeout). */
export class KiteNetworkError extends Error {
  override name = 'KiteNetworkError';
  readonly timedOut: boolean;
  constructor(message: string, options: { timedOut: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.timedOut = options.timedOut;
  }
}

/** No refresh token, or Kite rejected it: a human must log in (once a day for ordinary Kite apps). */
export class LoginRequiredError extends Error {
  override name = 'LoginRequiredError';
  readonly reason: 'no_refresh_token' | 'refresh_token_rejected';
  constructor(message: string, options: { reason: LoginRequiredError['reason']; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.reason = options.reason;
  }
}

/** An invoke payload, CLI argument or callback request is invalid. */
export class InputError extends Error {
  override name = 'InputError';
}
