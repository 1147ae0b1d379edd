// What the login callback checks before it reads anything: Kite's redirect query (status, action, one well-formed
// request token) and the signed state. Every refusal is a LoginError whose message echoes neither token nor state.
import { LoginError, type LoginFailure } from './outcome.ts';
import { type LoginStateProblem, verifyLoginState } from './state.ts';

const REQUEST_TOKEN = /^[A-Za-z0-9]{16,64}$/;

export const START_AGAIN =
  'Start again from a fresh login link (kite-token login-url, or the latest reminder).';

/** The callback's query: Lambda's queryStringParameters, or URLSearchParams (which sees repeated names). */
export type CallbackQuery = URLSearchParams | Record<string, string | undefined> | null | undefined;

/**
 * A state that verified: when it was issued and expires, the nonce that names it for single use, and the account
 * it was made for (none in a v1 state).
 */
export interface VerifiedState {
  issuedAt: Date;
  expiresAt: Date;
  nonce: string;
  account?: string | undefined;
}

function single(query: CallbackQuery, name: string): string | undefined {
  if (!query) return undefined;
  if (query instanceof URLSearchParams) {
    const all = query.getAll(name);
    if (all.length > 1) {
      throw new LoginError(
        'bad_request',
        `The login callback carried "${name}" more than once. ${START_AGAIN}`,
      );
    }
    return all[0];
  }
  return query[name];
}

const stateFailure: Record<Exclude<LoginStateProblem, 'missing'>, [LoginFailure, string]> = {
  malformed: ['bad_state', 'The login link’s state is not one this service issued.'],
  bad_signature: ['bad_state', 'The login link’s state is not one this service issued.'],
  from_the_future: ['bad_state', 'The login link’s state is dated in the future.'],
  expired: ['expired_state', 'The login link has expired.'],
};

/** Verifies a state with the (scoped) state key. Throws LoginError naming only why it failed. */
export function checkState(key: Buffer, state: string | undefined, now: Date): VerifiedState {
  if (!state) {
    throw new LoginError(
      'missing_state',
      `The login callback carried no state, so it cannot be tied to a login this service started. ${START_AGAIN}`,
    );
  }
  const check = verifyLoginState(key, state, now);
  if (!check.ok) {
    const [code, text] = stateFailure[check.reason as Exclude<LoginStateProblem, 'missing'>];
    throw new LoginError(code, `${text} Nothing was changed. ${START_AGAIN}`, {
      detail: `state ${check.reason}`,
    });
  }
  return { issuedAt: check.issuedAt, expiresAt: check.expiresAt, nonce: check.nonce, account: check.account };
}

export function checkRequestToken(requestToken: string | undefined): string {
  if (!requestToken) {
    throw new LoginError('bad_request', `The login callback carried no request_token. ${START_AGAIN}`);
  }
  if (!REQUEST_TOKEN.test(requestToken)) {
    throw new LoginError('bad_request', `The request_token is not one Kite issues. ${START_AGAIN}`);
  }
  return requestToken;
}

/**
 * Kite's redirect, checked: status must be "success", action "login", request_token present once and well-formed.
 * Returns the request token and the (unverified) state.
 */
export function readCallback(query: CallbackQuery): { requestToken: string; state: string | undefined } {
  const status = single(query, 'status');
  const action = single(query, 'action');
  const requestToken = single(query, 'request_token');
  const state = single(query, 'state');
  if (status !== undefined && status !== 'success') {
    const shown = /^[a-z_]{1,20}$/.test(status) ? ` (status=${status})` : '';
    throw new LoginError('cancelled', `The Kite login was cancelled or failed${shown}. Nothing was changed.`);
  }
  if (status === undefined) {
    throw new LoginError('bad_request', `The login callback carried no status from Kite. ${START_AGAIN}`);
  }
  if (action !== 'login') {
    throw new LoginError('bad_request', `The login callback is not a Kite login (action). ${START_AGAIN}`);
  }
  return { requestToken: checkRequestToken(requestToken), state };
}
