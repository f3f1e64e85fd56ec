import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { DeployRollbackError, silentReporter, type Release, type Reporter } from '../model';
import { appPath, envReleasePath, findEnv, type GitopsEnv, type GitopsRepo } from './discovery';
import { CatFileBatch, describeGit, shortSha, spawnGit } from './git';
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
};

export interface ReleaseQuery {
  limit?: number;
  /** Where to read history from; HEAD unless told. */
  rev?: string;
  reporter?: Reporter;
  signal?: AbortSignal;
}

const RECORD = 0x1e;
const FIELD = '\x1f';
const LOG_FORMAT = '--format=%x1e%H%x1f%ct%x1f%P%x1f%B%x1f';
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

function parseRecord(record: Buffer): PathCommit | undefined {
  const text = record.toString('utf8');
  const fields = text.split(FIELD);
  if (fields.length < 5) return undefined;
  const [sha, time, parents, message] = fields;
  const files = fields
    .slice(4)
    .join(FIELD)
    .split('\0')
    .map((file) => file.replace(/^\n/, ''))
    .filter((file) => file !== '');
  return {
    sha,
    committerTime: Number(time),
    parents: parents === '' ? [] : parents.split(' '),
    message: message.replace(/\n+$/, ''),
    files,
  };
}

/**
 * Streams `git log -- <path>` newest first, calling `onCommit` per commit; stops git as soon
 * as `onCommit` returns false, so reading the latest releases does not walk the whole history.
 * Resolves with whether the walk stopped early.
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
  (options.reporter ?? silentReporter).debug(`[git] ${describeGit(args, cwd)}`);
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
    let pending: Buffer = Buffer.alloc(0);
    let stopped = false;
    const stderr: Buffer[] = [];
    const stop = (): void => {
      stopped = true;
      child.stdout.removeAllListeners('data');
      child.kill();
    };
    const onAbort = (): void => {
      stop();
      reject(new DeployRollbackError('Cancelled while reading history', 'reading history'));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const emit = (record: Buffer): boolean => {
      const commit = parseRecord(record);
      return commit === undefined ? true : onCommit(commit);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let start = pending.indexOf(RECORD);
      for (;;) {
        if (start < 0) return;
        const next = pending.indexOf(RECORD, start + 1);
        if (next < 0) {
          pending = pending.subarray(start);
          return;
        }
        let keepGoing: boolean;
        try {
          keepGoing = emit(pending.subarray(start + 1, next));
        } catch (error) {
          stop();
          reject(error);
          return;
        }
        if (!keepGoing) {
          stop();
          return;
        }
        start = next;
      }
    });
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => reject(new DeployRollbackError(`Could not run git in ${cwd}: ${error.message}`)));
    child.on('close', (exitCode) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) return;
      if (stopped) {
        resolve(true);
        return;
      }
      if (exitCode !== 0) {
        const detail = Buffer.concat(stderr).toString('utf8').trim();
        reject(new DeployRollbackError(`Reading the history of ${paths.join(', ')} failed: git log exited ${exitCode} in ${cwd}: ${detail}`, 'reading history'));
        return;
      }
      const start = pending.indexOf(RECORD);
      try {
        if (start >= 0) emit(pending.subarray(start + 1));
      } catch (error) {
        reject(error);
        return;
      }
      resolve(false);
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
}

export function requireEnv(repo: GitopsRepo, envName: string): GitopsEnv {
  const env = findEnv(repo, envName);
  if (!env) throw new DeployRollbackError(`No environment "${envName}" in the gitops repository ${repo.root} (found: ${repo.envs.map((e) => e.name).join(', ') || 'none'})`);
  return env;
}

/**
 * Reads an app's history newest first. Rolled-back status needs every later commit's message,
 * and the walk sees later commits first, so stopping after `limit` releases loses nothing.
 */
