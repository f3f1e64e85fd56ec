import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeployRollbackError, silentReporter, type Reporter, type RollDirection, type RollbackOutcome, type RollbackPlan } from '../model';
import { endOrphanedGitGroups } from './children';
import { appPath, envReleasePath, type GitopsRepo } from './discovery';
import { CatFileBatch, DEFAULT_NETWORK_TIMEOUT_MS, GitCommandError, GitTimeoutError, fullShaProblem, git, gitBuffer, operationInProgress, runGit, shortSha } from './git';
import { isDeleteMessage, isRevertMessage, readPathHistory, requireEnv, shallowBoundaries, subjectOf, unshallowHint, type GitopsRelease, type PathCommit } from './history';

/** What a commit on the app path is, for the plan's wording. */
export type GitopsCommitKind = 'release' | 'revert' | 'delete' | 'manual';

/** One commit to undo, limited to the app path. */
export interface GitopsRevertStep {
  sha: string;
  subject: string;
  /** First parent; absent for a root commit (reverted against the empty tree). */
  parent?: string;
  /** Files under the app path that the commit touched. */
  files: string[];
  kind: GitopsCommitKind;
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
  direction: RollDirection;
  /** `reverts`: one git revert per step. `restore-tree`: one commit writing the target's tree (only when asked for). */
  method: 'reverts' | 'restore-tree';
  /** The app path's tree object at the target (absent: the path did not exist): what verification compares with. */
  targetTree?: string;
  /** Newest commit on the app path when planned; the executor refuses if upstream moved past it. */
  pathHead: string;
  /** The commit the plan was read from (HEAD then). */
  base?: string;
  /** The upstream branch as last fetched when planned: commits it had that the remote later lacks were force-pushed away. */
  upstreamTip?: string;
  /** Newest first; empty for restore-tree. */
  reverts: GitopsRevertStep[];
  skipped: Array<{ sha: string; subject: string; reason: string }>;
  /**
   * Every commit on the app path after the target, newest first: a restore commit names each in a
   * "This reverts commit" line, so Gimlet reads the releases among them as rolled back and skips
   * the restore itself instead of listing it as a release (with `<env>/release.json`, another app's).
   */
  undoes: string[];
  /** Why reverts alone cannot be shown to restore the target, when they cannot. */
  revertsCannot?: string;
  /** Set when the current release could not be told (see history's rules). */
  uncertain?: string;
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
  /** The user chose to write the target's tree in one commit instead of reverting (`--restore-tree`). */
  restoreTree?: boolean;
}

export interface GitopsExecuteOptions {
  /** Bound on each fetch and push (`deployRollback.gitops.networkTimeout`); default 60 s. */
  networkTimeoutMs?: number;
}

/** How many times a push rejected because someone pushed first is retried on top of the new upstream. */
export const PUSH_RETRIES = 3;

/**
 * Reverts cannot be shown to restore the target exactly; the honest alternative is a single
 * commit writing the target's tree, which only the user may choose (`restoreTree`).
 */
export class RestoreTreeOffer extends DeployRollbackError {
  readonly restoreTreeOffered = true;
  constructor(message: string, readonly reason: string) {
    super(message, 'planning');
    this.name = 'RestoreTreeOffer';
  }
}

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

function commitKind(commit: PathCommit, releaseShas: Set<string>): GitopsCommitKind {
  if (isRevertMessage(commit.message)) return 'revert';
  if (isDeleteMessage(commit.message)) return 'delete';
  return releaseShas.has(commit.sha) ? 'release' : 'manual';
}

/**
 * Which commits to revert so the path ends exactly at the target's tree. With the path's states
 * S0 (target) … Sn (now), reverting commit Cj turns Sj into Sj-1, always cleanly. From the
 * current state, jump back to the earliest commit that left the path in the same state (what
 * lies between nets to nothing), revert that commit, and repeat until S0. Reverts of reverts,
 * manual reverts and hand edits are all just states here.
 */
