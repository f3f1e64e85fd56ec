// Debian's Chromium driven by playwright-core: the only browser this offline machine has
// (`npx playwright install` would download one).
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Why the runners cannot start, or undefined when Chromium is there. */
export function missingChromium(): string | undefined {
  if (existsSync(chromiumPath)) return undefined;
  return `Chromium not found at ${chromiumPath} (apt-get install -y chromium, or set CHROMIUM_PATH)`;
}

export async function launchChromium(): Promise<Browser> {
  const missing = missingChromium();
  if (missing) throw new Error(missing);
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
}

/**
 * A missing prerequisite fails under CI (a skipped layer must never look green there) and
 * is reported as a skip on a developer machine.
 */
export function prerequisiteMissing(layer: string, reason: string): never {
  if (process.env.CI === 'true' || process.env.CI === '1') {
    console.error(`[${layer}] prerequisite missing under CI: ${reason}`);
    console.log(`${layer}: 0 passed, 1 failed`);
    process.exit(1);
  }
  console.error(`[${layer}] skipped, prerequisite missing: ${reason}`);
  console.log(`${layer}: 0 passed, 0 failed, 1 skipped`);
  process.exit(0);
}
