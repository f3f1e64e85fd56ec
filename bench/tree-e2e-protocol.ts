// What bench/tree-e2e.ts and its extension-host half (bench/tree-e2e-suite.ts) exchange: no vscode import, so the bench process can load it.

export const RESULT_ENV = 'DEPLOY_ROLLBACK_BENCH_RESULT';
export const RUNS_ENV = 'DEPLOY_ROLLBACK_BENCH_RUNS';
export const VERSIONS_ENV = 'DEPLOY_ROLLBACK_BENCH_VERSIONS';
/** `output`: the in-process side reports into the extension's output channel instead of nowhere. */
export const REPORTER_ENV = 'DEPLOY_ROLLBACK_BENCH_IN_PROCESS_REPORTER';
/** `1`: the in-process side runs inside a progress notification as the command's run does, to tell the notification's cost apart. */
export const PROGRESS_ENV = 'DEPLOY_ROLLBACK_BENCH_IN_PROCESS_PROGRESS';

/** A folder: each side's run is CPU-profiled there (`N-extension.cpuprofile`, `N-in-process.cpuprofile`), to see where the command layer's CPU goes. */
export const PROFILE_ENV = 'DEPLOY_ROLLBACK_BENCH_PROFILE';

export interface TreeBenchRun {
  /** Whole command, invocation → returned outcome. */
  extensionMs: number;
  /** Invocation → the confirmation was asked (resolving, planning). */
  extensionToConfirmMs: number;
  /** Invocation → the source's executeRollback returned (the rollback done; the command then refreshes and reads the releases again). */
  extensionToExecutedMs: number;
  inProcessMs: number;
  /** CPU time (user + system) of the extension host during each side's run: less noisy than the wall time on a shared machine. */
  extensionCpuMs: number;
  inProcessCpuMs: number;
  /** CPU time of the machine's processes during each side's run, by group (Chromium, test hosts, …; from /proc, whole ticks). */
  extensionCpuByGroup: Record<string, number>;
  inProcessCpuByGroup: Record<string, number>;
  /** Which side ran first in this pair. */
  first: 'extension' | 'in-process';
  /** Whether each side planned from the tree's read, without an exchange of its own. */
  extensionFastPath: boolean;
  inProcessFastPath: boolean;
  /** Calls on host sessions (exchanges on open connections), planning and run; the command's until its rollback is done. */
  extensionExchanges: number;
  inProcessExchanges: number;
}

export interface TreeBenchResult {
  vscodeVersion: string;
  runs: TreeBenchRun[];
  error?: string;
}
