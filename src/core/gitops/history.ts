import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeployRollbackError, silentReporter, type Release, type Reporter } from '../model';
import { appPath, envReleasePath, findEnv, type GitopsEnv, type GitopsRepo } from './discovery';
import { CatFileBatch, describeGit, runGit, shortSha, spawnGit } from './git';
import { parseReleaseJson, type GimletRelease } from './releaseJson';

/** One commit that touched an app path, as `git log` reports it. */
export interface PathCommit {
  sha: string;
  /** Unix seconds. */
  committerTime: number;
  parents: string[];
  message: string;
  /** Files under the app path that the commit touched. */
  files: string[];
}

export type GitopsRelease = Omit<Release, 'app'> & {
  /** Same as `id`: the gitops commit's full sha. */
  gitopsSha: string;
  files: string[];
  /** The later commit whose message names this release's sha. */
  rolledBackBy?: string;
  artifactId?: string;
  /** Object name of the app path's tree at this release (absent: the path did not exist). */
  tree?: string;
};

export interface ReleaseQuery {
  limit?: number;
  /** Where to read history from; HEAD unless told. */
  rev?: string;
  reporter?: Reporter;
  signal?: AbortSignal;
}

// Only fields git itself spells in a fixed alphabet go through `git log`; the message comes from
// `git cat-file --batch`, which frames each object by its length, so no byte in it can split or merge commits.
const LOG_FORMAT = '--format=%H %ct %P';
const LOG_HEADER = /^([0-9a-f]{40}(?:[0-9a-f]{24})?) (\d+) ?((?:[0-9a-f]{40,64} ?)*)$/;
const MENTIONED_SHA = /\b[0-9a-f]{40}\b/g;

export function isRevertMessage(message: string): boolean {
  return message.includes('This reverts commit');
}

export function isDeleteMessage(message: string): boolean {
  const subject = subjectOf(message);
  return subject.startsWith('[GimletD delete]') || /^\[Gimlet\] \S+ deleted by /.test(subject);
}

export function subjectOf(message: string): string {
  return message.split('\n', 1)[0].trim();
}

/** The message of a raw commit object: everything after the first empty line (headers may continue on indented lines). */
export function commitMessage(raw: Buffer): string {
  const end = raw.indexOf('\n\n');
  return end < 0 ? '' : raw.subarray(end + 2).toString('utf8').replace(/\n+$/, '');
}

function underPaths(token: string, paths: readonly string[]): boolean {
  return paths.some((where) => where === '' || token === where || token.startsWith(`${where}/`));
}

/**
 * Streams `git log -- <path>` newest first, calling `onCommit` per commit; stops git as soon
 * as `onCommit` returns false, so reading the latest releases does not walk the whole history.
 * Resolves with whether the walk stopped early.
 *
 * `git log -z` prints `<header>\0` per commit, then `\n<file>\0<file>\0…` for the files it touched
 * under the path; a header is only hex, digits and spaces and a file always lies under the path,
 * so neither can pass for the other whatever the files are called.
 */
