// The Kite *app* secret (for checksums), which never lives in broker-config.json. Locally it comes from
// KITE_API_SECRET; in AWS from a Secrets Manager secret of its own (KITE_API_SECRET_ID), read once per cold start.
import { ConfigError } from '../shared/errors.ts';

let cached: { id: string; value: Promise<string> } | undefined;

/** Accepts a plain secret string or a JSON object with an `api_secret` field. */
export function appSecretFromSecretString(secretString: string | undefined, secretId: string): string {
  const text = (secretString ?? '').trim();
  if (!text)
    throw new ConfigError(`secret ${secretId} (KITE_API_SECRET_ID) is empty`, {
      field: 'KITE_API_SECRET_ID',
    });
  if (!text.startsWith('{')) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message quotes the text, which is the secret: keep none of it.
    throw new ConfigError(
      `secret ${secretId} (KITE_API_SECRET_ID) is neither a plain string nor valid JSON`,
      {
        field: 'KITE_API_SECRET_ID',
      },
    );
  }
  const value = (parsed as { api_secret?: unknown }).api_secret;
  if (typeof value !== 'string' || !value) {
    throw new ConfigError(`secret ${secretId} (KITE_API_SECRET_ID) has no "api_secret" string`, {
      field: 'KITE_API_SECRET_ID',
    });
  }
  return value;
}

async function fetchFromSecretsManager(secretId: string): Promise<string> {
  const { getSecretString } = await import('./secret-string.ts');
  return appSecretFromSecretString(await getSecretString(secretId), secretId);
}

/** The app secret, from KITE_API_SECRET or the secret KITE_API_SECRET_ID names. Cached for the process. */
export function loadAppSecret(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.KITE_API_SECRET) return appSecretFrom({ value: env.KITE_API_SECRET });
  if (!env.KITE_API_SECRET_ID) {
    return Promise.reject(
      new ConfigError(
        'set KITE_API_SECRET (the Kite app secret) or KITE_API_SECRET_ID (a secret holding it)',
        {
          field: 'KITE_API_SECRET',
        },
      ),
    );
  }
  return appSecretFrom({ secretId: env.KITE_API_SECRET_ID });
}

/** The app secret as the settings name it (lib/lambda/settings.ts). A secret's value is cached for the process. */
export function appSecretFrom(source: { value: string } | { secretId: string }): Promise<string> {
  if ('value' in source) return Promise.resolve(source.value);
  const id = source.secretId;
  if (cached?.id !== id) {
    const value = fetchFromSecretsManager(id);
    cached = { id, value };
    // A failed read is not cached: the next invocation tries again.
    value.catch(() => {
      if (cached?.value === value) cached = undefined;
    });
  }
  return cached.value;
}
