import { DeployRollbackError, silentReporter, type Reporter, type RollbackOutcome, type RollbackPlan } from '../model';
import { DEFAULT_NETWORK_TIMEOUT_MS, GitCommandError, GitTimeoutError, git, operationInProgress, runGit, shortSha } from './git';
import { currentBranch, upstreamOf, PUSH_RETRIES, type GitopsPlanDetail, type Upstream } from './plan';
import { applyPlan, verifyResult, withWorktree } from './worktree';

export {
  planGitopsRollback,
  isGitopsPlan,
  RestoreTreeOffer,
  PUSH_RETRIES,
  type GitopsCommitKind,
  type GitopsRevertStep,
  type GitopsPlanDetail,
  type Upstream,
  type GitopsOptions,
} from './plan';
export { revertMessage, restoreMessage, pruneStaleWorktrees, previewGitopsRollback } from './worktree';

export interface GitopsExecuteOptions {
  /** Bound on each fetch and push (`deployRollback.gitops.networkTimeout`); default 60 s. */
  networkTimeoutMs?: number;
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

/**
 * Every way git reports that someone else moved the branch at the same moment: behind
 * (fetch first, non-fast-forward), a lease that no longer holds (stale info), or the remote's
 * ref transaction losing to a concurrent push (cannot lock ref … is at X but expected Y).
 */
export function isPushRace(output: string): boolean {
  if (!/\[(remote )?rejected\]/.test(output)) return false;
  return /fetch first|non-fast-forward|stale info|cannot lock ref|failed to lock|incorrect old value|remote ref (has )?changed|is at [0-9a-f]+ but expected/.test(output);
}

async function revParse(cwd: string, rev: string, reporter: Reporter, step: string): Promise<string> {
  return (await git(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { cwd, reporter, step })).trim();
}

async function isAncestor(cwd: string, older: string, newer: string, reporter: Reporter): Promise<boolean> {
  return (await runGit(['merge-base', '--is-ancestor', older, newer], { cwd, reporter })).exitCode === 0;
}

/** The commits any of `from` has that `to` lacks (newest first): the ones a force-push to `to` dropped. */
async function dropped(cwd: string, from: ReadonlyArray<string | undefined>, to: string, reporter: Reporter): Promise<string[]> {
  const tips = [...new Set(from.filter((tip): tip is string => tip !== undefined && tip !== to))];
  if (tips.length === 0) return [];
  const listed = await runGit(['rev-list', '--max-count=1000', ...tips, `^${to}`], { cwd, reporter });
  return listed.exitCode === 0 ? listed.stdout.toString('utf8').split('\n').filter((line) => line !== '') : [];
}

function describeDropped(shas: string[]): string {
  return `${shas.slice(0, 5).map(shortSha).join(', ')}${shas.length > 5 ? ', …' : ''}`;
}

async function newestPathCommit(root: string, rev: string, appPathName: string, reporter: Reporter): Promise<string> {
  return (await git(['log', '-1', '--format=%H', rev, '--', appPathName], { cwd: root, reporter, step: `reading ${rev}` })).trim();
}

/**
 * Runs the plan all-or-nothing: reverts (or the chosen restore) in a temporary worktree of the
 * upstream branch, verifies the app path equals the target exactly, pushes without force (if
 * someone pushed first: fetch, redo on the new tip, verify, retry), then fast-forwards the user's
 * checkout when that is safe. Fetch and push are bounded by the network timeout and stop on
 * cancel; before the push succeeds nothing the user sees changes; the worktree always goes.
 */
export async function executeGitopsRollback(
  plan: RollbackPlan<GitopsPlanDetail>,
  reporter: Reporter = silentReporter,
  signal?: AbortSignal,
  options: GitopsExecuteOptions = {},
): Promise<RollbackOutcome> {
  const detail = plan.detail;
  const root = detail.root;
  const label = `${detail.env}/${detail.app}`;
  const timeoutMs = options.networkTimeoutMs ?? DEFAULT_NETWORK_TIMEOUT_MS;
  const way = detail.direction === 'forward' ? 'forward' : 'back';
  const rolled = detail.direction === 'forward' ? 'Rolled forward' : 'Rolled back';
  const commits = detail.method === 'restore-tree' ? 1 : detail.reverts.length;
  const what = detail.method === 'restore-tree' ? 'restore commit' : 'revert commit(s)';
  let step = 'checking the branch';
  let pushing: string | undefined;
  try {
    throwIfAborted(signal, step);
    reporter.step(`Checking ${root}`);
    const busy = await operationInProgress(root, reporter);
    if (busy) throw new DeployRollbackError(`Cannot roll ${way} ${label}: ${busy}`, step);
    const branch = await currentBranch(root, reporter);
    if (!branch) throw new DeployRollbackError(`${root} has a detached HEAD: check out the branch that Flux deploys from, then roll ${way}`, step);
    if (detail.branch && branch !== detail.branch) {
      throw new DeployRollbackError(`${root} is now on branch ${branch}, but the plan was made on ${detail.branch}: plan again`, step);
    }
    const upstream = await upstreamOf(root, branch, reporter);
    if (!upstream) throw new DeployRollbackError(`Branch ${branch} in ${root} has no upstream to push to: run git branch --set-upstream-to=origin/${branch}`, step);
    const fetch = (cwd: string): Promise<string> =>
      git(['fetch', '--quiet', '--no-tags', upstream.remote, `+${upstream.mergeRef}:${upstream.trackingRef}`], { cwd, reporter, signal, step, timeoutMs });

    step = `fetching ${upstream.name}`;
    const lastFetched = await runGit(['rev-parse', '--verify', '--quiet', `${upstream.trackingRef}^{commit}`], { cwd: root, reporter });
    reporter.step(`Fetching ${upstream.name}`);
    await fetch(root);
    throwIfAborted(signal, step);
    // Fetched, committed and verified, pushed: the bar never goes back, even when a push is retried.
    reporter.progress?.(1, 3);

    step = 'checking local changes';
    let remoteTip = await revParse(root, upstream.trackingRef, reporter, step);
    // Commits the remote had (when planned, or when last fetched) and lacks now: someone force-pushed.
    const gone = await dropped(root, [detail.upstreamTip, lastFetched.exitCode === 0 ? lastFetched.stdout.toString('utf8').trim() : undefined], remoteTip, reporter);
    const counts = (await git(['rev-list', '--left-right', '--count', `HEAD...${remoteTip}`], { cwd: root, reporter, step })).trim().split(/\s+/);
    const ahead = Number(counts[0]);
    const behind = Number(counts[1]);
    const goneHere = ahead > 0 && gone.length > 0 ? (await dropped(root, ['HEAD'], remoteTip, reporter)).filter((sha) => gone.includes(sha)) : [];
    if (goneHere.length > 0) {
      throw new DeployRollbackError(
        `${upstream.name} was rewritten since the plan (a force-push): commit(s) the remote had are gone from it (${describeDropped(goneHere)}) but still in your ${branch} in ${root}. They are not brought back: bring ${branch} in line with ${upstream.name} as your team decides (git reset --keep ${upstream.name}), then plan again`,
        step,
      );
    }
    if (ahead > 0) {
      throw new DeployRollbackError(
        `Branch ${branch} in ${root} has ${ahead} commit(s) not pushed to ${upstream.name}${behind > 0 ? ` and is ${behind} behind (diverged)` : ''}: push or drop them before rolling ${way}`,
        step,
      );
    }
    const dirty = (await git(['status', '--porcelain=v1', '-z', '--untracked-files=all', '--', detail.appPath], { cwd: root, reporter, step }))
      .split('\0')
      .filter((entry) => entry.length > 3)
      .map((entry) => entry.slice(3));
    if (dirty.length > 0) {
      throw new DeployRollbackError(
        `Uncommitted changes in ${detail.appPath} in ${root} (${dirty.slice(0, 5).join(', ')}${dirty.length > 5 ? ', …' : ''}): commit or discard them before rolling ${way} ${label}`,
        step,
      );
    }
    const upstreamHead = await newestPathCommit(root, remoteTip, detail.appPath, reporter);
    if (upstreamHead !== detail.pathHead) {
      throw new DeployRollbackError(
        behind > 0
          ? `Your checkout of ${branch} in ${root} is ${behind} commit(s) behind ${upstream.name}, which has newer commits on ${detail.appPath} (newest: ${shortSha(upstreamHead)}; the plan read ${shortSha(detail.pathHead)}): run git pull --ff-only there, then plan again`
          : `${upstream.name} has newer commits on ${detail.appPath} than the plan saw (newest: ${shortSha(upstreamHead)}, plan: ${shortSha(detail.pathHead)}): refresh and plan again`,
        step,
      );
    }

    if (gone.length > 0) {
      reporter.step(`${upstream.name} was rewritten (a force-push dropped ${describeDropped(gone)}); ${detail.appPath} is as planned, so the rollback is made on its new tip and the dropped commits stay dropped`);
    }

    step = 'creating a temporary worktree';
    let verified = '';
    const pushed = await withWorktree(root, remoteTip, reporter, async (worktree) => {
      const redo = async (): Promise<void> => {
        const start = (await git(['rev-parse', 'HEAD'], { cwd: worktree, reporter, step })).trim();
        await applyPlan(worktree, detail, reporter, signal, (message, name) => {
          step = name;
          throwIfAborted(signal, step);
          reporter.step(message);
        });
        step = 'verifying the result';
        throwIfAborted(signal, step);
        verified = await verifyResult(worktree, start, detail, reporter, signal);
        reporter.step(verified);
      };
      await redo();
      reporter.progress?.(2, 3);
      for (let attempt = 0; ; attempt++) {
        step = `pushing to ${upstream.name}`;
        throwIfAborted(signal, step);
        reporter.step(`Pushing to ${upstream.name}${attempt > 0 ? ` (retry ${attempt} of ${PUSH_RETRIES})` : ''}`);
        // Checked again after the step is shown: the last moment a cancel certainly changes nothing.
        throwIfAborted(signal, step);
        const tip = (await git(['rev-parse', 'HEAD'], { cwd: worktree, reporter, step })).trim();
        // The lease makes the push a compare-and-swap on the commit we built on; since the tip
        // descends from it, whatever the lease allows is a fast-forward: never a force.
        if (!(await isAncestor(worktree, remoteTip, tip, reporter))) throw new DeployRollbackError(`Internal error: ${shortSha(tip)} does not descend from ${shortSha(remoteTip)}; nothing was pushed`, step);
        pushing = tip;
        const push = await runGit(['push', '--porcelain', `--force-with-lease=${upstream.mergeRef}:${remoteTip}`, upstream.remote, `${tip}:${upstream.mergeRef}`], { cwd: worktree, reporter, signal, step, timeoutMs });
        pushing = undefined;
        if (push.exitCode === 0) {
          reporter.progress?.(3, 3);
          return tip;
        }
        const output = `${push.stdout.toString('utf8')}\n${push.stderr}`;
        const race = isPushRace(output);
        reporter.debug(`[git] push ${race ? 'lost a race' : 'was refused'}: ${output.trim().split('\n').join(' | ')}`);
        if (!race || attempt >= PUSH_RETRIES) {
          throw new DeployRollbackError(
            `Push to ${upstream.name} was rejected${attempt >= PUSH_RETRIES && race ? ` ${attempt + 1} times because others kept pushing` : ''}: ${pushRejection(output)}. Nothing was pushed; your checkout is unchanged`,
            step,
          );
        }
        step = `catching up with ${upstream.name}`;
        reporter.step(`${upstream.name} moved while pushing: fetching it and checking the plan again`);
        await fetch(worktree);
        const moved = await revParse(worktree, upstream.trackingRef, reporter, step);
        const lost = await dropped(worktree, [remoteTip], moved, reporter);
        const raced = await newestPathCommit(worktree, moved, detail.appPath, reporter);
        if (raced !== detail.pathHead) {
          throw new DeployRollbackError(
            `While rolling ${way}, ${label} changed on ${upstream.name} (${raced ? shortSha(raced) : 'its history was rewritten'}${lost.length > 0 ? `; a force-push dropped ${describeDropped(lost)}` : ''}): nothing was pushed; refresh and plan again`,
            step,
          );
        }
        if (lost.length > 0) reporter.step(`${upstream.name} was force-pushed (dropping ${describeDropped(lost)}): redoing on its new tip; the dropped commits stay dropped`);
        else reporter.step(`Someone pushed to ${upstream.name} at the same time, leaving ${detail.appPath} alone: redoing on top`);
        // The app path's history is the planned one (checked above), so the same changes apply on the new tip; verified again.
        remoteTip = moved;
        await git(['reset', '--quiet', '--mixed', remoteTip], { cwd: worktree, reporter, step });
        await redo();
      }
    });

    const lines = [
      `Pushed ${commits} ${what} to ${upstream.name}: ${pushed}`,
      verified,
      ...(detail.method === 'restore-tree'
        ? [`  wrote ${detail.appPath} as at ${shortSha(detail.target.id)} (${detail.target.version})`]
        : detail.reverts.map((revert) => `  reverted ${shortSha(revert.sha)} ${revert.subject} (${detail.appPath})`)),
    ];
    reporter.info(`[git] rolled ${way} ${label} to ${plan.to}: pushed ${shortSha(pushed)} to ${upstream.name}`);
    step = 'updating your checkout';
    reporter.step(`Fast-forwarding ${branch} in ${root}`);
    lines.splice(1, 0, await fastForwardCheckout(root, branch, upstream, reporter));
    return { ok: true, message: `${rolled} ${label} to ${plan.to}: pushed ${commits} ${what} to ${upstream.name}`, lines };
  } catch (error) {
    let wrapped: DeployRollbackError;
    if (pushing !== undefined && error instanceof DeployRollbackError && !(error instanceof GitCommandError)) {
      // git was stopped mid-push: whether the remote took the commit is not known from here.
      wrapped = new DeployRollbackError(
        `${error.message}. The push of ${pushing} was stopped part-way: ${detail.upstream?.name ?? 'the remote'} may or may not have it; run git fetch and check whether ${shortSha(pushing)} is there before doing anything else`,
        step,
      );
    } else if (error instanceof GitTimeoutError) {
      wrapped = new DeployRollbackError(`Rolling ${way} ${label} failed: ${error.message}. Nothing was pushed; your checkout is unchanged`, step);
    } else if (error instanceof DeployRollbackError && !(error instanceof GitCommandError)) {
      wrapped = error;
      if (/^Cancelled/.test(error.message)) wrapped = new DeployRollbackError(`Rollback ${error.message.charAt(0).toLowerCase()}${error.message.slice(1)}; nothing was pushed and your checkout is unchanged`, step);
    } else {
      const message = error instanceof GitCommandError ? error.failure : error instanceof Error ? error.message : String(error);
      wrapped = new DeployRollbackError(`Rolling ${way} ${label} failed while ${step}: ${message}. Nothing was pushed; your checkout is unchanged`, step);
    }
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
