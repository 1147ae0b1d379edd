import { LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reserveLoginCallbackConcurrency } from '../../deploy/parameter-checks.mjs';
import { type LambdaEmulator, startLambdaEmulator } from '../../testing/lambda-server.ts';

let lambdaServer: LambdaEmulator;
let lambda: LambdaClient;

beforeAll(async () => {
  lambdaServer = await startLambdaEmulator();
  lambda = new LambdaClient({
    endpoint: lambdaServer.endpoint,
    region: 'ap-south-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});

afterAll(async () => {
  lambda.destroy();
  await lambdaServer.close();
});

function template() {
  return { Resources: { LoginCallbackLambdaFunction: { Properties: {} as Record<string, unknown> } } };
}

function recorder() {
  const lines: string[] = [];
  return { lines, log: { notice: (t: string) => lines.push(t), warning: (t: string) => lines.push(t) } };
}

describe('loginCallbackConcurrency=auto at deploy', () => {
  it("reserves two executions for the public callback when the account's quota allows it", async () => {
    Object.assign(lambdaServer.account, { ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 1000 });
    const t = template();
    const { lines, log } = recorder();

    const reserved = await reserveLoginCallbackConcurrency({ setting: 'auto', template: t, lambda, log });

    expect(reserved).toBe(2);
    expect(t.Resources.LoginCallbackLambdaFunction.Properties.ReservedConcurrentExecutions).toBe(2);
    expect(lines.join('\n')).toContain('2 reserved concurrent executions');
  });

  it('reserves none in a new account with a quota of 10, and says how to get a reservation', async () => {
    Object.assign(lambdaServer.account, { ConcurrentExecutions: 10, UnreservedConcurrentExecutions: 10 });
    const t = template();
    const { lines, log } = recorder();

    const reserved = await reserveLoginCallbackConcurrency({ setting: 'auto', template: t, lambda, log });

    expect(reserved).toBe(0);
    expect('ReservedConcurrentExecutions' in t.Resources.LoginCallbackLambdaFunction.Properties).toBe(false);
    expect(lines.join('\n')).toMatch(/quota \(10\) leaves none to reserve.*Service Quotas/s);
  });

  it('leaves a number or none to the template, without asking Lambda', async () => {
    const t = template();
    const { log } = recorder();
    const unreachable = { send: () => Promise.reject(new Error('must not be called')) };

    for (const setting of ['2', 'none', ''])
      expect(await reserveLoginCallbackConcurrency({ setting, template: t, lambda: unreachable, log })).toBe(
        0,
      );
    expect(t.Resources.LoginCallbackLambdaFunction.Properties).toEqual({});
  });
});
