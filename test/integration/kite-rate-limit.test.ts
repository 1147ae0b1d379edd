// Kite's limit of 10 requests a second per API key, held across every client (every account) that shares the key,
// measured where Kite would measure it: at the sandbox.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KiteClient } from '../../lib/kite/client.ts';
import { RateLimiter } from '../../lib/kite/rate-limit.ts';
import { type KiteSandbox, startKiteSandbox } from '../../testing/kite-sandbox.ts';

const API_SECRET = 'app-secret-rate-limit';
let shared: KiteSandbox;
let other: KiteSandbox;

beforeEach(async () => {
  shared = await startKiteSandbox({ apiKey: 'family_app', apiSecret: API_SECRET });
  other = await startKiteSandbox({ apiKey: 'strategy_app', apiSecret: API_SECRET });
});

afterEach(async () => {
  await Promise.all([shared.close(), other.close()]);
});

const clientFor = (sandbox: KiteSandbox) =>
  new KiteClient({ apiKey: sandbox.apiKey, apiSecret: API_SECRET, baseUrl: sandbox.url, timeoutMs: 5_000 });

/** The most requests that arrived within any `windowMs`. */
function busiestWindow(arrivals: { at: number }[], windowMs: number): number {
  let most = 0;
  for (let i = 0; i < arrivals.length; i++) {
    const start = arrivals[i]?.at ?? 0;
    most = Math.max(most, arrivals.filter((a) => a.at >= start && a.at < start + windowMs).length);
  }
  return most;
}

describe('the per-key Kite rate limit', () => {
  it('lets at most 10 renewals a second reach Kite across every account that shares an API key', async () => {
    const sessions = Array.from({ length: 25 }, () => shared.mintSession());
    const started = performance.now();

    // One client per account, as each account's refresher would have; they share only the key.
    const renewed = await Promise.all(
      sessions.map((s) => clientFor(shared).renewAccessToken(s.refreshToken)),
    );

    expect(renewed).toHaveLength(25);
    expect(shared.calls['POST /session/refresh_token']).toBe(25);
    expect(busiestWindow(shared.arrivals, 1_000)).toBeLessThanOrEqual(10);
    // 25 requests, 10 per window: the 21st cannot start before two windows have passed.
    expect(performance.now() - started).toBeGreaterThanOrEqual(2_000);
  });

  it('does not slow one API key down for another key’s traffic', async () => {
    const busy = Array.from({ length: 20 }, () => shared.mintSession());
    const mine = other.mintSession();
    const busyRun = Promise.all(busy.map((s) => clientFor(shared).renewAccessToken(s.refreshToken)));

    const started = performance.now();
    await clientFor(other).renewAccessToken(mine.refreshToken);

    expect(performance.now() - started).toBeLessThan(500);
    await busyRun;
  });
});

describe('RateLimiter', () => {
  it('holds a slot while its request runs, so a slow request still counts against the next window', async () => {
    const limiter = new RateLimiter({ limit: 1, windowMs: 40 });
    const first = await limiter.take();
    let second = false;
    const next = limiter.take().then((done) => {
      second = true;
      done();
    });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(second).toBe(false);
    const released = performance.now();
    first();
    await next;
    expect(performance.now() - released).toBeGreaterThanOrEqual(35);
  });

  it('starts requests in the order they asked', async () => {
    const limiter = new RateLimiter({ limit: 2, windowMs: 50 });
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4].map(async (n) => {
        const finished = await limiter.take();
        order.push(n);
        finished();
      }),
    );
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });
});
