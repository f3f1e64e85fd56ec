/**
 * Planning a gitops rollback: which commits on the app path to revert (or the one restore
 * commit), as a plan value the dry run prints and the executor (rollback.ts) runs.
 */
import { DeployRollbackError, silentReporter, type Reporter, type RollDirection, type RollbackPlan } from '../model';
import { endOrphanedGitGroups } from './children';
import { appPath, envReleasePath, type GitopsRepo } from './discovery';
import { CatFileBatch, fullShaProblem, operationInProgress, runGit, shortSha } from './git';
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

export async function currentBranch(root: string, reporter: Reporter): Promise<string | undefined> {
  const result = await runGit(['symbolic-ref', '--quiet', '--short', 'HEAD'], { cwd: root, reporter });
  return result.exitCode === 0 ? result.stdout.toString('utf8').trim() : undefined;
}

async function configValue(root: string, key: string, reporter: Reporter): Promise<string | undefined> {
  const result = await runGit(['config', '--get', key], { cwd: root, reporter });
  return result.exitCode === 0 ? result.stdout.toString('utf8').trim() : undefined;
}

export async function upstreamOf(root: string, branch: string, reporter: Reporter): Promise<Upstream | undefined> {
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