export function walkPathLog(
  cwd: string,
  revs: string[],
  paths: string[],
  onCommit: (commit: PathCommit) => boolean,
  options: { reporter?: Reporter; signal?: AbortSignal; maxCount?: number; skip?: number } = {},
): Promise<boolean> {
  const window = [
    ...(options.maxCount !== undefined ? [`--max-count=${options.maxCount}`] : []),
    ...(options.skip ? [`--skip=${options.skip}`] : []),
  ];
  const args = ['log', '-z', '--name-only', '--no-renames', LOG_FORMAT, ...window, ...revs, '--', ...paths];
  const reporter = options.reporter ?? silentReporter;
  reporter.debug(`[git] ${describeGit(args, cwd)}`);
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new DeployRollbackError('Cancelled while reading history', 'reading history'));
      return;
    }
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawnGit(args, cwd);
    } catch (error) {
      reject(error);
      return;
    }
    const messages = new CatFileBatch(cwd, reporter);
    let pending: Buffer = Buffer.alloc(0);
    let stopped = false;
    let settled = false;
    const stderr: Buffer[] = [];
    // Commits are handed over in order, each once its message is read.
    let delivered: Promise<void> = Promise.resolve();
    let current: { commit: PathCommit; message: Promise<Buffer | undefined> } | undefined;
    let firstFile = false;
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      messages.close();
      if (error !== undefined) reject(error);
      else resolve(stopped);
    };
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      child.stdout.removeAllListeners('data');
      child.kill();
    };
    const onAbort = (): void => {
      stop();
      finish(new DeployRollbackError('Cancelled while reading history', 'reading history'));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const deliver = (): void => {
      if (!current) return;
      const { commit, message } = current;
      current = undefined;
      message.catch(() => undefined);
      delivered = delivered.then(async () => {
        if (stopped || settled) return;
        const raw = await message;
        if (raw === undefined) throw new DeployRollbackError(`Reading the history of ${paths.join(', ')} failed: commit ${commit.sha} cannot be read in ${cwd}`, 'reading history');
        commit.message = commitMessage(raw);
        if (!onCommit(commit)) stop();
      });
      delivered.catch((error: unknown) => {
        stop();
        finish(error);
      });
    };
    const take = (token: string): void => {
      const file = firstFile && token.startsWith('\n') ? token.slice(1) : token;
      if (current && underPaths(file, paths)) {
        current.commit.files.push(file);
        firstFile = false;
        return;
      }
      const header = LOG_HEADER.exec(token);
      if (!header) throw new DeployRollbackError(`Reading the history of ${paths.join(', ')} failed: git log printed ${JSON.stringify(token.slice(0, 80))} where a commit was expected`, 'reading history');
      deliver();
      const [, sha, time, parents] = header;
      current = { commit: { sha, committerTime: Number(time), parents: parents.split(' ').filter((parent) => parent !== ''), message: '', files: [] }, message: messages.read(sha) };
      firstFile = true;
    };
    child.stdout.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let start = 0;
      try {
        for (let end = pending.indexOf(0, start); end >= 0; end = pending.indexOf(0, start)) {
          take(pending.subarray(start, end).toString('utf8'));
          start = end + 1;
        }
      } catch (error) {
        stop();
        finish(error);
        return;
      }
      pending = pending.subarray(start);
    });
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => finish(new DeployRollbackError(`Could not run git in ${cwd}: ${error.message}`)));
    child.on('close', (exitCode) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (settled) return;
      if (!stopped && exitCode !== 0) {
        const detail = Buffer.concat(stderr).toString('utf8').trim();
        finish(new DeployRollbackError(`Reading the history of ${paths.join(', ')} failed: git log exited ${exitCode} in ${cwd}: ${detail}`, 'reading history'));
        return;
      }
      if (!stopped) {
        try {
          // -z separates commits: the last one's header may end without a NUL.
          if (pending.length > 0) take(pending.toString('utf8'));
        } catch (error) {
          finish(error);
          return;
        }
        deliver();
      }
      delivered.then(
        () => finish(),
        (error: unknown) => finish(error),
      );
    });
  });
}

function releaseFrom(commit: PathCommit, gimlet: GimletRelease | undefined): GitopsRelease {
  const version = gimlet?.version ?? {};
  const title = version.message ? subjectOf(version.message) : subjectOf(commit.message);
  return {
    id: commit.sha,
    gitopsSha: commit.sha,
    version: version.tag ?? (version.sha ? version.sha.slice(0, 8) : shortSha(commit.sha)),
    title,
    created: new Date(commit.committerTime * 1000).toISOString(),
    current: false,
    rolledBack: false,
    rollbackable: false,
    triggeredBy: gimlet?.triggeredBy,
    author: version.authorName,
    sourceRepo: version.repositoryName,
    sourceBranch: version.branch,
    sourceSha: version.sha,
    url: version.url,
    message: version.message,
    artifactId: gimlet?.artifactId,
    files: commit.files,
  };
}

