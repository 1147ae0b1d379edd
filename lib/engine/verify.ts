// Asks Kite whether the stored access token still works, with the cheapest authenticated call (GET /user/profile).
// The clock alone cannot tell: a login elsewhere with the same app, or a late flush, kills a token before its
// stored expiry. Only Kite's 403 TokenException means dead; a network error, 429 or 5xx says nothing about the token.
import type { KiteClient } from '../kite/client.ts';
import { describeError, isTokenRejected, KiteApiError } from '../shared/errors.ts';
import type { ConfigStore } from '../store/config-store.ts';
import type { BrokerConfig } from './broker-config.ts';

export type TokenVerdict =
  /** Kite accepted the token; `userId` is whose it is. */
  | { verdict: 'valid'; userId: string }
  /** Kite refused it (403 TokenException), or there is none: a login, or a renewal, is needed. */
  | { verdict: 'dead'; reason: string }
  /** Kite could not be asked, or did not answer (network, 429, 5xx after retries): not a dead token. */
  | { verdict: 'unknown'; error: string };

export interface VerifyDeps {
  store: ConfigStore;
  /** The Kite client for a document (a refresher's kiteFor). */
  kiteFor: (config: BrokerConfig) => KiteClient;
}

/**
 * Kite's verdict on a token. Never throws for Kite's sake; messages never carry the token. `budgetMs` bounds the
 * retries (a scheduled tick over many accounts must not spend Kite's whole 20 s on each).
 */
export async function verifyToken(
  kite: KiteClient,
  accessToken: string,
  options: { budgetMs?: number } = {},
): Promise<TokenVerdict> {
  if (!accessToken) return { verdict: 'dead', reason: 'no access token is stored' };
  try {
    const profile = await kite.getProfile(accessToken, options);
    return { verdict: 'valid', userId: profile.userId };
  } catch (e: unknown) {
    if (isTokenRejected(e)) return { verdict: 'dead', reason: `Kite rejected the token (${e.message})` };
    const answered =
      e instanceof KiteApiError ? `Kite answered ${e.status} ${e.errorType}: ${e.message}` : undefined;
    return { verdict: 'unknown', error: answered ?? describeError(e) };
  }
}

/**
 * Reads the document and asks Kite about its token. Reading the store may throw (the store's error): that is not
 * Kite's verdict. Writes nothing.
 */
export async function verifyStoredToken(deps: VerifyDeps): Promise<TokenVerdict> {
  const { config } = await deps.store.read();
  return verifyToken(deps.kiteFor(config), config.api_secret);
}
