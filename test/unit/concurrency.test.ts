import { describe, expect, it } from 'vitest';
import { settleEach } from '../../lib/accounts/concurrency.ts';

describe('settleEach', () => {
  it('never runs more tasks at once than its limit, and runs every one', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];

    await settleEach([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5 + (item % 3) * 3));
      running--;
      done.push(item);
    });

    expect(most).toBe(3);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('settles every item in order though some fail, and a failure does not stop the rest', async () => {
    const results = await settleEach(['a', 'b', 'c'], 2, async (item) => {
      if (item === 'b') throw new Error('b failed');
      return item.toUpperCase();
    });

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(results[2]).toEqual({ status: 'fulfilled', value: 'C' });
  });
});
