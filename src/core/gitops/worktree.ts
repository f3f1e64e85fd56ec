/**
 * Applying a plan in a temporary worktree (never in the user's checkout): the revert or restore
 * commits, the check that the app path ends at the target, and cleanup of stale worktrees.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeployRollbackError, silentReporter, type Reporter, type RollbackPlan } from '../model';
import { endOrphanedGitGroups } from './children';
import { git, gitBuffer, runGit, shortSha } from './git';
import type { GitopsOptions, GitopsPlanDetail, GitopsRevertStep } from './plan';

let emptyTreeCache: string | undefined;
async function emptyTree(cwd: string, reporter: Reporter): Promise<string> {
  emptyTreeCache ??= (await git(['hash-object', '-t', 'tree', '--stdin'], { cwd, reporter, input: '' })).trim();
  return emptyTreeCache;
}

export function revertMessage(step: GitopsRevertStep): string {
  return `Revert "${step.subject}"\n\nThis reverts commit ${step.sha}.\n`;
}

/**
 * The one commit of a restore, as Gimlet's listing must read it: the target only by a short sha
 * (Gimlet calls any release whose full sha a later message holds rolled back), and a "This reverts
 * commit" line per commit it undoes (Gimlet then skips the restore instead of listing it as a release).
 */
export function restoreMessage(detail: GitopsPlanDetail): string {
  const label = `${detail.env}/${detail.app}`;
  const target = detail.target.id.slice(0, 12);
  const undone = detail.undoes.filter((sha) => sha !== detail.target.id).map((sha) => `This reverts commit ${sha}.`);
  return `Restore ${label} to ${detail.target.version} (${shortSha(detail.target.id)})\n\nWrites ${detail.appPath} exactly as it is at commit ${target} (short on purpose: Gimlet reads a full sha here as a rollback of that release).\n${undone.length > 0 ? `\n${undone.join('\n')}\n` : ''}`;
}

/** Undoes one commit's changes under the app path only and commits with git's revert message. */
async function applyRevert(worktree: string, detail: GitopsPlanDetail, step: GitopsRevertStep, reporter: Reporter, signal?: AbortSignal): Promise<void> {
  const stepName = `reverting ${shortSha(step.sha)} in ${detail.appPath}`;
  const base = step.parent ?? (await emptyTree(worktree, reporter));
  const patch = await gitBuffer(['diff', '--binary', '--full-index', '--no-renames', '--no-ext-diff', '--no-color', base, step.sha, '--', detail.appPath], {
    cwd: worktree,
    reporter,
    signal,
    step: stepName,
  });
  if (patch.length > 0) {
    const applied = await runGit(['apply', '--cached', '--reverse', '--whitespace=nowarn', '-'], { cwd: worktree, reporter, input: patch, signal, step: stepName });
    if (applied.exitCode !== 0) {
      throw new DeployRollbackError(
        `Reverting ${shortSha(step.sha)} ("${step.subject}") does not apply cleanly to ${detail.appPath} (${step.files.join(', ')}): ${applied.stderr.trim().split('\n').slice(0, 4).join('; ')}`,
        stepName,
      );
    }
  }
  // --no-verify: the message is the contract Gimlet reads; a local commit-msg hook must not rewrite it.
  await git(['commit', '--quiet', '--no-verify', '--allow-empty', '--cleanup=verbatim', '-m', revertMessage(step)], { cwd: worktree, reporter, signal, step: stepName });
}

/** Replaces the app path in the index with the target's tree and commits it, naming the target. */
async function applyRestore(worktree: string, detail: GitopsPlanDetail, reporter: Reporter, signal?: AbortSignal): Promise<void> {
  const step = `writing ${detail.appPath} as at ${shortSha(detail.target.id)}`;
  await git(['rm', '-r', '-q', '--cached', '--ignore-unmatch', '--', detail.appPath], { cwd: worktree, reporter, signal, step });
  if (detail.targetTree) await git(['read-tree', `--prefix=${detail.appPath}/`, detail.targetTree], { cwd: worktree, reporter, signal, step });
  await git(['commit', '--quiet', '--no-verify', '--allow-empty', '--cleanup=verbatim', '-m', restoreMessage(detail)], { cwd: worktree, reporter, signal, step });
}

export async function applyPlan(worktree: string, detail: GitopsPlanDetail, reporter: Reporter, signal: AbortSignal | undefined, onStep: (message: string, name: string) => void): Promise<void> {
  if (detail.method === 'restore-tree') {
    onStep(`Writing ${detail.appPath} as it is at ${shortSha(detail.target.id)} (${detail.target.version})`, `writing ${detail.appPath}`);
    await applyRestore(worktree, detail, reporter, signal);
    return;
  }
  for (const revert of detail.reverts) {
    onStep(`Reverting ${shortSha(revert.sha)} ${revert.subject} (${detail.appPath} only)`, `reverting ${shortSha(revert.sha)}`);
    await applyRevert(worktree, detail, revert, reporter, signal);
  }
}

async function treeAt(cwd: string, rev: string, where: string, reporter: Reporter): Promise<string | undefined> {
  const result = await runGit(['rev-parse', '--verify', '--quiet', `${rev}:${where}`], { cwd, reporter });
  return result.exitCode === 0 ? result.stdout.toString('utf8').trim() : undefined;
}

/**
 * The rollback's promise, checked on the commits before they are pushed: the app path equals the
 * target's tree exactly and nothing outside it changed. Names the paths that differ otherwise.
 */
