/**
 * The domain shared by the Kamal and gitops sources, the VS Code tree and the CLI.
 * Everything here is plain data: no `vscode`, no I/O.
 */

export type SourceKind = 'kamal' | 'gitops';

/** Something wrong in a file the user owns (config, release.json): shown as a diagnostic and in the tree. */
export interface Problem {
  file: string;
  /** 1-based; absent when the problem is not tied to a position. */
  line?: number;
  /** 1-based. */
  column?: number;
  message: string;
  severity: 'error' | 'warning';
}

export interface Environment {
  /** Stable across refreshes: `<source kind>:<location>:<name>`. */
  id: string;
  source: SourceKind;
  /** Kamal: destination or "default". Gitops: env directory name. */
  name: string;
  /** Kamal: the deploy.yml; gitops: the repository root. */
  location: string;
  problems: Problem[];
}

export interface LockInfo {
  holder: string;
  /** The lock directory exists but its details are missing, empty or not Kamal's format. */
  unreadable?: boolean;
  /** ISO 8601, as the lock details say it. */
  lockedAt?: string;
  message?: string;
  version?: string;
}

export interface App {
  id: string;
  environment: Environment;
  /** Kamal: service. Gitops: app directory name. */
  name: string;
  lock?: LockInfo;
  problems: Problem[];
}

/**
 * Going to a release older than the one running is a rollback; going to a newer one, or bringing back a
 * release that was rolled back, is a roll forward. Menus, dialogs, output and the CLI name it by this.
 */
export type RollDirection = 'back' | 'forward';

export interface Release {
  /** Stable across refreshes: gitops full sha, Kamal `<app id>@<version>`. */
  id: string;
  app: App;
  /** What users call the release: Kamal version, gitops tag or short source sha. */
  version: string;
  /** One line, e.g. the first line of the source commit message. */
  title?: string;
  /** ISO 8601. */
  created?: string;
  current: boolean;
  previous?: boolean;
  rolledBack?: boolean;
  rollbackable: boolean;
  /** What choosing this release as the target would be; absent on the current release. */
  direction?: RollDirection;
  /** Why it is not a rollback target ("running now", "pruned on web-2", "already rolled back"). */
  reason?: string;
  /** Short state for the tree description, e.g. "3 of 4 hosts". */
  presence?: string;
  /**
   * Kamal: set when this version runs now on some hosts and not on others (a canary, a run narrowed
   * to some roles or hosts): the hosts where every role runs it, the readable hosts where some role
   * runs another version or none, and how many hosts the app has.
   */
  runningOn?: { hosts: string[]; otherHosts: string[]; total: number };
  triggeredBy?: string;
  author?: string;
  sourceRepo?: string;
  sourceBranch?: string;
  sourceSha?: string;
  /** Link to the source commit. */
  url?: string;
  /** Full multi-line message of the source commit. */
  message?: string;
  /** The code this release runs, resolved in the workspace's repositories; absent when the release names no commit. */
  code?: ReleaseCode;
}

/**
 * A commit of the workspace's own code (the app a release was built from), as git records it.
 * Filled by `src/core/commits/` from one batched git call for every release in view.
 */
export interface SourceCommit {
  /** Full 40-hex sha. */
  sha: string;
  subject: string;
  /** The whole message, subject included. */
  message: string;
  authorName: string;
  authorEmail?: string;
  /** ISO 8601. */
  authorDate: string;
  /** ISO 8601. */
  commitDate: string;
  parents: string[];
  /** A merge's pull request, read as GitLens does ("Merge pull request #12 from …" + the title line). */
  pullRequest?: { number: string; title: string };
}

/** What code a release is: the commit its version or release.json names, when the local clone has it. */
export interface ReleaseCode {
  /** The sha or tag the release names (a Kamal version without its `_uncommitted_<hex>` suffix; gitops `version.sha`). */
  ref: string;
  /** Kamal: the image was built from a dirty tree (`_uncommitted_<hex>`). */
  uncommitted?: boolean;
  /** Root of the local repository the commit was found in (or looked for in). */
  repository?: string;
  /** Absent when not found locally. */
  commit?: SourceCommit;
  /** Why there is no commit, for the user, e.g. "not in your local clone: fetch to see it". */
  missing?: string;
}

/**
 * The commits between the running release and the target, first-parent, newest first: what a
 * rollback takes out of production, or what a roll forward brings back.
 */
export interface CodeChange {
  direction: RollDirection;
  repository: string;
  /** The running release's commit. */
  fromSha: string;
  /** The target's commit. */
  toSha: string;
  /** Listed commits, newest first (at most a bound; `total` says how many there are). */
  commits: SourceCommit[];
  total: number;
  /**
   * The target is not on the running release's line (their histories diverged): the commits the
   * other way, which a rollback also brings in or a roll forward also takes out. Newest first, bounded.
   */
  diverged?: { commits: SourceCommit[]; total: number };
  /** A shallow clone's history is cut at this commit inside the range: the counts are at least these. */
  shallowCut?: string;
}

export type ContainerState = 'created' | 'running' | 'restarting' | 'paused' | 'exited' | 'dead' | 'removing' | 'unknown';

export interface HostContainer {
  id: string;
  host: string;
  role: string;
  name: string;
  state: ContainerState;
  /** Docker's status line ("Up 3 minutes", "Exited (0) 2 hours ago"). */
  status: string;
  image: string;
  created: string;
  version: string;
  /** The host did not answer the last read: this is what an earlier read saw, not its state now. */
  stale?: { seenAt: string };
}

/** A host that could not be read: shown as an error child, the rest of the tree still works. */
/** Why a host could not be read: no answer, refused keys/host key, a deadline passed, or Docker down. */
export type HostErrorKind = 'unreachable' | 'auth' | 'host-key' | 'timeout' | 'docker';

