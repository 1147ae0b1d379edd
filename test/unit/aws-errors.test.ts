import { describe, expect, it } from 'vitest';
import { lazyClient } from '../../lib/shared/lazy.ts';
import { awsStoreError } from '../../lib/store/aws-errors.ts';

function sdkError(name: string, status: number | undefined, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error('Details from the response body: sk-token-1234'), {
    name,
    ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
    ...extra,
  });
}

describe('awsStoreError', () => {
  it('names the operation, the location and AWS error code, but not the message from the body', () => {
    const error = awsStoreError('PutObject', 's3://bucket/key', sdkError('SlowDown', 503));

    expect(error.message).toBe('PutObject on s3://bucket/key failed: SlowDown (HTTP 503)');
    expect(error.message).not.toContain('sk-token-1234');
    expect(error.retryable).toBe(true);
  });

  it('treats throttling as retryable whatever the status', () => {
    expect(awsStoreError('GetSecretValue', 'x', sdkError('ThrottlingException', 400)).retryable).toBe(true);
    expect(
      awsStoreError('GetObject', 'x', sdkError('Custom', 400, { $retryable: { throttling: true } }))
        .retryable,
    ).toBe(true);
  });

  it('treats access denied and other client errors as not retryable', () => {
    expect(awsStoreError('GetObject', 'x', sdkError('AccessDenied', 403)).retryable).toBe(false);
    expect(awsStoreError('GetSecretValue', 'x', sdkError('ResourceNotFoundException', 400)).retryable).toBe(
      false,
    );
  });

  it('treats a connection that never got an answer as retryable, naming the errno', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });

    const error = awsStoreError('GetObject', 's3://bucket/key', refused);

    expect(error.retryable).toBe(true);
    expect(error.message).toBe('GetObject on s3://bucket/key failed: ECONNREFUSED');
  });

  it('does not retry a local bug that never reached AWS', () => {
    expect(awsStoreError('GetObject', 'x', new TypeError('x is not a function')).retryable).toBe(false);
  });
});

describe('lazyClient', () => {
  it('uses a given client as it is and builds nothing', () => {
    const given = { id: 'given' };
    let built = 0;

    const client = lazyClient({ client: given }, () => ({ id: `built ${++built}` }));

    expect(client()).toBe(given);
    expect(built).toBe(0);
  });

  it('builds the client from its config on first use, once', () => {
    const configs: unknown[] = [];
    const client = lazyClient({ clientConfig: { region: 'ap-south-1' } }, (config) => {
      configs.push(config);
      return { config };
    });
    expect(configs).toEqual([]);

    const first = client();

    expect(client()).toBe(first);
    expect(configs).toEqual([{ region: 'ap-south-1' }]);
  });
});
