// Debian's Chromium driven by playwright-core, for the browser tests and `npm run screenshots`. No browser is
// downloaded: playwright-core drives the system's /usr/bin/chromium (apt-get install chromium) over CDP.
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Phone (an iPhone SE's CSS width) and desktop widths every page must fit. */
export const WIDTHS = { phone: 375, desktop: 1280 } as const;

/** Why Chromium cannot run here, or undefined when it can. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM_PATH)
    ? undefined
    : `${CHROMIUM_PATH} not found; install Debian's chromium (apt-get install chromium)`;
}

/**
 * A headless Chromium with a throwaway profile (playwright-core makes and removes it), offline apart from loopback:
 * no sync, component updates, background requests or QUIC.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