/** The whole picture of one app path: every commit walked and the releases among them. */
export interface PathHistory {
  /** Newest first, reverts and deletes included. */
  commits: PathCommit[];
  releases: GitopsRelease[];
  /** The newest commit on the path when read (what a plan is based on). */
  head?: string;
  /** False when the walk stopped before the oldest commit. */
  complete: boolean;
  /** The app path's tree at the rev read; absent when the path does not exist there. */
  headTree?: string;
  /** The app path's tree at each walked commit (absent value: the path did not exist). */
  trees: Map<string, string | undefined>;
  /** Set when the walk reached a shallow clone's boundary: older history is not here. */
  cut?: { boundary: string; message: string };
  /** Set when the current release cannot be told with certainty: why. */
  uncertain?: string;
}

export function requireEnv(repo: GitopsRepo, envName: string): GitopsEnv {
  const env = findEnv(repo, envName);
  if (!env) throw new DeployRollbackError(`No environment "${envName}" in the gitops repository ${repo.root} (found: ${repo.envs.map((e) => e.name).join(', ') || 'none'})`);
  return env;
}

/** The commits where a shallow clone's history is cut (empty for a full clone). */
export async function shallowBoundaries(root: string, reporter: Reporter = silentReporter): Promise<Set<string>> {
  const result = await runGit(['rev-parse', '--git-path', 'shallow'], { cwd: root, reporter });
  if (result.exitCode !== 0) return new Set();
  const file = path.resolve(root, result.stdout.toString('utf8').trim());
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return new Set(text.split('\n').map((line) => line.trim()).filter((line) => line !== ''));
}

export function unshallowHint(remote = 'origin'): string {
  return `run git fetch --unshallow ${remote} (or git fetch --deepen=100 ${remote}) to read older history`;
}

/**
 * Reads an app's history newest first and tells current / rolled back from content (see
 * `classify`). Walks until `limit` releases (or `until`) are read AND the release matching
 * HEAD's tree is found, so a current release older than the window is still recognised.
 */
