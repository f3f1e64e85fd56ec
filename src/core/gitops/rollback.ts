import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeployRollbackError, silentReporter, type Reporter, type RollbackOutcome, type RollbackPlan } from '../model';
import { appPath, envReleasePath, type GitopsRepo } from './discovery';
import { FULL_SHA, GitCommandError, git, gitBuffer, runGit, shortSha } from './git';
import { isRevertMessage, readPathHistory, requireEnv, subjectOf, type GitopsRelease, type PathCommit } from './history';

/** One commit to undo, limited to the app path. */
export interface GitopsRevertStep {
  sha: string;
  subject: string;
  /** First parent; absent for a root commit (reverted against the empty tree). */
  parent?: string;
  /** Files under the app path that the commit touched. */
  files: string[];
}

export interface GitopsPlanDetail {
  kind: 'gitops';
  root: string;
  env: string;
  app: string;
  /** `<env>/<app>` or `<app>`: the only path the rollback writes. */
  appPath: string;
  /** The shared env release file, which the rollback deliberately leaves alone. */
  envReleasePath: string;
  target: GitopsRelease;
  current?: GitopsRelease;
  /** Newest commit on the app path when planned; the executor refuses if upstream moved past it. */
  pathHead: string;
  /** Newest first. */
  reverts: GitopsRevertStep[];
  skipped: Array<{ sha: string; subject: string; reason: string }>;
  /** Branch checked out when planned, and its upstream, if any. */
  branch?: string;
  upstream?: Upstream;
}

export interface Upstream {
  remote: string;
  /** `refs/heads/main` on the remote. */
  mergeRef: string;
  /** `refs/remotes/origin/main` here. */
  trackingRef: string;
  /** `origin/main`, for messages. */
  name: string;
}

export interface GitopsOptions {
  reporter?: Reporter;
  signal?: AbortSignal;
}

/** How many times a push rejected because someone pushed first is retried on top of the new upstream. */
export const PUSH_RETRIES = 3;

export function isGitopsPlan(plan: RollbackPlan): plan is RollbackPlan<GitopsPlanDetail> {
  const detail = plan.detail as Partial<GitopsPlanDetail> | undefined;
  return plan.source === 'gitops' && detail?.kind === 'gitops';
}

async function currentBranch(root: string, reporter: Reporter): Promise<string | undefined> {
  const result = await runGit(['symbolic-ref', '--quiet', '--short', 'HEAD'], { cwd: root, reporter });
  return result.exitCode === 0 ? result.stdout.toString('utf8').trim() : undefined;
}

async function configValue(root: string, key: string, reporter: Reporter): Promise<string | undefined> {
  const result = await runGit(['config', '--get', key], { cwd: root, reporter });
  return result.exitCode === 0 ? result.stdout.toString('utf8').trim() : undefined;
}

async function upstreamOf(root: string, branch: string, reporter: Reporter): Promise<Upstream | undefined> {
  const remote = await configValue(root, `branch.${branch}.remote`, reporter);
  const mergeRef = await configValue(root, `branch.${branch}.merge`, reporter);
  if (!remote || !mergeRef || remote === '.') return undefined;
  const tracking = await runGit(['rev-parse', '--symbolic-full-name', `${branch}@{upstream}`], { cwd: root, reporter });
  const trackingRef = tracking.exitCode === 0 ? tracking.stdout.toString('utf8').trim() : '';
  if (!trackingRef.startsWith('refs/remotes/')) return undefined;
  return { remote, mergeRef, trackingRef, name: trackingRef.slice('refs/remotes/'.length) };
}

function describeRelease(release: GitopsRelease): string {
  return `${release.version} (${shortSha(release.id)}${release.created ? `, ${release.created}` : ''})`;
}

/**
 * Plans rolling `<env>/<app>` back to the release at `targetSha`: which commits to revert
 * (newest first, only the app path), which to skip and why. Refuses anything ambiguous.
 */
