import { DeployRollbackError, type App, type Environment, type Release, type ReleaseSource, type Reporter, type RollbackOutcome, type RollbackPlan } from '../model';
import { reportCodeChange, withCodeChangeOutcome, type ReleaseCodeReader } from '../commits';
import { appPath, readGitopsRepo, type FindGitopsOptions, type GitopsRepo } from './discovery';
import { operationInProgress, runGit } from './git';
import { listReleases, readPathHistory, type GitopsRelease } from './history';
import { executeGitopsRollback, isGitopsPlan, planGitopsRollback, previewGitopsRollback } from './rollback';

/** A directory name Gimlet could have written: no path separators, no pathspec magic. */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Releases of one Gimlet-style gitops repository, for the tree and the CLI. */
export class GitopsSource implements ReleaseSource {
  readonly kind = 'gitops' as const;
  readonly location: string;

  constructor(
    private repo: GitopsRepo,
    private readonly options: Omit<FindGitopsOptions, 'paths'> & {
      reporter?: Reporter;
      /** Bound on each git fetch and push of a rollback (`deployRollback.gitops.networkTimeout`). */
      networkTimeoutMs?: number;
      /** Links releases and plans to their source commits in the workspace's repositories; absent: not linked. */
      code?: ReleaseCodeReader;
    } = {},
  ) {
    this.location = repo.root;
  }

  /** The repository as last read; environments() re-reads the working tree. */
  get snapshot(): GitopsRepo {
    return this.repo;
  }

  async environments(): Promise<Environment[]> {
    const fresh = await readGitopsRepo(this.repo.root, { mode: this.options.mode ?? this.repo.layout, envName: this.options.envName });
    if (fresh) this.repo = fresh;
    return this.repo.envs.map((env) => ({
      id: `gitops:${this.repo.root}:${env.name}`,
      source: 'gitops',
      name: env.name,
      location: this.repo.root,
      problems: this.repo.problems,
    }));
  }

  async apps(environment: Environment): Promise<App[]> {
    const env = this.repo.envs.find((candidate) => candidate.name === environment.name);
    return (env?.apps ?? []).map((name) => ({ id: `${environment.id}/${name}`, environment, name, problems: [] }));
  }

  /**
   * An app that is not in the working tree but has history on the current branch (deleted at
   * HEAD): its releases are still roll-back targets, which bring it back.
   */
  async deletedApp(environment: Environment, name: string): Promise<App | undefined> {
    const env = this.repo.envs.find((candidate) => candidate.name === environment.name);
    if (!env || !APP_NAME.test(name) || name === '.' || name === '..' || name === 'flux') return undefined;
    const where = appPath(env, name);
    const log = await runGit(['log', '-1', '--format=%H', 'HEAD', '--', where], { cwd: this.repo.root, reporter: this.options.reporter });
    if (log.exitCode !== 0 || log.stdout.toString('utf8').trim() === '') return undefined;
    return { id: `${environment.id}/${name}`, environment, name, problems: [] };
  }

  async releases(app: App, options: { limit?: number } = {}): Promise<Release[]> {
    const history = await readPathHistory(this.repo, app.environment.name, app.name, { limit: options.limit, reporter: this.options.reporter });
    if (history.cut) this.options.reporter?.warn(history.cut.message);
    const busy = await operationInProgress(this.repo.root, this.options.reporter);
    if (busy) this.options.reporter?.warn(`${busy}; the releases shown are read from that state`);
    const releases = history.releases.map((release) => toRelease(release, app));
    await this.options.code?.attachGitopsCode(this.repo.root, releases);
    return releases;
  }

  watchPatterns(): string[] {
    const releaseFiles = this.repo.layout === 'repo-per-env' ? ['release.json', '*/release.json'] : ['*/release.json', '*/*/release.json'];
    return ['.git/HEAD', '.git/refs/**', '.git/packed-refs', ...releaseFiles];
  }

  /**
   * Without a target: the previous release (what ran before the current one). `restoreTree`
   * is the user's explicit choice of one commit writing the target's tree instead of reverts.
   */
  async planRollback(app: App, target: Release | undefined, signal?: AbortSignal, options: { restoreTree?: boolean } = {}): Promise<RollbackPlan> {
    let targetSha = target?.id;
    if (targetSha === undefined) {
      const releases = await listReleases(this.repo, app.environment.name, app.name, { reporter: this.options.reporter, signal });
      const previous = releases.find((release) => release.previous);
      if (!previous) {
        const uncertain = releases.find((release) => release.reason?.startsWith('uncertain:'))?.reason;
        throw new DeployRollbackError(
          uncertain
            ? `Cannot tell which release of ${app.environment.name}/${app.name} is previous: ${uncertain}; choose the release to go to`
            : `No earlier release of ${app.environment.name}/${app.name} to roll back to in ${this.repo.root}`,
          'planning',
        );
      }
      targetSha = previous.id;
    }
    const plan = await planGitopsRollback(this.repo, app.environment.name, app.name, targetSha, { reporter: this.options.reporter, signal, restoreTree: options.restoreTree });
    await this.options.code?.attachGitopsCodeChange(this.repo.root, plan, plan.detail.current, plan.detail.target, signal);
    return plan;
  }

  /** The diff stat the reverts would make, computed in a throw-away worktree. */
  async previewRollback(plan: RollbackPlan, signal?: AbortSignal): Promise<string[]> {
    if (!isGitopsPlan(plan)) throw new DeployRollbackError(`Not a gitops rollback plan (source: ${plan.source})`, 'preview');
    return ['Resulting change (git diff --stat):', ...(await previewGitopsRollback(plan, { reporter: this.options.reporter, signal }))];
  }

  async executeRollback(plan: RollbackPlan, reporter: Reporter, signal?: AbortSignal): Promise<RollbackOutcome> {
    if (!isGitopsPlan(plan)) throw new DeployRollbackError(`Not a gitops rollback plan (source: ${plan.source})`, 'executing');
    reportCodeChange(plan, reporter);
    return withCodeChangeOutcome(plan, await executeGitopsRollback(plan, reporter, signal, { networkTimeoutMs: this.options.networkTimeoutMs }));
  }
}

export function toRelease(release: GitopsRelease, app: App): Release {
  const { gitopsSha: _gitopsSha, files: _files, rolledBackBy: _rolledBackBy, artifactId: _artifactId, tree: _tree, ...fields } = release;
  return { ...fields, app };
}
