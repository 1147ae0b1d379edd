import { describe, expect, it } from 'vitest';
import { readyNotice } from '../../lib/accounts/ready-check.ts';
import type { TokenStatus } from '../../lib/engine/status.ts';
import { LoginError } from '../../lib/login/outcome.ts';
import { refusedPage } from '../../lib/login/pages.ts';
import { loginNotice, reminderMessage } from '../../lib/login/reminders.ts';
import { createLoginState, loginStateKey, retryableLoginState } from '../../lib/login/state.ts';
import {
  buildStatusLink,
  createStatusToken,
  STATUS_LINK_TTL_MS,
  statusLinkKey,
  verifyStatusToken,
} from '../../lib/login/status-link.ts';
import { renderStatusPage, statusForbiddenPage } from '../../lib/login/status-page.ts';

const SECRET = 'app-secret-for-tests';
const NOW = new Date('2026-03-02T08:30:00+05:30');

describe('status tokens', () => {
  it('verify for twelve hours by default, then expire', () => {
    const key = statusLinkKey(SECRET, 'prod');
    const token = createStatusToken(key, NOW);

    expect(token).toMatch(/^s1\.\d+\.[A-Za-z0-9_-]{43}$/);
    expect(verifyStatusToken(key, token, NOW)).toEqual({
      ok: true,
      expiresAt: new Date(NOW.getTime() + STATUS_LINK_TTL_MS),
    });
    expect(verifyStatusToken(key, token, new Date(NOW.getTime() + STATUS_LINK_TTL_MS))).toEqual({
      ok: false,
      reason: 'expired',
    });
  });

  it('are refused when missing, malformed, tampered, or signed for another stage or app secret', () => {
    const key = statusLinkKey(SECRET, 'prod');
    const token = createStatusToken(key, NOW);
    const [v, exp, mac] = token.split('.');

    expect(verifyStatusToken(key, undefined, NOW)).toEqual({ ok: false, reason: 'missing' });
    expect(verifyStatusToken(key, `${token}x`, NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyStatusToken(key, `${v}.${Number(exp) + 1}.${mac}`, NOW)).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
    expect(verifyStatusToken(statusLinkKey(SECRET, 'dev'), token, NOW).ok).toBe(false);
    expect(verifyStatusToken(statusLinkKey(SECRET), token, NOW).ok).toBe(false);
    expect(verifyStatusToken(statusLinkKey('other'), token, NOW).ok).toBe(false);
  });

  it('use a key distinct from the login-state key, so neither verifies as the other', () => {
    expect(statusLinkKey(SECRET, 'prod').equals(loginStateKey(SECRET, 'prod'))).toBe(false);
    const forged = createStatusToken(loginStateKey(SECRET, 'prod'), NOW);
    expect(verifyStatusToken(statusLinkKey(SECRET, 'prod'), forged, NOW)).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('refuse lifetimes under a minute or over seven days', () => {
    const key = statusLinkKey(SECRET);
    expect(() => createStatusToken(key, NOW, 1000)).toThrow(RangeError);
    expect(() => createStatusToken(key, NOW, 8 * 24 * 3_600_000)).toThrow(RangeError);
  });

  it('make a link on the status page’s address with the token in s', () => {
    const link = new URL(
      buildStatusLink('https://x.lambda-url.ap-south-1.on.aws/status', { appSecret: SECRET, now: NOW }),
    );
    expect(link.pathname).toBe('/status');
    expect(verifyStatusToken(statusLinkKey(SECRET), link.searchParams.get('s'), NOW).ok).toBe(true);
  });
});

describe('retryableLoginState', () => {
  it('names the account and issue time of a signed state, expired or not, up to three hours after its expiry', () => {
    const key = loginStateKey(SECRET);
    const state = createLoginState(key, NOW, 600_000, 'ravi');

    expect(retryableLoginState(key, state, NOW)).toEqual({ account: 'ravi', issuedAt: NOW });
    expect(retryableLoginState(key, state, new Date(NOW.getTime() + 3_600_000))).toEqual({
      account: 'ravi',
      issuedAt: NOW,
    });
    expect(retryableLoginState(key, state, new Date(NOW.getTime() + 4 * 3_600_000))).toBeUndefined();
  });

  it('gives nothing for a tampered state or one signed with another key', () => {
    const key = loginStateKey(SECRET);
    const state = createLoginState(key, NOW, 600_000, 'ravi');
    const at = state.length - 3;
    const tampered = `${state.slice(0, at)}${state[at] === 'A' ? 'B' : 'A'}${state.slice(at + 1)}`;

    expect(retryableLoginState(key, tampered, NOW)).toBeUndefined();
    expect(retryableLoginState(loginStateKey(SECRET, 'prod'), state, NOW)).toBeUndefined();
    expect(retryableLoginState(key, undefined, NOW)).toBeUndefined();
  });
});

const status = (over: Partial<TokenStatus> = {}): TokenStatus => ({
  location: 's3://bucket/accounts/ravi.json',
  userId: 'AB1234',
  mode: 'daily-login',
  hasAccessToken: true,
  tokenSource: 'login',
  refreshedAt: '2026-03-02 08:05:00 IST',
  ageMinutes: 25,
  expiresAt: '2026-03-03 06:00:00 IST',
  minutesToExpiry: 1290,
  refreshDue: false,
  dueReason: undefined,
  leaseHeldUntil: undefined,
  verdict: { accepted: true, at: '2026-03-02 08:01:00 IST', current: true },
  readyCheckedOn: undefined,
  ...over,
});

describe('renderStatusPage', () => {
  const view = (rows: Parameters<typeof renderStatusPage>[0]['rows']) =>
    renderStatusPage({ rows, now: NOW, linkExpiresAt: new Date(NOW.getTime() + STATUS_LINK_TTL_MS) });

  it('says ready only for an unexpired token Kite accepted, with the time left and where the token came from', () => {
    const page = view([{ name: 'ravi', userId: 'AB1234', status: status({ readyCheckedOn: '2026-03-02' }) }]);

    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('✅ ready');
    expect(page.body).toContain('2026-03-03 06:00:00 IST (in 21 h 30 min)');
    expect(page.body).toContain('2026-03-02 08:05:00 IST, daily login');
    expect(page.body).toContain('today’s ready check ran');
    expect(page.body).not.toContain('class="button"');
  });

  it('shows the login button only where a login is needed, and says why', () => {
    const link = 'https://kite.zerodha.com/connect/login?v=3&api_key=k&redirect_params=state%3Dx';
    const page = view([
      {
        name: 'expired',
        userId: undefined,
        status: status({ minutesToExpiry: -30, dueReason: 'expired', verdict: undefined }),
        loginLink: link,
      },
      { name: 'unasked', userId: undefined, status: status({ verdict: undefined }), loginLink: link },
      {
        name: 'renewed',
        userId: undefined,
        status: status({
          mode: 'auto-renew',
          tokenSource: 'renewal',
          verdict: { accepted: false, at: 'T', current: true },
        }),
        loginLink: link,
      },
    ]);

    // The expired daily-login account only: an auto-renew account whose token Kite refused renews at the next tick.
    expect(page.body.match(/class="button"/g)).toHaveLength(1);
    expect(page.body).toContain('(expired)');
    expect(page.body).toContain('REJECTED at T');
    expect(page.body).toContain('renewal (read-only by Kite&#39;s description)');
    expect(page.body).toContain('>unknown</span>');
    expect(page.body).toContain(`href="${link.replaceAll('&', '&amp;')}"`);
  });

  it('escapes names and drops a button whose link is not http(s)', () => {
    const page = view([
      {
        name: '<img src=x>',
        userId: undefined,
        status: status({ hasAccessToken: false, minutesToExpiry: undefined }),
        loginLink: 'javascript:alert(1)',
      },
    ]);

    expect(page.body).toContain('&lt;img src=x&gt;');
    expect(page.body).not.toContain('<img');
    expect(page.body).not.toContain('javascript:');
  });

  it('reads on a phone: viewport, a single column under 30rem, and buttons at least 44 px tall', () => {
    const page = view([]);
    expect(page.body).toContain('<meta name="viewport" content="width=device-width,initial-scale=1">');
    expect(page.body).toContain('@media (max-width:30rem)');
    expect(page.body).toMatch(/a\.button\{[^}]*min-height:44px/);
  });

  it('answers a refused link with a 403 that names nothing', () => {
    const page = statusForbiddenPage();
    expect(page.statusCode).toBe(403);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.body).not.toMatch(/account \w|\d+ accounts?/);
  });
});

describe('failure page buttons', () => {
  it('renders a retry link as a "Log in again" button, and none without one', () => {
    const e = new LoginError('expired_state', 'The login link has expired.');
    expect(refusedPage(e, 'https://kite.zerodha.com/connect/login?v=3').body).toContain('>Log in again</a>');
    expect(refusedPage(e).body).not.toContain('class="button"');
  });
});

describe('the morning messages’ status link', () => {
  const statusLink = 'https://x.lambda-url.ap-south-1.on.aws/status?s=s1.1.abc';

  it('adds a Status line to the reminder and a Status page button after the login button', () => {
    const message = reminderMessage('https://login', 'first', { now: NOW, statusLink });
    const notice = loginNotice(message, [{ url: 'https://login' }], statusLink);

    expect(message.body.endsWith(`\n\nStatus: ${statusLink}`)).toBe(true);
    expect(notice.buttons).toEqual([
      { label: 'Log in to Kite', url: 'https://login' },
      { label: 'Status page', url: statusLink },
    ]);
    expect(reminderMessage('https://login', 'first', { now: NOW }).body).not.toContain('Status:');
  });

  it('adds a Status line and button to the ready check’s notice', () => {
    const results = [
      {
        account: 'ravi',
        userId: 'AB1234',
        ready: false,
        why: 'a Kite login is needed',
        loginNeeded: true,
        outcome: undefined,
      },
    ];

    const notice = readyNotice(results, false, statusLink);

    expect(notice?.body).toContain(`Status: ${statusLink}`);
    expect(notice?.buttons).toEqual([{ label: 'Status page', url: statusLink }]);
    expect(readyNotice(results, false)?.buttons).toBeUndefined();
  });
});
