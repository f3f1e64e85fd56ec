/**
 * Releases linked to their code: which repository holds a release's commit (Kamal: the one
 * holding deploy.yml; gitops: the workspace repository named by `version.repositoryName`), the
 * commit itself, and what a rollback plan takes out of production or brings back. The Kamal and
 * gitops sources, the VS Code layer and the CLI all go through one `ReleaseCodeReader`.
 */
import * as path from 'node:path';
import { silentReporter, type CodeChange, type Release, type ReleaseCode, type Reporter, type RollbackOutcome, type RollbackPlan, type RollDirection, type SourceCommit } from '../model';
import { commitTitle, shortCommitSha } from './commit';
import { codeChangeBetween, LISTED_COMMITS } from './range';
import { candidateRepositories, matchRepositoryName, repositoryContaining } from './repository';
import { CommitResolver, NOT_IN_CLONE, type ResolvedRef } from './resolve';

/** Kamal's version of an image built from a dirty tree: `<sha>_uncommitted_<hex>`. */
const UNCOMMITTED = /^(.+?)_uncommitted_[0-9a-f]+$/;

/** The ref a Kamal version names, without the `_uncommitted_<hex>` suffix Kamal adds for a dirty tree. */
export function parseKamalVersion(version: string): { ref: string; uncommitted: boolean } {
  const match = UNCOMMITTED.exec(version);
  return match ? { ref: match[1], uncommitted: true } : { ref: version, uncommitted: false };
}

export interface ReleaseCodeOptions {
  /**
   * Folders to look for gitops source repositories in: each folder's own repository and the
   * repositories directly inside it (VS Code: the workspace folders; CLI: --code-repo, else
   * the gitops repository's parent folder and the current directory).
   */
  folders: () => readonly string[];
  reporter?: Reporter;
  resolver?: CommitResolver;
}

/** What the reader needs of a release, and sets on it: a whole Release or just its version and source. */
export type CodeTarget = Pick<Release, 'version' | 'sourceSha' | 'sourceRepo' | 'code'>;

/** One reader per window / CLI run: caches repositories and commits until `refresh()` or the refs change. */
export class ReleaseCodeReader {
  readonly resolver: CommitResolver;
  private readonly reporter: Reporter;
  private readonly kamalRepositories = new Map<string, Promise<string | undefined>>();
  private candidates?: Promise<string[]>;
  private readonly said = new Set<string>();

  constructor(private readonly options: ReleaseCodeOptions) {
    this.reporter = options.reporter ?? silentReporter;
    this.resolver = options.resolver ?? new CommitResolver(this.reporter);
  }

  /** The repository holding a Kamal config: the app's own code. */
  kamalRepository(configFile: string): Promise<string | undefined> {
    let found = this.kamalRepositories.get(configFile);
    if (!found) {
      found = repositoryContaining(configFile);
      this.kamalRepositories.set(configFile, found);
    }
    return found;
  }

  /**
   * Kamal: starts a rollback's code reading now (the config's repository, its git process, the
   * target's commit), so that reading the plan's code change after the pre-flight, with the deploy
   * lock held, starts no process. The returned function ends it; the caller must call it.
   */
  kamalCodeAhead(configFile: string, targetVersion: string | undefined): () => Promise<void> {
    const opened = this.kamalRepository(configFile).then(
      async (repository) => {
        if (!repository) return undefined;
        const close = this.resolver.openAhead(repository);
        if (targetVersion !== undefined) await this.resolver.resolve(repository, [parseKamalVersion(targetVersion).ref]).catch(() => undefined);
        return close;
      },
      () => undefined,
    );
    return async () => (await opened)?.();
  }

  /**
   * The workspace repository Gimlet's `repositoryName` (`owner/name`) names: a remote ending in
   * owner/name wins over a folder or remote named like the name alone; the gitops repository never counts.
   */
  async gitopsSourceRepository(gitopsRoot: string, repositoryName: string): Promise<string | undefined> {
    this.candidates ??= candidateRepositories(this.options.folders());
    const candidates = (await this.candidates).filter((root) => path.resolve(root) !== path.resolve(gitopsRoot));
    let weak: string | undefined;
    for (const root of candidates) {
      const match = await matchRepositoryName(root, repositoryName);
      if (match === 'remote') return root;
      if (match === 'name') weak ??= root;
    }
    return weak;
  }