export async function planGitopsRollback(
  repo: GitopsRepo,
  envName: string,
  app: string,
  targetSha: string,
  options: GitopsOptions = {},
): Promise<RollbackPlan<GitopsPlanDetail>> {
  const reporter = options.reporter ?? silentReporter;
  const env = requireEnv(repo, envName);
  const where = appPath(env, app);
  const label = `${envName}/${app}`;
  const wanted = targetSha.trim().toLowerCase();
  if (!FULL_SHA.test(wanted)) {
    throw new DeployRollbackError(
      `"${targetSha}" is not a full commit sha: give all 40 hex characters of a release of ${label} in ${repo.root} (a short sha could match the wrong commit)`,
      'planning',
    );
  }
  const history = await readPathHistory(repo, envName, app, { reporter, signal: options.signal, until: (commit) => commit.sha === wanted });
  const targetIndex = history.commits.findIndex((commit) => commit.sha === wanted);
  if (targetIndex < 0) {
    const known = await runGit(['cat-file', '-e', `${wanted}^{commit}`], { cwd: repo.root, reporter });
    throw new DeployRollbackError(
      known.exitCode === 0
        ? `Commit ${wanted} in ${repo.root} is not a release of ${label}: it does not touch ${where} on the current branch`
        : `Unknown commit ${wanted}: it is not in the gitops repository ${repo.root} (fetch first if it is new)`,
      'planning',
    );
  }
  const target = history.releases.find((release) => release.id === wanted);
  if (!target) {
    throw new DeployRollbackError(
      `Commit ${wanted} ("${subjectOf(history.commits[targetIndex].message)}") touches ${where} but is not a release of ${label} (it is a revert, a delete or has no release.json)`,
      'planning',
    );
  }
  if (target.rolledBack) {
    throw new DeployRollbackError(
      `Release ${describeRelease(target)} of ${label} was rolled back by ${target.rolledBackBy}; roll forward instead: deploy it again`,
      'planning',
    );
  }
  if (target.current) {
    throw new DeployRollbackError(`Release ${describeRelease(target)} of ${label} is already the current release: nothing to roll back`, 'planning');
  }
  const current = history.releases.find((release) => release.current);
  const newer = history.commits.slice(0, targetIndex);
  const revertedBy = new Map<string, string>();
  for (const commit of newer) {
    for (const sha of commit.message.match(/\b[0-9a-f]{40}\b/g) ?? []) if (!revertedBy.has(sha)) revertedBy.set(sha, commit.sha);
  }
  const reverts: GitopsRevertStep[] = [];
  const skipped: GitopsPlanDetail['skipped'] = [];
  for (const commit of newer) {
    const subject = subjectOf(commit.message);
    if (isRevertMessage(commit.message)) {
      skipped.push({ sha: commit.sha, subject, reason: 'it is a revert commit' });
    } else if (revertedBy.has(commit.sha)) {
      skipped.push({ sha: commit.sha, subject, reason: `already reverted by ${shortSha(revertedBy.get(commit.sha) ?? '')}` });
    } else {
      reverts.push(revertStep(commit, subject));
    }
  }
  const branch = await currentBranch(repo.root, reporter);
  const upstream = branch ? await upstreamOf(repo.root, branch, reporter) : undefined;
  const detail: GitopsPlanDetail = {
    kind: 'gitops',
    root: repo.root,
    env: envName,
    app,
    appPath: where,
    envReleasePath: envReleasePath(env),
    target,
    current,
    pathHead: history.head ?? wanted,
    reverts,
    skipped,
    branch,
    upstream,
  };
  const pushTo = upstream ? `${upstream.name}` : 'the upstream branch (none is set: set one before rolling back)';
  const summary = `Revert ${reverts.length} commit${reverts.length === 1 ? '' : 's'} in ${where} and push to ${pushTo}, rolling ${label} back to ${target.version}`;
  return {
    source: 'gitops',
    environment: envName,
    app,
    from: current ? current.version : 'none',
    to: target.version,
    summary,
    lines: planLines(detail, pushTo),
    overview: [
      ...detail.reverts.slice(0, 8).map((step) => `Revert ${shortSha(step.sha)} (${step.files.length} file${step.files.length === 1 ? '' : 's'} in ${detail.appPath})`),
      ...(detail.reverts.length > 8 ? [`… and ${detail.reverts.length - 8} more`] : []),
      `Only ${detail.appPath} changes; push to ${pushTo} without force.`,
    ],
    detail,
  };
}

