// What the on-demand refresh function answers. Its own module, with no runtime code, so the caller helper that
// trading Lambdas install can read the answer without loading any of the Lambda's code.
import type { LoginRequiredError } from './errors.ts';

/** Why a refresh failed, as the caller sees it; `retryable` on the answer says whether to try again later. */
export type OnDemandErrorType =
  | 'InvalidPayload'
  | 'ConfigInvalid'
  | 'StoreUnavailable'
  | 'KiteUnavailable'
  | 'KiteRejected'
  | 'RefreshBusy'
  | 'TokenNotStored'
  /** The `account` names no configured account, or the failed token matches none: nothing was touched. */
  | 'UnknownAccount';

export type OnDemandResponse =
  | {
      status: 'refreshed' | 'already_fresh';
      accessToken: string;
      /** ISO-8601 with +05:30. */
      expiresAt?: string;
    }
  | { status: 'login_required'; reason: LoginRequiredError['reason']; loginUrl?: string }
  | {
      status: 'error';
      error: {
        type: OnDemandErrorType;
        message: string;
        retryable: boolean;
      };
    };
