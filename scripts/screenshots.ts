// `npm run screenshots`: PNGs of the pages a person sees during the daily login and on the status page, at phone and
// desktop width, into docs/screenshots/ for the README. It runs `npm run emulators` and Debian's Chromium, and starts
// each page where a person does: from the printed login or status page link. A new page is one more entry in SHOTS.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { buildLoginLink } from '../lib/login/link.ts';
import { chromiumMissing, launchChromium, WIDTHS } from '../testing/chromium.ts';
import { type EmulatorsProcess, startEmulatorsProcess } from '../testing/emulators-process.ts';

const OUT_DIR = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));

interface Shot {
  /** docs/screenshots/<name>-phone.png and <name>-desktop.png */
  name: string;
  /** Brings the page to what is pictured. Shots run in order, each in a fresh tab. */
  open(page: Page, emulators: EmulatorsProcess): Promise<void>;
}

/** The sandbox's "Log in as" button, and the callback's answer. */
async function pressLogIn(page: Page): Promise<void> {
  await Promise.all([
    page.waitForURL((url) => !url.pathname.startsWith('/connect/')),
    page.locator('button').click(),
  ]);
}

/** The printed status page link, as it stood when the shot was taken. */
const openStatusPage = (page: Page, emulators: EmulatorsProcess) =>
  page.goto(emulators.statusLink).then(() => undefined);

const SHOTS: Shot[] = [
  { name: 'sandbox-login', open: (page, emulators) => page.goto(emulators.loginLink).then(() => undefined) },
  // Before the login below: the seeded token has expired, so the page offers Log in with Kite.
  { name: 'status-login-needed', open: openStatusPage },
  {
    name: 'login-success',
    open: async (page, emulators) => {
      await page.goto(emulators.loginLink);
      await pressLogIn(page);
    },
  },
  // After it: the fresh token, nothing to log in for.
  { name: 'status-fresh', open: openStatusPage },
  {
    name: 'login-failed',
    open: async (page, emulators) => {
      // A terminal's link (10 minutes) from an hour ago: expired, and still recent enough for a Log in again link.
      const expired = buildLoginLink({
        apiKey: emulators.apiKey,
        appSecret: emulators.appSecret,
        loginRoot: emulators.kiteUrl,
        now: new Date(Date.now() - 60 * 60 * 1000),
      });
      await page.goto(expired);
      await pressLogIn(page);
    },
  },
];

async function main(): Promise<void> {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  await mkdir(OUT_DIR, { recursive: true });
  const emulators = await startEmulatorsProcess();
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ viewport: { width: WIDTHS.desktop, height: 720 } });
    for (const shot of SHOTS) {
      const page = await context.newPage();
      await shot.open(page, emulators);
      for (const [size, width] of Object.entries(WIDTHS)) {
        await page.setViewportSize({ width, height: size === 'phone' ? 640 : 720 });
        const path = join(OUT_DIR, `${shot.name}-${size}.png`);
        await page.screenshot({ path, fullPage: true });
        process.stdout.write(`${path}\n`);
      }
      await page.close();
    }
  } finally {
    await browser.close();
    await emulators.stop();
  }
}

try {
  await main();
} catch (error: unknown) {
  process.stderr.write(`screenshots: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
