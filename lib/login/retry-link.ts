// The "Log in again" link on a failed login's page: a fresh signed login link for the account the failed link was
// made for, given only when that link's state is one this service signed (a tampered or forged state gets none)
// and the failure is one a new login can get past.
import { loginLinkFor } from '../accounts/login-link.ts';
import type { LoginDeps } from './exchange.ts';
import { loginTarget } from './login-account.ts';
import type { LoginError, LoginFailure } from './outcome.ts';
import { loginStateKey, MAX_LOGIN_STATE_TTL_MS, retryableLoginState } from './state.ts';

/** Failures a fresh link can get past: the link expired or was spent, Kite or the store failed, the wrong login. */
const RETRYABLE = new Set<LoginFailure>([
  'cancelled',
  'expired_state',
  'state_used',
  'request_token_used',
  'wrong_account',
  'kite_unavailable',
  'kite_refused',
  'store_unavailable',
  'not_stored',
]);

/** How many fresh links one container hands out per hour: a held link must not become an endless supply of them. */
export const MAX_RETRY_LINKS_PER_HOUR = 30;
const HOUR_MS = 60 * 60_000;

/** The container's record of retry links handed out, newest last. */
export class RetryBudget {
  readonly #given: number[] = [];
  readonly #perHour: number;
  constructor(perHour = MAX_RETRY_LINKS_PER_HOUR) {
    this.#perHour = perHour;
  }

  /** Takes one link from the budget; false when this hour's are spent. */
  take(now: Date): boolean {
    while (this.#given.length > 0 && (this.#given[0] ?? 0) <= now.getTime() - HOUR_MS) this.#given.shift();
    if (this.#given.length >= this.#perHour) return false;
    this.#given.push(now.getTime());
    return true;
  }
}

const containerBudget = new RetryBudget();

/** How long a fresh link stays usable; one that would have less than the least left is not offered. */
const RETRY_LINK_MS = 10 * 60_000;
const RETRY_LINK_LEAST_MS = 5 * 60_000;

/**
 * The fresh link's lifetime, counted from the first link's issue time, which it keeps: a retry of a retry can never
 * stretch one held link past MAX_LOGIN_STATE_TTL_MS (3 h) after it was made. Undefined when too little would be left.
 */
function retryLifetime(issuedAt: Date, now: Date): number | undefined {
  const age = Math.max(0, now.getTime() - issuedAt.getTime());
  const lifetime = Math.min(age + RETRY_LINK_MS, MAX_LOGIN_STATE_TTL_MS);
  return lifetime - age < RETRY_LINK_LEAST_MS ? undefined : lifetime;
}

/**
 * A fresh login link (10 minutes, and never past three hours after the first link of the chain was made) for the
 * account `state` names, or for the deployment's only document when it names none; undefined for a failure a new
 * link does not help, a state this service did not sign (or made more than three hours ago), an account it does not
 * keep, a document it cannot read, or a spent budget. Never throws.
 */
export async function retryLoginLink(
  deps: LoginDeps & { budget?: RetryBudget },
  state: string | undefined,
  error: LoginError,
): Promise<string | undefined> {
  if (!RETRYABLE.has(error.code)) return undefined;
  const now = (deps.now ?? (() => new Date()))();
  try {
    const signed = retryableLoginState(loginStateKey(deps.appSecret, deps.stateScope), state, now);
    if (!signed) return undefined;
    const lifetime = retryLifetime(signed.issuedAt, now);
    if (lifetime === undefined) return undefined;
    // The budget first: a spent one costs no store read.
    if (!(deps.budget ?? containerBudget).take(now)) return undefined;
    const target = await loginTarget(deps, signed.account);
    const { config } = await target.store.read();
    return loginLinkFor(signed.account, config, {
      appSecret: deps.appSecret,
      scope: deps.stateScope,
      now: signed.issuedAt,
      ttlMs: lifetime,
    });
  } catch {
    // No link is better than a failure page that fails.
    return undefined;
  }
}
