import { describe, expect, it } from 'vitest';
import { onDemandInvokersProblem } from '../../deploy/parameter-checks.mjs';

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
