// Why a login is refused once its query and state check out: Kite's answer to the exchange, the account that
// logged in, and a link already spent. Each is a LoginError written for the person who clicked the link.
import type { BrokerConfig } from '../engine/broker-config.ts';
import { storedIssuedAt } from '../engine/expiry.ts';
import { classifyError } from '../shared/errors.ts';
import { redactSecrets } from '../shared/mask.ts';
import { START_AGAIN } from './callback-query.ts';
import { LoginError } from './outcome.ts';

const USER_ID = /^[A-Za-z0-9]{2,16}$/;

export function exchangeFailure(
  e: unknown,
  config: BrokerConfig,
  requestToken: string,
  stateIssuedAt: Date | undefined,
): LoginError {
  const failure = classifyError(e);
  const fromKite = failure.kind === 'token_rejected' || failure.kind === 'kite_rejected';
  // Whatever answered may have echoed the request token: the detail goes to logs.
  const detail = redactSecrets(fromKite ? `Kite ${failure.message}` : failure.message, [requestToken]);
  if (failure.kind === 'token_rejected') {
    // A browser refresh of the success page replays the callback: say so instead of alarming anyone.
    const refreshed = storedIssuedAt(config);
    const already =
      stateIssuedAt !== undefined && refreshed > 0 && refreshed >= stateIssuedAt.getTime() - 1000;
    return new LoginError(
      'request_token_used',
      already
        ? `This login was already completed: the request token works only once. Nothing was changed.`
        : `Kite no longer accepts this request token: it works once and only for a few minutes. Nothing was changed. ${START_AGAIN}`,
      { detail },
    );
  }
  if (failure.kind === 'kite_rejected') {
    return new LoginError(
      'kite_refused',
      'Kite refused to finish the login. Nothing was changed; check the service’s logs (a wrong app secret shows up here).',
      { detail },
    );
  }
  return new LoginError(
    'kite_unavailable',
    failure.kind === 'kite_unavailable'
      ? `Kite could not be reached to finish the login. Nothing was changed. ${START_AGAIN}`
      : `The login could not be finished with Kite. Nothing was changed. ${START_AGAIN}`,
    { detail },
  );
}

function shownAccount(userId: string): string {
  return USER_ID.test(userId) ? userId : 'another account';
}

/** The account check: a pinned user_id must match; no pin is accepted only where pinning on first login is allowed. */
export function checkAccount(config: BrokerConfig, userId: string, allowFirstLoginPin: boolean): void {
  const pinned = config.user_id;
  if (!pinned) {
    if (allowFirstLoginPin) return;
    const shown = USER_ID.test(userId) ? `"${userId}"` : 'your Kite user id';
    throw new LoginError(
      'account_not_pinned',
      `You logged in to Kite as ${shownAccount(userId)}, but broker-config.json names no account (user_id), and ` +
        'this service does not let a login link decide whose token it keeps. Nothing was changed and that Kite ' +
        `session was logged out. Set "user_id": ${shown} in broker-config.json (or deploy with ` +
        'allowFirstLoginPin=true), then open the login link again.',
    );
  }
  if (userId !== pinned) {
    throw new LoginError(
      'wrong_account',
      `You logged in to Kite as ${shownAccount(userId)}, but this service keeps the ` +
        `token of ${pinned}. Nothing was changed. Log out of Kite and log in as ${pinned}.`,
    );
  }
}

export function usedStateError(): LoginError {
  return new LoginError(
    'state_used',
    'This login link was already used: the login it started was already completed, and a link works only once. ' +
      `Nothing was changed. To log in again, ${START_AGAIN.charAt(0).toLowerCase()}${START_AGAIN.slice(1)}`,
    { detail: 'state already used' },
  );
}

export function tooManyAttemptsError(): LoginError {
  return new LoginError(
    'too_many_attempts',
    `This login link failed too many times and no longer works. Nothing was changed. ${START_AGAIN}`,
    { detail: 'too many failed attempts with this state' },
  );
}
