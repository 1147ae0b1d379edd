// The daily login clicked through in Chromium, from the "Login link:" line `npm run emulators` prints: the sandbox's
// login page, its button, Kite's redirect to the login callback behind the Function URL stand-in, and the page the
// callback answers with. Every page must be free of console errors (CSP violations included), fit a phone and a
// desktop, and show no token.
import type { Page, Response } from 'playwright-core';
import { expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { buildLoginLink } from '../../lib/login/link.ts';
import { describeInBrowser, expectFitsEveryWidth, useEmulators, watchPage } from '../support/browser.ts';

const USER = 'XX0000';

describeInBrowser('the daily login in Chromium, from npm run emulators', (browser) => {
  const world = useEmulators(browser);

  const storedText = () => world.storedText();

  /** Opens `link` on the sandbox's login page, checks that page, presses its button: the callback's answer. */
  async function logIn(page: Page, link: string): Promise<Response> {
    await page.goto(link);
    expect(await page.locator('h1').textContent()).toBe('Login to Kite');
    expect(await page.locator('main').textContent()).toContain(world.emulators.apiKey);
    expect(await page.locator('input, [type=password]').count()).toBe(0);
    await expectFitsEveryWidth(page);
    const [answer] = await Promise.all([
      page.waitForResponse((response) => response.url().startsWith(world.emulators.callbackUrl)),
      page.getByRole('button', { name: `Log in as ${USER}` }).click(),
    ]);
    await page.waitForLoadState('load');
    return answer;
  }

  it('clicks through from the printed login link to the success page and stores a token the sandbox accepts', async () => {
    const page = await world.context.newPage();
    const watch = watchPage(page);
    const before = JSON.parse(await storedText()) as BrokerConfig;

    const answer = await logIn(page, world.emulators.loginLink);

    expect(answer.status()).toBe(200);
    expect(answer.headers()['referrer-policy']).toBe('no-referrer');
    expect(page.url().startsWith(`${world.emulators.callbackUrl}?`)).toBe(true);
    expect(await page.locator('h1').textContent()).toBe('✅ Logged in');
    expect(await page.locator('main').textContent()).toMatch(/Logged in as XX0000 — valid until 06:00 IST/);
    await expectFitsEveryWidth(page);
    const stored = JSON.parse(await storedText()) as BrokerConfig;
    expect(stored.api_secret).not.toBe(before.api_secret);
    const profile = await fetch(`${world.emulators.kiteUrl}/user/profile`, {
      headers: {
        'X-Kite-Version': '3',
        Authorization: `token ${world.emulators.apiKey}:${stored.api_secret}`,
      },
    });
    expect(profile.status).toBe(200);
    expect(((await profile.json()) as { data: { user_id: string } }).data.user_id).toBe(USER);
    const shown = [...watch.seen, page.url(), await page.content()].join('\n');
    for (const token of [stored.api_secret, stored.refresh_token].filter(Boolean)) {
      expect(shown).not.toContain(token);
    }
    expect(watch.problems).toEqual([]);

    // The success page's status link opens the status page (on loopback, over plain http like the callback).
    const statusHref = await page.getByRole('link', { name: 'Status page' }).getAttribute('href');
    expect(statusHref?.startsWith(`${world.emulators.callbackUrl.replace(/\/$/, '')}/status?s=`)).toBe(true);
    const statusTab = await world.context.newPage();
    const statusAnswer = await statusTab.goto(statusHref ?? '');
    expect(statusAnswer?.status()).toBe(200);
    expect(await statusTab.locator('main').textContent()).toContain('XX0000');
    await statusTab.close();

    // The address still holds the request token and state, but both are spent: a reload changes nothing.
    const reload = await page.reload();
    expect(reload?.status()).toBe(410);
    expect(await page.locator('h1').textContent()).toBe('Login failed');
    expect((JSON.parse(await storedText()) as BrokerConfig).api_secret).toBe(stored.api_secret);
    expect(watch.problems).toEqual([]);
  });

  it('answers an expired link with a failure page and changes nothing', async () => {
    const page = await world.context.newPage();
    const watch = watchPage(page);
    const before = await storedText();
    const expired = buildLoginLink({
      apiKey: world.emulators.apiKey,
      appSecret: world.emulators.appSecret,
      loginRoot: world.emulators.kiteUrl,
      now: new Date(Date.now() - 4 * 60 * 60 * 1000),
    });

    const answer = await logIn(page, expired);

    expect(answer.status()).toBe(403);
    expect(answer.headers()['referrer-policy']).toBe('no-referrer');
    expect(await page.locator('h1').textContent()).toBe('Login failed');
    expect(await page.locator('main').textContent()).toContain('The login link has expired.');
    await expectFitsEveryWidth(page);
    expect(await storedText()).toBe(before);
    expect(watch.problems).toEqual([]);
  });

  it('answers a tampered link with a failure page and changes nothing', async () => {
    const page = await world.context.newPage();
    const watch = watchPage(page);
    const before = await storedText();
    const link = new URL(world.emulators.loginLink);
    const state = new URLSearchParams(link.searchParams.get('redirect_params') ?? '').get('state') ?? '';
    // Another lifetime under the same signature.
    const [version, issued, ttl, ...rest] = state.split('.');
    link.searchParams.set(
      'redirect_params',
      new URLSearchParams({
        state: [version, issued, String(Number(ttl) - 1), ...rest].join('.'),
      }).toString(),
    );

    const answer = await logIn(page, link.href);

    expect(answer.status()).toBe(403);
    expect(await page.locator('main').textContent()).toContain('not one this service issued');
    await expectFitsEveryWidth(page);
    expect(await storedText()).toBe(before);
    expect(watch.problems).toEqual([]);
  });
});
