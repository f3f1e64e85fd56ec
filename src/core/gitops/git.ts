import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeployRollbackError, silentReporter, type Reporter } from '../model';
import { trackGitChild } from './children';
import { quoteArgv } from '../shell';
import { quotedInput } from '../text';

/** A git command that exited non-zero; `step` names what we were doing. */
export class GitCommandError extends DeployRollbackError {
  constructor(
    message: string,
    /** The message without the step prefix: the command, where, and git's own words. */
    readonly failure: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    step?: string,
  ) {
    super(message, step);
    this.name = 'GitCommandError';
  }
}

export interface GitRunOptions {
  cwd: string;
  input?: Buffer | string;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** What we were doing, for the error message ("fetching origin"). */
  step?: string;
  /**
   * Network operations (fetch, push): git runs in its own process group so a timeout or a
   * cancel also stops the ssh / remote-helper it started, and a remote that never answers
   * cannot hold us longer than this many milliseconds.
   */
  timeoutMs?: number;
}

/** A git command stopped because it ran past its timeout (a remote that does not answer). */
export class GitTimeoutError extends DeployRollbackError {
  constructor(message: string, readonly args: readonly string[], step?: string) {
    super(message, step);
    this.name = 'GitTimeoutError';
  }
}

/** The default for `deployRollback.gitops.networkTimeout`. */
export const DEFAULT_NETWORK_TIMEOUT_MS = 60_000;

export interface GitResult {
  exitCode: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * C locale so messages we match on ("[rejected]") are stable; no prompts so a missing
 * credential fails instead of hanging; no optional locks so reading never blocks the user's git.
 */
export function gitEnv(): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C', LANGUAGE: 'C', GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0' };
}

export function describeGit(args: readonly string[], cwd: string): string {
  return `${quoteArgv(['git', ...args])} (in ${cwd})`;
}

export function spawnGit(args: readonly string[], cwd: string, ownGroup = false): ChildProcessWithoutNullStreams {
  const child = spawn('git', args, { cwd, env: gitEnv(), stdio: ['pipe', 'pipe', 'pipe'], detached: ownGroup });
  trackGitChild(child, ownGroup);
  return child;
}

/** Stops git and whatever it started (ssh, remote helpers) when it runs in its own process group. */
function stopGit(child: ChildProcessWithoutNullStreams, ownGroup: boolean): void {
  if (ownGroup && child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
      return;
    } catch {
      // The group is already gone; fall through to the child itself.
    }
  }
  child.kill('SIGKILL');
}

/** Runs git and resolves with its output whatever the exit code; rejects only if git cannot start, is cancelled or times out. */
export function runGit(args: readonly string[], options: GitRunOptions): Promise<GitResult> {
  const reporter = options.reporter ?? silentReporter;
  reporter.debug(`[git] ${describeGit(args, options.cwd)}`);
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new DeployRollbackError(`Cancelled before ${options.step ?? `git ${args[0]}`}`, options.step));
      return;
    }
    const ownGroup = options.timeoutMs !== undefined;
    const child = spawnGit(args, options.cwd, ownGroup);
    let timedOut = false;
    const onAbort = (): void => stopGit(child, ownGroup);
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            stopGit(child, ownGroup);
          }, options.timeoutMs);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new DeployRollbackError(`Could not run git in ${options.cwd}: ${error.message}`, options.step));
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) {
        reject(new DeployRollbackError(`Cancelled while ${options.step ?? `running git ${args[0]}`}`, options.step));
        return;
      }
      if (timedOut) {
        const seconds = Math.round((options.timeoutMs ?? 0) / 100) / 10;
        reject(
          new GitTimeoutError(
            `git ${args[0]} got no answer within ${seconds} s while ${options.step ?? `running git ${args[0]}`} (deployRollback.gitops.networkTimeout): the remote is not responding, so git was stopped`,
            args,
            options.step,
          ),
        );
        return;
      }
      resolve({ exitCode, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') });
    });
    // EPIPE when git exits before reading all input is reported through 'close' anyway.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Runs git and returns stdout as text; a non-zero exit becomes a GitCommandError naming the command. */
export async function git(args: readonly string[], options: GitRunOptions): Promise<string> {
  const result = await runGit(args, options);
  if (result.exitCode !== 0) throw gitFailure(args, options, result);
  return result.stdout.toString('utf8');
}

export async function gitBuffer(args: readonly string[], options: GitRunOptions): Promise<Buffer> {
  const result = await runGit(args, options);
  if (result.exitCode !== 0) throw gitFailure(args, options, result);
  return result.stdout;
}

export function gitFailure(args: readonly string[], options: GitRunOptions, result: GitResult): GitCommandError {
  const detail = result.stderr.trim().split('\n').slice(-6).join('\n') || `exit code ${result.exitCode}`;
  const what = options.step ? `${options.step}: ` : '';
  const failure = `git ${args.join(' ')} failed in ${options.cwd}: ${detail}`;
  return new GitCommandError(
    `${what}${failure}`,
    failure,
    args,
    result.exitCode,
    result.stderr,
    options.step,
  );
}

export interface GitObject {
  oid: string;
  type: string;
  content: Buffer;
}

/**
 * One `git cat-file --batch` process answering `<rev>:<path>` requests in order, so reading
 * hundreds of release.json blobs costs one process instead of hundreds.
 */
export class CatFileBatch {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: Array<{ resolve: (object: GitObject | undefined) => void; reject: (error: Error) => void }> = [];
  private buffered: Buffer = Buffer.alloc(0);
  private failure: Error | undefined;
  private closed = false;

