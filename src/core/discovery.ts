import type { ReleaseCodeReader } from './commits';
import type { ReleaseSource, Reporter } from './model';
import type { SessionPool } from './ssh/types';

export interface DiscoveryOptions {
  /** Workspace folders (absolute). */
  folders: string[];
  gitopsPaths: string[];
  gitopsMode: 'auto' | 'multi-env' | 'repo-per-env';
  gitopsEnvironmentName?: string;
  /** Bound on each git fetch / push of a gitops rollback; absent: 60 s. */
  gitopsNetworkTimeoutSeconds?: number;
  kamalConfigPaths: string[];
  /** Run Kamal's hooks on rollback (the setting; never reached in Restricted Mode, which cannot roll back). */
  kamalRunHooks: boolean;
  env: NodeJS.ProcessEnv;
}

export interface DiscoveryDeps {
  /** Opened lazily: discovery itself never connects. */
  pool: () => SessionPool;
  /** False in an untrusted workspace: sources list local files but never connect. */
  connectAllowed: () => boolean;
  reporter: Reporter;
  /** Links releases to their commits; absent: one reader looking in `folders` is made per discovery deps. */
  code?: ReleaseCodeReader;
}

export type SourceFinder = (options: DiscoveryOptions, deps: DiscoveryDeps) => Promise<ReleaseSource[]>;

/** Runs every finder; one that fails is reported and the others still count. */
export async function discoverSources(
  finders: readonly SourceFinder[],
  options: DiscoveryOptions,
  deps: DiscoveryDeps,
): Promise<ReleaseSource[]> {
  const found = await Promise.all(
    finders.map(async (find) => {
      try {
        return await find(options, deps);
      } catch (error) {
        deps.reporter.error(`Discovery failed: ${error instanceof Error ? error.message : String(error)}`);
        return [];
      }
    }),
  );
  return found.flat();
}
