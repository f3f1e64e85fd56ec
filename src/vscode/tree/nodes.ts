import type { App, Environment, HostContainer, HostError, Problem, Release, ReleaseSource } from '../../core/model';

/** What the Releases tree holds; each kind has its own item builder in items.ts. */
export type TreeNode = EnvironmentNode | AppNode | ReleaseNode | HostContainerNode | HostErrorNode | ProblemNode | ShowMoreNode | LoadErrorNode | LoadingNode;

/**
 * Set on a row shown from an earlier read: while its parent is read again ("reading…") or after
 * that read failed ("stale since HH:MM"). `since`: when the row was read (ms since the epoch).
 */
export interface LastKnown {
  state: 'reading' | 'stale';
  since: number;
}

interface Row {
  lastKnown?: LastKnown;
}

export interface EnvironmentNode extends Row {
  kind: 'environment';
  id: string;
  source: ReleaseSource;
  environment: Environment;
  /** Set when two sources have an environment of the same name, so they can be told apart. */
  showSource: boolean;
}

export interface AppNode extends Row {
  kind: 'app';
  id: string;
  source: ReleaseSource;
  app: App;
}

export interface ReleaseNode extends Row {
  kind: 'release';
  id: string;
  source: ReleaseSource;
  release: Release;
  /** The app's running release, when it was among those read: what "Compare with Running Release" compares with. */
  running?: Release;
  /** Set on the app's first row whose commit is not local: it says so for them all. */
  noteMissingCode?: boolean;
}

export interface HostContainerNode extends Row {
  kind: 'hostContainer';
  id: string;
  source: ReleaseSource;
  release: Release;
  container: HostContainer;
}

export interface HostErrorNode extends Row {
  kind: 'hostError';
  id: string;
  error: HostError;
}

export interface ProblemNode extends Row {
  kind: 'problem';
  id: string;
  problem: Problem;
}

export interface ShowMoreNode extends Row {
  kind: 'showMore';
  id: string;
  app: AppNode;
  /** How many more a click shows, when known. */
  count?: number;
}

/** Children that could not be read (a repository that fails, hosts in untrusted mode). */
export interface LoadErrorNode extends Row {
  kind: 'loadError';
  id: string;
  message: string;
}

/** Shown while a slow source (Kamal hosts) is read, so the rest of the tree never waits for it. */
export interface LoadingNode extends Row {
  kind: 'loading';
  id: string;
  message: string;
}