  constructor(readonly cwd: string, reporter: Reporter = silentReporter) {
    reporter.debug(`[git] ${describeGit(['cat-file', '--batch'], cwd)}`);
    this.child = spawnGit(['cat-file', '--batch'], cwd);
    this.child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    const stderr: Buffer[] = [];
    this.child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (error) => this.fail(new DeployRollbackError(`Could not run git cat-file in ${cwd}: ${error.message}`)));
    this.child.on('close', (exitCode) => {
      if (this.closed && this.waiting.length === 0) return;
      const detail = Buffer.concat(stderr).toString('utf8').trim();
      this.fail(new DeployRollbackError(`git cat-file --batch exited (${exitCode}) in ${cwd}${detail ? `: ${detail}` : ''}`));
    });
  }

  /** The object's content, or undefined when `<rev>:<path>` does not exist. */
  async read(spec: string): Promise<Buffer | undefined> {
    return (await this.object(spec))?.content;
  }

  /** The object's name, type and content, or undefined when `<rev>:<path>` does not exist. */
  object(spec: string): Promise<GitObject | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('CatFileBatch is closed'));
    if (spec.includes('\n')) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(`${spec}\n`);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.child.stdin.end();
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const headerEnd = this.buffered.indexOf(0x0a);
      if (headerEnd < 0) return;
      const header = this.buffered.subarray(0, headerEnd).toString('utf8');
      if (header.endsWith(' missing') || header.endsWith(' ambiguous')) {
        this.buffered = this.buffered.subarray(headerEnd + 1);
        this.waiting.shift()?.resolve(undefined);
        continue;
      }
      const [oid, type, sizeText] = header.split(' ');
      const size = Number(sizeText);
      const end = headerEnd + 1 + size;
      if (this.buffered.length < end + 1) return;
      const content = Buffer.from(this.buffered.subarray(headerEnd + 1, end));
      this.buffered = this.buffered.subarray(end + 1);
      this.waiting.shift()?.resolve({ oid, type, content });
    }
  }
}

export const FULL_SHA = /^[0-9a-f]{40}$/;

export function shortSha(sha: string): string {
  return sha.slice(0, 10);
}

/**
 * What is wrong with `value` as a full commit sha, in words that name the exact problem
 * (spaces, uppercase, length, a revision expression, a tag), or undefined when it is one.
 */
export function fullShaProblem(value: string): string | undefined {
  if (FULL_SHA.test(value)) return undefined;
  const shown = quotedInput(value);
  const trimmed = value.trim();
  if (trimmed === '') return 'it is empty: give the full 40-hex gitops sha of the release';
  if (trimmed !== value) return `${shown} has spaces around it: give the sha alone (${trimmed})`;
  if (/^[0-9a-fA-F]+$/.test(value)) {
    if (/[A-F]/.test(value) && value.length === 40) return `${shown} has uppercase letters; git shas are lowercase: use ${value.toLowerCase()}`;
    if (value.length < 40) return `${shown} is a short sha (${value.length} characters): give the full 40-hex sha, a short one could name another commit`;
    return `${shown} is ${value.length} characters long; a full sha has exactly 40 (a character too many was copied?)`;
  }
  if (/[~^@:]|\.\./.test(value) || /^(HEAD|FETCH_HEAD|ORIG_HEAD)\b/.test(value)) {
    return `${shown} is a revision expression, not a sha: give the release's full 40-hex sha (git rev-parse ${value} prints one, but check it is a release)`;
  }
  const bad = [...value].find((character) => !/[0-9a-fA-F]/.test(character)) ?? '';
  return `${shown} is not a sha (it contains ${JSON.stringify(bad)}; a tag, branch or version?): give the release's full 40-hex gitops sha, as "releases --json" lists in "id"`;
}

/** Git's marks of an operation stopped half-way, what it is, and how the user ends it. */
const IN_PROGRESS: ReadonlyArray<{ mark: string; what: string; end: string }> = [
  { mark: 'rebase-merge', what: 'a rebase', end: 'git rebase --continue or git rebase --abort' },
  { mark: 'rebase-apply', what: 'a rebase (or git am)', end: 'git rebase --continue or git rebase --abort (git am --abort)' },
  { mark: 'MERGE_HEAD', what: 'a merge', end: 'git commit or git merge --abort' },
  { mark: 'CHERRY_PICK_HEAD', what: 'a cherry-pick', end: 'git cherry-pick --continue or git cherry-pick --abort' },
  { mark: 'REVERT_HEAD', what: 'a revert', end: 'git revert --continue or git revert --abort' },
  { mark: 'sequencer', what: 'a cherry-pick or revert of several commits', end: 'git cherry-pick --continue or --abort' },
  { mark: 'BISECT_LOG', what: 'a bisect', end: 'git bisect reset' },
];

/**
 * Set when the checkout is in the middle of a rebase, merge, cherry-pick, revert or bisect: HEAD
 * is then git's working state, not the branch, so neither history nor a rollback may be read from it.
 */
export async function operationInProgress(root: string, reporter: Reporter = silentReporter): Promise<string | undefined> {
  const result = await runGit(['rev-parse', ...IN_PROGRESS.flatMap(({ mark }) => ['--git-path', mark])], { cwd: root, reporter });
  if (result.exitCode !== 0) return undefined;
  const paths = result.stdout.toString('utf8').split('\n');
  for (const [index, operation] of IN_PROGRESS.entries()) {
    const mark = paths[index];
    if (!mark) continue;
    const exists = await fs.access(path.resolve(root, mark)).then(
      () => true,
      () => false,
    );
    if (exists) return `${root} is in the middle of ${operation.what} (HEAD is git's working state, not your branch): finish it or abort it (${operation.end}), then try again`;
  }
  return undefined;
}
