// broker-config.json as the trading system defines it. In this format `api_secret` holds the
// *access token* (the trading system reads it there); the Kite app secret never lives here.
// Unknown fields are kept, unchanged, on every write.
import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { ConfigError } from '../shared/errors.ts';

/** The Kite Connect API root. The seed config's `https://kite.zerodha.com` is the login site, not the API. */
export const KITE_API_ROOT = 'https://api.kite.trade';
const LOGIN_SITE_HOSTS = new Set(['kite.zerodha.com']);

/** Secrets Manager caps a secret at 64 KiB; every store applies the same bound so a config can move between them. */
export const MAX_CONFIG_BYTES = 64 * 1024;

const nonEmpty = z.string().check(z.minLength(1));

const leaseSchema = z.looseObject({ owner: nonEmpty, until: nonEmpty, since: z.optional(z.string()) });

const configSchema = z.looseObject({
  type: z.literal('kite'),
  api_key: nonEmpty,
  /** The current access token (may be empty before the first login). */
  api_secret: z.string(),
  refresh_token: z.optional(z.string()),
  base_url: z.optional(z.string()),
  rate_limit: z.optional(
    z.looseObject({
      requests_per_second: z.optional(z.number().check(z.positive())),
      burst_size: z.optional(z.number().check(z.positive())),
    }),
  ),
  // Written by this project.
  access_token_expires_at: z.optional(z.string()),
  refreshed_at: z.optional(z.string()),
  user_id: z.optional(z.string()),
  refresh_lease: z.optional(leaseSchema),
});

export type BrokerConfig = z.infer<typeof configSchema>;
export type RefreshLease = z.infer<typeof leaseSchema>;

/** The value at a path of the document, to tell a missing field from one of the wrong type. */
function valueAt(document: unknown, path: PropertyKey[]): unknown {
  let at: unknown = document;
  for (const key of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

function describeIssue(issue: z.core.$ZodIssue, document: unknown): string {
  const field = issue.path.join('.') || '(document)';
  switch (issue.code) {
    case 'invalid_type':
      return valueAt(document, issue.path) === undefined
        ? `missing required field "${field}"`
        : `field "${field}" must be ${issue.expected === 'string' ? 'a string' : `of type ${issue.expected}`}`;
    case 'invalid_value':
      return `field "${field}" must be ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
    case 'too_small':
      return issue.origin === 'string'
        ? `field "${field}" must not be empty`
        : `field "${field}" must be positive`;
    default:
      return `field "${field}" is invalid`;
  }
}

/** Checks a parsed document against the schema. Throws one ConfigError naming the first bad field. */
export function validateConfig(value: unknown, source: string): BrokerConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${source}: broker config must be a JSON object`, { field: '(document)' });
  }
  const result = configSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue ? issue.path.join('.') || '(document)' : '(document)';
    const others = result.error.issues.length - 1;
    const detail = issue ? describeIssue(issue, value) : 'invalid document';
    throw new ConfigError(`${source}: ${detail}${others > 0 ? ` (and ${others} more)` : ''}`, { field });
  }
  if (result.data.base_url !== undefined) apiRootFrom(result.data.base_url, source);
  return result.data;
}

/** Parses and validates broker-config.json text. The error says which field is wrong, never a value. */
export function parseConfig(text: string, source: string): BrokerConfig {
  if (Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) {
    throw new ConfigError(`${source}: broker config is larger than ${MAX_CONFIG_BYTES} bytes`, {
      field: '(document)',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e: unknown) {
    // JSON.parse quotes the offending text, which may be a token: keep only the position.
    const where = e instanceof SyntaxError ? (/position \d+/.exec(e.message)?.[0] ?? '') : '';
    throw new ConfigError(`${source}: broker config is not valid JSON${where ? ` (at ${where})` : ''}`, {
      field: '(document)',
    });
  }
  return validateConfig(value, source);
}

/** Serialises a config for storage: two-space JSON, trailing newline, field order kept. */
export function serializeConfig(config: BrokerConfig): string {
  const text = `${JSON.stringify(config, null, 2)}\n`;
  if (Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) {
    throw new ConfigError(`broker config would be larger than ${MAX_CONFIG_BYTES} bytes`, {
      field: '(document)',
    });
  }
  return text;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

export interface ApiRoot {
  url: string;
  /** True when base_url named the login site and the API root was used instead. */
  substituted: boolean;
}

/**
 * The API root to call for a base_url. Only https, or http to a loopback address (the sandbox), is accepted.
 * The seed example's https://kite.zerodha.com is the login site; it maps to https://api.kite.trade.
 */
export function apiRootFrom(baseUrl: string | undefined, source = 'broker config'): ApiRoot {
  if (baseUrl === undefined || baseUrl === '') return { url: KITE_API_ROOT, substituted: false };
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch (e: unknown) {
    throw new ConfigError(`${source}: field "base_url" is not a URL`, { field: 'base_url', cause: e });
  }
  const allowed = url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname));
  if (!allowed) {
    throw new ConfigError(`${source}: field "base_url" must be https (or http to a loopback address)`, {
      field: 'base_url',
    });
  }
  if (url.username || url.password) {
    throw new ConfigError(`${source}: field "base_url" must not carry credentials`, { field: 'base_url' });
  }
  if (LOGIN_SITE_HOSTS.has(url.hostname)) return { url: KITE_API_ROOT, substituted: true };
  return { url: url.href.replace(/\/+$/, ''), substituted: false };
}

/** A token's SHA-256 (hex): how a token is recognised without keeping it, in memory or in the document. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when the config can renew without a human: it holds a non-empty refresh token. */
export function hasRefreshToken(config: BrokerConfig): boolean {
  return typeof config.refresh_token === 'string' && config.refresh_token.length > 0;
}

/** A renewal of this document once came back with a different refresh token: Kite retires the one it renews with. */
export function refreshTokenRotates(config: BrokerConfig): boolean {
  return (config as Record<string, unknown>).refresh_token_rotates === true;
}

/**
 * Where the stored access token came from: `login` (the daily login, at the callback or `kite-token exchange`) or
 * `renewal` (a refresh token). Kite describes refresh tokens as "for getting long standing read permissions", so a
 * renewed token may only read; placing orders rests on the daily login.
 */
export type TokenSource = 'login' | 'renewal';

/** The document's token_source, if it holds one this project wrote; anything else reads as unknown. */
export function tokenSourceOf(config: BrokerConfig): TokenSource | undefined {
  const source = (config as Record<string, unknown>).token_source;
  return source === 'login' || source === 'renewal' ? source : undefined;
}

/** When a renewal got no answer although Kite may have acted on it (ISO-8601), if the document says so. */
export function unansweredRenewalAt(config: BrokerConfig): string | undefined {
  const at = (config as Record<string, unknown>).unanswered_renewal_at;
  return typeof at === 'string' ? at : undefined;
}
