// On-demand refresh with several accounts: the caller names the account (user_id or document name), or reports the
// token it saw fail and the account holding that token is served. No match touches nothing and says so.
import type { OnDemandPayload } from '../lambda/on-demand.ts';
import { answerOnDemand, failureAnswer } from '../lambda/on-demand.ts';
import type { OnDemandResponse } from '../shared/on-demand-response.ts';
import { loginLinkFor } from './login-link.ts';
import type { Account, AccountRegistry } from './registry.ts';

export interface AccountAnswerOptions {
  appSecret: string;
  /** LOGIN_STATE_SCOPE, for the login link of an account that needs a human. */
  stateScope?: string | undefined;
  deadline?: number | undefined;
}

function unknownAccount(message: string): OnDemandResponse {
  return { status: 'error', error: { type: 'UnknownAccount', message, retryable: false } };
}

/** The account a payload is for, or the answer that says why there is none. Neither the name nor the token is echoed. */
async function accountFor(
  accounts: AccountRegistry,
  payload: OnDemandPayload,
): Promise<{ account: Account } | { answer: OnDemandResponse }> {
  if (payload.account !== undefined) {
    const account = await accounts.find(payload.account);
    return account
      ? { account }
      : { answer: unknownAccount('no configured account has this name or user_id') };
  }
  if (accounts.single) {
    const [only] = await accounts.all();
    if (only) return { account: only };
  }
  if (payload.failedAccessToken) {
    const account = await accounts.findByAccessToken(payload.failedAccessToken);
    return account
      ? { account }
      : {
          answer: unknownAccount(
            'the failed access token matches no account (it may have been replaced long ago): send "account"',
          ),
        };
  }
  return { answer: unknownAccount('several accounts are configured: send "account" or "failedAccessToken"') };
}

/**
 * Finds the account a payload is for and refreshes it as a single account would be. `account` in the result is the
 * account served, for per-account metrics; absent when none was found.
 */
export async function answerForAccount(
  accounts: AccountRegistry,
  payload: OnDemandPayload,
  options: AccountAnswerOptions,
): Promise<{ answer: OnDemandResponse; account?: Account }> {
  let found: Awaited<ReturnType<typeof accountFor>>;
  try {
    found = await accountFor(accounts, payload);
  } catch (e: unknown) {
    // A document that could not be read while searching: the caller may try again.
    return { answer: failureAnswer(e) };
  }
  if ('answer' in found) return found;
  const { account } = found;
  const loginLink = (config: Parameters<typeof loginLinkFor>[1]) =>
    loginLinkFor(account.linkAccount, config, { appSecret: options.appSecret, scope: options.stateScope });
  const answer = await answerOnDemand(account.refresher, payload, loginLink, options.deadline);
  return { answer, account };
}
