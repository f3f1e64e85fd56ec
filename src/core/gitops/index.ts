export { findGitopsRepos, readGitopsRepo, appPath, envReleasePath, type GitopsRepo, type GitopsEnv, type GitopsLayout, type GitopsMode, type FindGitopsOptions } from './discovery';
export { listReleases, readPathHistory, type GitopsRelease, type PathCommit, type PathHistory, type ReleaseQuery } from './history';
export {
  planGitopsRollback,
  previewGitopsRollback,
  executeGitopsRollback,
  isGitopsPlan,
  revertMessage,
  PUSH_RETRIES,
  type GitopsPlanDetail,
  type GitopsRevertStep,
  type GitopsOptions,
} from './rollback';
export { GitopsSource, toRelease } from './source';
export { releasesJson, environmentsJson, type ReleaseJson, type EnvironmentJson } from './json';
export { parseReleaseJson, type GimletRelease, type GimletVersion } from './releaseJson';
