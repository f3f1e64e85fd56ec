import { codeChangeSummary, commitTitle, shortCommitSha } from '../core/commits';
import type { CodeChange, Release, SourceCommit } from '../core/model';
import { shortAge } from './tree/time';

export { commitTitle, shortCommitSha };

/** A Kamal version that is a commit: `git rev-parse HEAD`, with `_uncommitted_<hex>` after a dirty build. */
const SHA_VERSION = /^([0-9a-f]{40})(_uncommitted_[0-9a-f]+)?$/;

/** A sha version shortened as git shortens it (the whole version is in the tooltip and the output), else the version. */
export function shortVersion(version: string): string {
  const sha = SHA_VERSION.exec(version);
  return sha ? shortCommitSha(sha[1]) : version;
}

/** Every sha version in a line of text shortened: the dialog stays readable, the output keeps them whole. */
export function shortenShaVersions(text: string): string {
  // A dirty build keeps its mark: it is a different image than the commit's.
  return text.replace(/\b([0-9a-f]{40})(_uncommitted)?(?:_[0-9a-f]+)?\b/g, (_version, sha: string, dirty?: string) => `${shortCommitSha(sha)}${dirty ?? ''}`);
}

/** The row's label. */
export function releaseLabel(release: Release): string {
  return shortVersion(release.version);
}

/** "3f2a1c9 Fix rounding" (a merged pull request by its title) — without the sha when the label already is it. */
export function commitLine(commit: SourceCommit, label?: string): string {
  const short = shortCommitSha(commit.sha);
  return label && commit.sha.startsWith(label) ? commitTitle(commit) : `${short} ${commitTitle(commit)}`;
}

/**
 * The description's code part, most telling first: uncommitted mark, sha and subject, author,
 * age of the commit. Empty when the release's commit is not known locally.
 */
export function codeDescription(release: Release, now: number): string[] {
  const code = release.code;
  if (!code?.commit) return [];
  const { commit } = code;
  return [
    code.uncommitted ? 'uncommitted changes' : '',
    commitLine(commit, releaseLabel(release)),
    shorten(commit.authorName, 20),
    shortAge(Date.parse(commit.authorDate), now),
  ].filter(Boolean);
}

/**
 * "not in your local clone: fetch to see it", for a row: only when a fetch would help. Other
 * reasons (no repository of that name here) stay in the tooltip: said on a row they are noise.
 */
export function missingCodeNote(release: Release): string | undefined {
  const missing = release.code && !release.code.commit ? release.code.missing : undefined;
  return missing && /\blocal clone\b/.test(missing) ? shorten(missing, 44) : undefined;
}

/** What the confirmation says about the code a move changes: the count and the first few subjects (the output lists all). */
export function codeChangeLines(change: CodeChange | undefined, unknown: string | undefined, shown = 5): string[] {
  if (!change) return unknown ? [`Code: ${unknown}`] : [];
  const summary = codeChangeSummary(change);
  const lines = [`${summary.charAt(0).toUpperCase()}${summary.slice(1)}${change.commits.length > 0 ? ':' : '.'}`];
  for (const commit of change.commits.slice(0, shown)) lines.push(`• ${shorten(commitLine(commit), 90)}`);
  const rest = change.total - Math.min(shown, change.commits.length);
  if (rest > 0) lines.push(`• …and ${rest} more (all in the output)`);
  return lines;
}

export function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
