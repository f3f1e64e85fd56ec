// Typed access to scripts/code-server.mjs (plain ESM so .ci/run can use it without a build).
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface CodeServer {
  url: string;
  port: number;
  pid: number;
  /** The last lines code-server printed, for error messages. */
  output: string[];
  stop(): Promise<void>;
}

export interface StartOptions {
  userDataDir: string;
  extensionsDir: string;
  folder?: string;
  disableWorkspaceTrust?: boolean;
  port?: number;
  env?: Record<string, string>;
  startTimeoutMs?: number;
  quiet?: boolean;
}

interface CodeServerModule {
  CODE_SERVER_VERSION: string;
  repoRoot: string;
  ensureCodeServer(): Promise<string>;
  startCodeServer(options: StartOptions): Promise<CodeServer>;
  installVsix(vsixPath: string, extensionsDir: string, options?: { userDataDir?: string }): Promise<string>;
}

export const repoRoot = path.resolve(__dirname, '..', '..');

/** User settings for test workbenches: no start page, tips, telemetry, updates or gallery calls. */
export const quietWorkbenchSettings: Readonly<Record<string, unknown>> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'git.openRepositoryInParentFolders': 'never',
};

export async function loadCodeServerModule(): Promise<CodeServerModule> {
  // A computed specifier keeps the .mjs out of TypeScript's resolution; the interface above is its contract.
  const specifier = pathToFileURL(path.join(repoRoot, 'scripts', 'code-server.mjs')).href;
  return (await import(specifier)) as CodeServerModule;
}
