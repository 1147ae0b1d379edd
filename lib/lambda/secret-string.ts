// One GetSecretValue call, in a module of its own: loaded only when the Kite app secret comes from Secrets Manager,
// and importing just the client and the one command keeps the rest of the Secrets Manager SDK out of the bundle.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { lazy } from '../shared/lazy.ts';

/** Built on first use and kept for the container. The SDK takes its endpoint from AWS_ENDPOINT_URL_SECRETS_MANAGER. */
const defaultClient = lazy(() => new SecretsManagerClient({}));

/** The AWSCURRENT SecretString of a secret. */
export async function getSecretString(
  secretId: string,
  client: SecretsManagerClient = defaultClient(),
): Promise<string | undefined> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  return out.SecretString;
}
