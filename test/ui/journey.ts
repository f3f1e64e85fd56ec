// A tiny journey framework: a journey is a named async function that opens workbenches and
// acts like a user. run.ts finds every journey exported from test/ui/journeys/*.ts, so a new
// journey is a new file there.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { quietWorkbenchSettings, type CodeServer, type StartOptions } from '../runner/code-server';
import { Workbench } from './workbench';

export interface OpenOptions {
  /** false opens the folder in Restricted Mode (workspace trust on, startup prompt off). */
  trusted?: boolean;
  /** Extra user settings, e.g. { "deployRollback.pollIntervalSeconds": 0 }. */
  settings?: Record<string, unknown>;
  /** Environment of the code-server process, e.g. { HOME: sample.home } so SSH finds the test hosts' key. */
  env?: Record<string, string>;
}

export interface JourneyContext {
  openWorkbench(folder: string, options?: OpenOptions): Promise<Workbench>;
  /** A fresh empty folder, removed after the journey. */
  emptyWorkspace(): string;
  /** Folder for this journey's screenshots. */
  readonly screenshotDir: string;
  /** Ends the journey as skipped (e.g. no root for test hosts); under CI=true it fails instead. */
  skip(reason: string): never;
  /** Runs `cleanup` after the journey, pass or fail, before its temp folders are removed. */
  onCleanup(cleanup: () => Promise<void> | void): void;
}

export class JourneySkipped extends Error {}

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
  screenshotRoot: string;
  servers: CodeServerPool;
}


/**
 * One code-server per distinct trust mode and settings, shared by the journeys of a run: each
 * journey still gets its own folder, browser context and extension host, and starting a server
 * per journey only cost time.
 */
export class CodeServerPool {
  private readonly servers = new Map<string, Promise<CodeServer>>();
  private readonly dirs: string[] = [];

  constructor(
    private readonly extensionsDir: string,
    private readonly start: (options: StartOptions) => Promise<CodeServer>,
  ) {}

  get(trusted: boolean, settings: Record<string, unknown>, env: Record<string, string> = {}): Promise<CodeServer> {
    const key = JSON.stringify({ trusted, settings, env });
    let server = this.servers.get(key);
    if (!server) {
      server = this.startOne(trusted, settings, env);
      this.servers.set(key, server);
    }
    return server;
  }

  private async startOne(trusted: boolean, settings: Record<string, unknown>, env: Record<string, string>): Promise<CodeServer> {
    const base = mkdtempSync(path.join(tmpdir(), 'deploy-rollback-ui-'));
    this.dirs.push(base);
    const userDataDir = path.join(base, 'user-data');
    mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
    // Restricted Mode without the startup dialog: trust stays on and the folder stays untrusted.
    const trustSettings = trusted
      ? {}
      : { 'security.workspace.trust.enabled': true, 'security.workspace.trust.startupPrompt': 'never', 'security.workspace.trust.emptyWindow': false };
    writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...quietWorkbenchSettings, ...trustSettings, ...settings }, null, 2));
    return this.start({ userDataDir, extensionsDir: this.extensionsDir, disableWorkspaceTrust: trusted, quiet: true, env });
  }

  /** Stops the server started for this env: a journey's HOME is removed with the journey. */
  async stop(trusted: boolean, settings: Record<string, unknown>, env: Record<string, string> = {}): Promise<void> {
    const key = JSON.stringify({ trusted, settings, env });
    const server = this.servers.get(key);
    this.servers.delete(key);
    await (await server?.catch(() => undefined))?.stop();
  }

  async stopAll(): Promise<void> {
    for (const server of this.servers.values()) await (await server.catch(() => undefined))?.stop();
    this.servers.clear();
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

const trace = process.env.DEPLOY_ROLLBACK_UI_TRACE ? (message: string) => console.log(`      · ${message}`) : () => undefined;

export function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** Runs one journey with its own browser contexts and temp folders, then removes them. */
export async function runJourney(environment: Environment, journeyToRun: Journey): Promise<void> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const workbenches: Workbench[] = [];
  const screenshotDir = path.join(environment.screenshotRoot, slug(journeyToRun.name));
  rmSync(screenshotDir, { recursive: true, force: true });
  mkdirSync(screenshotDir, { recursive: true });

  const context: JourneyContext = {
    screenshotDir,
    skip(reason) {
      if (process.env.CI === 'true') throw new Error(`${reason} CI must run this journey, so it fails instead of skipping.`);
      throw new JourneySkipped(reason);
    },
    onCleanup(cleanup) {
      cleanups.push(cleanup);
    },
    emptyWorkspace() {
      const folder = mkdtempSync(path.join(tmpdir(), 'deploy-rollback-ui-workspace-'));
      cleanups.push(() => rmSync(folder, { recursive: true, force: true }));
      return folder;
    },
    async openWorkbench(folder, { trusted = true, settings = {}, env } = {}) {
      const started = Date.now();
      const server = await environment.servers.get(trusted, settings, env);
      // A server with its own environment belongs to this journey: stopped after it.
      if (env) cleanups.push(() => environment.servers.stop(trusted, settings, env));
      trace(`code-server ready after ${Date.now() - started} ms`);
      const browserContext = await environment.browser.newContext({ viewport: { width: 1400, height: 900 } });
      cleanups.push(() => browserContext.close());
      const page = await browserContext.newPage();
      // Generous: the workbench shares CPUs with other test layers on CI machines.
      page.setDefaultTimeout(30_000);
      await page.goto(`${server.url}/?folder=${encodeURIComponent(folder)}`, { waitUntil: 'domcontentloaded' });
      await page.locator('.monaco-workbench .part.activitybar').waitFor({ state: 'visible', timeout: 90_000 });
      trace(`workbench shown after ${Date.now() - started} ms`);
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
    if (error instanceof JourneySkipped) throw error;
    for (const workbench of workbenches) {
      const shot = await workbench.screenshot('failure').catch(() => undefined);
      if (shot) console.log(`    failure screenshot: ${path.relative(process.cwd(), shot)}`);
      // What the extension said up to the failure, for the next reader of a CI log (best effort, bounded).
      let bound: NodeJS.Timeout | undefined;
      const output = await Promise.race([
        workbench.outputChannelText().catch(() => undefined),
        new Promise<undefined>((resolve) => (bound = setTimeout(resolve, 10_000, undefined))),
      ]);
      clearTimeout(bound);
      if (output) {
        const file = path.join(screenshotDir, 'failure-output.txt');
        writeFileSync(file, `${output}\n`);
        console.log(`    the Deploy Rollback output on screen (${path.relative(process.cwd(), file)}):\n${output.split('\n').slice(-15).map((line) => `      | ${line}`).join('\n')}`);
      }
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
