// Where the accounts' documents are: one document (as always), a comma-separated list of documents in any store,
// or an S3 prefix ending in "/" whose *.json objects are the accounts. Each account is named after its document key.
import { ConfigError } from '../shared/errors.ts';
import { parseStoreLocation, type StoreLocation } from '../store/open-store.ts';

/** One account's document: its name (from the document key), its location string and the parsed location. */
export interface AccountDocument {
  name: string;
  uri: string;
  location: StoreLocation;
}

export type AccountsLocation =
  /** One document, exactly as before accounts existed. */
  | { kind: 'single'; document: AccountDocument }
  /** Documents named one by one, any mix of stores. */
  | { kind: 'list'; documents: AccountDocument[] }
  /** Every *.json object directly under the prefix (not the *.rescue.json slots, not nested keys). */
  | { kind: 's3-prefix'; bucket: string; prefix: string; uri: string };

/** A rescue slot sits next to its document as "<key>.rescue.json": never an account. */
export const RESCUE_SUFFIX = '.rescue.json';

/** The last segment of a document key, without ".json": "accounts/alice.json" → "alice", "kite/bob" → "bob". */
export function accountNameOf(key: string): string {
  const withoutArn = key.replace(/^arn:[^:]*:secretsmanager:[^:]*:[^:]*:secret:/, '');
  const last = withoutArn.split(/[/\\]/).filter(Boolean).pop() ?? '';
  return last.replace(/\.json$/i, '') || last;
}

function documentKey(location: StoreLocation): string {
  switch (location.kind) {
    case 'file':
      return location.path;
    case 's3':
      return location.key;
    case 'secretsmanager':
      return location.secretId;
  }
}

/** One document of an account set; `uri` is kept as written, so a single document opens exactly as before. */
export function accountDocument(uri: string, setting: string): AccountDocument {
  const location = parseStoreLocation(uri, setting);
  const name = accountNameOf(documentKey(location));
  if (!name)
    throw new ConfigError(`${setting}: cannot name an account after ${uri.trim()}`, { field: setting });
  return { name, uri: uri.trim(), location };
}

/** Refuses two documents with the same account name: the name is how callers, links and metrics pick one. */
export function checkUniqueNames(documents: readonly AccountDocument[], setting: string): void {
  const seen = new Map<string, string>();
  for (const doc of documents) {
    const other = seen.get(doc.name);
    if (other !== undefined) {
      throw new ConfigError(
        `${setting}: ${other} and ${doc.uri} would both be account "${doc.name}"; ` +
          'give each document its own file, object or secret name',
        { field: setting },
      );
    }
    seen.set(doc.name, doc.uri);
  }
}

function parsePrefix(value: string, setting: string): AccountsLocation {
  const rest = value.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash > 0 ? rest.slice(0, slash) : rest.replace(/\/$/, '');
  const prefix = slash > 0 ? rest.slice(slash + 1) : '';
  if (!bucket) throw new ConfigError(`${setting} must look like s3://bucket/prefix/`, { field: setting });
  return { kind: 's3-prefix', bucket, prefix, uri: value };
}

/**
 * Parses BROKER_CONFIG_URI (or the CLI's --config). Throws ConfigError naming `setting` for anything it cannot use,
 * including two documents that would get the same account name.
 */
export function parseAccountsLocation(uri: string, setting = 'BROKER_CONFIG_URI'): AccountsLocation {
  const value = uri.trim();
  if (!value) throw new ConfigError(`${setting} is empty`, { field: setting });
  if (value.includes(',')) {
    const parts = value.split(',').map((part) => part.trim());
    if (parts.some((part) => !part)) {
      throw new ConfigError(`${setting} has an empty entry in its list of documents`, { field: setting });
    }
    if (parts.some((part) => part.startsWith('s3://') && part.endsWith('/'))) {
      throw new ConfigError(`${setting}: an S3 prefix cannot be part of a list; name its documents instead`, {
        field: setting,
      });
    }
    const documents = parts.map((part) => accountDocument(part, setting));
    checkUniqueNames(documents, setting);
    return { kind: 'list', documents };
  }
  if (value.startsWith('s3://') && value.endsWith('/')) return parsePrefix(value, setting);
  return { kind: 'single', document: accountDocument(value, setting) };
}
