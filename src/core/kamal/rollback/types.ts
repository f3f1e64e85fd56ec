import type { KamalConfig } from '../config/types';
import type { KamalScope } from './scope';
import type { SecretText } from '../config/secrets';

/** One role on one host: what the executor runs there, in order. */
export interface KamalRoleStep {
  host: string;
  role: string;
  /** The version this step boots. */
  to: string;
  /** The version serving when planned (re-read after the rename when executing, as Kamal does). */
  from?: string;
  /** `S-R[-D]-V`. */
  containerName: string;
  /** Whether a container already holds that name (the retained target): then it is renamed first. */
  renameExisting: boolean;
  /** `V_replaced_<16 hex>`. */
  renamedVersion: string;
  /** The `_replaced_` copy an interrupted rollback left in place of the target, renamed back first. */
  restoresCopy?: string;
  /** `<host>-<12 hex>`. */
  containerHostname: string;
  proxied: boolean;
  /** `docker stop -t` seconds for this role (Kamal's stop_args), absent for docker's default. */
  stopTimeout?: number;
  /** The exact command lines (proxy deploy shows `<cid12>` until `docker run` prints the id). */
  commands: {
    rename?: string;
    currentVersion: string;
    run: string;
    /**
     * Set when the role's cmd holds shell syntax: the run line in its own `sh -c`, so that inside a
     * multi-step exchange the cmd's `;`, `&`, `#` or quotes end where they do in Kamal's own SSH exec.
     */
    runInExchange?: string;
    /** With {@link TARGET_ARG_PLACEHOLDER} where the new container's 12-hex id goes. */
    proxyDeploy?: string;
    healthStatus?: string;
    stopNew: string;
    logs: string;
    /** Stop of the version serving when planned; the executor rebuilds it if that changed. */
    stopOld?: string;
    /** Roles with assets: extract V's assets, bridge them with the running version's, clean up after the stop. */
    extractAssets?: string;
    /** With the version serving when planned; the executor rebuilds it with the one serving then. */
    syncAssets?: string;
    cleanUpAssets?: string;
    /** With error_pages_path: V's folder (uploaded before any switch), and the removal of the others after the stop. */
    errorPagesDirectory?: string;
    cleanUpErrorPages?: string;
    /** Set when the pre-flight saw something running beside the version serving (an interrupted run): stopped once V serves. */
    stopOthers?: string;
  };
}

export interface KamalHostPlan {
  host: string;
  primary: boolean;
  /** Roles on this host, primary role first. */
  steps: KamalRoleStep[];
  /** `docker tag REPO:V REPO:latest[-D]`, run after every group succeeded. */
  tagLatest: string;
  tagVersion: string;
}

export interface KamalHookPlan {
  name: 'pre-connect' | 'pre-deploy' | 'pre-app-boot' | 'post-app-boot' | 'post-deploy';
  file: string;
  present: boolean;
}

export interface KamalPlanDetail {
  kind: 'rollback' | 'roll-forward';
  config: KamalConfig;
  service: string;
  destination?: string;
  repository: string;
  /** Where the lock lives: the first host of the primary role. */
  primaryHost: string;
  /** Hosts in boot order. */
  hosts: string[];
  groups: string[][];
  /** Seconds between groups (boot.wait). */
  bootWait: number;
  roles: string[];
  hostPlans: KamalHostPlan[];
  /** The target already serves everywhere: Kamal reboots it (rename, fresh run, stop the renamed one). */
  reboot: boolean;
  /** Lock holder (git user.name, else the OS user). */
  lockHolder: string;
  /** Audit and hook performer (git user.email, else the OS user), as Kamal tags it. */
  performer: string;
  lockMessage: string;
  lockDirectory: string;
  commands: {
    makeRunDirectory: string;
    acquireLock: string;
    releaseLock: string;
    lockStatus: string;
  };
  hooks: KamalHookPlan[];
  hooksCwd: string;
  /** Set when the pre-flight already took the deploy lock (and made `.kamal` on every host): the run starts holding it. */
  lockTaken?: { holder: string; lockedAt: string; version: string; message: string };
  /**
   * With lockTaken, when the plan turned out a roll forward: rewrites the lock's details with
   * lockMessage, sent with the first boot exchange on the primary host.
   */
  lockRewrite?: string;
  /** error_pages_path's 4??.html/5??.html, read when planning; uploaded to every host before any switch. */
  errorPages?: { makeDirectory: string; files: { name: string; content: Buffer }[] };
  /** The role env files compared with what Kamal would write (current config and .kamal/secrets); absent when not compared. */
  envFiles?: KamalEnvFilesPlan;
  /** ISO 8601 time the plan was made. */
  plannedAt: string;
  /** Kamal's `--roles`/`--hosts`/`--primary` as resolved: what the run touches and what it leaves as it is. */
  scope?: KamalScope;
  /** Kamal's `--skip-hooks`: no hook runs (the hooks above are all marked absent). */
  hooksSkipped?: boolean;
}

/** One role's env file on one host that differs from what Kamal's rollback would write. */
export interface KamalEnvFileDifference {
  host: string;
  role: string;
  path: string;
  /** Keys whose line differs (changed, missing on the host, or only there): never values. */
  keys: string[];
  /** What Kamal would write, masked when shown; absent when a value is not known here. */
  content?: SecretText;
}

export interface KamalEnvFilesPlan {
  /** Salts the hashes the host prints for each env file line, so they mean nothing outside this plan. */
  nonce: string;
  /** The secrets files read, relative to the project root. */
  secretsFiles: string[];
  differences: KamalEnvFileDifference[];
  /** Why some keys or files were not compared, each a sentence naming keys and hosts only. */
  notCompared: string[];
  /** The user agreed: the differing files that have content are written as Kamal does, before any switch. */
  write: boolean;
  /** Kamal's `ensure_env_directory`. */
  makeDirectory: string;
  /**
   * Each compared file's salted digest when it was compared: the run reads them again with its
   * lock and stops, nothing changed, if one changed since. Absent when a host could not digest one.
   */
  compared?: { nonce: string; files: { host: string; role: string; digest: string }[] };
}

export type KamalStepResult = 'rolled-back' | 'rolled-forward' | 'failed' | 'unreachable' | 'not-started' | 'cancelled';


/** One role on one host after the run: a line of the result table. */
export interface KamalHostOutcome {
  host: string;
  role: string;
  from?: string;
  to: string;
  result: KamalStepResult;
  /** The version serving afterwards, when known (read back from the host after a failure or cancel). */
  serving?: string;
  message?: string;
  /** What the read-back found besides the serving version, e.g. "v3 still running". */
  note?: string;
  /** Containers the read-back found running besides the one serving, as shown ("v3", "another copy of v2 (chat-web-v2_replaced_…)"). */
  alsoRunning?: string[];
  /** What runs beside the serving version was being stopped when the run was cancelled, and still ran at the read-back. */
  stopUnderWay?: boolean;
}

export const TARGET_ARG_PLACEHOLDER = '<cid12>';
