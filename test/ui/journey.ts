// A tiny journey framework: a journey is a named async function that opens workbenches and
// acts like a user. run.ts finds every journey exported from test/ui/journeys/*.ts, so a new
// journey is a new file there.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import type { CodeServer, StartOptions } from '../runner/code-server';
import { Workbench } from './workbench';

export interface OpenOptions {
  /** false opens the folder in Restricted Mode (workspace trust on, startup prompt off). */
  trusted?: boolean;
  /** Extra user settings, e.g. { "deployRollback.pollIntervalSeconds": 0 }. */
  settings?: Record<string, unknown>;
}

export interface JourneyContext {
  openWorkbench(folder: string, options?: OpenOptions): Promise<Workbench>;
  /** A fresh empty folder, removed after the journey. */
  emptyWorkspace(): string;
  /** Folder for this journey's screenshots. */
  readonly screenshotDir: string;
}

export interface Journey {
  readonly kind: 'journey';
  name: string;
  timeoutMs: number;
  run(context: JourneyContext): Promise<void>;
}

export function journey(name: string, run: (context: JourneyContext) => Promise<void>, options: { timeoutMs?: number } = {}): Journey {
  return { kind: 'journey', name, timeoutMs: options.timeoutMs ?? 120_000, run };
}

export function isJourney(value: unknown): value is Journey {
  return typeof value === 'object' && value !== null && (value as Journey).kind === 'journey';
}

export interface Environment {
  browser: Browser;
  extensionsDir: string;
  screenshotRoot: string;
  startCodeServer(options: StartOptions): Promise<CodeServer>;
}

const baseSettings = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'git.openRepositoryInParentFolders': 'never',
};

export function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** Runs one journey with its own code-servers, browser contexts and temp folders, then removes them. */
export async function runJourney(environment: Environment, journeyToRun: Journey): Promise<void> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const workbenches: Workbench[] = [];
  const screenshotDir = path.join(environment.screenshotRoot, slug(journeyToRun.name));
  rmSync(screenshotDir, { recursive: true, force: true });
  mkdirSync(screenshotDir, { recursive: true });

  const context: JourneyContext = {
    screenshotDir,
    emptyWorkspace() {
      const folder = mkdtempSync(path.join(tmpdir(), 'deploy-rollback-ui-workspace-'));
      cleanups.push(() => rmSync(folder, { recursive: true, force: true }));
      return folder;
    },
    async openWorkbench(folder, { trusted = true, settings = {} } = {}) {
      const base = mkdtempSync(path.join(tmpdir(), 'deploy-rollback-ui-'));
      cleanups.push(() => rmSync(base, { recursive: true, force: true }));
      const userDataDir = path.join(base, 'user-data');
      mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
      const trustSettings = trusted
        ? {}
        : { 'security.workspace.trust.enabled': true, 'security.workspace.trust.startupPrompt': 'never', 'security.workspace.trust.emptyWindow': false };
      writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...baseSettings, ...trustSettings, ...settings }, null, 2));
      const server = await environment.startCodeServer({
        userDataDir,
        extensionsDir: environment.extensionsDir,
        disableWorkspaceTrust: trusted,
        quiet: true,
      });
      cleanups.push(() => server.stop());
      const browserContext = await environment.browser.newContext({ viewport: { width: 1400, height: 900 } });
      cleanups.push(() => browserContext.close());
      const page = await browserContext.newPage();
      // Generous: the workbench shares CPUs with other test layers on CI machines.
      page.setDefaultTimeout(30_000);
      await page.goto(`${server.url}/?folder=${encodeURIComponent(folder)}`, { waitUntil: 'domcontentloaded' });
      await page.locator('.monaco-workbench .part.activitybar').waitFor({ state: 'visible', timeout: 90_000 });
      const workbench = new Workbench(page, workbenches.length ? path.join(screenshotDir, `window-${workbenches.length + 1}`) : screenshotDir);
      workbenches.push(workbench);
      return workbench;
    },
  };

  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      journeyToRun.run(context),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`journey took longer than ${journeyToRun.timeoutMs / 1000} s`)), journeyToRun.timeoutMs);
      }),
    ]);
  } catch (error) {
    for (const workbench of workbenches) {
      const shot = await workbench.screenshot('failure').catch(() => undefined);
      if (shot) console.log(`    failure screenshot: ${path.relative(process.cwd(), shot)}`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
    for (const cleanup of cleanups.reverse()) {
      await Promise.resolve()
        .then(cleanup)
        .catch((error: unknown) => console.log(`    cleanup failed: ${error instanceof Error ? error.message : String(error)}`));
    }
  }
}