function revertChain(newestFirst: PathCommit[], trees: Map<string, string | undefined>, targetTree: string | undefined): { steps: PathCommit[]; skipped: Map<string, string> } {
  const chain = [...newestFirst].reverse();
  const states = [targetTree, ...chain.map((commit) => trees.get(commit.sha))];
  const steps: PathCommit[] = [];
  const skipped = new Map<string, string>();
  let at = chain.length;
  while (at > 0) {
    const same = states.indexOf(states[at]);
    for (let index = same + 1; index <= at; index++) {
      skipped.set(chain[index - 1].sha, `its change to the path is undone later: ${shortSha(chain[at - 1].sha)} left the path as it was before it`);
    }
    if (same === 0) break;
    steps.push(chain[same - 1]);
    at = same - 1;
  }
  return { steps, skipped };
}

/**
 * Plans taking `<env>/<app>` to the release at `targetSha`, back or forward: which commits to
 * revert (newest first, only the app path) so the path ends exactly at the target's tree, or,
 * when the user asked for it, one commit writing that tree. Refuses anything ambiguous.
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
  const problem = fullShaProblem(targetSha);
  if (problem) throw new DeployRollbackError(`Not a release sha of ${label}: ${problem}`, 'planning');
  endOrphanedGitGroups(reporter);
  const busy = await operationInProgress(repo.root, reporter);
  if (busy) throw new DeployRollbackError(`Cannot plan a rollback of ${label}: ${busy}`, 'planning');
  const wanted = targetSha;
  const head = await runGit(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { cwd: repo.root, reporter });
  const base = head.exitCode === 0 ? head.stdout.toString('utf8').trim() : undefined;
  const history = await readPathHistory(repo, envName, app, { reporter, signal: options.signal, rev: base, until: (commit) => commit.sha === wanted });
  const targetIndex = history.commits.findIndex((commit) => commit.sha === wanted);
  const boundaries = await shallowBoundaries(repo.root, reporter);
  if (targetIndex < 0) {
    const known = await runGit(['cat-file', '-e', `${wanted}^{commit}`], { cwd: repo.root, reporter });
    const shallow = boundaries.size > 0 ? `; this clone is shallow (its history is cut at ${[...boundaries].map(shortSha).join(', ')}): ${unshallowHint()}, then try again` : '';
    throw new DeployRollbackError(
      known.exitCode === 0
        ? `Commit ${wanted} in ${repo.root} is not a release of ${label}: it does not touch ${where} on the current branch${shallow}`
        : boundaries.size > 0
          ? `Commit ${wanted} is not in the gitops repository ${repo.root}${shallow}`
          : `Unknown commit ${wanted}: it is not in the gitops repository ${repo.root} (fetch first if it is new)`,
      'planning',
    );
  }
  const target = history.releases.find((release) => release.id === wanted);
  if (!target) {
    const commit = history.commits[targetIndex];
    throw new DeployRollbackError(
      boundaries.has(wanted)
        ? `Commit ${wanted} is where this shallow clone's history is cut: what it changed in ${where} is unknown, so it is not read as a release of ${label}; ${unshallowHint()}`
        : `Commit ${wanted} ("${subjectOf(commit.message)}") touches ${where} but is not a release of ${label} (it is a revert, a delete, a hand edit or has no release.json)`,
      'planning',
    );
  }
  if (target.current || (target.tree !== undefined && target.tree === history.headTree)) {
    throw new DeployRollbackError(`Release ${describeRelease(target)} of ${label} is already the current release: ${where} holds it now, nothing to roll back`, 'planning');
  }
  const direction: RollDirection = target.direction ?? 'back';
  const current = history.releases.find((release) => release.current);
  const newer = history.commits.slice(0, targetIndex);
  const releaseShas = new Set(history.releases.map((release) => release.id));
  const revertsCannot = await unwindable(repo.root, where, newer, history.trees, target.tree, reporter);
  const chain = revertChain(newer, history.trees, target.tree);
  const method = options.restoreTree ? 'restore-tree' : 'reverts';
  if (method === 'reverts' && revertsCannot) {
    throw new RestoreTreeOffer(
      `Reverts cannot be shown to take ${label} exactly to ${describeRelease(target)}: ${revertsCannot}. The honest alternative is one commit that writes ${where} as it is at ${shortSha(target.id)} and names that release: choose it explicitly (CLI: --restore-tree)`,
      revertsCannot,
    );
  }
  const reverts = method === 'reverts' ? chain.steps.map((commit) => revertStep(commit, releaseShas)) : [];
  const skipped: GitopsPlanDetail['skipped'] =
    method === 'reverts'
      ? newer.filter((commit) => chain.skipped.has(commit.sha)).map((commit) => ({ sha: commit.sha, subject: subjectOf(commit.message), reason: chain.skipped.get(commit.sha) ?? '' }))
      : [];
  const branch = await currentBranch(repo.root, reporter);
  const upstream = branch ? await upstreamOf(repo.root, branch, reporter) : undefined;
  const tracked = upstream ? await runGit(['rev-parse', '--verify', '--quiet', `${upstream.trackingRef}^{commit}`], { cwd: repo.root, reporter }) : undefined;
  const detail: GitopsPlanDetail = {
    kind: 'gitops',
    root: repo.root,
    env: envName,
    app,
    appPath: where,
    envReleasePath: envReleasePath(env),
    target,
    current,
    direction,
    method,
    targetTree: target.tree,
    pathHead: history.head ?? wanted,
    base,
    upstreamTip: tracked?.exitCode === 0 ? tracked.stdout.toString('utf8').trim() : undefined,
    reverts,
    skipped,
    undoes: newer.map((commit) => commit.sha),
    revertsCannot,
    uncertain: history.uncertain,
    branch,
    upstream,
  };
  const pushTo = upstream ? `${upstream.name}` : 'the upstream branch (none is set: set one before rolling back)';
  const way = direction === 'forward' ? 'forward' : 'back';
  const summary =
    method === 'reverts'
      ? `Revert ${reverts.length} commit${reverts.length === 1 ? '' : 's'} in ${where} and push to ${pushTo}, rolling ${label} ${way} to ${target.version}`
      : `Write ${where} as it is at ${shortSha(target.id)} in one commit and push to ${pushTo}, rolling ${label} ${way} to ${target.version}`;
  return {
    source: 'gitops',
    environment: envName,
    app,
    from: current ? current.version : history.uncertain ? 'unknown' : 'none',
    to: target.version,
    direction,
    summary,
    lines: planLines(detail, pushTo),
    overview: [
      ...(method === 'reverts'
        ? [
            ...detail.reverts.slice(0, 8).map((step) => `Revert ${shortSha(step.sha)} (${step.files.length} file${step.files.length === 1 ? '' : 's'} in ${detail.appPath})${kindNote(step.kind)}`),
            ...(detail.reverts.length > 8 ? [`… and ${detail.reverts.length - 8} more`] : []),
          ]
        : [`Write ${detail.appPath} as it is at ${shortSha(target.id)} in one commit naming ${target.version}`]),
      `Only ${detail.appPath} changes; push to ${pushTo} without force, leased on the commit it is made on.`,
    ],
    detail,
  };
}

/**
 * Why the path's commits since the target are not one line of changes that reverts can unwind
 * (a merge, or a commit whose parent is not the state before it on the path), or undefined.
 */
