// For trading Lambdas that call Kite: read the current access token (cached in the warm container until near its
// expiry), and on a 401/403 from Kite ask the on-demand refresher once for a new token and retry once.
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { parseStoredInstant } from '../engine/expiry.ts';
import type { OnDemandResponse } from '../lambda/on-demand.ts';
import { ConfigError, KiteApiError, LoginRequiredError } from '../shared/errors.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { openStore } from '../store/open-store.ts';

export interface KiteAuthOptions {
  /** Where broker-config.json lives. Default: $BROKER_CONFIG_URI. */
  configUri?: string;
  /** The on-demand refresh function's name or ARN. Default: $KITE_REFRESH_FUNCTION. */
  refreshFunction?: string;
  store?: ConfigStore;
  lambda?: LambdaClient;
  /** Stop using a cached token this long before its expiry. Default 5 minutes. */
  marginMs?: number;
  now?: () => Date;
}

/**
 * Kite said the token is no good: a TokenException, or an HTTP 401/403 that names no other error type. A 403
 * PermissionException (an API the app is not subscribed to) or InputException is about the call, not the token,
 * and must not make anyone renew.
 */
export function isKiteAuthError(e: unknown): boolean {
  if (e instanceof KiteApiError) {
    return (e.status === 401 || e.status === 403) && (e.errorType === 'TokenException' || e.errorType === '');
  }
  if (typeof e !== 'object' || e === null) return false;
  const r = e as Record<string, unknown>;
  const errorType = r.error_type ?? r.errorType;
  if (typeof errorType === 'string' && errorType !== '') return errorType === 'TokenException';
  const status =
    r.status ?? r.statusCode ?? r.status_code ?? (r.response as Record<string, unknown> | undefined)?.status;
  return status === 401 || status === 403;
}

/** The on-demand function answered with an error, or could not be invoked. */
export class TokenRefreshError extends Error {
  override name = 'TokenRefreshError';
  readonly retryable: boolean;
  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable;
  }
}

export interface KiteAuth {
  /** The stored access token; cached until `marginMs` before its expiry. */
  getAccessToken(): Promise<string>;
  /** Runs fn(token); on a Kite 401/403, gets a new token from the on-demand refresher and runs fn once more. */
  withKiteAuth<T>(fn: (accessToken: string) => Promise<T>): Promise<T>;
  /** Forgets the cached token. */
  clear(): void;
}

export function createKiteAuth(options: KiteAuthOptions = {}): KiteAuth {
  const now = options.now ?? (() => new Date());
  const marginMs = options.marginMs ?? 5 * 60_000;
  let store: Promise<ConfigStore> | undefined = options.store ? Promise.resolve(options.store) : undefined;
  let lambda = options.lambda;
  let cached: { token: string; usableUntil: number } | undefined;

  const getStore = () => {
    if (!store) {
      const uri = options.configUri ?? process.env.BROKER_CONFIG_URI;
      if (!uri)
        return Promise.reject(
          new ConfigError('set BROKER_CONFIG_URI (where broker-config.json lives)', {
            field: 'BROKER_CONFIG_URI',
          }),
        );
      store = openStore(uri);
    }
    return store;
  };

  const remember = (token: string, expiresAt: string | undefined) => {
    const expiry = parseStoredInstant(expiresAt, 'access_token_expires_at');
    // Unknown expiry: trust it briefly, then read again.
    const usableUntil = expiry ? expiry.getTime() - marginMs : now().getTime() + 60_000;
    cached = { token, usableUntil };
  };

  const getAccessToken = async (): Promise<string> => {
    if (cached && now().getTime() < cached.usableUntil) return cached.token;
    const { config } = await (await getStore()).read();
    if (!config.api_secret)
      throw new LoginRequiredError('broker-config.json has no access token yet: log in to Kite', {
        reason: 'no_refresh_token',
      });
    remember(config.api_secret, config.access_token_expires_at);
    return config.api_secret;
  };

  const refreshAfterRejection = async (
    failedAccessToken: string,
    status: number | undefined,
  ): Promise<string> => {
    const functionName = options.refreshFunction ?? process.env.KITE_REFRESH_FUNCTION;
    if (!functionName)
      throw new ConfigError('set KITE_REFRESH_FUNCTION (the on-demand refresh function)', {
        field: 'KITE_REFRESH_FUNCTION',
      });
    lambda ??= new LambdaClient({});
    const payload = { failedAccessToken, ...(status === 401 || status === 403 ? { status } : {}) };
    let answer: OnDemandResponse;
    try {
      const out = await lambda.send(
        new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(payload)) }),
      );
      const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
      if (out.FunctionError) {
        const err = JSON.parse(text || '{}') as { errorType?: string; errorMessage?: string };
        throw new TokenRefreshError(
          `the refresh function failed: ${err.errorType ?? 'Error'}: ${err.errorMessage ?? ''}`,
          { retryable: true },
        );
      }
      answer = JSON.parse(text) as OnDemandResponse;
    } catch (e: unknown) {
      if (e instanceof TokenRefreshError) throw e;
      throw new TokenRefreshError(
        `could not invoke the refresh function ${functionName}: ${e instanceof Error ? e.name : String(e)}`,
        {
          retryable: true,
          cause: e,
        },
      );
    }
    if (answer.status === 'error') {
      cached = undefined;
      throw new TokenRefreshError(
        `the refresh function answered ${answer.error.type}: ${answer.error.message}`,
        {
          retryable: answer.error.retryable,
        },
      );
    }
    if (answer.status === 'login_required') {
      cached = undefined;
      throw new LoginRequiredError(`Kite needs a login${answer.loginUrl ? `: ${answer.loginUrl}` : ''}`, {
        reason: answer.reason,
      });
    }
    remember(answer.accessToken, answer.expiresAt);
    return answer.accessToken;
  };

  return {
    getAccessToken,
    clear: () => {
      cached = undefined;
    },
    async withKiteAuth(fn) {
      const token = await getAccessToken();
      try {
        return await fn(token);
      } catch (e: unknown) {
        if (!isKiteAuthError(e)) throw e;
        const status = e instanceof KiteApiError ? e.status : undefined;
        let fresh: string;
        try {
          fresh = await refreshAfterRejection(token, status);
        } catch (refreshError: unknown) {
          // The cached token was just rejected: read the store again next time rather than serve it.
          cached = undefined;
          throw refreshError;
        }
        try {
          return await fn(fresh);
        } catch (retryError: unknown) {
          if (isKiteAuthError(retryError)) cached = undefined;
          throw retryError;
        }
      }
    },
  };
}

let defaultAuth: KiteAuth | undefined;

/** The stored access token, configured from BROKER_CONFIG_URI; cached per warm container. */
export function getAccessToken(): Promise<string> {
  defaultAuth ??= createKiteAuth();
  return defaultAuth.getAccessToken();
}

/** Runs fn(token), refreshing once through KITE_REFRESH_FUNCTION if Kite answers 401/403. */
export function withKiteAuth<T>(fn: (accessToken: string) => Promise<T>): Promise<T> {
  defaultAuth ??= createKiteAuth();
  return defaultAuth.withKiteAuth(fn);
}
