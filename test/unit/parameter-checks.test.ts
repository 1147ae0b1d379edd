import { describe, expect, it } from 'vitest';
import {
  concurrencyProblem,
  onDemandInvokersProblem,
  reservableConcurrency,
} from '../../deploy/parameter-checks.mjs';

describe('onDemandInvokersProblem', () => {
  it('accepts nothing at all, account ids, and IAM role, user and root ARNs', () => {
    expect(onDemandInvokersProblem('')).toBeUndefined();
    expect(
      onDemandInvokersProblem(
        '123456789012,arn:aws:iam::123456789012:role/trading/strategy-a,arn:aws:iam::210987654321:user/ops,' +
          'arn:aws-cn:iam::123456789012:root',
      ),
    ).toBeUndefined();
  });

  it.each([
    ['a service principal', 's3.amazonaws.com'],
    ['everyone', '*'],
    ['an account id of the wrong length', '12345'],
    ['a Lambda function ARN', 'arn:aws:lambda:ap-south-1:123456789012:function:trader'],
    ['an assumed-role session', 'arn:aws:sts::123456789012:assumed-role/trader/session'],
  ])('refuses %s, naming it', (_, entry) => {
    expect(onDemandInvokersProblem(`123456789012,${entry}`)).toContain(JSON.stringify(entry));
  });

  it('refuses more than five principals', () => {
    expect(onDemandInvokersProblem(Array(6).fill('123456789012').join(','))).toBe(
      'lists 6 principals; at most 5',
    );
  });
});

describe('concurrencyProblem', () => {
  it('accepts auto, none, nothing and a whole number of executions', () => {
    for (const value of ['auto', 'none', '', '2', '10'])
      expect(concurrencyProblem(value), value).toBeUndefined();
  });

  it('refuses anything else', () => {
    for (const value of ['0', '-1', '2.5', 'two', 'AUTO'])
      expect(concurrencyProblem(value), value).toBeDefined();
  });
});

describe('reservableConcurrency', () => {
  it('reserves two when Lambda keeps its 100 unreserved executions after it', () => {
    expect(reservableConcurrency({ ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 1000 })).toBe(
      2,
    );
    expect(reservableConcurrency({ ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 102 })).toBe(
      2,
    );
  });

  it('reserves nothing when the quota leaves no room: a new account of 10, or a pool already at its floor', () => {
    expect(reservableConcurrency({ ConcurrentExecutions: 10, UnreservedConcurrentExecutions: 10 })).toBe(0);
    expect(reservableConcurrency({ ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 101 })).toBe(
      0,
    );
    expect(reservableConcurrency(undefined)).toBe(0);
  });
});
