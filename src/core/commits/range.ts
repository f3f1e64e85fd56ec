/**
 * The commits between the running release and a target: first-parent, newest first, what a
 * rollback takes out of production or a roll forward brings back, and honestly both sides when
 * the two have diverged.
 */
import type { CodeChange, RollDirection, SourceCommit } from '../model';
import { DeployRollbackError } from '../model';
import { git } from '../gitops/git';
import type { CommitResolver } from './resolve';
import { repositoryDirs, shallowCommits } from './repository';

/** How many commits a change lists (a dry run prints them all up to this); `total` counts them all. */
export const LISTED_COMMITS = 1000;


/** Shas on the first-parent line from `tip` down to (not including) anything reachable from `stop`, newest first. */
async function firstParentLine(repository: string, tip: string, stop: string, signal?: AbortSignal): Promise<string[]> {
  const out = await git(['rev-list', '--first-parent', tip, `^${stop}`, '--'], { cwd: repository, signal, step: 'listing the commits between two releases' });
  return out.split('\n').filter((line) => line !== '');
}

/**
 * The code change from the running release's commit `fromSha` to the target's `toSha`. `direction`
 * is the release order (back: the target was deployed earlier): the commits listed are the ones
 * production loses going back, or gains going forward; `diverged` holds the other side when the
 * target is not on the same line.
 */
export async function codeChangeBetween(
  resolver: CommitResolver,
  repository: string,
  fromSha: string,
  toSha: string,
  direction: RollDirection,
  options: { limit?: number; signal?: AbortSignal } = {},
): Promise<CodeChange> {
  const limit = options.limit ?? LISTED_COMMITS;
  const [removed, added] = await Promise.all([firstParentLine(repository, fromSha, toSha, options.signal), firstParentLine(repository, toSha, fromSha, options.signal)]);
  const [main, other] = direction === 'back' ? [removed, added] : [added, removed];
  const listed = [...main.slice(0, limit), ...other.slice(0, limit)];
  const commits = await resolver.resolve(repository, listed, options.signal);
  const details = (shas: string[]): SourceCommit[] =>
    shas.slice(0, limit).map((sha) => {
      const commit = commits.get(sha)?.commit;
      if (!commit) throw new DeployRollbackError(`Commit ${sha} is listed by git rev-list in ${repository} but could not be read`);
      return commit;
    });
  const change: CodeChange = { direction, repository, fromSha, toSha, commits: details(main), total: main.length };
  if (other.length > 0) change.diverged = { commits: details(other), total: other.length };
  const dirs = await repositoryDirs(repository);
  const boundaries = new Set(dirs ? await shallowCommits(dirs) : []);
  const cutAt = [...main, ...other].find((sha) => boundaries.has(sha));
  if (cutAt) change.shallowCut = cutAt;
  return change;
}
