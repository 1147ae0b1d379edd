// The accounts a kite-token command works on: those --config (or BROKER_CONFIG_URI) names, and the one --account
// picks. A single document is one account, and the commands behave exactly as they did before accounts.
import { type Account, type AccountRegistry, createAccountRegistry } from '../accounts/registry.ts';
import { InputError, NotFoundError } from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';

export function configLocation(flag: string | undefined): string {
  return flag ?? process.env.BROKER_CONFIG_URI ?? './broker-config.json';
}

/**
 * The accounts at --config: one document, a comma-separated list, or an S3 prefix ending in "/". `appSecret` may be
 * empty for commands that only read documents (status): no Kite client is made until one is asked for.
 */
export function openAccounts(flag: string | undefined, appSecret: string, log: Log): AccountRegistry {
  return createAccountRegistry({ uri: configLocation(flag), setting: '--config', appSecret, log });
}

/** The account a command acts on, and whether its login link must name it (the location holds several). */
export interface PickedAccount {
  account: Account;
  named: boolean;
}

/**
 * The account --account names (its name or user_id), or the only one. A location with several accounts needs
 * --account; a link for an account of such a location always names it.
 */
export async function pickAccount(
  accounts: AccountRegistry,
  flag: string | undefined,
): Promise<PickedAccount> {
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