  private async readKamalCode(configFile: string, releases: readonly CodeTarget[], signal?: AbortSignal): Promise<void> {
    if (releases.length === 0) return;
    const repository = await this.kamalRepository(configFile);
    const parsed = releases.map((release) => parseKamalVersion(release.version));
    if (!repository) {
      this.sayOnce(`kamal-norepo:${configFile}`, `${configFile} is not in a git repository: release versions are not linked to commits`);
      releases.forEach((release, index) => (release.code = codeOf(parsed[index], undefined, { missing: `${path.basename(path.dirname(path.dirname(configFile)))} is not a git repository` })));
      return;
    }
    const resolved = await this.resolver.resolve(repository, parsed.map((entry) => entry.ref), signal);
    releases.forEach((release, index) => (release.code = codeOf(parsed[index], repository, resolved.get(parsed[index].ref))));
    this.sayMissing(repository, releases);
  }

  private async readGitopsCode(gitopsRoot: string, releases: readonly CodeTarget[], signal?: AbortSignal): Promise<void> {
    const byRepository = new Map<string, CodeTarget[]>();
    for (const release of releases) {
      if (!release.sourceSha) continue;
      const repository = release.sourceRepo ? await this.gitopsSourceRepository(gitopsRoot, release.sourceRepo) : undefined;
      if (!repository) {
        const missing = release.sourceRepo ? `no workspace repository is ${release.sourceRepo} (by remote or folder name): open its clone to see the commit` : 'release.json names no repository';
        release.code = { ref: release.sourceSha, missing };
        this.sayOnce(`gitops-norepo:${gitopsRoot}:${release.sourceRepo ?? ''}`, `Releases in ${gitopsRoot}: ${missing}`);
        continue;
      }
      byRepository.set(repository, [...(byRepository.get(repository) ?? []), release]);
    }
    for (const [repository, group] of byRepository) {
      const resolved = await this.resolver.resolve(repository, group.map((release) => release.sourceSha!), signal);
      for (const release of group) release.code = codeOf({ ref: release.sourceSha!, uncommitted: false }, repository, resolved.get(release.sourceSha!));
      this.sayMissing(repository, group);
    }
  }

  /**
   * Sets `code` on each Kamal release: its version as a commit (or tag) of the config's
   * repository. Never throws: linking code must not cost the user the release list.
   */
  async attachKamalCode(configFile: string, releases: readonly CodeTarget[], signal?: AbortSignal): Promise<void> {
    await this.quietly(`reading the commits of ${configFile}'s releases`, () => this.readKamalCode(configFile, releases, signal));
  }

  /** Sets `code` on each gitops release that names a source commit (`version.sha`). Never throws. */
  async attachGitopsCode(gitopsRoot: string, releases: readonly CodeTarget[], signal?: AbortSignal): Promise<void> {
    await this.quietly(`reading the source commits of ${gitopsRoot}'s releases`, () => this.readGitopsCode(gitopsRoot, releases, signal));
  }

  /**
   * Kamal: the plan's code change, from its `from` and `to` versions as commits of the config's
   * repository. Never throws (a plan may already hold the deploy lock): failing, it says why in
   * `codeChangeUnknown`.
   */
  async attachKamalCodeChange(configFile: string, plan: RollbackPlan, signal?: AbortSignal): Promise<void> {
    await this.quietly('reading the commits of the plan', () => this.readKamalCodeChange(configFile, plan, signal), plan);
  }

  /** Gitops: the plan's code change, from the running and the target release's `version.sha`. Never throws. */
  async attachGitopsCodeChange(gitopsRoot: string, plan: RollbackPlan, current: CodeTarget | undefined, target: CodeTarget, signal?: AbortSignal): Promise<void> {
    await this.quietly('reading the commits of the plan', () => this.readGitopsCodeChange(gitopsRoot, plan, current, target, signal), plan);
  }

  private async quietly(what: string, read: () => Promise<void>, plan?: RollbackPlan): Promise<void> {
    try {
      await read();
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.reporter.debug(`[commits] ${what}: ${why}`);
      if (plan && !plan.codeChange && !plan.codeChangeUnknown) {
        plan.codeChangeUnknown = `which commits this changes could not be read: ${why}`;
        plan.lines.push('', `Code: ${plan.codeChangeUnknown}`);
      }
    }
  }

