// Which account's document a login writes: the one its signed state names, found through the deployment's accounts,
// or the deployment's one document. A state made for one account can only ever reach that account's store.
import type { BrokerConfig } from '../engine/broker-config.ts';
import { describeError } from '../shared/errors.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { START_AGAIN } from './callback-query.ts';
import { LoginError } from './outcome.ts';

/** What the login needs from a Kite session: KiteClient's session type fits. */
export interface LoginSession {
  userId: string;
  accessToken: string;
  refreshToken: string;
  loginTime?: string | undefined;
}

/** What the login needs from Kite: KiteClient fits. */
export interface SessionExchanger {
  generateSession(requestToken: string): Promise<LoginSession>;
  /** Used to log out a session this config will not keep (another account, no pinned account, a used link). */
  invalidateAccessToken?(accessToken: string): Promise<boolean>;
}

/** One account's document and Kite client, as a login needs them. */
export interface LoginAccount {
  /** The account's name (its document key): what a login link's state names. */
  name: string;
  store: ConfigStore;
  /** A Kite client for the account's config (api_key and base_url come from it): Refresher.kiteFor fits. */
  kite: (config: BrokerConfig) => SessionExchanger;
}

/**
 * Finds the account a login is for, by its exact name. `name` is undefined when the login names none (a link from
 * an earlier release, or an exchange at a terminal without a state): then the deployment's only account, or
 * undefined when it keeps several. Undefined also for a name it does not keep.
 */
export type AccountResolver = (name: string | undefined) => Promise<LoginAccount | undefined>;

/** A deployment with one document: today's deps. */
export interface OneDocument {
  store: ConfigStore;
  /** A Kite client for the config (api_key and base_url come from it): Refresher.kiteFor fits. */
  kite: (config: BrokerConfig) => SessionExchanger;
  resolveAccount?: undefined;
}

/** A deployment with several accounts: each login is written to the account its state names. */
export interface ManyAccounts {
  resolveAccount: AccountResolver;
  store?: undefined;
  kite?: undefined;
}

/** Where one login is written: its store and Kite client, and the account's name when the login named one. */
export interface LoginTarget {
  store: ConfigStore;
  kite: (config: BrokerConfig) => SessionExchanger;
  account: string | undefined;
}

/** How an account is named on a page: printable text, bounded, or a generic phrase. */
export function shownAccountName(name: string): string {
  return /^[\p{L}\p{N} ._:/@+=-]{1,80}$/u.test(name) ? `"${name}"` : 'the account in the link';
}

function unknownAccountError(name: string): LoginError {
  return new LoginError(
    'unknown_account',
    `This login link is for account ${shownAccountName(name)}, which this service does not keep. Nothing was ` +
      `changed. ${START_AGAIN}`,
    { detail: 'the state names an account this deployment does not keep' },
  );
}

function accountRequiredError(): LoginError {
  return new LoginError(
    'account_required',
    'This login names no account, and this service keeps several, so it cannot tell whose token this is. ' +
      `Nothing was changed. Make a link for one account (kite-token login-url --account NAME) and log in again.`,
    { detail: 'no account named and several configured' },
  );
}

function mismatchError(stateAccount: string, given: string): LoginError {
  return new LoginError(
    'bad_state',
    `The login link was made for account ${shownAccountName(stateAccount)}, not ${shownAccountName(given)}. ` +
      `Nothing was changed. ${START_AGAIN}`,
    { detail: 'the state names another account than the one asked for' },
  );
}

/**
 * The account a login writes to. `stateAccount` is what the verified state names; `given` what the person at a
 * terminal asked for (--account). They must agree. One-document deps take only logins that name no account.
 * Throws LoginError; reads no document.
 */
export async function loginTarget(
  deps: OneDocument | ManyAccounts,
  stateAccount: string | undefined,
  given?: string,
): Promise<LoginTarget> {
  if (stateAccount !== undefined && given !== undefined && stateAccount !== given) {
    throw mismatchError(stateAccount, given);
  }
  const name = stateAccount ?? given;
  if (!deps.resolveAccount) {
    if (name !== undefined) throw unknownAccountError(name);
    return { store: deps.store, kite: deps.kite, account: undefined };
  }
  let found: LoginAccount | undefined;
  try {
    found = await deps.resolveAccount(name);
  } catch (e: unknown) {
    if (e instanceof LoginError) throw e;
    throw new LoginError(
      'store_unavailable',
      'The list of accounts could not be read, so nothing was changed. Try again in a minute; if it persists, ' +
        'check the service’s logs.',
      { detail: describeError(e), cause: e },
    );
  }
  // Only the exact account named may take the login: a resolver that also matches user ids must not widen it.
  if (name !== undefined && found && found.name !== name) found = undefined;
  if (!found) throw name === undefined ? accountRequiredError() : unknownAccountError(name);
  return { store: found.store, kite: found.kite, account: name };
}

/** What a login needs of a deployment's accounts: the account registry fits. */
export interface AccountSource {
  /** Every account; `fresh` lists an S3 prefix again, for an account added since the last listing. */
  all(options?: { fresh?: boolean }): Promise<ReadonlyArray<SourceAccount>>;
}

/** One account as a registry holds it: its name and the refresher that owns its store and Kite clients. */
export interface SourceAccount {
  readonly name: string;
  readonly refresher: { store: ConfigStore; kiteFor: (config: BrokerConfig) => SessionExchanger };
}

/**
 * The login's account lookup over a deployment's accounts: by exact name (never a user_id, and without reading any
 * document), or the only one when none is named.
 */
export function accountResolver(source: AccountSource): AccountResolver {
  const toLogin = (account: SourceAccount): LoginAccount => ({
    name: account.name,
    store: account.refresher.store,
    kite: account.refresher.kiteFor,
  });
  return async (name) => {
    if (name === undefined) {
      const all = await source.all();
      return all.length === 1 && all[0] ? toLogin(all[0]) : undefined;
    }
    const found =
      (await source.all()).find((a) => a.name === name) ??
      (await source.all({ fresh: true })).find((a) => a.name === name);
    return found && toLogin(found);
  };
}
