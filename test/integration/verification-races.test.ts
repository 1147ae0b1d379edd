// What a tick's question to Kite does when the world moves while it is asked: a login that lands meanwhile (and so
// kills the token being asked about), and two ticks that run the ready check at the same moment. Against the Kite
// sandbox, with the accounts' documents in files.
import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAccountRegistry } from '../../lib/accounts/registry.ts';
import { NO_METRICS, tickAccounts } from '../../lib/accounts/tick.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { toIsoIst } from '../../lib/engine/expiry.ts';
import { parseTradingCalendar } from '../../lib/engine/trading-calendar.ts';
import type { Notice } from '../../lib/notify/notice.ts';
import {
  captureLog,
  type SandboxFixture,
  seedConfig,
  startSandbox,
  writeTempConfig,
} from '../support/fixtures.ts';

const APP_SECRET = 'races-app-secret';
const USER = 'BO0002';
const at = (hhmm: string) => new Date(`2026-03-03T${hhmm}:00+05:30`);
let fx: SandboxFixture;
let path: string;

const stored = async (): Promise<BrokerConfig> => JSON.parse(await readFile(path, 'utf8'));

function tick(now: Date, notices: Notice[], reminded: string[][]) {
  const accounts = createAccountRegistry({ uri: path, appSecret: APP_SECRET, log: captureLog() });
  return tickAccounts({
    accounts,
    log: captureLog(),
    metrics: NO_METRICS,
    concurrency: 1,
    now: () => now,
    verification: { calendar: parseTradingCalendar(undefined, undefined), readyCheckIst: '09:01' },
    notify: async (notice) => {
      notices.push(notice);
    },
    notifyReady: true,
    remind: async (needs) => {
      reminded.push(needs.map((n) => n.reason));
      return new Map();
    },
  });
}

beforeEach(async () => {
  vi.setSystemTime(at('08:30'));
  fx = await startSandbox({ apiSecret: APP_SECRET, userId: USER });
  path = await writeTempConfig(seedConfig(fx.sandbox, 'fresh', { user_id: USER, refresh_token: '' }));
});

afterEach(async () => {
  vi.useRealTimers();
  await fx.sandbox.close();
});

describe('a tick asking Kite while the token changes', () => {
  it('takes a login that lands while Kite is asked as the new token, not as a dead one: no reminder, and ready', async () => {
    const before = await stored();
    fx.sandbox.setLatency(150);
    const notices: Notice[] = [];
    const reminded: string[][] = [];
    vi.setSystemTime(at('09:01'));

    const ticking = tick(at('09:01'), notices, reminded);
    // The human's login lands while Kite is being asked about the old token: Kite keeps one token per app.
    await new Promise((resolve) => setTimeout(resolve, 50));
    fx.sandbox.revokeAccessToken(before.api_secret);
    const session = fx.sandbox.mintSession();
    await writeFile(
      path,
      JSON.stringify({
        ...before,
        api_secret: session.accessToken,
        access_token_expires_at: toIsoIst(session.expiresAt),
        token_source: 'login',
      }),
      { mode: 0o600 },
    );
    const result = await ticking;

    expect(result.accounts[0]).toMatchObject({ verified: 'valid', ready: true });
    expect(reminded).toEqual([]);
    expect(notices.map((n) => n.event)).toEqual(['ready']);
    expect(fx.sandbox.calls['GET /user/profile']).toBe(2);
    expect(await stored()).toMatchObject({ api_secret: session.accessToken, verified: true });
  });

  it('runs the ready check once when two ticks run it at the same moment', async () => {
    vi.setSystemTime(at('09:01'));
    fx.sandbox.setLatency(50);
    const notices: Notice[] = [];

    const results = await Promise.all([tick(at('09:01'), notices, []), tick(at('09:01'), notices, [])]);

    const checks = results.flatMap((r) => r.accounts).filter((a) => a.ready !== undefined);
    expect(checks).toHaveLength(1);
    expect(notices.map((n) => n.event)).toEqual(['ready']);
    expect((await stored()).ready_checked_on).toBe('2026-03-03');
  });

  it('counts a token of another Kite user than the document names as not accepted', async () => {
    const other = await startSandbox({ apiSecret: APP_SECRET, userId: 'ZZ9999' });
    try {
      const session = other.sandbox.mintSession();
      await writeFile(
        path,
        JSON.stringify({
          ...(await stored()),
          base_url: other.sandbox.url,
          api_secret: session.accessToken,
          access_token_expires_at: toIsoIst(session.expiresAt),
        }),
        { mode: 0o600 },
      );
      const reminded: string[][] = [];

      const result = await tick(at('11:01'), [], reminded);

      expect(result.accounts[0]).toMatchObject({ verified: 'dead', status: 'login_required' });
      expect(reminded).toEqual([['access_token_rejected']]);
    } finally {
      await other.sandbox.close();
    }
  });
});