function revertStep(commit: PathCommit, subject: string): GitopsRevertStep {
  return { sha: commit.sha, subject, parent: commit.parents[0], files: commit.files };
}

function planLines(detail: GitopsPlanDetail, pushTo: string): string[] {
  const label = `${detail.env}/${detail.app}`;
  const lines = [
    `Roll back ${label} in ${detail.root} to ${describeRelease(detail.target)}`,
    detail.current ? `Current release: ${describeRelease(detail.current)}` : 'No release is current (the app was deleted)',
    `Revert ${detail.reverts.length} commit(s) touching ${detail.appPath}, newest first, one revert commit each:`,
  ];
  for (const step of detail.reverts) {
    lines.push(`  revert ${shortSha(step.sha)} ${step.subject}`);
    for (const file of step.files) lines.push(`      ${file}`);
  }
  for (const skip of detail.skipped) lines.push(`  skip ${shortSha(skip.sha)} ${skip.subject}: ${skip.reason}`);
  lines.push(`Leave ${detail.envReleasePath} and every other app untouched`);
  lines.push(
    `Work in a temporary worktree of ${detail.upstream?.name ?? 'the upstream branch'}, then push to ${pushTo} without force (on a race: fetch, redo the reverts on top, retry up to ${PUSH_RETRIES} times)`,
  );
  lines.push(`Fast-forward your checkout of ${detail.branch ?? 'the branch'} if it is clean`);
  return lines;
}

let emptyTreeCache: string | undefined;
async function emptyTree(cwd: string, reporter: Reporter): Promise<string> {
  emptyTreeCache ??= (await git(['hash-object', '-t', 'tree', '--stdin'], { cwd, reporter, input: '' })).trim();
  return emptyTreeCache;
}

export function revertMessage(step: GitopsRevertStep): string {
  return `Revert "${step.subject}"\n\nThis reverts commit ${step.sha}.\n`;
}

/** Undoes one commit's changes under the app path only and commits with git's revert message. */
async function applyRevert(worktree: string, detail: GitopsPlanDetail, step: GitopsRevertStep, reporter: Reporter): Promise<void> {
  const stepName = `reverting ${shortSha(step.sha)} in ${detail.appPath}`;
  const base = step.parent ?? (await emptyTree(worktree, reporter));
  const patch = await gitBuffer(['diff', '--binary', '--full-index', '--no-renames', '--no-ext-diff', '--no-color', base, step.sha, '--', detail.appPath], {
    cwd: worktree,
    reporter,
    step: stepName,
  });
  if (patch.length > 0) {
    const applied = await runGit(['apply', '--cached', '--reverse', '--whitespace=nowarn', '-'], { cwd: worktree, reporter, input: patch, step: stepName });
    if (applied.exitCode !== 0) {
      throw new DeployRollbackError(
        `Reverting ${shortSha(step.sha)} ("${step.subject}") does not apply cleanly to ${detail.appPath} (${step.files.join(', ')}): ${applied.stderr.trim().split('\n').slice(0, 4).join('; ')}`,
        stepName,
      );
    }
  }
  // --no-verify: the message is the contract Gimlet reads; a local commit-msg hook must not rewrite it.
  await git(['commit', '--quiet', '--no-verify', '--allow-empty', '--cleanup=verbatim', '-m', revertMessage(step)], { cwd: worktree, reporter, step: stepName });
}

