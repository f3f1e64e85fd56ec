/** A git commit object's text read into a SourceCommit, and its pull request read as GitLens does. */
import type { SourceCommit } from '../model';

/** git's `<unix seconds> <±hhmm>` as ISO 8601 in the same offset (what `%aI` prints). */
export function gitDateToIso(seconds: number, offset: string): string {
  const match = /^([+-])(\d\d)(\d\d)$/.exec(offset);
  const sign = match?.[1] === '-' ? -1 : 1;
  const minutes = match ? sign * (Number(match[2]) * 60 + Number(match[3])) : 0;
  const local = new Date((seconds + minutes * 60) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return `${local}${match ? `${match[1]}${match[2]}:${match[3]}` : 'Z'}`;
}

interface Signature {
  name: string;
  email?: string;
  date: string;
}

function signature(value: string): Signature {
  const match = /^(.*?) <([^>]*)> (-?\d+) ([+-]\d{4})$/.exec(value);
  if (!match) return { name: value.trim(), date: '' };
  return { name: match[1], email: match[2] || undefined, date: gitDateToIso(Number(match[3]), match[4]) };
}

/**
 * GitHub's merge commit is "Merge pull request #12 from owner/branch" with the pull request's
 * title as the body's first line; a squash merge ends its subject with "(#12)".
 */
export function pullRequestOf(message: string, parents: number): SourceCommit['pullRequest'] {
  const [subject = '', ...body] = message.split('\n');
  const merge = /^Merge pull request #(\d+) from \S+/.exec(subject);
  if (merge && parents > 1) {
    const title = body.map((line) => line.trim()).find((line) => line !== '');
    return { number: merge[1], title: title ?? subject };
  }
  const squash = /^(.+?)\s+\(#(\d+)\)$/.exec(subject.trim());
  if (squash) return { number: squash[2], title: squash[1] };
  return undefined;
}

/** Reads `git cat-file commit` output; `sha` is the commit's own name (not in its text). */
export function parseCommitObject(sha: string, content: Buffer): SourceCommit {
  const text = content.toString('utf8');
  const split = text.indexOf('\n\n');
  const header = split >= 0 ? text.slice(0, split) : text;
  const message = (split >= 0 ? text.slice(split + 2) : '').replace(/\s+$/, '');
  const parents: string[] = [];
  let author: Signature = { name: '', date: '' };
  let committer: Signature = { name: '', date: '' };
  for (const line of header.split('\n')) {
    // Continuation lines (a signature's armour) start with a space.
    if (line.startsWith(' ')) continue;
    const space = line.indexOf(' ');
    const key = line.slice(0, space);
    const value = line.slice(space + 1);
    if (key === 'parent') parents.push(value);
    else if (key === 'author') author = signature(value);
    else if (key === 'committer') committer = signature(value);
  }
  const subject = (message.split('\n', 1)[0] ?? '').trim();
  const commit: SourceCommit = {
    sha,
    subject,
    message,
    authorName: author.name,
    authorDate: author.date,
    commitDate: committer.date,
    parents,
  };
  if (author.email) commit.authorEmail = author.email;
  const pullRequest = pullRequestOf(message, parents.length);
  if (pullRequest) commit.pullRequest = pullRequest;
  return commit;
}

/** What a row or a list shows for a commit: a merged pull request by its title and number. */
export function commitTitle(commit: Pick<SourceCommit, 'subject' | 'pullRequest' | 'parents'>): string {
  if (commit.pullRequest && commit.parents.length > 1) return `${commit.pullRequest.title} (#${commit.pullRequest.number})`;
  return commit.subject;
}

export function shortCommitSha(sha: string): string {
  return sha.slice(0, 7);
}
