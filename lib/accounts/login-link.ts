// The one-tap login link for one account of a deployment: reminders and on-demand answers build it here, so the
// signed login state names the account the callback must store the token in.
import type { BrokerConfig } from '../engine/broker-config.ts';
import { buildLoginLink, loginRootFor } from '../login/link.ts';

export interface AccountLinkOptions {
  appSecret: string;
  /** LOGIN_STATE_SCOPE: the login callback verifies links with the same. */
  scope?: string | undefined;
  now?: Date;
  ttlMs?: number;
}

/**
 * The signed login link for `account` (Account.linkAccount: its name, or undefined for a single document), for the
 * app in `config`. The state signs the account in, so the callback stores the token in that account's document only.
 */
export function loginLinkFor(
  account: string | undefined,
  config: BrokerConfig,
  options: AccountLinkOptions,
): string {
  return buildLoginLink({
    apiKey: config.api_key,
    appSecret: options.appSecret,
    loginRoot: loginRootFor(config),
    scope: options.scope,
    ...(account ? { account } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.ttlMs ? { ttlMs: options.ttlMs } : {}),
  });
}
