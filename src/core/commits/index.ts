export { ReleaseCodeReader, parseKamalVersion, codeChangeLines, codeChangeSummary, codeChangeOutcome, commitLine, reportCodeChange, withCodeChangeOutcome, type ReleaseCodeOptions, type CodeTarget } from './code';
export { CommitResolver, lookupNames, NOT_IN_CLONE, type ResolvedRef } from './resolve';
export { codeChangeBetween, LISTED_COMMITS } from './range';
export { changedFiles, parseNameStatus, type ChangedFile, type ChangeStatus } from './diff';
export { commitTitle, shortCommitSha, parseCommitObject, pullRequestOf, gitDateToIso } from './commit';
export { candidateRepositories, repositoryContaining, matchRepositoryName, repositoryNameOfUrl } from './repository';
