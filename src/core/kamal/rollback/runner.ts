/**
 * How the executor talks to hosts: one line at a time, a lost connection told apart from a failed
 * command and from a dead docker daemon, a cancel from all three; and the bounded waits around it.
 */
import type { Reporter } from '../../model';
import { looksLikeDockerDown } from '../../ssh/errors';
import { redactSecrets } from '../../ssh/redact';
import { oneLine } from '../../text';
import type { ExecResult, HostSession } from '../../ssh/types';

/** What the runner needs of the run's dependencies. */
export interface RunnerDeps {
  sessions: (host: string) => Promise<HostSession>;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** Unlock, read-back and undo run after a cancel or failure: never cancelled, always bounded. */
export const AFTERMATH_TIMEOUT_MS = 15_000;

export function abortError(): Error {
  const error = new Error('Cancelled');
  error.name = 'AbortError';
  return error;
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `work`, or an AbortError as soon as `signal` aborts (the work itself goes on, bounded by its own deadline). */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

export function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The last line of a host's output, control characters escaped: it goes into messages as is. */
export function lastLine(text: string): string {
  return oneLine(text.trim().split('\n').slice(-1)[0] ?? '');
}

/** A command failed with this exit status: the host answered. */
export class CommandFailed extends Error {
  constructor(readonly host: string, readonly what: string, readonly result: ExecResult) {
    super(`${what} failed on ${host} (exit ${result.code}${result.stderr.trim() ? `: ${lastLine(result.stderr)}` : ''})`);
  }
}

/** The host stopped answering (connection lost or closed mid-command). */
export class HostUnreachable extends Error {
  /** `neverSent`: no connection was made, so the command cannot have run there. */
  constructor(readonly host: string, cause: string, readonly neverSent = false) {
    super(neverSent ? `${host} could not be reached: ${cause}` : `${host} stopped answering: ${cause}`);
  }
}

/** sshd answers but `docker` cannot reach its daemon (exit 255 from `docker exec`, or docker's own words). */
export class DockerDown extends Error {
  constructor(readonly host: string, what: string, result: ExecResult) {
    super(`Docker is not answering on ${host} (${what}: exit ${result.code}${result.stderr.trim() ? `: ${lastLine(result.stderr)}` : ''})`);
  }
}

export interface ExecHow {
  /** Default true: the run's cancel closes the channel. Unlock, read-back and undo pass false. */
  cancellable?: boolean;
  timeoutMs?: number;
  onStdout?: (text: string) => void;
}

/** A command that exited non-zero: docker's daemon gone, or the command itself failed. */
export function commandError(host: string, what: string, result: ExecResult): DockerDown | CommandFailed {
  return looksLikeDockerDown(result.stderr) ? new DockerDown(host, what, result) : new CommandFailed(host, what, result);
}

export class HostRunner {
  constructor(private readonly deps: RunnerDeps) {}

  /** Runs one line; a lost connection becomes HostUnreachable, a cancel an AbortError, an exit status is returned. */
  async exec(host: string, command: string, what: string, how: ExecHow = {}): Promise<ExecResult> {
    const signal = how.cancellable === false ? undefined : this.deps.signal;
    if (signal?.aborted) throw abortError();
    this.deps.reporter.debug(`[ssh ${host}] ${redactSecrets(command)}`);
    let result: ExecResult;
    let session: HostSession | undefined;
    try {
      session = await raceAbort(this.deps.sessions(host), signal);
      result = await session.exec(command, { signal, timeoutMs: how.timeoutMs, onStdout: how.onStdout });
    } catch (error) {
      if (isAbort(error) || signal?.aborted) throw abortError();
      throw new HostUnreachable(host, `${what}: ${errorText(error)}`, session === undefined);
    }
    if (result.code === null) throw new HostUnreachable(host, `${what}: the connection closed before the command finished`);
    return result;
  }

  async run(host: string, command: string, what: string, how: ExecHow = {}): Promise<ExecResult> {
    const result = await this.exec(host, command, what, how);
    if (result.code !== 0) throw commandError(host, what, result);
    return result;
  }
}

/** Docker's own reason, not its usage line: the `Error response from daemon` / `docker:` line if any. */
export function dockerCause(stderr: string): string {
  const lines = stderr.trim().split('\n').map((line) => line.trim()).filter(Boolean);
  return oneLine(lines.find((line) => /Error response from daemon|^docker: |Unable to find image|No such image|Error:/i.test(line)) ?? lines[0] ?? '');
}
