// Asking the on-demand refresh function for a new token: one Lambda invoke, and reading what it answered. Every
// failure becomes a typed error the trading Lambda can branch on; none carries a token.
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { AppError, LoginRequiredError } from '../shared/errors.ts';
import type { OnDemandResponse } from '../shared/on-demand-response.ts';

/** The on-demand function answered with an error, or could not be invoked. */
export class TokenRefreshError extends AppError {
  override name = 'TokenRefreshError';
}

/** A token the refresh function handed back, with its expiry when it knows one. */
export interface IssuedToken {
  token: string;
  /** ISO-8601 with an offset. */
  expiresAt: string | undefined;
}

/** What an invoke returns that matters here (the SDK's InvokeCommandOutput). */
interface InvokeResult {
  Payload?: Uint8Array;
  FunctionError?: string;
}

/** Enough of the answer's shape to act on it safely; anything else is not an answer this client can use. */
function isAnswer(value: unknown): value is OnDemandResponse {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (v.status === 'refreshed' || v.status === 'already_fresh') {
    return typeof v.accessToken === 'string' && v.accessToken !== '';
  }
  if (v.status === 'error') return typeof v.error === 'object' && v.error !== null;
  return v.status === 'login_required';
}

/** Parses the function's answer. A function error (an uncaught exception in it) is worth retrying. */
export function readRefreshAnswer(out: InvokeResult): OnDemandResponse {
  const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
  if (out.FunctionError) {
    const err = JSON.parse(text || '{}') as { errorType?: string; errorMessage?: string };
    throw new TokenRefreshError(
      `the refresh function failed: ${err.errorType ?? 'Error'}: ${err.errorMessage ?? ''}`,
      { retryable: true },
    );
  }
  const answer: unknown = JSON.parse(text);
  if (!isAnswer(answer)) {
    throw new TokenRefreshError('the refresh function gave an answer this client does not understand', {
      retryable: false,
    });
  }
  return answer;
}

/** Invokes the refresh function and reads its answer; a failure to do either is a retryable TokenRefreshError. */
export async function invokeRefreshFunction(
  lambda: LambdaClient,
  functionName: string,
  payload: { failedAccessToken: string; status?: 401 | 403; account?: string },
): Promise<OnDemandResponse> {
  try {
    const out = await lambda.send(
      new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(payload)) }),
    );
    return readRefreshAnswer(out);
  } catch (e: unknown) {
    if (e instanceof TokenRefreshError) throw e;
    throw new TokenRefreshError(
      `could not invoke the refresh function ${functionName}: ${e instanceof Error ? e.name : String(e)}`,
      { retryable: true, cause: e },
    );
  }
}

/** The token in an answer, or the error the answer stands for. */
export function tokenFromAnswer(answer: OnDemandResponse): IssuedToken {
  switch (answer.status) {
    case 'error':
      throw new TokenRefreshError(
        `the refresh function answered ${answer.error.type}: ${answer.error.message}`,
        {
          retryable: answer.error.retryable,
        },
      );
    case 'login_required':
      throw new LoginRequiredError(
        answer.loginUrl
          ? 'Kite needs a login: open the link in this error’s loginUrl field'
          : 'Kite needs a login',
        { reason: answer.reason, loginUrl: answer.loginUrl },
      );
    default:
      return { token: answer.accessToken, expiresAt: answer.expiresAt };
  }
}