/**
 * A detached worktree with an index but no files checked out: reverts are applied to the index
 * and committed from it, so a gitops repository of thousands of manifests costs no checkout.
 */
async function withWorktree<T>(root: string, startPoint: string, reporter: Reporter, work: (dir: string) => Promise<T>): Promise<T> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'deploy-rollback-'));
  const dir = path.join(tmp, 'worktree');
  try {
    const step = 'creating a temporary worktree';
    await git(['worktree', 'add', '--quiet', '--no-checkout', '--detach', dir, startPoint], { cwd: root, reporter, step });
    await git(['read-tree', 'HEAD'], { cwd: dir, reporter, step });
    return await work(dir);
  } finally {
    await runGit(['worktree', 'remove', '--force', dir], { cwd: root, reporter });
    await runGit(['worktree', 'prune'], { cwd: root, reporter });
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** The diff stat the rollback would produce, computed in a throw-away worktree. */
export async function previewGitopsRollback(plan: RollbackPlan<GitopsPlanDetail>, options: GitopsOptions = {}): Promise<string[]> {
  const reporter = options.reporter ?? silentReporter;
  const detail = plan.detail;
  return withWorktree(detail.root, detail.pathHead, reporter, async (dir) => {
    const start = (await git(['rev-parse', 'HEAD'], { cwd: dir, reporter })).trim();
    for (const step of detail.reverts) await applyRevert(dir, detail, step, reporter);
    const stat = await git(['diff', '--stat', '--no-color', start, 'HEAD'], { cwd: dir, reporter, step: 'computing the diff stat' });
    return stat.split('\n').filter((line) => line.trim() !== '');
  });
}

function throwIfAborted(signal: AbortSignal | undefined, step: string): void {
  if (signal?.aborted) throw new DeployRollbackError(`Rollback cancelled while ${step}; nothing was pushed and your checkout is unchanged`, step);
}

/** git's verdict on the ref (`[remote rejected] (pre-receive hook declined)`) and what the remote said. */
function pushRejection(output: string): string {
  const lines = output.split('\n');
  const verdicts = lines.filter((line) => line.startsWith('!\t')).map((line) => line.split('\t')[2] ?? line);
  const remote = lines.filter((line) => line.startsWith('remote:')).map((line) => line.slice('remote:'.length).trim()).filter(Boolean);
  const parts = [...verdicts, ...(remote.length > 0 ? [`the remote said: ${remote.join(' / ')}`] : [])];
  return parts.length > 0 ? parts.join('; ') : lines.filter((line) => line.trim() !== '').slice(-3).join('; ');
}

function isPushRace(output: string): boolean {
  return /(^|\s)\[rejected\]/m.test(output) && /fetch first|non-fast-forward/.test(output);
}

async function newestPathCommit(root: string, rev: string, appPathName: string, reporter: Reporter): Promise<string> {
  return (await git(['log', '-1', '--format=%H', rev, '--', appPathName], { cwd: root, reporter, step: `reading ${rev}` })).trim();
}

/**
 * Runs the plan all-or-nothing: reverts in a temporary worktree of the upstream branch,
 * pushes without force (if someone pushed first: fetch, redo the reverts on the new tip, retry), then
 * fast-forwards the user's checkout when that is safe. Before the push succeeds, nothing
 * the user sees changes; on any failure the worktree is removed.
 */
export async function executeGitopsRollback(
  plan: RollbackPlan<GitopsPlanDetail>,
  reporter: Reporter = silentReporter,
  signal?: AbortSignal,
): Promise<RollbackOutcome> {
  const detail = plan.detail;
  const root = detail.root;
  const label = `${detail.env}/${detail.app}`;
  let step = 'checking the branch';
  try {
    throwIfAborted(signal, step);
    reporter.step(`Checking ${root}`);
    const branch = await currentBranch(root, reporter);
    if (!branch) throw new DeployRollbackError(`${root} has a detached HEAD: check out the branch that Flux deploys from, then roll back`, step);
    if (detail.branch && branch !== detail.branch) {
      throw new DeployRollbackError(`${root} is now on branch ${branch}, but the plan was made on ${detail.branch}: plan again`, step);
    }
    const upstream = await upstreamOf(root, branch, reporter);
    if (!upstream) throw new DeployRollbackError(`Branch ${branch} in ${root} has no upstream to push to: run git branch --set-upstream-to=origin/${branch}`, step);

    step = `fetching ${upstream.name}`;
    reporter.step(`Fetching ${upstream.name}`);
    await git(['fetch', '--quiet', '--no-tags', upstream.remote, `+${upstream.mergeRef}:${upstream.trackingRef}`], { cwd: root, reporter, signal, step });
    throwIfAborted(signal, step);

    step = 'checking local changes';
    const counts = (await git(['rev-list', '--left-right', '--count', `HEAD...${upstream.trackingRef}`], { cwd: root, reporter, step })).trim().split(/\s+/);
    const ahead = Number(counts[0]);
    const behind = Number(counts[1]);
    if (ahead > 0) {
      throw new DeployRollbackError(
        `Branch ${branch} in ${root} has ${ahead} commit(s) not pushed to ${upstream.name}${behind > 0 ? ` and is ${behind} behind (diverged)` : ''}: push or drop them before rolling back`,
        step,
      );
    }
    const dirty = (await git(['status', '--porcelain=v1', '-z', '--untracked-files=all', '--', detail.appPath], { cwd: root, reporter, step }))
      .split('\0')
      .filter((entry) => entry.length > 3)
      .map((entry) => entry.slice(3));
    if (dirty.length > 0) {
      throw new DeployRollbackError(
        `Uncommitted changes in ${detail.appPath} in ${root} (${dirty.slice(0, 5).join(', ')}${dirty.length > 5 ? ', …' : ''}): commit or discard them before rolling back ${label}`,
        step,
      );
    }
    const upstreamHead = await newestPathCommit(root, upstream.trackingRef, detail.appPath, reporter);
    if (upstreamHead !== detail.pathHead) {
      throw new DeployRollbackError(
        `${upstream.name} has newer commits on ${detail.appPath} than the plan saw (newest: ${shortSha(upstreamHead)}, plan: ${shortSha(detail.pathHead)}): refresh and plan again`,
        step,
      );
    }

    step = 'creating a temporary worktree';
    const pushed = await withWorktree(root, upstream.trackingRef, reporter, async (worktree) => {
      const revertAll = async (): Promise<void> => {
        for (const revert of detail.reverts) {
          step = `reverting ${shortSha(revert.sha)}`;
          throwIfAborted(signal, step);
          reporter.step(`Reverting ${shortSha(revert.sha)} ${revert.subject} (${detail.appPath} only)`);
          await applyRevert(worktree, detail, revert, reporter);
        }
      };
      await revertAll();
      for (let attempt = 0; ; attempt++) {
        step = `pushing to ${upstream.name}`;
        throwIfAborted(signal, step);
        reporter.step(`Pushing to ${upstream.name}${attempt > 0 ? ` (retry ${attempt} of ${PUSH_RETRIES})` : ''}`);
        // Checked again after the step is shown: that is the last moment a cancel can still undo everything.
        throwIfAborted(signal, step);
        const tip = (await git(['rev-parse', 'HEAD'], { cwd: worktree, reporter, step })).trim();
        // No signal here: killing git mid-push would leave it unknown whether the remote moved.
        const push = await runGit(['push', '--porcelain', upstream.remote, `${tip}:${upstream.mergeRef}`], { cwd: worktree, reporter, step });
        if (push.exitCode === 0) return tip;
        const output = `${push.stdout.toString('utf8')}\n${push.stderr}`;
        if (!isPushRace(output) || attempt >= PUSH_RETRIES) {
          const reason = pushRejection(output);
          throw new DeployRollbackError(
            `Push to ${upstream.name} was rejected${attempt >= PUSH_RETRIES && isPushRace(output) ? ` ${attempt + 1} times because others kept pushing` : ''}: ${reason}. Nothing was pushed; your checkout is unchanged`,
            step,
          );
        }
        step = `catching up with ${upstream.name}`;
        reporter.step(`Someone pushed to ${upstream.name} first: fetching and redoing the reverts on top`);
        await git(['fetch', '--quiet', '--no-tags', upstream.remote, `+${upstream.mergeRef}:${upstream.trackingRef}`], { cwd: worktree, reporter, signal, step });
        const raced = await newestPathCommit(worktree, upstream.trackingRef, detail.appPath, reporter);
        if (raced !== detail.pathHead) {
          throw new DeployRollbackError(
            `While rolling back, ${label} changed on ${upstream.name} (${shortSha(raced)}): nothing was pushed; refresh and plan again`,
            step,
          );
        }
        // The race left the app path alone (checked above), so the same reverse patches apply on the new tip.
        await git(['reset', '--quiet', '--mixed', upstream.trackingRef], { cwd: worktree, reporter, step });
        await revertAll();
      }
    });

    const lines = [
      `Pushed ${detail.reverts.length} revert commit(s) to ${upstream.name}: ${pushed}`,
      ...detail.reverts.map((revert) => `  reverted ${shortSha(revert.sha)} ${revert.subject} (${detail.appPath})`),
    ];
    reporter.info(`[git] rolled back ${label} to ${plan.to}: pushed ${shortSha(pushed)} to ${upstream.name}`);
    step = 'updating your checkout';
    reporter.step(`Fast-forwarding ${branch} in ${root}`);
    lines.splice(1, 0, await fastForwardCheckout(root, branch, upstream, reporter));
    return { ok: true, message: `Rolled back ${label} to ${plan.to}: pushed ${detail.reverts.length} revert commit(s) to ${upstream.name}`, lines };
  } catch (error) {
    if (error instanceof DeployRollbackError && !(error instanceof GitCommandError)) {
      reporter.error(error.message);
      throw error;
    }
    const message = error instanceof GitCommandError ? error.failure : error instanceof Error ? error.message : String(error);
    const wrapped = new DeployRollbackError(`Rolling back ${label} failed while ${step}: ${message}. Nothing was pushed; your checkout is unchanged`, step);
    reporter.error(wrapped.message);
    throw wrapped;
  }
}

/** After a successful push nothing may throw: a checkout we cannot update is reported, not fatal. */
async function fastForwardCheckout(root: string, branch: string, upstream: Upstream, reporter: Reporter): Promise<string> {
  try {
    if ((await currentBranch(root, reporter)) !== branch) return `Your checkout in ${root} is no longer on ${branch}; left as is (run git pull on ${branch})`;
    const status = await git(['status', '--porcelain=v1', '--untracked-files=no'], { cwd: root, reporter });
    if (status.trim() !== '') return `Your checkout in ${root} has uncommitted changes; left as is (run git pull when ready)`;
    const merged = await runGit(['merge', '--ff-only', '--quiet', upstream.trackingRef], { cwd: root, reporter });
    if (merged.exitCode !== 0) return `Could not fast-forward ${branch} in ${root} (${merged.stderr.trim().split('\n')[0]}); left as is (run git pull)`;
    return `Fast-forwarded ${branch} in ${root} to ${upstream.name}`;
  } catch (error) {
    reporter.warn(`Could not update ${root}: ${error instanceof Error ? error.message : String(error)}`);
    return `Your checkout in ${root} was left as is (run git pull)`;
  }
}
