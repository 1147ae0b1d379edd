import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, resolveRetryPolicy, retryDelay } from '../../lib/kite/retry.ts';

describe('retryDelay', () => {
  const policy = resolveRetryPolicy();

  it('draws full jitter below a ceiling that doubles from baseDelayMs per retry', () => {
    expect(retryDelay(1, policy, () => 0.5)).toBe(DEFAULT_RETRY_POLICY.baseDelayMs / 2);
    expect(retryDelay(3, policy, () => 0.5)).toBe(DEFAULT_RETRY_POLICY.baseDelayMs * 2);
    expect(retryDelay(3, policy, () => 0)).toBe(0);
  });

  it('never exceeds maxDelayMs', () => {
    expect(retryDelay(20, policy, () => 0.999_999)).toBeLessThan(DEFAULT_RETRY_POLICY.maxDelayMs);
    expect(retryDelay(20, resolveRetryPolicy({ maxDelayMs: 300 }), () => 0.5)).toBe(150);
  });
});
