// Types for deploy/accounts.mjs, so TypeScript tests can import it.
export const MAX_LISTED_ACCOUNTS: number;
export const FIRST_SECRET_ID: string;

export interface AccountParameters {
  storeKind?: string;
  configKey?: string;
  configKeys?: string;
  configPrefix?: string;
  configSecretName?: string;
  configSecretNames?: string;
}

export interface Accounts {
  problems: Array<[string, string]>;
  storeKind: string;
  layout: 's3' | 's3Prefix' | 'secretsmanager';
  keys: string[];
  prefix: string;
  secrets: Array<{ logicalId: string; name: string }>;
  secretsListed: boolean;
}

export function readAccounts(parameters: AccountParameters): Accounts;
export function secretLogicalId(name: string, configSecretName: string): string;
export function accountsValue(
  accounts: Accounts,
  address: string,
  options?: { target?: 'stack' | 'emulators'; bucket?: string },
): unknown;
export function addConfigSecrets(
  resources: Record<string, { Properties: Record<string, unknown> }> | undefined,
  secrets: Array<{ logicalId: string; name: string }> | undefined,
): void;
