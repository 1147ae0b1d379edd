// The status page in Chromium, from the "Status page:" line `npm run emulators` prints: the seeded account needing
// a login, the 403 page for an expired or tampered link, and a login started from the page's Log in with Kite
// button, after which the page shows the fresh token. Every page must be free of console errors (CSP violations
// included), fit a phone and a desktop, carry the strict headers and show no token.
import type { Page, Response } from 'playwright-core';
import { expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { buildStatusLink, statusPageUrl } from '../../lib/login/status-link.ts';
import {
  describeInBrowser,
  expectFitsEveryWidth,
  expectStrictHeaders,
  useEmulators,
  watchPage,
} from '../support/browser.ts';

const USER = 'XX0000';
/** The emulators' one account: a single document is named after its file. */
const ACCOUNT = 'daily-login';
const LOG_IN = 'Log in with Kite';

describeInBrowser('the status page in Chromium, from npm run emulators', (browser) => {
  const world = useEmulators(browser);

  /** The stored broker-config.json, as the S3 emulator holds it. */
  const stored = async (): Promise<BrokerConfig> => JSON.parse(await world.storedText()) as BrokerConfig;

  /** Every document the tab was answered with (redirects aside), for the header checks. */
  function documents(page: Page): Response[] {
    const answers: Response[] = [];
    page.on('response', (response) => {
      const request = response.request();
      if (!request.isNavigationRequest() || request.frame() !== page.mainFrame()) return;
      if (response.status() >= 300 && response.status() < 400) return;
      answers.push(response);
    });
    return answers;
  }

  /** Neither token of any of `configs` shows in an address or a page the tab showed. */
  function expectNoToken(seen: string[], ...configs: BrokerConfig[]): void {
    const shown = seen.join('\n');
    const tokens = configs.flatMap((config) => [config.api_secret, config.refresh_token]).filter(Boolean);
    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) expect(shown).not.toContain(token);
  }

  /** The text of the account's row: its heading and its terms, "Term: value" a line. */
  async function rowText(page: Page): Promise<string> {
    const section = page.locator('section', { has: page.getByRole('heading', { level: 2, name: ACCOUNT }) });
    expect(await section.count()).toBe(1);
    const heading = (await section.locator('h2').textContent()) ?? '';
    const terms = await section.locator('dt').allTextContents();
    const values = await section.locator('dd').allTextContents();
    return [heading, ...terms.map((term, i) => `${term}: ${values[i]}`)].join('\n');
  }

  /** Opens `link`, expecting the 403 page, and checks it names no account. */
  async function expectRefused(link: string): Promise<void> {
    const page = await world.context.newPage();
    const watch = watchPage(page);
    const before = await stored();

    const answer = await page.goto(link);

    expect(answer?.status()).toBe(403);
    if (answer) expectStrictHeaders(answer);
    expect(await page.locator('h1').textContent()).toBe('Link not valid');
    expect(await page.locator('main').textContent()).toContain(
      'This status link is not valid or has expired.',
    );
    const html = await page.content();
    for (const name of [USER, ACCOUNT]) expect(html).not.toContain(name);
    expect(await page.locator('section, a').count()).toBe(0);
    await expectFitsEveryWidth(page);
    expectNoToken(watch.seen, before);
    expect(watch.problems).toEqual([]);
  }

  it('shows the seeded account with its expired token, not ready, and a Log in with Kite button', async () => {
    const page = await world.context.newPage();
    const watch = watchPage(page);
    const config = await stored();

    const answer = await page.goto(world.emulators.statusLink);

    expect(answer?.status()).toBe(200);
    if (answer) expectStrictHeaders(answer);
    expect(await page.locator('h1').textContent()).toBe('Kite token status');
    const row = await rowText(page);
    expect(row).toContain(`${ACCOUNT} (${USER})`);
    // The browser's document holds no refresh token, as most Kite apps get none: only a login brings it back.
    expect(row).toContain('Mode: daily login');
    expect(row).toContain('Kite says: not asked yet');
    expect(row).toMatch(/^Expires: \d{4}-\d\d-\d\d 06:00:00 IST \(expired\)$/m);
    expect(row).toContain('Market open: ❌ not ready: the token has expired');
    const button = page.getByRole('link', { name: LOG_IN });
    expect(await button.count()).toBe(1);
    const target = new URL((await button.getAttribute('href')) ?? '');
    expect(`${target.origin}${target.pathname}`).toBe(`${world.emulators.kiteUrl}/connect/login`);
    expect(target.searchParams.get('api_key')).toBe(world.emulators.apiKey);
    await expectFitsEveryWidth(page);
    expectNoToken(watch.seen, config);
    expect(watch.problems).toEqual([]);
  });

  it('answers an expired status link with a 403 page that names no account', async () => {
    const expired = buildStatusLink(statusPageUrl(world.emulators.callbackUrl), {
      appSecret: world.emulators.appSecret,
      now: new Date(Date.now() - 13 * 60 * 60 * 1000),
    });

    await expectRefused(expired);
  });

  it('answers a tampered status link with a 403 page that names no account', async () => {
    const link = new URL(world.emulators.statusLink);
    // A longer life under the same signature.
    const [version, expiry, signature] = (link.searchParams.get('s') ?? '').split('.');
    link.searchParams.set('s', [version, String(Number(expiry) + 3600), signature].join('.'));

    await expectRefused(link.href);
  });

  it('logs in from its Log in with Kite button, stores a token the sandbox accepts, then shows it fresh', async () => {
    const page = await world.context.newPage();
    const watch = watchPage(page);
    const answers = documents(page);
    const before = await stored();
    await page.goto(world.emulators.statusLink);

    // The page's button: the sandbox's login page.
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/connect/login'),
      page.getByRole('link', { name: LOG_IN }).click(),
    ]);
    expect(await page.locator('h1').textContent()).toBe('Login to Kite');
    await expectFitsEveryWidth(page);

    // Its button: Kite's redirect to the callback, which stores the token.
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(`${world.emulators.callbackUrl}?`)),
      page.getByRole('button', { name: `Log in as ${USER}` }).click(),
    ]);
    expect(await page.locator('h1').textContent()).toBe('✅ Logged in');
    expect(await page.locator('main').textContent()).toMatch(/Logged in as XX0000 — valid until 06:00 IST/);
    await expectFitsEveryWidth(page);
    const after = await stored();
    expect(after.api_secret).not.toBe(before.api_secret);
    expect(after.token_source).toBe('login');
    const profile = await fetch(`${world.emulators.kiteUrl}/user/profile`, {
      headers: {
        'X-Kite-Version': '3',
        Authorization: `token ${world.emulators.apiKey}:${after.api_secret}`,
      },
    });
    expect(profile.status).toBe(200);
    expect(((await profile.json()) as { data: { user_id: string } }).data.user_id).toBe(USER);

    // The same status link again: the fresh token, and nothing to log in for.
    const reopened = await page.goto(world.emulators.statusLink);
    expect(reopened?.status()).toBe(200);
    const row = await rowText(page);
    expect(row).toContain(`${ACCOUNT} (${USER})`);
    expect(row).toMatch(/^Expires: \d{4}-\d\d-\d\d 06:00:00 IST \(in (\d+ h )?\d+ min\)$/m);
    expect(row).toMatch(/^Last renewal or login: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d IST, daily login$/m);
    // An ordinary app's login brings no refresh token: the account stays a daily-login one.
    expect(row).toContain('Mode: daily login');
    expect(row).not.toContain('expired');
    expect(row).not.toContain('not ready');
    expect(await page.getByRole('link', { name: LOG_IN }).count()).toBe(0);
    await expectFitsEveryWidth(page);

    expect(answers.map((answer) => [new URL(answer.url()).pathname, answer.status()])).toEqual([
      ['/status', 200],
      ['/connect/login', 200],
      ['/', 200],
      ['/status', 200],
    ]);
    for (const answer of answers) expectStrictHeaders(answer);
    expectNoToken([...watch.seen, page.url(), await page.content()], before, after);
    expect(watch.problems).toEqual([]);
  });
});
