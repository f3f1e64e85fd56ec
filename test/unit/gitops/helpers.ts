import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Reporter } from '../../../src/core/model';
import { runGit, type GitopsFixture } from '../../fixtures/gitops';

/** A fresh temp dir per test, removed afterwards. */
export function useTempDirs(): () => string {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitops-test-'));
    made.push(dir);
    return dir;
  };
}

function hashTree(root: string): string {
  const hash = createHash('sha256');
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name === '.git') continue;
      const full = path.join(dir, entry.name);
      hash.update(path.relative(root, full));
      if (entry.isDirectory()) walk(full);
      else hash.update(fs.readFileSync(full));
    }
  };
  walk(root);
  return hash.digest('hex');
}

/** Everything a failed rollback must leave byte-identical: remote refs, local refs, files, status, worktrees. */
export function snapshot(fixture: GitopsFixture): Record<string, string> {
  return {
    remoteRefs: runGit(['for-each-ref', '--format=%(refname) %(objectname)'], fixture.remote),
    localBranches: runGit(['for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads'], fixture.work),
    head: runGit(['rev-parse', 'HEAD'], fixture.work),
    status: runGit(['status', '--porcelain=v1', '--untracked-files=all'], fixture.work),
    files: hashTree(fixture.work),
    worktrees: runGit(['worktree', 'list', '--porcelain'], fixture.work),
  };
}

export interface RecordingReporter extends Reporter {
  steps: string[];
  debugs: string[];
  /** Every Reporter.progress call, as `done/total`, with the step it followed. */
  progressed: string[];
  /** Runs when a step message starts with the prefix: the test's hook into a running rollback. */
  onStep(prefix: string, action: () => void): void;
}

export function recordingReporter(): RecordingReporter {
  const steps: string[] = [];
  const debugs: string[] = [];
  const progressed: string[] = [];
  const hooks: Array<{ prefix: string; action: () => void }> = [];
  return {
    steps,
    debugs,
    progressed,
    progress(done, total) {
      progressed.push(`${done}/${total} after ${steps.at(-1) ?? 'no step'}`);
    },
    onStep(prefix, action) {
      hooks.push({ prefix, action });
    },
    step(message) {
      steps.push(message);
      for (const hook of hooks) if (message.startsWith(hook.prefix)) hook.action();
    },
    info() {},
    debug(message) {
      debugs.push(message);
    },
    warn() {},
    error() {},
  };
}

export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-Error: ${String(error)}`);
  }
  throw new Error('expected a rejection, but it resolved');
}
