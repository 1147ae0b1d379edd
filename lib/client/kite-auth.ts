// For trading Lambdas that call Kite: read the current access token of the deployment's document or of one account
// (cached in the warm container until near its expiry), and on a 401/403 from Kite ask the on-demand refresher once
// for a new token and retry once.
import { LambdaClient } from '@aws-sdk/client-lambda';
import { parseAccountsLocation, RESCUE_SUFFIX } from '../accounts/location.ts';
import { parseStoredInstant } from '../engine/expiry.ts';
import { ConfigError, KiteApiError, LoginRequiredError } from '../shared/errors.ts';
import { lazyClient } from '../shared/lazy.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { openStore } from '../store/open-store.ts';
import { isKiteAuthError } from './auth-error.ts';
import { type IssuedToken, invokeRefreshFunction, tokenFromAnswer } from './refresh-function.ts';

export interface KiteAuthOptions {
  /**
   * Where broker-config.json lives. Default: $BROKER_CONFIG_URI. With `account`, this may also be the deployment's
   * list of documents or S3 prefix: the account's own document is read.
   */
  configUri?: string;
  /**
   * The account whose token this source serves, in a deployment with several: its name (the document's file,
   * object or secret name without .json). Its document is read, and the on-demand refresher is asked to renew that
   * account. Default none: the deployment's one document, as before accounts.
   */
  account?: string;
  /** The on-demand refresh function's name or ARN. Default: $KITE_REFRESH_FUNCTION. */
  refreshFunction?: string;
  store?: ConfigStore;
  lambda?: LambdaClient;
  /** Stop using a cached token this long before its expiry. Default 5 minutes. */
  marginMs?: number;
  now?: () => Date;
}

export interface KiteAuth {
  /** The stored access token; cached until `marginMs` before its expiry. */
  getAccessToken(): Promise<string>;
  /** Runs fn(token); on a Kite 401/403, gets a new token from the on-demand refresher and runs fn once more. */
  withKiteAuth<T>(fn: (accessToken: string) => Promise<T>): Promise<T>;
  /** Forgets the cached token. */
  clear(): void;
}

const DEFAULT_MARGIN_MS = 5 * 60_000;
/** How long a token whose expiry the document does not say is trusted before the store is read again. */
const UNKNOWN_EXPIRY_TRUST_MS = 60_000;

interface TokenCache {
  /** The cached token while it is still usable. */
  current(): string | undefined;
  /** Caches a token until `marginMs` before its expiry, and returns it. */
  remember(issued: IssuedToken): string;
  forget(): void;
}

function createTokenCache(now: () => Date, marginMs: number): TokenCache {
  let cached: { token: string; usableUntil: number } | undefined;
  return {
    current: () => (cached && now().getTime() < cached.usableUntil ? cached.token : undefined),
    remember({ token, expiresAt }) {
      const expiry = parseStoredInstant(expiresAt, 'access_token_expires_at');
      const usableUntil = expiry ? expiry.getTime() - marginMs : now().getTime() + UNKNOWN_EXPIRY_TRUST_MS;
      cached = { token, usableUntil };
      return token;
    },
    forget() {
      cached = undefined;
    },
  };
}

/**
 * The document to read: `uri` itself when it names one document, or `account`'s among several (a list or an S3
 * prefix). An account that is not the one document's, or no account where there are several, is refused: the token
 * read and the account renewed must be the same.
 */
function documentUri(uri: string, account: string | undefined): string {
  const location = parseAccountsLocation(uri, 'BROKER_CONFIG_URI');
  if (location.kind === 'single') {
    if (account !== undefined && location.document.name !== account) {
      throw new ConfigError(
        `account "${account}" is not the account of ${location.document.uri} ("${location.document.name}")`,
        { field: 'account' },
      );
    }
    return location.document.uri;
  }
  if (account === undefined) {
    throw new ConfigError('BROKER_CONFIG_URI names several accounts: pass createKiteAuth({ account })', {
      field: 'account',
    });
  }
  if (location.kind === 's3-prefix') {
    if (!/^[^/\\]+$/.test(account) || account.endsWith(RESCUE_SUFFIX)) {
      throw new ConfigError(`account "${account}" is not a document name under ${location.uri}`, {
        field: 'account',
      });
    }
    return `${location.uri}${account}.json`;
  }
  const found = location.documents.find((document) => document.name === account);
  if (!found) {
    throw new ConfigError(
      `BROKER_CONFIG_URI names no document for account "${account}" (accounts: ${location.documents.map((d) => d.name).join(', ')})`,
      { field: 'account' },
    );
  }
  return found.uri;
}