export async function verifyResult(worktree: string, start: string, detail: GitopsPlanDetail, reporter: Reporter, signal?: AbortSignal): Promise<string> {
  const step = 'verifying the result';
  const result = await treeAt(worktree, 'HEAD', detail.appPath, reporter);
  const split = (text: string): string[] => text.split('\0').filter((entry) => entry !== '');
  const changed = split(await git(['diff', '--name-only', '-z', '--no-renames', start, 'HEAD'], { cwd: worktree, reporter, signal, step }));
  const outside = changed.filter((file) => file !== detail.appPath && !file.startsWith(`${detail.appPath}/`));
  const inside =
    result === detail.targetTree ? [] : split(await git(['diff', '--name-only', '-z', '--no-renames', detail.target.id, 'HEAD', '--', detail.appPath], { cwd: worktree, reporter, signal, step }));
  if (result !== detail.targetTree || outside.length > 0) {
    const list = (files: string[]): string => `${files.slice(0, 10).join(', ')}${files.length > 10 ? `, … (${files.length} in all)` : ''}`;
    const problems = [
      ...(result !== detail.targetTree ? [`${detail.appPath} would not equal ${shortSha(detail.target.id)} (${detail.target.version}): ${inside.length > 0 ? `differs in ${list(inside)}` : 'its tree differs'}`] : []),
      ...(outside.length > 0 ? [`files outside ${detail.appPath} would change: ${list(outside)}`] : []),
    ];
    const offer =
      detail.method === 'reverts'
        ? `. The honest alternative is one commit writing ${detail.appPath} as at ${shortSha(detail.target.id)}: plan again choosing it (CLI: --restore-tree)`
        : '';
    throw new DeployRollbackError(`Verification failed, so nothing was pushed: ${problems.join('; ')}${offer}`, step);
  }
  return `Verified: ${detail.appPath} equals ${shortSha(detail.target.id)} (${detail.target.version}) exactly, and nothing outside it changes`;
}

const WORKTREE_LOCK = 'deploy-rollback pid ';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary worktrees that an earlier run left behind when it was killed (each is locked
 * with its creator's pid; a live creator's worktree is left alone), then lets git prune the rest.
 */
export async function pruneStaleWorktrees(root: string, reporter: Reporter = silentReporter): Promise<string[]> {
  endOrphanedGitGroups(reporter);
  const listed = await runGit(['worktree', 'list', '--porcelain'], { cwd: root, reporter });
  const removed: string[] = [];
  if (listed.exitCode === 0) {
    for (const entry of listed.stdout.toString('utf8').split('\n\n')) {
      const dir = /^worktree (.+)$/m.exec(entry)?.[1];
      const pid = Number(new RegExp(`^locked ${WORKTREE_LOCK}(\\d+)$`, 'm').exec(entry)?.[1]);
      if (!dir || !Number.isInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
      await runGit(['worktree', 'remove', '--force', '--force', dir], { cwd: root, reporter });
      const parent = path.dirname(dir);
      if (path.basename(parent).startsWith('deploy-rollback-')) await fs.rm(parent, { recursive: true, force: true });
      reporter.info(`Removed a temporary worktree left by an interrupted run (pid ${pid}): ${dir}`);
      removed.push(dir);
    }
  }
  await runGit(['worktree', 'prune'], { cwd: root, reporter });
  return removed;
}

/**
 * A detached worktree with an index but no files checked out: reverts are applied to the index
 * and committed from it, so a gitops repository of thousands of manifests costs no checkout.
 * Removed on every way out; locked with our pid so a later run can tell a crashed one's leftovers.
 */
export async function withWorktree<T>(root: string, startPoint: string, reporter: Reporter, work: (dir: string) => Promise<T>): Promise<T> {
  await pruneStaleWorktrees(root, reporter);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'deploy-rollback-'));
  const dir = path.join(tmp, 'worktree');
  try {
    const step = 'creating a temporary worktree';
    await git(['worktree', 'add', '--quiet', '--no-checkout', '--detach', '--lock', '--reason', `${WORKTREE_LOCK}${process.pid}`, dir, startPoint], { cwd: root, reporter, step });
    await git(['read-tree', 'HEAD'], { cwd: dir, reporter, step });
    return await work(dir);
  } finally {
    await runGit(['worktree', 'remove', '--force', '--force', dir], { cwd: root, reporter });
    await runGit(['worktree', 'prune'], { cwd: root, reporter });
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** The diff stat the rollback would produce and its verification, computed in a throw-away worktree. */
export async function previewGitopsRollback(plan: RollbackPlan<GitopsPlanDetail>, options: GitopsOptions = {}): Promise<string[]> {
  const reporter = options.reporter ?? silentReporter;
  const detail = plan.detail;
  return withWorktree(detail.root, detail.pathHead, reporter, async (dir) => {
    const start = (await git(['rev-parse', 'HEAD'], { cwd: dir, reporter })).trim();
    await applyPlan(dir, detail, reporter, options.signal, () => undefined);
    const verified = await verifyResult(dir, start, detail, reporter, options.signal);
    const stat = await git(['diff', '--stat', '--no-color', start, 'HEAD'], { cwd: dir, reporter, signal: options.signal, step: 'computing the diff stat' });
    return [...stat.split('\n').filter((line) => line.trim() !== ''), verified];
  });
}