  /**
   * Sets `codeChange` (or `codeChangeUnknown`) on a plan from its two releases' code, and adds
   * every commit to the plan's lines. `from` is the running release's code (absent: unknown).
   */
  async attachCodeChange(plan: RollbackPlan, from: ReleaseCode | undefined, to: ReleaseCode | undefined, signal?: AbortSignal): Promise<void> {
    const direction: RollDirection = plan.direction ?? 'back';
    const unknown = (why: string): void => {
      plan.codeChangeUnknown = why;
      plan.lines.push('', `Code: ${why}`);
    };
    if (!from?.commit || !to?.commit) {
      const side = !from?.commit ? { code: from, version: plan.from } : { code: to, version: plan.to };
      if (!side.code) return unknown(`which commits this changes is not known: ${side.version} names no commit`);
      const missing = side.code.missing ?? NOT_IN_CLONE;
      return unknown(`which commits this changes is not known: ${side.version}${missing.startsWith('not ') ? ' is ' : ': '}${missing}`);
    }
    if (from.repository !== to.repository || !from.repository) return unknown(`which commits this changes is not known: ${plan.from} and ${plan.to} are in different repositories`);
    try {
      const change = await codeChangeBetween(this.resolver, from.repository, from.commit.sha, to.commit.sha, direction, { signal, limit: LISTED_COMMITS });
      plan.codeChange = change;
      plan.lines.push('', ...codeChangeLines(change, { uncommitted: to.uncommitted, fromUncommitted: from.uncommitted }));
    } catch (error) {
      unknown(`which commits this changes could not be read: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async readKamalCodeChange(configFile: string, plan: RollbackPlan, signal?: AbortSignal): Promise<void> {
    const froms = plan.from.split(', ');
    if (froms.length > 1 || plan.from === 'nothing running') {
      plan.codeChangeUnknown = froms.length > 1 ? `which commits this changes is not known: the hosts run different versions (${plan.from})` : 'nothing runs now, so there is no code to compare with';
      plan.lines.push('', `Code: ${plan.codeChangeUnknown}`);
      return;
    }
    const releases: CodeTarget[] = [{ version: plan.from }, { version: plan.to }];
    await this.readKamalCode(configFile, releases, signal);
    await this.attachCodeChange(plan, releases[0].code, releases[1].code, signal);
  }

  private async readGitopsCodeChange(
    gitopsRoot: string,
    plan: RollbackPlan,
    current: CodeTarget | undefined,
    target: CodeTarget,
    signal?: AbortSignal,
  ): Promise<void> {
    if (!current) {
      plan.codeChangeUnknown = 'no release is current, so there is no code to compare with';
      plan.lines.push('', `Code: ${plan.codeChangeUnknown}`);
      return;
    }
    const releases: CodeTarget[] = [current, target].map(({ version, sourceSha, sourceRepo }) => ({ version, sourceSha, sourceRepo }));
    await this.readGitopsCode(gitopsRoot, releases, signal);
    await this.attachCodeChange(plan, releases[0].code, releases[1].code, signal);
  }

  /** Forget repositories and commits, so the next read looks again (after a fetch, a new folder). */
  refresh(): void {
    this.kamalRepositories.clear();
    this.candidates = undefined;
    this.resolver.forget();
  }

  private sayMissing(repository: string, releases: readonly CodeTarget[]): void {
    const missing = releases.filter((release) => release.code && !release.code.commit);
    if (missing.length === 0) return;
    const versions = missing.map((release) => release.version);
    // Said once per repository and set of versions: no repeat on every refresh, no error noise.
    this.sayOnce(
      `missing:${repository}:${versions.join(',')}`,
      `${missing.length === 1 ? `Release ${versions[0]} is` : `${missing.length} releases (${versions.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}) are`} ${missing[0].code?.missing ?? NOT_IN_CLONE} (${repository})`,
    );
  }

  private sayOnce(key: string, message: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.reporter.info(message);
  }
}

function codeOf(parsed: { ref: string; uncommitted: boolean }, repository: string | undefined, resolved: ResolvedRef | undefined): ReleaseCode {
  const code: ReleaseCode = { ref: parsed.ref };
  if (parsed.uncommitted) code.uncommitted = true;
  if (repository) code.repository = repository;
  if (resolved?.commit) code.commit = resolved.commit;
  else code.missing = resolved?.missing ?? NOT_IN_CLONE;
  return code;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** "this rollback undoes 3 commits", "this roll forward brings back 1 commit": what the change is in a few words. */
export function codeChangeSummary(change: CodeChange): string {
  const count = `${change.shallowCut ? 'at least ' : ''}${plural(change.total, 'commit')}`;
  if (change.total === 0 && !change.diverged) return change.fromSha === change.toSha ? 'the same commit runs before and after' : `this ${change.direction === 'forward' ? 'roll forward' : 'rollback'} changes no commits`;
  const main = change.direction === 'forward' ? `this roll forward brings back ${count}` : `this rollback undoes ${count}`;
  if (!change.diverged) return main;
  const other = plural(change.diverged.total, 'commit');
  return `${main} and ${change.direction === 'forward' ? `takes out ${other}` : `brings in ${other}`} (the histories diverged)`;
}

/** One commit as a plan line lists it: short sha, title (a merged pull request by its title), author and date. */
export function commitLine(commit: SourceCommit): string {
  return `${shortCommitSha(commit.sha)} ${commitTitle(commit)} (${commit.authorName}, ${commit.authorDate.slice(0, 10)})`;
}

/** The plan's and the dry run's lines for a code change: every listed commit, newest first. */
export function codeChangeLines(change: CodeChange, flags: { uncommitted?: boolean; fromUncommitted?: boolean } = {}): string[] {
  const where = path.basename(change.repository);
  const lines = [`Code: ${codeChangeSummary(change)} of ${where} (${shortCommitSha(change.fromSha)} → ${shortCommitSha(change.toSha)}, first-parent, newest first):`];
  const list = (commits: SourceCommit[], total: number): void => {
    for (const commit of commits) lines.push(`  ${commitLine(commit)}`);
    if (total > commits.length) lines.push(`  … and ${total - commits.length} more (git log --first-parent in ${change.repository})`);
  };
  list(change.commits, change.total);
  if (change.diverged) {
    lines.push(
      change.direction === 'forward'
        ? `  The running release's commit is not an ancestor of the target: the roll forward also takes out ${plural(change.diverged.total, 'commit')}:`
        : `  The target's commit is not an ancestor of the running release: the rollback also brings in ${plural(change.diverged.total, 'commit')} production does not run now:`,
    );
    list(change.diverged.commits, change.diverged.total);
  }
  if (change.shallowCut) lines.push(`  This clone is shallow (cut at ${shortCommitSha(change.shallowCut)}): there may be more; git fetch --unshallow to see them.`);
  if (flags.fromUncommitted) lines.push('  The running release was built from uncommitted changes: its code is this commit plus changes git does not have.');
  if (flags.uncommitted) lines.push('  The target was built from uncommitted changes: its code is this commit plus changes git does not have.');
  return lines;
}

/** What the executor says before it starts and puts in its outcome: the code change in one line. */
export function codeChangeOutcome(plan: RollbackPlan): string | undefined {
  if (plan.codeChange) {
    const change = plan.codeChange;
    const titles = change.commits.slice(0, 3).map((commit) => commitTitle(commit));
    return `Code: ${codeChangeSummary(change)}${titles.length ? `: ${titles.join('; ')}${change.total > titles.length ? '; …' : ''}` : ''}`;
  }
  return plan.codeChangeUnknown ? `Code: ${plan.codeChangeUnknown}` : undefined;
}

/** Reports the plan's code change on the run's output (every listed commit at info level). */
export function reportCodeChange(plan: RollbackPlan, reporter: Reporter): void {
  const line = codeChangeOutcome(plan);
  if (!line) return;
  reporter.step(line);
  if (plan.codeChange) for (const entry of codeChangeLines(plan.codeChange).slice(1)) reporter.info(entry);
}

/** The outcome of a successful run also says what code it changed. */
export function withCodeChangeOutcome<Outcome extends RollbackOutcome>(plan: RollbackPlan, outcome: Outcome): Outcome {
  const line = outcome.ok ? codeChangeOutcome(plan) : undefined;
  if (line) outcome.lines.push(line);
  return outcome;
}