export interface HostError {
  id: string;
  host: string;
  message: string;
  /** Absent: not known (taken as unreachable). */
  kind?: HostErrorKind;
}

export type HostEntry = HostContainer | HostError;

export function isHostError(entry: HostEntry): entry is HostError {
  return 'message' in entry && !('state' in entry);
}

/** Where progress goes: the output channel in VS Code, stderr in the CLI. */
export interface Reporter {
  /** A user-visible step ("Reverting 3 commits"); also logged. */
  step(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /**
   * How far a run is: `done` of `total` phases (Kamal: the lock with the checks, then per boot
   * group every new container started and every one serving, the tag; gitops: fetched, committed
   * and verified, pushed), for a bar that fills; never goes back within a run. A reporter without
   * one ignores it.
   */
  progress?(done: number, total: number): void;
}

export const silentReporter: Reporter = {
  step() {},
  info() {},
  debug() {},
  warn() {},
  error() {},
};

/**
 * What a rollback will do, computed before anything changes. The dry run prints `lines`;
 * the confirmation shows `summary`; the executor runs `detail`.
 */
export interface RollbackPlan<Detail = unknown> {
  source: SourceKind;
  environment: string;
  app: string;
  from: string;
  to: string;
  /** Absent means 'back'. */
  direction?: RollDirection;
  /** One sentence for the confirmation ("Revert 2 commits in prod/web and push to origin/main"). */
  summary: string;
  /** The whole plan, one step a line, as the dry run prints it. */
  lines: string[];
  /** A few lines for the confirmation dialog: what changes where, without the commands. */
  overview?: string[];
  /** The code a run changes in production; absent when either side's commit is not known locally. */
  codeChange?: CodeChange;
  /** Why `codeChange` is absent, when a commit was looked for ("v2 is not in your local clone: fetch to see it"). */
  codeChangeUnknown?: string;
  detail: Detail;
}

export interface RollbackOutcome {
  ok: boolean;
  /** One line for the notification. */
  message: string;
  /** Printed after the run (per-host table, pushed sha). */
  lines: string[];
}

/** A refusal or failure with a message written for the user, naming what and where. */
export class DeployRollbackError extends Error {
  constructor(message: string, readonly step?: string) {
    super(message);
    this.name = 'DeployRollbackError';
  }
}

/** What the caller asks of a plan beyond its target; every field is the user's explicit choice. */
export interface PlanRequest {
  /** Gitops: one commit writing the target's tree instead of reverts (offered when reverts cannot be proven). */
  restoreTree?: boolean;
  /** The run follows at once, unconfirmed (CLI --yes): Kamal may take its deploy lock with the pre-flight. */
  runsAtOnce?: boolean;
  /** A preview: read the hosts now rather than plan from a read moments ago. */
  dryRun?: boolean;
  /** Kamal: `--roles`/`--hosts`/`--primary`, `--skip-hooks` and `--lock-wait` as Kamal takes them. */
  kamal?: {
    scope?: { roles?: string[]; hosts?: string[]; primary?: boolean };
    skipHooks?: boolean;
    lockWait?: { timeoutMs: number; intervalMs: number };
  };
  /**
   * Kamal: compare the role env files with what Kamal's rollback would write (current config and
   * .kamal/secrets); the plan says which keys differ, never a value.
   */
  envFiles?: {
    /** Asked only when a secrets file holds `$(...)`: may its commands run? (VS Code: trusted workspace, setting, question; CLI: a flag.) */
    allowCommands?: (files: string[]) => Promise<boolean> | boolean;
    /** Agreed in advance to write differing files as Kamal does (CLI --write-env-files). */
    write?: boolean;
  };
}

/** One place releases come from: a Kamal config or a gitops repository. */
export interface ReleaseSource {
  readonly kind: SourceKind;
  /** The config file or repository root this source reads. */
  readonly location: string;
  environments(): Promise<Environment[]>;
  apps(environment: Environment): Promise<App[]>;
  releases(app: App, options?: { limit?: number }): Promise<Release[]>;
  /** Kamal only: the containers of a release on each host. */
  hostEntries?(release: Release): Promise<HostEntry[]>;
  /** Kamal only: the release's history on the hosts (audit log boots, containers now), as text lines. */
  releaseHistory?(release: Release): Promise<string[]>;
  /** Kamal only: the last lines of a container's log, with timestamps. */
  containerLogs?(container: HostContainer, lines: number, signal?: AbortSignal): Promise<string>;
  /** Files whose change should refresh this source (globs relative to `location`'s folder). */
  watchPatterns?(): string[];
  planRollback(app: App, target: Release | undefined, signal?: AbortSignal, request?: PlanRequest): Promise<RollbackPlan>;
  /** Extra dry-run output beyond `plan.lines` (e.g. the gitops diff stat); changes nothing. */
  previewRollback?(plan: RollbackPlan, signal?: AbortSignal): Promise<string[]>;
  /** Forget cached state so the next read goes to the hosts / repository again. */
  refresh?(): void;
  executeRollback(plan: RollbackPlan, reporter: Reporter, signal?: AbortSignal): Promise<RollbackOutcome>;
  /** Kamal only: hosts of the app that could not be read, once per host (not per release), with why. */
  hostErrors?(app: App): Promise<HostError[]>;
  /** Kamal only: the emergency exit of an interrupted run releases the plan's lock if it is ours; says what happened. */
  releaseLockNow?(plan: RollbackPlan, timeoutMs: number): Promise<string>;
  /** Kamal only: Release Stale Lock — removes the app's deploy lock directory if it names nobody (checked on the host). */
  releaseStaleLock?(app: App, signal?: AbortSignal): Promise<{ removed: boolean; message: string }>;
  dispose?(): void;
}
