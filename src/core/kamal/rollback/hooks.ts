/**
 * Kamal's local hooks (`.kamal/hooks/<name>`, lib/kamal/commands/hook.rb): run only when the file
 * exists and is executable, with KAMAL_* details in the environment; a non-zero exit aborts.
 */
import { spawn } from 'node:child_process';
import { access, constants, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DeployRollbackError } from '../../model';

export type KamalHookName = 'pre-connect' | 'pre-deploy' | 'pre-app-boot' | 'post-app-boot' | 'post-deploy';

export interface HookDetails {
  recordedAt: string;
  performer: string;
  service: string;
  version: string;
  destination?: string;
  hosts: string[];
  /** Only when the run covers some of the roles (Kamal's `--roles`): Kamal leaves KAMAL_ROLES out otherwise. */
  roles?: string[];
  lock: boolean;
  command: string;
  /** Seconds, post-deploy only. */
  runtime?: number;
}

/** Kamal's `tags.env`: every detail as KAMAL_<NAME>, absent ones left out. */
export function hookEnvironment(details: HookDetails): Record<string, string> {
  const env: Record<string, string> = {
    KAMAL_RECORDED_AT: details.recordedAt,
    KAMAL_PERFORMER: details.performer,
    KAMAL_SERVICE: details.service,
    KAMAL_SERVICE_VERSION: `${details.service}@${details.version}`,
    KAMAL_VERSION: details.version,
    KAMAL_HOSTS: details.hosts.join(','),
    KAMAL_LOCK: String(details.lock),
    KAMAL_COMMAND: details.command,
  };
  if (details.roles !== undefined) env.KAMAL_ROLES = details.roles.join(',');
  if (details.destination !== undefined) env.KAMAL_DESTINATION = details.destination;
  if (details.runtime !== undefined) env.KAMAL_RUNTIME = String(details.runtime);
  return env;
}

export async function hookIsRunnable(file: string): Promise<boolean> {
  try {
    const info = await stat(file);
    if (!info.isFile()) return false;
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface HookRun {
  /** False when there was no executable hook file. */
  ran: boolean;
  output: string;
}

const MAX_OUTPUT_IN_ERROR = 4000;

/**
 * Runs `<hooksPath>/<name>` in `cwd` (the project root, where Kamal runs them) and resolves once
 * it exits 0. The hook gets the caller's environment plus the KAMAL_* details.
 */
export async function runHook(
  name: KamalHookName,
  options: { hooksPath: string; cwd: string; details: HookDetails; env?: NodeJS.ProcessEnv; signal?: AbortSignal },
): Promise<HookRun> {
  const file = join(options.hooksPath, name);
  if (!(await hookIsRunnable(file))) return { ran: false, output: '' };
  const env = { ...(options.env ?? process.env), ...hookEnvironment(options.details) };
  const cwdInfo = await stat(options.cwd).catch(() => undefined);
  if (!cwdInfo?.isDirectory()) throw new DeployRollbackError(`The ${name} hook (${file}) could not run: its working folder ${options.cwd} does not exist.`, `hook ${name}`);
  return new Promise<HookRun>((resolve, reject) => {
    const child = spawn(file, [], { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', (error) => {
      reject(new DeployRollbackError(`The ${name} hook (${file}) could not run: ${error.message}`, `hook ${name}`));
    });
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve({ ran: true, output });
        return;
      }
      const shown = output.length > MAX_OUTPUT_IN_ERROR ? `…${output.slice(-MAX_OUTPUT_IN_ERROR)}` : output;
      const status = code !== null ? `exited with ${code}` : `was killed by ${signal ?? 'a signal'}`;
      reject(new DeployRollbackError(`The ${name} hook (${file}) ${status}, so the rollback stopped.${shown.trim() ? `\n${shown.trimEnd()}` : ''}`, `hook ${name}`));
    });
  });
}
