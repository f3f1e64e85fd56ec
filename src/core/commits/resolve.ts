/**
 * Many refs to commits in one `git cat-file --batch` process per repository, cached until the
 * repository's refs change (HEAD moves, a fetch lands, tags change): never a git spawn per row.
 */
import { silentReporter, type Reporter, type SourceCommit } from '../model';
import { CatFileBatch } from '../gitops/git';
import { parseCommitObject } from './commit';
import { refsFingerprint, repositoryDirs, shallowCommits } from './repository';

export const NOT_IN_CLONE = 'not in your local clone: fetch to see it';

/** What one ref came to in one repository. */
export interface ResolvedRef {
  commit?: SourceCommit;
  /** Set when there is no commit: why, for the user. */
  missing?: string;
}

/** Names a version may be as a commit: hex (full or short sha) or a tag name; nothing git would read as an expression. */
const HEX = /^[0-9a-f]{4,40}$/;
const TAG_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+/-]*$/;

/** The `cat-file` names to try for `ref`, in order: the commit itself, then the tag (annotated tags peeled). */
export function lookupNames(ref: string): string[] {
  if (!TAG_NAME.test(ref) || ref.includes('..') || ref.endsWith('.lock') || ref.endsWith('/')) return [];
  const tag = `refs/tags/${ref}^{commit}`;
  return HEX.test(ref) ? [`${ref}^{commit}`, tag] : [tag];
}

interface RepositoryCache {
  fingerprint: string;
  refs: Map<string, ResolvedRef>;
}

export class CommitResolver {
  /** git processes started so far (the bench and tests check there is one per batch). */
  processes = 0;
  private readonly caches = new Map<string, RepositoryCache>();
  /** Processes started ahead of their reads (`openAhead`), until their holder lets them go. */
  private readonly held = new Map<string, CatFileBatch>();

  constructor(private readonly reporter: Reporter = silentReporter) {}

  /**
   * Starts the `git cat-file --batch` of `repository` now, for the reads that follow until the
   * returned `close` (which the caller must call): its start then happens at a time of the
   * caller's choosing (a rollback: during the handshakes, not with the deploy lock held).
   */
  openAhead(repository: string): () => void {
    if (this.held.has(repository)) return () => undefined;
    this.processes++;
    const batch = new CatFileBatch(repository, this.reporter);
    this.held.set(repository, batch);
    return () => {
      if (this.held.get(repository) === batch) this.held.delete(repository);
      batch.close();
    };
  }

  /**
   * Every ref resolved in `repository`: refs already read at the same refs fingerprint come from
   * the cache; the rest cost one `git cat-file --batch` together.
   */
  async resolve(repository: string, refs: readonly string[], signal?: AbortSignal): Promise<Map<string, ResolvedRef>> {
    const results = new Map<string, ResolvedRef>();
    const dirs = await repositoryDirs(repository);
    if (!dirs) {
      for (const ref of refs) results.set(ref, { missing: `${repository} is not a git repository` });
      return results;
    }
    const fingerprint = await refsFingerprint(dirs);
    let cache = this.caches.get(repository);
    if (!cache || cache.fingerprint !== fingerprint) {
      cache = { fingerprint, refs: new Map() };
      this.caches.set(repository, cache);
    }
    const wanted = [...new Set(refs)].filter((ref) => !cache.refs.has(ref));
    const named = wanted.filter((ref) => lookupNames(ref).length > 0);
    for (const ref of wanted) if (!named.includes(ref)) cache.refs.set(ref, { missing: `${JSON.stringify(ref)} is not a commit sha or tag name` });
    if (named.length > 0 && !signal?.aborted) {
      const found = await this.readBatch(repository, named);
      if (!found) {
        for (const ref of refs) results.set(ref, cache.refs.get(ref) ?? { missing: `could not read commits in ${repository}` });
        return results;
      }
      const shallow = (await shallowCommits(dirs)).length > 0;
      const missing = shallow ? `${NOT_IN_CLONE} (this clone is shallow: git fetch --unshallow reads its older history)` : NOT_IN_CLONE;
      for (const ref of named) cache.refs.set(ref, found.has(ref) ? { commit: found.get(ref) } : { missing });
    }
    for (const ref of refs) results.set(ref, cache.refs.get(ref) ?? { missing: NOT_IN_CLONE });
    return results;
  }

  /** One commit by ref, through the same cache. */
  async commit(repository: string, ref: string, signal?: AbortSignal): Promise<ResolvedRef> {
    return (await this.resolve(repository, [ref], signal)).get(ref) ?? { missing: NOT_IN_CLONE };
  }

  /** Forget what was read (all repositories, or one), so the next read goes to git again. */
  forget(repository?: string): void {
    if (repository === undefined) this.caches.clear();
    else this.caches.delete(repository);
  }

  /** Undefined when git could not answer (logged, not cached). */
  private async readBatch(repository: string, refs: readonly string[]): Promise<Map<string, SourceCommit> | undefined> {
    const held = this.held.get(repository);
    if (held) {
      const found = await this.readFrom(held, repository, refs);
      if (found) return found;
      // The process started ahead failed: a fresh one decides, as without it.
      if (this.held.get(repository) === held) this.held.delete(repository);
      held.close();
    }
    this.processes++;
    const batch = new CatFileBatch(repository, this.reporter);
    try {
      return await this.readFrom(batch, repository, refs);
    } finally {
      batch.close();
    }
  }

  /** Undefined when git could not answer (logged). */
  private async readFrom(batch: CatFileBatch, repository: string, refs: readonly string[]): Promise<Map<string, SourceCommit> | undefined> {
    const found = new Map<string, SourceCommit>();
    try {
      // Every first name is written at once and answered in order by the one process; only the
      // refs not found that way try their next name (a tag named like a sha), in a second round.
      let pending = refs.map((ref) => ({ ref, names: lookupNames(ref) }));
      while (pending.length > 0) {
        const reads = pending.map(({ names }) => batch.object(names[0]));
        for (const read of reads) read.catch(() => undefined);
        const next: typeof pending = [];
        for (const [index, entry] of pending.entries()) {
          const object = await reads[index];
          if (object?.type === 'commit') found.set(entry.ref, parseCommitObject(object.oid, object.content));
          else if (entry.names.length > 1) next.push({ ref: entry.ref, names: entry.names.slice(1) });
        }
        pending = next;
      }
    } catch (error) {
      // A git that cannot run is not the release's fault: the rows say the commit is unknown, the log says why.
      this.reporter.debug(`[commits] could not read commits in ${repository}: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
    return found;
  }
}