export async function readPathHistory(repo: GitopsRepo, envName: string, app: string, query: ReleaseQuery & { until?: (commit: PathCommit) => boolean } = {}): Promise<PathHistory> {
  const env = requireEnv(repo, envName);
  const where = appPath(env, app);
  const ownFile = `${where}/release.json`;
  const envFile = envReleasePath(env);
  const deployMessage = `[Gimlet] ${env.dir ? `${env.dir}/` : ''}${app} automated deploy`;
  const limit = query.limit ?? Number.POSITIVE_INFINITY;
  const reporter = query.reporter ?? silentReporter;
  const rev = query.rev ?? 'HEAD';
  const boundaries = await shallowBoundaries(repo.root, reporter);
  const commits: PathCommit[] = [];
  const mentionedBy = new Map<string, string>();
  const treeReads = new Map<string, Promise<string | undefined>>();
  const candidates: Array<{ commit: PathCommit; rolledBackBy?: string; wrote: boolean; own: Promise<Buffer | undefined> }> = [];
  const batch = new CatFileBatch(repo.root, reporter);
  // Awaited below in order; if cat-file dies, the first await reports it and the rest must not crash the host as unhandled.
  const quiet = <T>(read: Promise<T>): Promise<T> => {
    read.catch(() => undefined);
    return read;
  };
  const treeOf = (spec: string): Promise<string | undefined> => quiet(batch.object(spec).then((object) => (object?.type === 'tree' ? object.oid : undefined)));
  let releases: GitopsRelease[] = [];
  const trees = new Map<string, string | undefined>();
  // A hand-made commit that writes back an older release's release.json (git checkout <old> -- <path>)
  // restores that release; it is not a new one.
  const handCopies = new Map<string, string>();
  const releaseJsonTexts = new Set<string>();
  let complete = false;
  let headTree: string | undefined;
  try {
    headTree = await treeOf(`${rev}:${where}`);
    let currentSeen = headTree === undefined;
    let resolvedUpTo = 0;
    let reachedUntil = false;
    // Ask git for exactly as many commits as releases still wanted (git stops by itself, no
    // kill, no walking past the last one); reverts, deletes and non-releases cost another round.
    let batchSize = Number.isFinite(limit) ? limit : undefined;
    for (;;) {
      const walked = commits.length;
      const stoppedEarly = await walkPathLog(
        repo.root,
        [rev],
        [where],
        (commit) => {
          const boundary = boundaries.has(commit.sha);
          // A shallow boundary shows as a root commit that adds every file: what it changed is unknown.
          if (boundary) commit.files = [];
          commits.push(commit);
          treeReads.set(commit.sha, treeOf(`${commit.sha}:${where}`));
          const revert = isRevertMessage(commit.message);
          if (revert) for (const sha of commit.message.match(MENTIONED_SHA) ?? []) if (!mentionedBy.has(sha)) mentionedBy.set(sha, commit.sha);
          const deploySubject = subjectOf(commit.message) === deployMessage;
          // A release rewrites the app's release.json; a hand edit that leaves it alone is not one.
          const wrote = deploySubject || (!boundary && commit.files.includes(ownFile));
          if (!revert && !isDeleteMessage(commit.message) && (!boundary || deploySubject)) {
            candidates.push({ commit, rolledBackBy: mentionedBy.get(commit.sha), wrote, own: quiet(batch.read(`${commit.sha}:${ownFile}`)) });
          }
          if (!reachedUntil && query.until?.(commit)) {
            reachedUntil = true;
            return false;
          }
          return true;
        },
        { reporter, signal: query.signal, maxCount: batchSize, skip: walked },
      );
      for (; resolvedUpTo < candidates.length; resolvedUpTo++) {
        const { commit, rolledBackBy, wrote, own } = candidates[resolvedUpTo];
        const ownBlob = await own;
        const deploySubject = subjectOf(commit.message) === deployMessage;
        // Deleting or moving the app's release.json (or the app) is a hand edit, never a release.
        if (ownBlob === undefined && commit.files.includes(ownFile) && !deploySubject) continue;
        let gimlet = wrote ? parseBlob(ownBlob) : undefined;
        if (gimlet === undefined && ownBlob === undefined && !boundaries.has(commit.sha)) {
          // Older deploys wrote only the env file: it counts when this commit wrote it, naming this
          // app, and the app had no release.json of its own before either.
          gimlet = await oldStyleDeploy(batch, commit, ownFile, envFile, app);
        }
        if (gimlet === undefined && !deploySubject) continue;
        if (gimlet?.app !== undefined && gimlet.app !== app && !deploySubject) continue;
        const release = releaseFrom(commit, gimlet);
        if (wrote && ownBlob !== undefined && !deploySubject) handCopies.set(release.id, ownBlob.toString('utf8'));
        else if (ownBlob !== undefined) releaseJsonTexts.add(ownBlob.toString('utf8'));
        release.tree = await treeReads.get(commit.sha);
        if (rolledBackBy) release.rolledBackBy = rolledBackBy;
        releases.push(release);
        if (release.tree !== undefined && release.tree === headTree && !handCopies.has(release.id)) currentSeen = true;
      }
      const exhausted = !stoppedEarly && (batchSize === undefined || commits.length - walked < batchSize);
      if (exhausted) {
        complete = true;
        break;
      }
      if ((reachedUntil || releases.length >= limit) && currentSeen) break;
      batchSize = Math.max(Number.isFinite(limit) ? limit - releases.length : 0, (batchSize ?? 0) * 2, 16);
    }
    for (const [sha, read] of treeReads) trees.set(sha, await read);
  } finally {
    batch.close();
  }
  releases = releases.filter((release) => !releaseJsonTexts.has(handCopies.get(release.id) ?? '\0'));
  const oldest = commits[commits.length - 1];
  const cut =
    complete && oldest && boundaries.has(oldest.sha)
      ? { boundary: oldest.sha, message: `The history of ${where} is cut at ${shortSha(oldest.sha)} (this is a shallow clone): older releases are not here; ${unshallowHint()}` }
      : undefined;
  const history: PathHistory = { commits, releases, head: commits[0]?.sha, complete, headTree, trees, cut };
  classify(history, where);
  history.releases = releases.slice(0, limit);
  return history;
}