async function unwindable(root: string, where: string, newestFirst: PathCommit[], trees: Map<string, string | undefined>, targetTree: string | undefined, reporter: Reporter): Promise<string | undefined> {
  const merge = newestFirst.find((commit) => commit.parents.length > 1);
  if (merge) return `merge commit ${shortSha(merge.sha)} ("${subjectOf(merge.message)}") changed ${where} after the target, so its history is not one line of changes that reverts can unwind`;
  const batch = new CatFileBatch(root, reporter);
  try {
    let before = targetTree;
    for (const commit of [...newestFirst].reverse()) {
      const parent = commit.parents[0];
      const parentTree = parent ? (await batch.object(`${parent}:${where}`))?.oid : undefined;
      if (parentTree !== before) {
        return `${shortSha(commit.sha)} ("${subjectOf(commit.message)}") was made on top of another state of ${where} than the commit before it (a merge brought it in), so reverts cannot be shown to unwind it`;
      }
      before = trees.get(commit.sha);
    }
    return undefined;
  } finally {
    batch.close();
  }
}

function kindNote(kind: GitopsCommitKind): string {
  switch (kind) {
    case 'revert':
      return ' — a revert: this brings back what it undid';
    case 'manual':
      return ' — a hand-made commit, not a release';
    case 'delete':
      return ' — a delete: this brings the app back';
    default:
      return '';
  }
}

