// Shared browser-test wiring: a suite that needs Chromium (skipped with its reason locally when it is missing, failed
// under CI=true so CI cannot skip it silently), one browser per file, and the checks every page must pass.
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium, WIDTHS } from '../../testing/chromium.ts';
import { type EmulatorsProcess, startEmulatorsProcess } from '../../testing/emulators-process.ts';

export { WIDTHS } from '../../testing/chromium.ts';

/**
 * describe() for tests that drive Chromium. `browser()` returns the file's one browser, launched once before the
 * suite. Without Chromium: skipped, the reason in the suite's name; with CI=true, one failing test instead.
 */
export function describeInBrowser(name: string, body: (browser: () => Browser) => void): void {
  const missing = chromiumMissing();
  if (missing && process.env.CI === 'true') {
    describe(name, () => {
      it('has Chromium to run in (CI=true must not skip the browser tests)', () => {
        throw new Error(missing);
      });
    });
    return;
  }
  if (missing) {
    describe.skip(`${name} (skipped: ${missing})`, () => body(() => undefined as never));
    return;
  }
  describe(name, () => {
    let browser: Browser | undefined;
    beforeAll(async () => {
      browser = await launchChromium();
    });
    afterAll(async () => {
      await browser?.close();
    });
    body(() => {
      if (!browser) throw new Error('the browser did not start');
      return browser;
    });
  });
}

const DOCUMENT_STATUS = 'Failed to load resource: the server responded with a status of';

/** An address fit for a test's output: the callback's query holds a request token, which must not be printed. */
function withoutQuery(url: string): string {
  const parsed = new URL(url);
  return parsed.search ? `${parsed.origin}${parsed.pathname}?…` : url;
}

/**
 * Collects what a page must never produce: console errors (a CSP violation is one) and uncaught exceptions. Also
 * records the address and text of every document the page showed, for token sweeps.
 */
export function watchPage(page: Page): { problems: string[]; seen: string[] } {
  const problems: string[] = [];
  const seen: string[] = [];
  page.on('console', (message) => {
    if (message.type() !== 'error' && message.type() !== 'warning') return;
    // Chromium reports a document answered with 4xx as a failed resource; the failure pages are answered so on purpose.
    if (message.text().startsWith(DOCUMENT_STATUS) && message.location().url === page.url()) return;
    problems.push(`console ${message.type()} on ${withoutQuery(page.url())}: ${message.text()}`);
  });
  page.on('pageerror', (error) =>
    problems.push(`page error on ${withoutQuery(page.url())}: ${error.message}`),
  );
  page.on('load', () => {
    seen.push(page.url());
    page.content().then(
      (html) => seen.push(html),
      () => undefined,
    );
  });
  return { problems, seen };
}

/** The page fits the phone and the desktop width: nothing wider than the viewport, so no horizontal scroll. */
export async function expectFitsEveryWidth(page: Page): Promise<void> {
  for (const [name, width] of Object.entries(WIDTHS)) {
    await page.setViewportSize({ width, height: 800 });
    const scrollWidth = await page.evaluate<number>('document.documentElement.scrollWidth');
    expect(scrollWidth, `${withoutQuery(page.url())} at ${name} width ${width}px`).toBeLessThanOrEqual(width);
  }
}

/**
 * The headers every page a person sees carries: a CSP that runs no script at all (no 'unsafe-inline', no script
 * source), no caching, no referrer, no framing.
 */
export function expectStrictHeaders(response: Response): void {
  const headers = response.headers();
  const where = withoutQuery(response.url());
  const csp = headers['content-security-policy'] ?? '';
  const directives = csp.split(';').map((directive) => directive.trim());
  expect(directives, `CSP of ${where}`).toContain("default-src 'none'");
  expect(csp, `CSP of ${where}`).not.toContain('unsafe-inline');
  expect(csp, `CSP of ${where}`).not.toMatch(/script-src/);
  expect(headers['cache-control'], `cache-control of ${where}`).toBe('no-store');
  expect(headers['referrer-policy'], `referrer-policy of ${where}`).toBe('no-referrer');
  expect(headers['x-frame-options'], `x-frame-options of ${where}`).toBe('DENY');
}

/** What a browser suite over `npm run emulators` works with, set by the hooks useEmulators installs. */
export interface EmulatorsInBrowser {
  /** The file's one `npm run emulators` child. */
  emulators: EmulatorsProcess;
  /** A fresh browser context (phone width) per test. */
  context: BrowserContext;
  /** The daily-login document as the emulators' S3 server holds it. */
  storedText(): Promise<string>;
}

/** Starts `npm run emulators` once for the suite and a fresh browser context per test; stops both after. */
export function useEmulators(browser: () => Browser): EmulatorsInBrowser {
  let s3: S3Client | undefined;
  const world = {
    storedText: async () => {
      const { bucket, key } = world.emulators.s3Document;
      const object = await (s3 as S3Client).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await object.Body?.transformToString('utf8')) ?? '';
    },
  } as EmulatorsInBrowser;
  beforeAll(async () => {
    world.emulators = await startEmulatorsProcess();
    s3 = new S3Client({
      region: 'ap-south-1',
      endpoint: world.emulators.s3Endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
  });
  afterAll(async () => {
    s3?.destroy();
    await world.emulators?.stop();
  });
  beforeEach(async () => {
    world.context = await browser().newContext({ viewport: { width: WIDTHS.phone, height: 800 } });
  });
  afterEach(async () => {
    await world.context?.close();
  });
  return world;
}
