// The bench's browser: Debian's Chromium (or CHROMIUM_PATH) through the
// e2e suite's Playwright, launched the same way by page.mjs and pair.mjs.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Playwright from e2e/node_modules (these files may be run from anywhere).
const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'));
const { chromium } = require('playwright');

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