export async function readPathHistory(repo: GitopsRepo, envName: string, app: string, query: ReleaseQuery & { until?: (commit: PathCommit) => boolean } = {}): Promise<PathHistory> {
  const env = requireEnv(repo, envName);
  const path = appPath(env, app);
  const ownFile = `${path}/release.json`;
  const envFile = envReleasePath(env);
  const deployMessage = `[Gimlet] ${env.dir ? `${env.dir}/` : ''}${app} automated deploy`;
  const limit = query.limit ?? Number.POSITIVE_INFINITY;
  const reporter = query.reporter ?? silentReporter;
  const commits: PathCommit[] = [];
  const mentionedBy = new Map<string, string>();
  const candidates: Array<{ commit: PathCommit; rolledBackBy?: string; own: Promise<Buffer | undefined> }> = [];
  const batch = new CatFileBatch(repo.root, reporter);
  const releases: GitopsRelease[] = [];
  let complete = false;
  try {
    const revs = [query.rev ?? 'HEAD'];
    let resolvedUpTo = 0;
    // Ask git for exactly as many commits as releases still wanted (git stops by itself, no
    // kill, no walking past the last one); reverts, deletes and non-releases cost another round.
    let batchSize = Number.isFinite(limit) ? limit : undefined;
    for (;;) {
      let reachedUntil = false;
      const walked = commits.length;
      await walkPathLog(
        repo.root,
        revs,
        [path],
        (commit) => {
          commits.push(commit);
          const rolledBackBy = mentionedBy.get(commit.sha);
          for (const sha of commit.message.match(MENTIONED_SHA) ?? []) if (!mentionedBy.has(sha)) mentionedBy.set(sha, commit.sha);
          if (!isRevertMessage(commit.message) && !isDeleteMessage(commit.message)) {
            const own = batch.read(`${commit.sha}:${ownFile}`);
            // Awaited below in order; if cat-file dies, the first await reports it and the rest must not crash the host as unhandled.
            own.catch(() => undefined);
            candidates.push({ commit, rolledBackBy, own });
          }
          if (query.until?.(commit)) {
            reachedUntil = true;
            return false;
          }
          return true;
        },
        { reporter, signal: query.signal, maxCount: batchSize, skip: walked },
      );
      for (; resolvedUpTo < candidates.length; resolvedUpTo++) {
        const { commit, rolledBackBy, own } = candidates[resolvedUpTo];
        let gimlet = parseBlob(await own);
        if (gimlet === undefined) {
          const shared = parseBlob(await batch.read(`${commit.sha}:${envFile}`));
          if (shared?.app === app) gimlet = shared;
        }
        if (gimlet === undefined && subjectOf(commit.message) !== deployMessage) continue;
        const release = releaseFrom(commit, gimlet);
        if (rolledBackBy) {
          release.rolledBack = true;
          release.rolledBackBy = rolledBackBy;
        }
        releases.push(release);
      }
      const exhausted = batchSize === undefined || commits.length - walked < batchSize;
      if (exhausted && !reachedUntil) complete = true;
      if (exhausted || reachedUntil || releases.length >= limit) break;
      batchSize = Math.max(limit - releases.length, (batchSize ?? 0) * 2);
    }
  } finally {
    batch.close();
  }
  markCurrent(releases, commits, mentionedBy);
  return { commits, releases: releases.slice(0, limit), head: commits[0]?.sha, complete };
}

function parseBlob(blob: Buffer | undefined): GimletRelease | undefined {
  return blob === undefined ? undefined : parseReleaseJson(blob.toString('utf8'));
}

/** A delete newer than the newest live release means nothing of this app is running. */
function markCurrent(releases: GitopsRelease[], commits: PathCommit[], mentionedBy: Map<string, string>): void {
  const current = releases.find((release) => !release.rolledBack);
  const currentIndex = current ? commits.findIndex((commit) => commit.sha === current.id) : commits.length;
  const deletedAfter = commits.slice(0, currentIndex).some((commit) => isDeleteMessage(commit.message) && !mentionedBy.has(commit.sha));
  let previousMarked = false;
  for (const release of releases) {
    if (release.rolledBack) {
      release.rollbackable = false;
      release.reason = `already rolled back by ${shortSha(release.rolledBackBy ?? '')}; roll forward instead: deploy it again`;
    } else if (release === current && !deletedAfter) {
      release.current = true;
      release.rollbackable = false;
      release.reason = 'running now';
    } else {
      release.rollbackable = true;
      if (!previousMarked && (current === undefined || release !== current)) {
        release.previous = true;
        previousMarked = true;
      }
    }
  }
}

/** The app's releases, newest first, with current / rolled-back / rollbackable flags. */
export async function listReleases(repo: GitopsRepo, envName: string, app: string, query: ReleaseQuery = {}): Promise<GitopsRelease[]> {
  return (await readPathHistory(repo, envName, app, query)).releases;
}
