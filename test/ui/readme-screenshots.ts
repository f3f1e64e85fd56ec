// README screenshots come from the journeys, so they show the real product and can be
// regenerated: DEPLOY_ROLLBACK_UPDATE_SCREENSHOTS=1 npm run test:ui rewrites media/screenshots/.
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../runner/code-server';
import type { Workbench } from './workbench';

export const README_SCREENSHOT_DIR = path.join(repoRoot, 'media', 'screenshots');
/** The README is also the marketplace page: keep each image small. */
export const README_SCREENSHOT_MAX_BYTES = 150 * 1024;

export function updatingReadmeScreenshots(): boolean {
  return process.env.DEPLOY_ROLLBACK_UPDATE_SCREENSHOTS === '1';
}

/**
 * Saves `clip` as the journey's next screenshot and, when updating, as
 * media/screenshots/<name>.png. Fails when the crop is too large for the README.
 */
export async function readmeScreenshot(workbench: Workbench, name: string, clip: { x: number; y: number; width: number; height: number }): Promise<string> {
  const file = await workbench.screenshot(`readme-${name}`, clip);
  const bytes = statSync(file).size;
  if (bytes > README_SCREENSHOT_MAX_BYTES) {
    throw new Error(`README screenshot ${name}.png is ${Math.round(bytes / 1024)} KB (limit ${README_SCREENSHOT_MAX_BYTES / 1024} KB): crop it tighter`);
  }
  if (updatingReadmeScreenshots()) {
    mkdirSync(README_SCREENSHOT_DIR, { recursive: true });
    copyFileSync(file, path.join(README_SCREENSHOT_DIR, `${name}.png`));
  }
  return file;
}
