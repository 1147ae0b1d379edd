// The daily login link: Kite's login URL for the app, with a fresh signed state in redirect_params, and where a human
// logs in for a given config (Kite's site, or the loopback sandbox).
import { apiRootFrom, type BrokerConfig, KITE_API_ROOT } from '../engine/broker-config.ts';
import { KITE_LOGIN_ROOT, loginUrl } from '../kite/client.ts';
import { createLoginState, loginStateKey } from './state.ts';

/** Where a human logs in for this config: Kite's login site, or the sandbox when base_url is a loopback sandbox. */
export function loginRootFor(config: Pick<BrokerConfig, 'base_url'>): string {
  const root = apiRootFrom(config.base_url).url;
  if (root === KITE_API_ROOT) return KITE_LOGIN_ROOT;
  const host = new URL(root).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host) ? root : KITE_LOGIN_ROOT;
}

export interface LoginLinkInput {
  apiKey: string;
  appSecret: string;
  now?: Date;
  /** Default Kite's login site; the sandbox serves /connect/login at its url. */
  loginRoot?: string;
  /** How long the link works. Default 10 minutes, at most MAX_LOGIN_STATE_TTL_MS (3 h). */
  ttlMs?: number;
  /** The deployment's state scope (its stage): the callback that takes the link must use the same. Default none. */
  scope?: string | undefined;
  /**
   * The account the login is for (its name, the document key): signed into the state, so the callback stores the
   * token in that account's document and nowhere else. Default none: the deployment's only document.
   */
  account?: string | undefined;
}

/**
 * The Kite login URL with a fresh signed state in redirect_params; Kite hands it back to the redirect URL. The link
 * works for one login.
 */
export function buildLoginLink(input: LoginLinkInput): string {
  const key = loginStateKey(input.appSecret, input.scope);
  const state = createLoginState(key, input.now ?? new Date(), input.ttlMs, input.account);
  return loginUrl(input.apiKey, { state }, input.loginRoot ?? KITE_LOGIN_ROOT);
}
