// One GetSecretValue call, in a module of its own: loaded only when the Kite app secret comes from Secrets Manager,
// and importing just the client and the one command keeps the rest of the Secrets Manager SDK out of the bundle.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

let client: SecretsManagerClient | undefined;

/** The AWSCURRENT SecretString of a secret. The SDK takes its endpoint from AWS_ENDPOINT_URL_SECRETS_MANAGER. */
export async function getSecretString(secretId: string): Promise<string | undefined> {
  client ??= new SecretsManagerClient({});
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  return out.SecretString;
}