async function oldStyleDeploy(batch: CatFileBatch, commit: PathCommit, ownFile: string, envFile: string, app: string): Promise<GimletRelease | undefined> {
  const parent = commit.parents[0];
  const written = await batch.object(`${commit.sha}:${envFile}`);
  if (written === undefined) return undefined;
  if (parent !== undefined) {
    if ((await batch.object(`${parent}:${ownFile}`)) !== undefined) return undefined;
    if ((await batch.object(`${parent}:${envFile}`))?.oid === written.oid) return undefined;
  }
  const shared = parseBlob(written.content);
  return shared?.app === app ? shared : undefined;
}

function parseBlob(blob: Buffer | undefined): GimletRelease | undefined {
  return blob === undefined ? undefined : parseReleaseJson(blob.toString('utf8'));
}

/**
 * Current and rolled back are read from content, not from commit messages:
 * - current: the newest release whose `<env>/<app>` tree equals the one at HEAD. Reverts, reverts
 *   of reverts, hand-made restores and Gimlet's own rollbacks all end in some release's tree, so
 *   they are all read the same way.
 * - rolled back: every release newer than the current one (its content is not live); choosing it
 *   is a roll forward. Releases older than the current one are roll-back targets, even if they
 *   were reverted once and deployed again.
 * - the app path absent at HEAD (deleted): nothing is current; every release is a roll-back target.
 * - HEAD's tree matching no release (a hand edit on top, or a shallow clone cut before the
 *   match): nothing is called current and every release says "uncertain: …". Each stays a
 *   target, since restoring a release's exact tree is well defined; none is called "previous".
 */
function classify(history: PathHistory, where: string): void {
  const { releases, headTree } = history;
  const currentIndex = headTree === undefined ? -1 : releases.findIndex((release) => release.tree === headTree);
  const current = currentIndex >= 0 ? releases[currentIndex] : undefined;
  if (headTree !== undefined && !current) {
    const last = history.commits[0];
    history.uncertain = history.cut
      ? `uncertain: ${where} at HEAD matches none of the releases in this shallow clone; ${unshallowHint()}`
      : `uncertain: ${where} at HEAD matches no release${last ? ` (last changed by ${shortSha(last.sha)} "${subjectOf(last.message)}")` : ''}`;
  }
  // Previous: what ran just before the current release was deployed (its path's state then), so a
  // release that was rolled back before the current one came is not offered as "previous".
  const older = releases.slice(currentIndex + 1);
  let previous: GitopsRelease | undefined;
  if (!history.uncertain) {
    const commitIndex = current ? history.commits.findIndex((commit) => commit.sha === current.id) : -1;
    const before = current ? history.commits[commitIndex + 1] : undefined;
    const beforeTree = before ? history.trees.get(before.sha) : undefined;
    previous = (beforeTree !== undefined ? older.find((release) => release.tree === beforeTree) : undefined) ?? older[0];
  }
  releases.forEach((release, index) => {
    release.current = false;
    release.rolledBack = false;
    release.rollbackable = true;
    release.previous = undefined;
    release.reason = undefined;
    if (current && index < currentIndex) {
      release.rolledBack = true;
      release.direction = 'forward';
      release.reason = `rolled back: ${where} holds ${current.version} now; choosing it rolls forward`;
    } else if (release === current) {
      release.current = true;
      release.rollbackable = false;
      release.direction = undefined;
      release.reason = 'running now';
      release.rolledBackBy = undefined;
    } else {
      release.direction = 'back';
      release.rolledBackBy = undefined;
      if (history.uncertain) release.reason = history.uncertain;
      if (release === previous) release.previous = true;
    }
  });
  const oldest = releases[releases.length - 1];
  if (history.cut && oldest && oldest.id === history.cut.boundary) {
    oldest.reason = `${oldest.reason ? `${oldest.reason}; ` : ''}history cut here (shallow clone): ${unshallowHint()}`;
  }
}

/** The app's releases, newest first, with current / rolled-back / rollbackable / direction flags. */
export async function listReleases(repo: GitopsRepo, envName: string, app: string, query: ReleaseQuery = {}): Promise<GitopsRelease[]> {
  return (await readPathHistory(repo, envName, app, query)).releases;
}
