// How a login ends: the result and its one-line summary on success, LoginError (with the HTTP status the callback
// answers with) for every way it can fail. Shared by the callback page, the CLI and the exchange itself.
import type { BrokerConfig } from '../engine/broker-config.ts';
import { formatIst, istDate } from '../engine/expiry.ts';
import { AppError } from '../shared/errors.ts';

export interface LoginResult {
  userId: string;
  expiresAt: Date;
  /** True when this login pinned user_id in a config that had none. */
  pinned: boolean;
  /** The account whose document took the login, when the login named one. */
  account?: string;
  config: BrokerConfig;
}

export type LoginFailure =
  | 'bad_request'
  | 'cancelled'
  | 'missing_state'
  | 'bad_state'
  | 'expired_state'
  | 'state_used'
  | 'too_many_attempts'
  | 'wrong_account'
  | 'account_not_pinned'
  | 'unknown_account'
  | 'account_required'
  | 'request_token_used'
  | 'kite_unavailable'
  | 'kite_refused'
  | 'store_unavailable'
  | 'not_stored';

const STATUS: Record<LoginFailure, number> = {
  bad_request: 400,
  cancelled: 400,
  missing_state: 400,
  bad_state: 403,
  expired_state: 403,
  state_used: 410,
  too_many_attempts: 429,
  wrong_account: 403,
  account_not_pinned: 403,
  unknown_account: 404,
  account_required: 400,
  request_token_used: 410,
  kite_unavailable: 502,
  kite_refused: 502,
  store_unavailable: 500,
  not_stored: 500,
};

/**
 * A login that did not store a token. `message` is written for the person who clicked the link and carries no
 * token; `detail` adds operator context for the log. Only `not_stored` follows a successful exchange.
 */
export class LoginError extends AppError {
  override name = 'LoginError';
  readonly code: LoginFailure;
  /** The HTTP status the callback answers with. */
  readonly status: number;
  readonly detail: string | undefined;
  constructor(code: LoginFailure, message: string, options?: { detail?: string; cause?: unknown }) {
    // Kite or the store failing (5xx) may pass; a refused link or account will not.
    super(message, { retryable: STATUS[code] >= 500, cause: options?.cause });
    this.code = code;
    this.status = STATUS[code];
    this.detail = options?.detail;
  }
}

/** "06:00 IST tomorrow (2025-11-08 06:00:00 IST)", relative to `now` in IST. */
export function describeValidity(expiresAt: Date, now = new Date()): string {
  const full = formatIst(expiresAt);
  const clock = `${full.slice(11, 16)} IST`;
  const day = istDate(expiresAt);
  const when =
    day === istDate(now)
      ? 'today'
      : day === istDate(new Date(now.getTime() + 24 * 60 * 60_000))
        ? 'tomorrow'
        : `on ${day}`;
  return `${clock} ${when} (${full})`;
}

/**
 * "Logged in as XX0000 — valid until 06:00 IST tomorrow (2025-11-08 06:00:00 IST)"; a login for a named account
 * says which: "Logged in as XX0000 (account alice.json) — valid until …".
 */
export function loginSummary(
  result: Pick<LoginResult, 'userId' | 'expiresAt' | 'account'>,
  now = new Date(),
): string {
  const account = result.account === undefined ? '' : ` (account ${result.account})`;
  return `Logged in as ${result.userId}${account} — valid until ${describeValidity(result.expiresAt, now)}`;
}