function revertStep(commit: PathCommit, releaseShas: Set<string>): GitopsRevertStep {
  return { sha: commit.sha, subject: subjectOf(commit.message), parent: commit.parents[0], files: commit.files, kind: commitKind(commit, releaseShas) };
}

function planLines(detail: GitopsPlanDetail, pushTo: string): string[] {
  const label = `${detail.env}/${detail.app}`;
  const verb = detail.direction === 'forward' ? 'Roll forward' : 'Roll back';
  const lines = [
    `${verb} ${label} in ${detail.root} to ${describeRelease(detail.target)}`,
    detail.current
      ? `Current release: ${describeRelease(detail.current)}`
      : detail.uncertain
        ? `Current release: unknown (${detail.uncertain})`
        : 'No release is current (the app was deleted)',
  ];
  if (detail.method === 'reverts') {
    lines.push(`Revert ${detail.reverts.length} commit${detail.reverts.length === 1 ? '' : 's'} touching ${detail.appPath}, newest first, one revert commit each:`);
    for (const step of detail.reverts) {
      lines.push(`  revert ${shortSha(step.sha)} ${step.subject}${kindNote(step.kind)}`);
      for (const file of step.files) lines.push(`      ${file}`);
    }
    for (const skip of detail.skipped) lines.push(`  skip ${shortSha(skip.sha)} ${skip.subject}: ${skip.reason}`);
  } else {
    lines.push(`Write ${detail.appPath} exactly as it is at ${detail.target.id} in one commit that names ${detail.target.version} (your choice instead of reverts)`);
    if (detail.revertsCannot) lines.push(`  reverts cannot do it: ${detail.revertsCannot}`);
    const named = detail.undoes.slice(0, 8).map(shortSha).join(', ');
    lines.push(
      `  the message names the target by a short sha only (a full one would make Gimlet read it as rolled back) and names as reverted the ${detail.undoes.length} commit(s) on ${detail.appPath} since it (${named}${detail.undoes.length > 8 ? ', …' : ''}), so Gimlet reads the releases among them as rolled back and does not list the restore as a release`,
    );
  }
  lines.push(`Leave ${detail.envReleasePath} and every other app untouched`);
  lines.push(`Verify before pushing: ${detail.appPath} must equal ${shortSha(detail.target.id)} exactly and nothing outside it may change, else nothing is pushed`);
  lines.push(
    `Work in a temporary worktree of ${detail.upstream?.name ?? 'the upstream branch'}, then push to ${pushTo} without force, leased on the commit the reverts are made on: if the remote moved (a push or a force-push), fetch, check ${detail.appPath} is still as planned, redo on the new tip, verify and retry up to ${PUSH_RETRIES} times; a commit the remote dropped is never brought back`,
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

async function applyPlan(worktree: string, detail: GitopsPlanDetail, reporter: Reporter, signal: AbortSignal | undefined, onStep: (message: string, name: string) => void): Promise<void> {
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
async function verifyResult(worktree: string, start: string, detail: GitopsPlanDetail, reporter: Reporter, signal?: AbortSignal): Promise<string> {
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
async function withWorktree<T>(root: string, startPoint: string, reporter: Reporter, work: (dir: string) => Promise<T>): Promise<T> {
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
        if (push.exitCode === 0) return tip;
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
