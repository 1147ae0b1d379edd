// The one interface every place broker-config.json can live in implements. The refresh engine knows only this.
import type { BrokerConfig, TokenSource } from '../engine/broker-config.ts';
import { StoreError } from '../shared/errors.ts';

export interface StoredConfig {
  config: BrokerConfig;
  /** Opaque version for compare-and-swap: an hash of the bytes for files, the ETag for S3, the VersionId for Secrets Manager. */
  version: string;
}

/** Tokens Kite issued that could not be written to the document; kept so the next run can store them. */
export interface KeptTokens {
  access_token: string;
  refresh_token?: string | undefined;
  user_id?: string | undefined;
  /** ISO-8601 with +05:30. */
  access_token_expires_at: string;
  /** ISO-8601 instant Kite issued the token. */
  issued_at: string;
  /** How Kite issued them: a login or a renewal. Copies kept before this was recorded lack it. */
  token_source?: TokenSource | undefined;
  /** The run that renewed (its lease owner) and its process, on a local copy kept while that run is still writing. */
  kept_by?: { owner: string; pid: number } | undefined;
}

/** Rescued tokens come back from disk or a store: check their shape before they go near the document. */
export function isKeptTokens(value: unknown): value is KeptTokens {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  const optionalString = (x: unknown) => x === undefined || typeof x === 'string';
  return (
    typeof v.access_token === 'string' &&
    typeof v.access_token_expires_at === 'string' &&
    typeof v.issued_at === 'string' &&
    optionalString(v.refresh_token) &&
    optionalString(v.user_id)
  );
}

/** Rescued tokens as a store holds them (JSON text); `source` names where, for the error. Throws StoreError. */
export function parseKeptTokens(text: string, source: string): KeptTokens {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes the text, which holds tokens: keep none of it.
    throw new StoreError(`${source} is not valid JSON`, { retryable: false });
  }
  if (!isKeptTokens(value))
    throw new StoreError(`${source} does not hold rescued tokens`, { retryable: false });
  return value;
}

export interface ConfigStore {
  /** Where the document lives, for logs and errors (never a secret). e.g. "s3://bucket/key". */
  readonly location: string;

  /** Reads and validates the document. Throws NotFoundError, ConfigError (malformed) or StoreError. */
  read(): Promise<StoredConfig>;

  /**
   * Writes the document if it still has `expectedVersion` (null: only if it does not exist yet).
   * Returns the new version. Throws ConflictError when the document changed meanwhile; StoreError otherwise.
   */
  write(config: BrokerConfig, expectedVersion: string | null): Promise<string>;

  /** Keeps tokens a failed final write would otherwise lose, beside the document. Best effort; throws StoreError. */
  saveRescue(tokens: KeptTokens): Promise<void>;
  /** The rescued tokens, or null when there are none. */
  loadRescue(): Promise<KeptTokens | null>;
  /** Removes rescued tokens once they are stored in the document. */
  clearRescue(): Promise<void>;
}
