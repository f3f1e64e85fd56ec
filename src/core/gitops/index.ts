export { findGitopsRepos, readGitopsRepo, appPath, envReleasePath, type GitopsRepo, type GitopsEnv, type GitopsLayout, type GitopsMode, type FindGitopsOptions } from './discovery';
export { listReleases, readPathHistory, type GitopsRelease, type PathCommit, type PathHistory, type ReleaseQuery } from './history';
export {
  planGitopsRollback,
  previewGitopsRollback,
  executeGitopsRollback,
  isGitopsPlan,
  revertMessage,
  restoreMessage,
  pruneStaleWorktrees,
  isPushRace,
  RestoreTreeOffer,
  PUSH_RETRIES,
  type GitopsPlanDetail,
  type GitopsRevertStep,
  type GitopsOptions,
  type GitopsExecuteOptions,
} from './rollback';
export { GitopsSource, toRelease } from './source';
export { releasesJson, environmentsJson, type ReleaseJson, type EnvironmentJson } from './json';
export { parseReleaseJson, type GimletRelease, type GimletVersion } from './releaseJson';
export { fullShaProblem, DEFAULT_NETWORK_TIMEOUT_MS } from './git';
