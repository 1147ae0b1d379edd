// The on-demand refresh contract: what a trading Lambda sends after Kite answered 401/403, and what it gets back.
import * as z from 'zod/mini';
import { loginLinkFor } from '../accounts/login-link.ts';
import type { BrokerConfig } from '../engine/broker-config.ts';
import type { RefreshOutcome } from '../engine/refresh-engine.ts';
import type { Refresher } from '../engine/refresher.ts';
import { classifyError, type ErrorKind, InputError, type LoginRequiredError } from '../shared/errors.ts';
import type { OnDemandErrorType, OnDemandResponse } from '../shared/on-demand-response.ts';

function buildPayloadSchema() {
  return z.strictObject({
    failedAccessToken: z.optional(z.string().check(z.minLength(1), z.maxLength(1024))),
    status: z.optional(z.union([z.literal(401), z.literal(403)])),
    reason: z.optional(z.string().check(z.maxLength(500))),
    /** With several accounts: the account's user_id or document name. */
    account: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
  });
}

/** Built on first use, not at import. */
let payloadSchema: ReturnType<typeof buildPayloadSchema> | undefined;

export type OnDemandPayload = z.infer<ReturnType<typeof buildPayloadSchema>>;

export type { OnDemandResponse };

/** The answer's error type per kind of failure; a failure not listed here is a bug and is thrown. */
const ERROR_TYPES: Partial<Record<ErrorKind, OnDemandErrorType>> = {
  invalid_input: 'InvalidPayload',
  config_invalid: 'ConfigInvalid',
  store_unavailable: 'StoreUnavailable',
  kite_unavailable: 'KiteUnavailable',
  kite_rejected: 'KiteRejected',
  token_rejected: 'KiteRejected',
  refresh_busy: 'RefreshBusy',
  token_not_stored: 'TokenNotStored',
};

/**
 * Validates an invoke payload. Throws InputError with a message naming the bad field (never its value). Unknown keys
 * are counted, never named: a key can be anything a caller sent, a token included.
 */
export function parseOnDemandPayload(event: unknown): OnDemandPayload {
  payloadSchema ??= buildPayloadSchema();
  const result = payloadSchema.safeParse(event ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.join('.') || '(payload)';
  const message =
    issue?.code === 'unrecognized_keys'
      ? `${issue.keys.length} unknown field(s)`
      : field === '(payload)'
        ? 'payload must be a JSON object'
        : `field "${field}" is invalid`;
  throw new InputError(
    `${message}; expected { "failedAccessToken"?: string, "status"?: 401 | 403, "reason"?: string, ` +
      '"account"?: string }',
  );
}

/** The answer to a payload parseOnDemandPayload rejected. */
export function invalidPayloadAnswer(e: InputError): OnDemandResponse {
  return { status: 'error', error: { type: 'InvalidPayload', message: e.message, retryable: false } };
}

/** The one-click login link for an account that needs a human, signed with the Kite app secret. */
export function loginLinkWith(appSecret: string, scope?: string): (config: BrokerConfig) => string {
  // One document: the link names no account, as every single-document link does.
  return (config) => loginLinkFor(undefined, config, { appSecret, scope });
}

/** The metric an answer counts as. */
export function outcomeMetric(
  answer: OnDemandResponse,
): 'RefreshSucceeded' | 'LoginRequired' | 'RefreshFailed' | 'AlreadyFresh' {
  switch (answer.status) {
    case 'refreshed':
      return 'RefreshSucceeded';
    case 'login_required':
      return 'LoginRequired';
    case 'error':
      return 'RefreshFailed';
    case 'already_fresh':
      return 'AlreadyFresh';
  }
}

function tokenAnswer(
  outcome: RefreshOutcome & { status: 'fresh' | 'refreshed' | 'already_fresh' },
): OnDemandResponse {
  return {
    status: outcome.status === 'refreshed' ? 'refreshed' : 'already_fresh',
    accessToken: outcome.accessToken,
    ...(outcome.config.access_token_expires_at ? { expiresAt: outcome.config.access_token_expires_at } : {}),
  };
}

/**
 * Refreshes for a caller whose token Kite rejected. Expected failures come back as structured answers, so the
 * caller can branch on them; `loginLink` supplies the one-click login for accounts that need a human.
 */
export async function answerOnDemand(
  refresher: Refresher,
  payload: OnDemandPayload,
  loginLink?: (config: BrokerConfig) => string,
  deadline?: number,
): Promise<OnDemandResponse> {
  try {
    const outcome = await refresher.refresh({
      ...(payload.failedAccessToken ? { failedAccessToken: payload.failedAccessToken } : {}),
      ...(deadline !== undefined ? { deadline } : {}),
    });
    if (outcome.status === 'login_required') {
      return {
        status: 'login_required',
        reason: outcome.reason,
        ...(loginLink ? { loginUrl: loginLink(outcome.config) } : {}),
      };
    }
    return tokenAnswer(outcome);
  } catch (e: unknown) {
    if (classifyError(e).kind === 'login_required') {
      const { config } = await refresher.store.read();
      return {
        status: 'login_required',
        reason: (e as LoginRequiredError).reason,
        ...(loginLink ? { loginUrl: loginLink(config) } : {}),
      };
    }
    return failureAnswer(e);
  }
}

/** The structured answer to an expected failure; anything else is a bug and is thrown. */
export function failureAnswer(e: unknown): OnDemandResponse {
  const failure = classifyError(e);
  const type = ERROR_TYPES[failure.kind];
  if (!type) throw e;
  return { status: 'error', error: { type, message: failure.message, retryable: failure.retryable } };
}