/** The store the options name (or $BROKER_CONFIG_URI), opened on first use and kept. */
function lazyStore(options: KiteAuthOptions): () => Promise<ConfigStore> {
  let store: Promise<ConfigStore> | undefined = options.store ? Promise.resolve(options.store) : undefined;
  return () => {
    if (store) return store;
    const uri = options.configUri ?? process.env.BROKER_CONFIG_URI;
    if (!uri) {
      return Promise.reject(
        new ConfigError('set BROKER_CONFIG_URI (where broker-config.json lives)', {
          field: 'BROKER_CONFIG_URI',
        }),
      );
    }
    try {
      store = openStore(documentUri(uri, options.account));
    } catch (e: unknown) {
      return Promise.reject(e);
    }
    return store;
  };
}

/** The access token in broker-config.json (its `api_secret`), with its expiry. */
async function readStoredToken(store: ConfigStore): Promise<IssuedToken> {
  const { config } = await store.read();
  if (!config.api_secret) {
    throw new LoginRequiredError('broker-config.json has no access token yet: log in to Kite', {
      reason: 'no_refresh_token',
    });
  }
  return { token: config.api_secret, expiresAt: config.access_token_expires_at };
}

/** The status to tell the refresh function: only ever 401 or 403 from this project's Kite client. */
function rejectionStatus(e: unknown): 401 | 403 | undefined {
  if (!(e instanceof KiteApiError)) return undefined;
  if (e.status === 401) return 401;
  return e.status === 403 ? 403 : undefined;
}

/** Asks the refresh function the options name (or $KITE_REFRESH_FUNCTION) to replace a token Kite rejected. */
function refresherFor(
  options: KiteAuthOptions,
): (failedAccessToken: string, status: 401 | 403 | undefined) => Promise<IssuedToken> {
  const lambda = lazyClient({ client: options.lambda }, (config) => new LambdaClient(config ?? {}));
  return async (failedAccessToken, status) => {
    const functionName = options.refreshFunction ?? process.env.KITE_REFRESH_FUNCTION;
    if (!functionName) {
      throw new ConfigError('set KITE_REFRESH_FUNCTION (the on-demand refresh function)', {
        field: 'KITE_REFRESH_FUNCTION',
      });
    }
    const payload = {
      failedAccessToken,
      ...(status ? { status } : {}),
      ...(options.account === undefined ? {} : { account: options.account }),
    };
    return tokenFromAnswer(await invokeRefreshFunction(lambda(), functionName, payload));
  };
}

/** A token source with its own cache, store and refresh function; the module-level functions share one. */
export function createKiteAuth(options: KiteAuthOptions = {}): KiteAuth {
  const cache = createTokenCache(options.now ?? (() => new Date()), options.marginMs ?? DEFAULT_MARGIN_MS);
  const store = lazyStore(options);
  const refresh = refresherFor(options);

  const getAccessToken = async (): Promise<string> =>
    cache.current() ?? cache.remember(await readStoredToken(await store()));

  // The token was just rejected: whatever happens next, the cache must not serve it again.
  const renew = async (rejected: string, e: unknown): Promise<string> => {
    try {
      return cache.remember(await refresh(rejected, rejectionStatus(e)));
    } catch (refreshError: unknown) {
      cache.forget();
      throw refreshError;
    }
  };

  const retryWith = async <T>(fn: (accessToken: string) => Promise<T>, token: string): Promise<T> => {
    try {
      return await fn(token);
    } catch (retryError: unknown) {
      if (isKiteAuthError(retryError)) cache.forget();
      throw retryError;
    }
  };

  return {
    getAccessToken,
    clear: () => cache.forget(),
    async withKiteAuth(fn) {
      const token = await getAccessToken();
      try {
        return await fn(token);
      } catch (e: unknown) {
        if (!isKiteAuthError(e)) throw e;
        return retryWith(fn, await renew(token, e));
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
