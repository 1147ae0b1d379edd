// The accounts a kite-token command works on: those --config (or BROKER_CONFIG_URI) names, and the one --account
// picks. A single document is one account, and the commands behave exactly as they did before accounts.
import { basename } from 'node:path';
import { createRefresher, type Refresher } from '../engine/refresher.ts';
import type { AccountSource } from '../login/login-account.ts';
import { InputError, NotFoundError } from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';
import { openStore } from '../store/open-store.ts';

/** One account: its name (the document key's last segment) and the refresher that owns its store. */
export interface CliAccount {
  readonly name: string;
  readonly refresher: Refresher;
}

/** The accounts of a location: the account registry fits. */
export interface CliAccounts extends AccountSource {
  /** The location names one document: output and links are exactly as before accounts. */
  readonly single: boolean;
  all(): Promise<CliAccount[]>;
  find(nameOrUserId: string): Promise<CliAccount | undefined>;
}

export function configLocation(flag: string | undefined): string {
  return flag ?? process.env.BROKER_CONFIG_URI ?? './broker-config.json';
}

/** "accounts/alice.json" → "alice". */
function nameOf(location: string): string {
  const last = basename(location.replace(/^[a-z]+:\/\/[^/]*\/?/i, '') || location);
  return last.replace(/\.json$/i, '') || last;
}

/**
 * The accounts at --config. `appSecret` may be empty for commands that only read documents (status): no Kite
 * client is made until one is asked for.
 */
export async function openAccounts(
  flag: string | undefined,
  appSecret: string,
  log: Log,
): Promise<CliAccounts> {
  const location = configLocation(flag);
  const store = await openStore(location, '--config');
  const refresher = await createRefresher({ configUri: location, store, appSecret, log });
  const account: CliAccount = { name: nameOf(location), refresher };
  return {
    single: true,
    all: async () => [account],
    find: async (nameOrUserId) => {
      if (nameOrUserId === account.name) return account;
      const { config } = await refresher.store.read();
      return config.user_id === nameOrUserId ? account : undefined;
    },
  };
}

/** The account a command acts on, and whether its login link must name it (the location holds several). */
export interface PickedAccount {
  account: CliAccount;
  named: boolean;
}

/**
 * The account --account names (its name or user_id), or the only one. A location with several accounts needs
 * --account; a link for an account of such a location always names it.
 */
export async function pickAccount(accounts: CliAccounts, flag: string | undefined): Promise<PickedAccount> {
  if (flag !== undefined) {
    const found = await accounts.find(flag);
    if (!found) {
      const names = (await accounts.all()).map((a) => a.name).join(', ');
      throw new NotFoundError(`no account "${flag}" at this --config (accounts: ${names})`);
    }
    return { account: found, named: true };
  }
  const all = await accounts.all();
  const [only] = all;
  if (all.length === 1 && only) return { account: only, named: !accounts.single };
  throw new InputError(
    all.length === 0
      ? 'no account documents at this --config'
      : `this --config holds ${all.length} accounts: pass --account NAME (one of ${all.map((a) => a.name).join(', ')})`,
  );
}
