import type { Release } from '../model';
import type { GitopsRepo } from './discovery';

/** The CLI's `--json` release shape: these fields exactly, absent ones as null. */
export interface ReleaseJson {
  id: string;
  version: string;
  created: string | null;
  current: boolean;
  rolledBack: boolean;
  rollbackable: boolean;
  message: string | null;
  triggeredBy: string | null;
  author: string | null;
  sourceRepo: string | null;
  url: string | null;
}

export function releasesJson(releases: ReadonlyArray<Omit<Release, 'app'>>): ReleaseJson[] {
  return releases.map((release) => ({
    id: release.id,
    version: release.version,
    created: release.created ?? null,
    current: release.current,
    rolledBack: release.rolledBack ?? false,
    rollbackable: release.rollbackable,
    message: release.message ?? null,
    triggeredBy: release.triggeredBy ?? null,
    author: release.author ?? null,
    sourceRepo: release.sourceRepo ?? null,
    url: release.url ?? null,
  }));
}

export interface EnvironmentJson {
  source: 'gitops';
  path: string;
  environment: string;
  apps: string[];
}

export function environmentsJson(repos: readonly GitopsRepo[]): EnvironmentJson[] {
  return repos.flatMap((repo) => repo.envs.map((env) => ({ source: 'gitops' as const, path: repo.root, environment: env.name, apps: [...env.apps] })));
}
