import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ReleaseCodeReader } from './commits';
import type { DiscoveryDeps, DiscoveryOptions, SourceFinder } from './discovery';
import { environmentsJson, findGitopsRepos, GitopsSource, readGitopsRepo, releasesJson } from './gitops';
import { kamalEnvironmentsJson, loadKamalConfig } from './kamal/config/read';
import { discoverKamalConfigs } from './kamal/config/discover';
import { kamalReleasesJson } from './kamal/hosts/releases';
import { DEFAULT_ENVIRONMENT, KamalSource } from './kamal/source';
import { DeployRollbackError, type HostEntry, type Release, type ReleaseSource } from './model';

export const gitopsFinder: SourceFinder = async (options, deps) => {
  const repos = await findGitopsRepos(options.folders, {
    paths: options.gitopsPaths.length ? options.gitopsPaths : undefined,
    mode: options.gitopsMode,
    envName: options.gitopsEnvironmentName,
  });
  const networkTimeoutMs = options.gitopsNetworkTimeoutSeconds !== undefined ? options.gitopsNetworkTimeoutSeconds * 1000 : undefined;
  const code = codeReaderFor(options, deps);
  return repos.map((repo) => new GitopsSource(repo, { mode: options.gitopsMode, envName: options.gitopsEnvironmentName, reporter: deps.reporter, networkTimeoutMs, code }));
};

const codeReaders = new WeakMap<DiscoveryDeps, ReleaseCodeReader>();

/** The deps' reader, else one per deps object looking in the workspace folders (shared by both finders). */
export function codeReaderFor(options: Pick<DiscoveryOptions, 'folders'>, deps: DiscoveryDeps): ReleaseCodeReader {
  if (deps.code) return deps.code;
  let reader = codeReaders.get(deps);
  if (!reader) {
    const folders = [...options.folders];
    reader = new ReleaseCodeReader({ folders: () => folders, reporter: deps.reporter });
    codeReaders.set(deps, reader);
  }
  return reader;
}

export const kamalFinder: SourceFinder = async (options, deps) => {
  const files = await discoverKamalConfigs(options.folders, {
    configPaths: options.kamalConfigPaths.length ? options.kamalConfigPaths : undefined,
    onMissing: (message) => deps.reporter.warn(message),
  });
  const code = codeReaderFor(options, deps);
  return files.map((file) => kamalSource(file.file, { ...deps, code }, options.env, options.kamalRunHooks));
};

/** Every kind of release source the extension and the CLI look for. */
export const defaultFinders: readonly SourceFinder[] = [kamalFinder, gitopsFinder];

function kamalSource(file: string, deps: DiscoveryDeps, env: NodeJS.ProcessEnv, runHooks: boolean): KamalSource {
  return new KamalSource(file, { pool: deps.pool, env, reporter: deps.reporter, connectAllowed: deps.connectAllowed, runHooks, code: deps.code });
}

export type SourceSpec = { kind: 'gitops'; location: string } | { kind: 'kamal'; location: string; destination?: string };

/** The CLI names one source exactly: a gitops repository or a Kamal config (file, config/ or project folder). */
export async function openSource(spec: SourceSpec, deps: DiscoveryDeps): Promise<ReleaseSource> {
  const location = path.resolve(spec.location);
  if (spec.kind === 'gitops') {
    const repo = await readGitopsRepo(location);
    if (!repo) throw new DeployRollbackError(`${location} is not a gitops repository: no <env>/release.json or release.json found in a git work tree.`);
    return new GitopsSource(repo, { reporter: deps.reporter, code: deps.code });
  }
  const file = await kamalConfigFile(location);
  return kamalSource(file, deps, process.env, true);
}

async function kamalConfigFile(location: string): Promise<string> {
  const stat = await fs.stat(location).catch(() => undefined);
  if (!stat) throw new DeployRollbackError(`${location} does not exist.`);
  if (stat.isFile()) return location;
  for (const candidate of [path.join(location, 'deploy.yml'), path.join(location, 'config', 'deploy.yml')]) {
    if (await fs.stat(candidate).then((s) => s.isFile(), () => false)) return candidate;
  }
  throw new DeployRollbackError(`No Kamal config in ${location}: expected ${path.join(location, 'config', 'deploy.yml')}.`);
}

/** The CLI's `environments --json` entries, Kamal and gitops alike. */
export type EnvironmentEntry = { source: string; path: string; environment: string } & Record<string, unknown>;

export async function environmentsToJson(sources: readonly ReleaseSource[]): Promise<EnvironmentEntry[]> {
  const entries: EnvironmentEntry[] = [];
  for (const source of sources) {
    if (source instanceof GitopsSource) {
      await source.environments();
      entries.push(...environmentsJson([source.snapshot]).map((entry) => ({ ...entry })));
    } else if (source instanceof KamalSource) {
      for (const environment of await source.environments()) {
        const destination = environment.name === DEFAULT_ENVIRONMENT ? undefined : environment.name;
        const config = await loadKamalConfig(source.location, destination).catch(() => undefined);
        if (config) entries.push(...kamalEnvironmentsJson([config]).map((entry) => ({ ...entry })));
        else entries.push({ source: 'kamal', path: source.location, environment: environment.name, problems: environment.problems.map(({ file, line, message }) => ({ file, line: line ?? null, message })) });
      }
    }
  }
  return entries;
}

export async function releasesToJson(source: ReleaseSource, releases: readonly Release[]): Promise<unknown[]> {
  const withCommit = <Entry extends object>(entry: Entry, index: number): Entry & { commit?: ReleaseCommitJson } => {
    const commit = releaseCommitJson(releases[index]);
    return commit ? { ...entry, commit } : entry;
  };
  if (source.kind === 'gitops') return releasesJson(releases).map(withCommit);
  const entries = new Map<string, readonly HostEntry[]>();
  for (const release of releases) entries.set(release.id, (await source.hostEntries?.(release)) ?? []);
  return kamalReleasesJson(releases, entries).map(withCommit);
}

/** `releases --json`'s `commit`: the release's code as git has it; absent when the commit is not known. */
export interface ReleaseCommitJson {
  sha: string;
  subject: string;
  author: string;
  /** The author date, ISO 8601. */
  date: string;
  /** Kamal: the image was built from uncommitted changes on top of this commit. */
  uncommitted: boolean;
}

export function releaseCommitJson(release: Release): ReleaseCommitJson | undefined {
  const commit = release.code?.commit;
  if (!commit) return undefined;
  return { sha: commit.sha, subject: commit.subject, author: commit.authorName, date: commit.authorDate, uncommitted: release.code?.uncommitted === true };
}
