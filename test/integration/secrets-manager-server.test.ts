// The Secrets Manager emulator on its own, through the real SDK client: the behaviour the store relies on must
// match AWS's, or the store's tests prove nothing.
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  InternalServiceError,
  InvalidParameterException,
  InvalidRequestException,
  LimitExceededException,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
  SecretsManagerServiceException,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type SecretsManagerEmulator,
  startSecretsManagerEmulator,
} from '../../testing/secrets-manager-server.ts';

const NAME = 'app/secret';
const TOKEN_A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';

let emulator: SecretsManagerEmulator;
let client: SecretsManagerClient;

beforeAll(async () => {
  emulator = await startSecretsManagerEmulator();
  client = new SecretsManagerClient({ endpoint: emulator.endpoint, region: 'ap-south-1', maxAttempts: 1 });
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.reset();
});

async function failure(promise: Promise<unknown>): Promise<SecretsManagerServiceException> {
  try {
    await promise;
  } catch (e: unknown) {
    if (e instanceof SecretsManagerServiceException) return e;
    throw e;
  }
  throw new Error('expected the request to fail');
}

describe('Secrets Manager emulator', () => {
  it('creates a secret whose first version is AWSCURRENT, with an ARN carrying a six-character suffix', async () => {
    const created = await client.send(new CreateSecretCommand({ Name: NAME, SecretString: 'one' }));

    const got = await client.send(new GetSecretValueCommand({ SecretId: NAME }));

    expect(created.ARN).toMatch(
      /^arn:aws:secretsmanager:ap-south-1:000000000000:secret:app\/secret-[A-Za-z0-9]{6}$/,
    );
    expect(got).toMatchObject({
      SecretString: 'one',
      VersionId: created.VersionId,
      VersionStages: ['AWSCURRENT'],
    });
    expect(got.CreatedDate).toBeInstanceOf(Date);
  });

  it('answers ResourceExistsException when the name is taken', async () => {
    emulator.createSecret(NAME, 'one');

    const error = await failure(client.send(new CreateSecretCommand({ Name: NAME, SecretString: 'two' })));

    expect(error).toBeInstanceOf(ResourceExistsException);
    expect(error.$metadata.httpStatusCode).toBe(400);
  });

  it('finds a secret by full ARN and by ARN without the suffix', async () => {
    const { arn } = emulator.createSecret(NAME, 'one');

    const byArn = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    const byPartial = await client.send(new GetSecretValueCommand({ SecretId: arn.slice(0, -7) }));

    expect(byArn.SecretString).toBe('one');
    expect(byPartial.Name).toBe(NAME);
  });

  it('answers ResourceNotFoundException for a missing secret and for a label no version carries', async () => {
    emulator.createSecret(NAME, 'one');

    const missingSecret = await failure(client.send(new GetSecretValueCommand({ SecretId: 'nope' })));
    const missingLabel = await failure(
      client.send(new GetSecretValueCommand({ SecretId: NAME, VersionStage: 'AWSPENDING' })),
    );

    expect(missingSecret).toBeInstanceOf(ResourceNotFoundException);
    expect(missingLabel).toBeInstanceOf(ResourceNotFoundException);
    expect(missingLabel.message).toBe(
      "Secrets Manager can't find the specified secret value for staging label: AWSPENDING",
    );
  });

  it('returns the same version when PutSecretValue is repeated with the same token and value', async () => {
    emulator.createSecret(NAME, 'one');
    const put = () =>
      client.send(
        new PutSecretValueCommand({ SecretId: NAME, ClientRequestToken: TOKEN_A, SecretString: 'two' }),
      );

    const first = await put();
    const second = await put();

    expect(first.VersionId).toBe(TOKEN_A);
    expect(second.VersionId).toBe(TOKEN_A);
    expect(Object.keys(emulator.labels(NAME))).toHaveLength(2);
  });

  it('refuses a different value under a token already used', async () => {
    emulator.createSecret(NAME, 'one');
    await client.send(
      new PutSecretValueCommand({ SecretId: NAME, ClientRequestToken: TOKEN_A, SecretString: 'two' }),
    );

    const error = await failure(
      client.send(
        new PutSecretValueCommand({ SecretId: NAME, ClientRequestToken: TOKEN_A, SecretString: 'three' }),
      ),
    );

    expect(error).toBeInstanceOf(ResourceExistsException);
    expect(emulator.currentValue(NAME)).toBe('two');
  });

  it('makes a new value current and the old one previous when no stages are given', async () => {
    const { versionId: first } = emulator.createSecret(NAME, 'one');

    const put = await client.send(new PutSecretValueCommand({ SecretId: NAME, SecretString: 'two' }));

    expect(emulator.labels(NAME)).toEqual({
      [first]: ['AWSPREVIOUS'],
      [put.VersionId as string]: ['AWSCURRENT'],
    });
  });

  it('attaches only the given stages and leaves AWSCURRENT where it was', async () => {
    const { versionId: first } = emulator.createSecret(NAME, 'one');

    const put = await client.send(
      new PutSecretValueCommand({ SecretId: NAME, SecretString: 'two', VersionStages: ['MINE'] }),
    );

    expect(put.VersionStages).toEqual(['MINE']);
    expect(emulator.currentValue(NAME)).toBe('one');
    expect(emulator.labels(NAME)[first]).toEqual(['AWSCURRENT']);
  });

  it('makes the first version of an empty secret current even when other stages are given', async () => {
    await client.send(new CreateSecretCommand({ Name: NAME }));

    const put = await client.send(
      new PutSecretValueCommand({ SecretId: NAME, SecretString: 'one', VersionStages: ['MINE'] }),
    );

    expect(put.VersionStages?.sort()).toEqual(['AWSCURRENT', 'MINE']);
  });

  it('moves AWSCURRENT only from the version named in RemoveFromVersionId, and AWSPREVIOUS with it', async () => {
    const { versionId: first } = emulator.createSecret(NAME, 'one');
    const staged = await client.send(
      new PutSecretValueCommand({ SecretId: NAME, SecretString: 'two', VersionStages: ['MINE'] }),
    );
    const second = staged.VersionId as string;

    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: NAME,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: second,
        RemoveFromVersionId: first,
      }),
    );

    expect(emulator.labels(NAME)).toEqual({ [first]: ['AWSPREVIOUS'], [second]: ['MINE', 'AWSCURRENT'] });
  });

  it('answers InvalidParameterException when RemoveFromVersionId is not the version holding the label', async () => {
    const { versionId: first } = emulator.createSecret(NAME, 'one');
    const b = await client.send(
      new PutSecretValueCommand({ SecretId: NAME, SecretString: 'b', VersionStages: ['B'] }),
    );
    const c = await client.send(
      new PutSecretValueCommand({ SecretId: NAME, SecretString: 'c', VersionStages: ['C'] }),
    );

    const error = await failure(
      client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: NAME,
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: c.VersionId,
          RemoveFromVersionId: b.VersionId,
        }),
      ),
    );

    expect(error).toBeInstanceOf(InvalidParameterException);
    expect(error.$metadata.httpStatusCode).toBe(400);
    expect(emulator.labels(NAME)[first]).toEqual(['AWSCURRENT']);
  });

  it('answers InvalidParameterException when RemoveFromVersionId is missing for an attached label', async () => {
    emulator.createSecret(NAME, 'one');
    const b = await client.send(
      new PutSecretValueCommand({ SecretId: NAME, SecretString: 'b', VersionStages: ['B'] }),
    );

    const error = await failure(
      client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: NAME,
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: b.VersionId,
        }),
      ),
    );

    expect(error).toBeInstanceOf(InvalidParameterException);
    expect(error.message).toMatch(/^The parameter RemoveFromVersionId can't be empty\./);
  });

  it('deprecates a version whose last label is removed, hiding it from DescribeSecret', async () => {
    emulator.createSecret(NAME, 'one');
    const b = await client.send(
      new PutSecretValueCommand({ SecretId: NAME, SecretString: 'b', VersionStages: ['B'] }),
    );

    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: NAME,
        VersionStage: 'B',
        RemoveFromVersionId: b.VersionId,
      }),
    );

    const described = await client.send(new DescribeSecretCommand({ SecretId: NAME }));
    const listed = await client.send(
      new ListSecretVersionIdsCommand({ SecretId: NAME, IncludeDeprecated: true }),
    );
    expect(Object.keys(described.VersionIdsToStages ?? {})).not.toContain(b.VersionId);
    expect(listed.Versions?.find((v) => v.VersionId === b.VersionId)?.VersionStages).toEqual([]);
  });

  it('refuses more than 20 staging labels across the versions of a secret', async () => {
    emulator.createSecret(NAME, 'one');
    for (let i = 0; i < 19; i++) {
      await client.send(
        new PutSecretValueCommand({ SecretId: NAME, SecretString: `${i}`, VersionStages: [`L${i}`] }),
      );
    }

    const error = await failure(
      client.send(
        new PutSecretValueCommand({ SecretId: NAME, SecretString: 'x', VersionStages: ['ONE_TOO_MANY'] }),
      ),
    );

    expect(error).toBeInstanceOf(LimitExceededException);
    expect(Object.keys(emulator.labels(NAME))).toHaveLength(20);
  });

  it('refuses a SecretString larger than 65,536 bytes', async () => {
    emulator.createSecret(NAME, 'one');

    const error = await failure(
      client.send(new PutSecretValueCommand({ SecretId: NAME, SecretString: 'é'.repeat(32_769) })),
    );

    expect(error.name).toBe('ValidationException');
    expect(error.$metadata.httpStatusCode).toBe(400);
  });

  it('refuses reads of a secret scheduled for deletion', async () => {
    emulator.createSecret(NAME, 'one');
    await client.send(new DeleteSecretCommand({ SecretId: NAME, RecoveryWindowInDays: 7 }));

    const error = await failure(client.send(new GetSecretValueCommand({ SecretId: NAME })));

    expect(error).toBeInstanceOf(InvalidRequestException);
  });

  it('answers injected faults with the given type and status, then recovers', async () => {
    emulator.createSecret(NAME, 'one');
    emulator.injectFault({
      operation: 'GetSecretValue',
      times: 1,
      status: 500,
      type: 'InternalServiceError',
    });

    const error = await failure(client.send(new GetSecretValueCommand({ SecretId: NAME })));
    const got = await client.send(new GetSecretValueCommand({ SecretId: NAME }));

    expect(error).toBeInstanceOf(InternalServiceError);
    expect(error.$fault).toBe('server');
    expect(got.SecretString).toBe('one');
    expect(emulator.requests).toEqual([
      { operation: 'GetSecretValue', status: 500 },
      { operation: 'GetSecretValue', status: 200 },
    ]);
  });

  it('refuses a request without an Authorization header', async () => {
    emulator.createSecret(NAME, 'one');

    const response = await fetch(emulator.endpoint, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': 'secretsmanager.GetSecretValue',
      },
      body: JSON.stringify({ SecretId: NAME }),
    });

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      __type: 'MissingAuthenticationTokenException',
      message: 'Request is missing Authentication Token',
    });
  });
});
