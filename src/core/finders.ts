import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { DiscoveryDeps, SourceFinder } from './discovery';
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
  return repos.map((repo) => new GitopsSource(repo, { mode: options.gitopsMode, envName: options.gitopsEnvironmentName, reporter: deps.reporter, networkTimeoutMs }));
};

export const kamalFinder: SourceFinder = async (options, deps) => {
  const files = await discoverKamalConfigs(options.folders, {
    configPaths: options.kamalConfigPaths.length ? options.kamalConfigPaths : undefined,
    onMissing: (message) => deps.reporter.warn(message),
  });
  return files.map((file) => kamalSource(file.file, deps, options.env, options.kamalRunHooks));
};

/** Every kind of release source the extension and the CLI look for. */
export const defaultFinders: readonly SourceFinder[] = [kamalFinder, gitopsFinder];

function kamalSource(file: string, deps: DiscoveryDeps, env: NodeJS.ProcessEnv, runHooks: boolean): KamalSource {
  return new KamalSource(file, { pool: deps.pool, env, reporter: deps.reporter, connectAllowed: deps.connectAllowed, runHooks });
}

export type SourceSpec = { kind: 'gitops'; location: string } | { kind: 'kamal'; location: string; destination?: string };

/** The CLI names one source exactly: a gitops repository or a Kamal config (file, config/ or project folder). */
export async function openSource(spec: SourceSpec, deps: DiscoveryDeps): Promise<ReleaseSource> {
  const location = path.resolve(spec.location);
  if (spec.kind === 'gitops') {
    const repo = await readGitopsRepo(location);
    if (!repo) throw new DeployRollbackError(`${location} is not a gitops repository: no <env>/release.json or release.json found in a git work tree.`);
    return new GitopsSource(repo, { reporter: deps.reporter });
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
  if (source.kind === 'gitops') return releasesJson(releases);
  const entries = new Map<string, readonly HostEntry[]>();
  for (const release of releases) entries.set(release.id, (await source.hostEntries?.(release)) ?? []);
  return kamalReleasesJson(releases, entries);
}
