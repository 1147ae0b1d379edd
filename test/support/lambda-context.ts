// The Lambda context a handler gets, for tests that call the middy-wrapped handlers directly.
import type { Context } from 'aws-lambda';

export function lambdaContextFor(name: string, remainingMs = 60_000): Context {
  return {
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:ap-south-1:000000000000:function:${name}`,
    memoryLimitInMB: '256',
    awsRequestId: `req-${Math.random()}`,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'test',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => remainingMs,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
