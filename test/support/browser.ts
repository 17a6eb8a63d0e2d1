/**
 * Headless Chromium for browser tests: Debian's `chromium` package driven by playwright-core (Playwright's own browser
 * downloads are not used). `npm test` installs it (tools/scripts/install-debian-package.sh).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.BATCHKEEPER_CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install it with apt-get install chromium ` +
        '(npm test does it when it runs as root: tools/scripts/install-debian-package.sh), or point BATCHKEEPER_CHROMIUM_PATH at a Chromium binary',
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}
