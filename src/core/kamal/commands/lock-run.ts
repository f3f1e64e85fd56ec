/**
 * Which run holds a deploy lock this product took: its message ends with the process id and the
 * machine (`... by Deploy Rollback (pid 4242 on build-7)`), so a lock left by a run that died
 * (SIGKILL, power cut) can be told apart from a live run's and from anybody else's.
 */
import { hostname } from 'node:os';
import type { LockInfo } from '../../model';
import { oneLine } from '../../text';

export interface LockRun {
  pid: number;
  machine: string;
}

export type LockRunVerdict =
  /** No details: nobody is named (removable after confirmation, as before). */
  | { kind: 'nameless' }
  /** Our run on this machine whose process is gone: stale. */
  | { kind: 'gone'; run: LockRun }
  | { kind: 'alive'; run: LockRun }
  | { kind: 'elsewhere'; run: LockRun }
  /** Kamal's own lock, someone's manual lock, or ours from before runs were named. */
  | { kind: 'unmarked' };

const RUN_MARK = / by Deploy Rollback \(pid ([1-9][0-9]{0,9}) on ([A-Za-z0-9._-]{1,253})\)$/;

/** This machine's name as the mark writes it: characters outside [A-Za-z0-9._-] become "_". */
export function machineName(name: string = hostname()): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 253) || 'unknown';
}

export function thisRun(): LockRun {
  return { pid: process.pid, machine: machineName() };
}

export function runMark(run: LockRun): string {
  return `(pid ${run.pid} on ${run.machine})`;
}

/** The run a lock's message names, only when the whole message ends with our mark. */
export function lockRunOf(lock: Pick<LockInfo, 'message'>): LockRun | undefined {
  const match = lock.message !== undefined ? RUN_MARK.exec(lock.message) : null;
  return match ? { pid: Number(match[1]), machine: match[2] } : undefined;
}

/** Signal 0 tests existence; EPERM means the process exists under another user. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stale only when the details name a run of this product on this machine whose process is gone;
 * a reused pid reads as alive, which keeps the lock (the safe side).
 */
export function judgeLockRun(lock: LockInfo, here: { machine: string; alive: (pid: number) => boolean; self: number } = { machine: machineName(), alive: processAlive, self: process.pid }): LockRunVerdict {
  if (lock.unreadable) return { kind: 'nameless' };
  const run = lockRunOf(lock);
  if (!run) return { kind: 'unmarked' };
  if (run.machine !== here.machine) return { kind: 'elsewhere', run };
  return run.pid !== here.self && !here.alive(run.pid) ? { kind: 'gone', run } : { kind: 'alive', run };
}

/** Why Release Stale Lock leaves a named lock alone, for the CLI and the extension alike. */
export function notStaleReason(verdict: LockRunVerdict, lockHolder: string, release: string): string {
  const holder = oneLine(lockHolder);
  switch (verdict.kind) {
    case 'alive':
      return `it names ${holder}'s Deploy Rollback run ${runMark(verdict.run)}, and that process is still running on this machine: it releases the lock when it ends`;
    case 'elsewhere':
      return `it names ${holder}'s Deploy Rollback run ${runMark(verdict.run)} on another machine, where only it can be told whether that run is gone; once it is, ${release} releases it`;
    default:
      return `it names its holder (${holder}), so it is not stale here; ${release} releases it once that deploy is over`;
  }
}

/** For a refusal: when the lock's run is gone, say so and what removes it; else nothing. */
export function goneRunAdvice(lock: LockInfo, release: string): string {
  const verdict = judgeLockRun(lock);
  return verdict.kind === 'gone' ? ` The Deploy Rollback run that took it ${runMark(verdict.run)} is no longer running on this machine: ${release} (Release Stale Lock on the app row) removes it.` : '';
}

/** The confirmation text for a lock Release Stale Lock may remove. */
export function staleLockQuestion(verdict: LockRunVerdict): string {
  return verdict.kind === 'gone'
    ? `names a Deploy Rollback run ${runMark(verdict.run)} that is no longer running on this machine`
    : 'names nobody';
}
