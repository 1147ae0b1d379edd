// verifyStoredToken: Kite's verdict on the stored token, for the CLI now and the scheduled tick later.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyStoredToken } from '../../lib/engine/verify.ts';
import { FileStore } from '../../lib/store/file-store.ts';
import { type SandboxFixture, seedConfig, startSandbox, writeTempConfig } from '../support/fixtures.ts';

let fx: SandboxFixture;

beforeEach(async () => {
  fx = await startSandbox();
});

afterEach(async () => {
  await fx.sandbox.close();
});

/** A document holding a token issued now, and the check of it; `meanwhile` runs in between (a flush, a failure). */
async function verifyFresh(meanwhile: () => void = () => {}) {
  const store = new FileStore({ path: await writeTempConfig(seedConfig(fx.sandbox, 'fresh')) });
  meanwhile();
  return verifyStoredToken({ store, kiteFor: () => fx.kite });
}

describe('verifyStoredToken', () => {
  it('is valid, with the user id, when Kite accepts the token', async () => {
    expect(await verifyFresh()).toEqual({ verdict: 'valid', userId: fx.sandbox.userId });
  });

  it('is dead when Kite answers 403 TokenException, though the stored expiry is hours away', async () => {
    const verdict = await verifyFresh(() => fx.sandbox.flushAll());

    expect(verdict).toMatchObject({
      verdict: 'dead',
      reason: expect.stringMatching(/^Kite rejected/),
    });
  });

  it('is unknown, not dead, when Kite answers 429 on every retry', async () => {
    fx.sandbox.failNext({ endpoint: 'GET /user/profile', times: 50, status: 429 });

    expect(await verifyFresh()).toMatchObject({ verdict: 'unknown', error: expect.stringContaining('429') });
  });

  it('is unknown, not dead, when Kite answers 403 with another error type', async () => {
    fx.sandbox.failNext({
      endpoint: 'GET /user/profile',
      times: 1,
      status: 403,
      errorType: 'PermissionException',
    });

    expect(await verifyFresh()).toMatchObject({ verdict: 'unknown' });
  });
});
