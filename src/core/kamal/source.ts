import * as path from 'node:path';
import type { App, Environment, HostContainer, HostEntry, HostError, PlanRequest, Problem, Release, ReleaseSource, Reporter, RollbackOutcome, RollbackPlan } from '../model';
import { DeployRollbackError, silentReporter } from '../model';
import { oneLine } from '../text';
import { reportCodeChange, withCodeChangeOutcome, type ReleaseCodeReader } from '../commits';
import type { HostSession, SessionPool } from '../ssh/types';
import { containerLogsCommand } from './commands/inventory';
import { lockDirectory, lockStatus, parseLockDetails, releaseAdvice, releaseLockIfOurs, removeLockOfGoneRun, removeStaleLock, shownLock } from './commands/lock';
import { judgeLockRun, notStaleReason, runMark } from './commands/lock-run';
import { destinationFileFor, listDestinations, loadKamalConfig } from './config/read';
import type { KamalInventory } from './hosts/inventory';
import { primaryHostOf, readKamalInventory } from './hosts/inventory';
import { auditLogFile } from './commands/auditor';
import { kamalReleaseHistory, kamalReleaseHostEntries, kamalReleases } from './hosts/releases';
import { executeKamalRollback, planKamalRollback, type KamalPlanDetail } from './rollback';
import { sshTargetFor } from './ssh-target';
import type { KamalConfig } from './config/types';

/** The environment name used when a config has no destination. */
export const DEFAULT_ENVIRONMENT = 'default';
/** How old the tree's reading may be for a rollback to plan from it: "a moment ago", shown as such. */
const RECENT_READ_MS = 60_000;
/**
 * How long `connectAhead` waits for the links to come up: a TCP connect takes a round trip, and
 * the SSH handshake after it several more, so the local work started then still overlaps it.
 */
const DIAL_WAIT_MS = 200;

/** Config keys the inventory needs resolved: with any of them unknown it would read the wrong containers. */
const INVENTORY_KEYS = ['service', 'image', 'registry', 'servers', 'ssh', 'primary_role'];

export interface KamalSourceDeps {
  /** A pool, or a getter that opens it on first use (discovery never connects). */
  pool: SessionPool | (() => SessionPool);
  env?: NodeJS.ProcessEnv;
  reporter?: Reporter;
  /** False in an untrusted workspace: environments and apps still list, releases refuse. */
  connectAllowed: () => boolean;
  /** Run `.kamal/hooks` on rollback as Kamal does; default true. */
  runHooks?: boolean;
  /** Links releases and plans to the app's commits (the repository holding the config); absent: not linked. */
  code?: ReleaseCodeReader;
  /** For tests; defaults to the config reader. */
  loadConfig?: (file: string, destination: string | undefined, env: NodeJS.ProcessEnv) => Promise<KamalConfig>;
}

/**
 * Per config, destination and host, the last read that reached it: a host that stops answering
 * keeps its rows, marked stale. Outlives a source, which a refresh re-creates.
 */
const lastSeenByHost = new Map<string, { containers: KamalInventory['hosts'][number]['containers']; readAt: string }>();

/**
 * One Kamal config file (config/deploy.yml and its destinations): environments are the
 * destinations, the app is the service, releases come from one inventory per destination,
 * read once (one exec per host) and kept until `refresh()`.
 */
export class KamalSource implements ReleaseSource {
  readonly kind = 'kamal' as const;
  readonly location: string;
  private readonly configs = new Map<string, Promise<KamalConfig>>();
  private readonly inventories = new Map<string, Promise<KamalInventory>>();
  private readonly planConfigs = new WeakMap<RollbackPlan, KamalConfig>();
  private disposed = false;
  /** Sessions opened by `connectAhead`, by destination and host, until their first use. */
  private readonly connectingAhead = new Map<string, Promise<HostSession>>();
  private readonly reporter: Reporter;
  private readonly loadConfig: NonNullable<KamalSourceDeps['loadConfig']>;

  constructor(
    configFile: string,
    private readonly deps: KamalSourceDeps,
  ) {
    this.location = path.resolve(configFile);
    this.reporter = deps.reporter ?? silentReporter;
    this.loadConfig = deps.loadConfig ?? loadKamalConfig;
  }

  async environments(): Promise<Environment[]> {
    const destinations = await listDestinations(this.location);
    const environments: Environment[] = [];
    if (destinations.length === 0) {
      environments.push(await this.environmentFor(undefined));
    } else {
      // The base file alone is an environment too unless it says `require_destination: true`.
      const base = await this.config(undefined).catch(() => undefined);
      if (base && !base.requireDestination) environments.push(await this.environmentFor(undefined));
      for (const destination of destinations) environments.push(await this.environmentFor(destination));
    }
    return environments;
  }

  private async environmentFor(destination: string | undefined): Promise<Environment> {
    try {
      const config = await this.config(destination);
      const unusable = unusableReason(config);
      if (!unusable) return this.environment(destination, []);
      // The app cannot be listed, so the problems go on the environment.
      const errors = config.problems.filter((problem) => problem.severity === 'error');
      return this.environment(destination, errors.length > 0 ? errors : [{ file: config.destinationFile ?? config.file, severity: 'error', message: unusable }]);
    } catch (error) {
      return this.environment(destination, [this.loadProblem(destination, error)]);
    }
  }

  private environment(destination: string | undefined, problems: Problem[]): Environment {
    const name = destination ?? DEFAULT_ENVIRONMENT;
    return { id: `kamal:${this.location}:${name}`, source: 'kamal', name, location: this.location, problems };
  }

  private loadProblem(destination: string | undefined, error: unknown): Problem {
    const file = destination ? destinationFileFor(this.location, destination) : this.location;
    return { file, severity: 'error', message: `Could not read the Kamal config${destination ? ` for destination ${destination}` : ''}: ${errorText(error)}` };
  }

  /**
   * `readLock: false` leaves out the deploy lock's status (one exchange per host, which the tree
   * shows on the app row): for a caller that does not show it, such as a CLI rollback to a
   * given version, whose pre-flight reads the lock anyway.
   */
  async apps(environment: Environment, options: { readLock?: boolean } = {}): Promise<App[]> {
    const destination = destinationOf(environment);
    let config: KamalConfig;
    try {
      config = await this.config(destination);
    } catch {
      return [];
    }
    if (unusableReason(config)) return [];
    const app: App = { id: `${environment.id}/${config.service}`, environment, name: config.service, problems: config.problems };
    if (options.readLock !== false && this.deps.connectAllowed()) {
      try {
        const lock = (await this.inventory(config)).lock;
        if (lock) app.lock = shownLock(lock);
      } catch (error) {
        this.reporter.debug(`[kamal] no lock status for ${config.service}: ${errorText(error)}`);
      }
    }
    return [app];
  }

  async releases(app: App, options: { limit?: number } = {}): Promise<Release[]> {
    const config = await this.connectableConfig(app.environment);
    const inventory = await this.inventory(config);
    // With no host read there is nothing to list; an empty list would hide why.
    if (inventory.hosts.length > 0 && inventory.hosts.every((host) => host.error)) {
      const where = config.destination ? `${config.service} (${config.destination})` : config.service;
      throw new DeployRollbackError(`Could not read any host of ${where}: ${inventory.hosts.map((host) => host.error!.message).join('; ')}`);
    }
    const releases = kamalReleases(app, inventory);
    const listed = options.limit !== undefined ? releases.slice(0, Math.max(0, options.limit)) : releases;
    await this.deps.code?.attachKamalCode(this.location, listed);
    return listed;
  }

  async hostErrors(app: App): Promise<HostError[]> {
    const config = await this.connectableConfig(app.environment);
    return (await this.inventory(config)).hosts.flatMap((host) => (host.error ? [host.error] : []));
  }

  async hostEntries(release: Release): Promise<HostEntry[]> {
    const config = await this.connectableConfig(release.app.environment);
    return kamalReleaseHostEntries(release, await this.inventory(config));
  }

  async releaseHistory(release: Release): Promise<string[]> {
    const config = await this.connectableConfig(release.app.environment);
    return kamalReleaseHistory(release, await this.inventory(config), auditLogFile(config));
  }

  async containerLogs(container: HostContainer, lines: number, signal?: AbortSignal): Promise<string> {
    this.assertConnectAllowed('read container logs');
    const config = (await this.configHolding(container)) ?? (await this.config(undefined));
    const session = await this.sessionsFor(config)(container.host);
    const result = await session.exec(containerLogsCommand(container.name, lines), { signal });
    if (result.code !== 0) {
      const detail = oneLine(result.stdout.trim().split('\n').pop() || result.stderr.trim()) || `exit status ${result.code ?? 'none'}`;
      throw new DeployRollbackError(`Could not read the logs of ${container.name} on ${container.host}: ${detail}`);
    }
    return result.stdout;
  }

  /** Globs relative to the project root (the folder above config/). */
  watchPatterns(): string[] {
    const folder = path.basename(path.dirname(this.location));
    const stem = path.basename(this.location).replace(/\.ya?ml$/, '');
    return [`${folder}/${stem}*.yml`];
  }

  /**
   * Starts the SSH connections to every host of the environment now, so that their handshakes
   * run while local work goes on (git identity, hooks lookup, the code reader). The first use of
   * each host takes that connection, or its failure: a host is never dialled twice for it.
   * Resolves once their links are up (bounded), so that the local work that follows (a git
   * process start blocks the event loop) does not hold back their first bytes: on a LAN the host
   * waits for them. Does nothing in Restricted Mode or for a config that cannot be read.
   */
  async connectAhead(environment: Environment): Promise<void> {
    if (!this.deps.connectAllowed()) return;
    const config = await this.config(destinationOf(environment)).catch(() => undefined);
    if (!config || unusableReason(config)) return;
    for (const host of config.hosts) {
      const key = aheadKey(config, host);
      if (this.connectingAhead.has(key)) continue;
      const session = this.pool().session(sshTargetFor(config, host));
      // Its first user sees a failure; until then it must not count as unhandled.
      session.catch(() => undefined);
      this.connectingAhead.set(key, session);
    }
    await this.pool().whenDialled?.(DIAL_WAIT_MS);
  }

  async planRollback(app: App, target: Release | undefined, signal?: AbortSignal, request: PlanRequest = {}): Promise<RollbackPlan> {
    const config = await this.connectableConfig(app.environment);
    // The tree's "previous" is the default target, so the menu and the plan always agree.
    const targetVersion = target?.version ?? kamalReleases(app, await this.inventory(config)).find((release) => release.previous)?.version;
    // The plan's code change is read after the pre-flight, with the lock held: its git process starts now, during the handshakes.
    const closeCodeAhead = this.deps.code?.kamalCodeAhead(this.location, targetVersion);
    try {
      return await this.planWithCode(config, targetVersion, signal, request);
    } finally {
      await closeCodeAhead?.();
    }
  }

  private async planWithCode(config: KamalConfig, targetVersion: string | undefined, signal: AbortSignal | undefined, request: PlanRequest): Promise<RollbackPlan> {
    const plan = await planKamalRollback({
      config,
      sessions: this.sessionsFor(config),
      targetVersion,
      signal,
      reporter: this.reporter,
      takeLock: request.runsAtOnce === true,
      // A tree read of the last minute plans without an exchange (its env file digests included); a preview reads now.
      recentRead: request.runsAtOnce || request.dryRun ? undefined : await this.recentInventory(config),
      scope: request.kamal?.scope,
      skipHooks: request.kamal?.skipHooks,
      lockWait: request.kamal?.lockWait,
      ...(request.envFiles ? { envFiles: { ...request.envFiles, processEnv: this.deps.env } } : {}),
    });
    this.planConfigs.set(plan, config);
    await this.deps.code?.attachKamalCodeChange(this.location, plan, signal);
    return plan;
  }

  async executeRollback(plan: RollbackPlan, reporter: Reporter, signal?: AbortSignal): Promise<RollbackOutcome> {
    this.assertConnectAllowed('roll back');
    const config = this.planConfigs.get(plan) ?? (await this.config(plan.environment === DEFAULT_ENVIRONMENT ? undefined : plan.environment));
    reportCodeChange(plan, reporter);
    try {
      return withCodeChangeOutcome(plan, await executeKamalRollback(plan as Parameters<typeof executeKamalRollback>[0], {
        sessions: this.sessionsFor(config),
        reporter,
        signal,
        runHooks: this.deps.runHooks ?? true,
        env: this.deps.env,
      }));
    } finally {
      this.inventories.delete(keyOf(config.destination));
    }
  }

  async releaseLockNow(plan: RollbackPlan, timeoutMs: number): Promise<string> {
    const detail = (plan as RollbackPlan<KamalPlanDetail>).detail;
    const config = this.planConfigs.get(plan) ?? (await this.config(plan.environment === DEFAULT_ENVIRONMENT ? undefined : plan.environment));
    const advice = `run \`kamal lock release\`${detail.destination ? ` -d ${detail.destination}` : ''} if \`kamal lock status\` names this run`;
    try {
      const session = await this.sessionsFor(config)(detail.primaryHost);
      const result = await session.exec(releaseLockIfOurs(config, detail.lockHolder, detail.lockMessage, detail.lockTaken?.lockedAt), { timeoutMs });
      return result.code === 0 ? `Released the deploy lock on ${detail.primaryHost} if this run held it.` : `Could not release the deploy lock on ${detail.primaryHost} (exit ${result.code}): ${advice}.`;
    } catch (error) {
      return `Could not release the deploy lock on ${detail.primaryHost} (${error instanceof Error ? error.message : String(error)}): ${advice}.`;
    }
  }

  /**
   * Release Stale Lock: removes the deploy lock directory on the primary host only if it names
   * nobody (no details, or details without Kamal's "Locked by:" line), or names a run of this
   * product on this machine whose process is gone; each checked on the host in the same command
   * as the removal, so a lock taken meanwhile by a real deploy is left alone.
   */
  async releaseStaleLock(app: App, signal?: AbortSignal): Promise<{ removed: boolean; message: string }> {
    const config = await this.connectableConfig(app.environment);
    const host = primaryHostOf(config);
    if (!host) throw new DeployRollbackError(`No primary host for ${config.service} in ${config.destinationFile ?? config.file}`);
    const directory = lockDirectory(config);
    const session = await this.sessionsFor(config)(host);
    const exec = (command: string) => session.exec(command, { signal, timeoutMs: 15_000 });
    try {
      const result = await exec(removeStaleLock(config));
      const answer = result.stdout.trim().split('\n').pop();
      if (result.code === 0 && answer === 'removed') return { removed: true, message: `Removed the stale deploy lock ${directory} on ${host}.` };
      if (result.code === 0 && answer === 'absent') return noLock(host, directory);
      if (result.code !== 0 || answer !== 'named') {
        const why = oneLine(result.stderr.trim().split('\n').pop() ?? '') || `exit ${result.code ?? 'none'}`;
        return { removed: false, message: `Could not remove ${directory} on ${host} (${why}); it holds something besides its details, so it was left as is.` };
      }
      const status = await exec(lockStatus(config));
      if (status.code !== 0) return noLock(host, directory);
      const lock = parseLockDetails(status.stdout);
      const verdict = judgeLockRun(lock);
      if (verdict.kind !== 'gone') {
        return { removed: false, message: `Left the deploy lock on ${host} alone: ${notStaleReason(verdict, lock.holder, releaseAdvice(config))}.` };
      }
      const removal = await exec(removeLockOfGoneRun(config, lock));
      const removed = removal.stdout.trim().split('\n').pop();
      if (removal.code === 0 && removed === 'removed') {
        return { removed: true, message: `Removed the stale deploy lock ${directory} on ${host}: the Deploy Rollback run ${runMark(verdict.run)} that took it is gone.` };
      }
      if (removal.code === 0 && removed === 'absent') return noLock(host, directory);
      return { removed: false, message: `Left the deploy lock on ${host} alone: it changed while it was being checked (exit ${removal.code ?? 'none'}), so it may be someone else's now; \`kamal lock status\` shows who.` };
    } finally {
      this.inventories.delete(keyOf(config.destination));
    }
  }

  refresh(): void {
    this.configs.clear();
    this.inventories.clear();
    this.connectingAhead.clear();
  }

  /** A source replaced by a refresh may still be asked by a row not yet redrawn: it then reads, never keeps. */
  dispose(): void {
    this.disposed = true;
    this.refresh();
  }

  private config(destination: string | undefined): Promise<KamalConfig> {
    const key = keyOf(destination);
    let loading = this.configs.get(key);
    if (!loading) {
      loading = this.loadConfig(this.location, destination, this.deps.env ?? process.env);
      // A failed read is retried on the next call, not remembered.
      loading.catch(() => {
        if (this.configs.get(key) === loading) this.configs.delete(key);
      });
      if (!this.disposed) this.configs.set(key, loading);
    }
    return loading;
  }

  /**
   * The inventory read within RECENT_READ_MS (what the tree shows), else undefined: a rollback
   * plans from it instead of reading the hosts again, and the run checks them with the lock.
   */
  private async recentInventory(config: KamalConfig): Promise<KamalInventory | undefined> {
    const reading = this.inventories.get(keyOf(config.destination));
    const inventory = await reading?.catch(() => undefined);
    return inventory && Date.now() - Date.parse(inventory.readAt) <= RECENT_READ_MS ? inventory : undefined;
  }

  /** One inventory per destination until `refresh()`; concurrent callers share it. */
  private inventory(config: KamalConfig): Promise<KamalInventory> {
    const key = keyOf(config.destination);
    let reading = this.inventories.get(key);
    if (!reading) {
      reading = readKamalInventory(config, this.sessionsFor(config), { reporter: this.reporter }).then((inventory) => this.keepLastSeen(key, inventory));
      reading.catch(() => {
        if (this.inventories.get(key) === reading) this.inventories.delete(key);
      });
      if (!this.disposed) this.inventories.set(key, reading);
    }
    return reading;
  }

  private keepLastSeen(key: string, inventory: KamalInventory): KamalInventory {
    for (const host of inventory.hosts) {
      const hostKey = `${this.location}\n${key}\n${host.host}`;
      if (!host.error) lastSeenByHost.set(hostKey, { containers: host.containers, readAt: inventory.readAt });
      else if (lastSeenByHost.has(hostKey)) host.lastSeen = lastSeenByHost.get(hostKey);
    }
    return inventory;
  }

  private async connectableConfig(environment: Environment): Promise<KamalConfig> {
    this.assertConnectAllowed('read releases from the hosts');
    const destination = destinationOf(environment);
    let config: KamalConfig;
    try {
      config = await this.config(destination);
    } catch (error) {
      throw new DeployRollbackError(this.loadProblem(destination, error).message + ` (${this.location})`);
    }
    const unusable = unusableReason(config);
    if (unusable) throw new DeployRollbackError(unusable.includes(config.destinationFile ?? config.file) ? unusable : `${unusable} (${config.destinationFile ?? config.file})`);
    return config;
  }

  private assertConnectAllowed(what: string): void {
    if (!this.deps.connectAllowed()) {
      throw new DeployRollbackError(`Restricted Mode: trust this workspace to ${what} (Kamal config ${this.location}). Nothing connects to hosts until then.`);
    }
  }

  private sessionsFor(config: KamalConfig): (host: string) => Promise<HostSession> {
    return (host) => {
      const key = aheadKey(config, host);
      const ahead = this.connectingAhead.get(key);
      if (ahead) {
        this.connectingAhead.delete(key);
        return ahead;
      }
      return this.pool().session(sshTargetFor(config, host));
    };
  }

  private pool(): SessionPool {
    return typeof this.deps.pool === 'function' ? this.deps.pool() : this.deps.pool;
  }

  /** The config whose cached inventory lists this container (destinations may differ in ssh). */
  private async configHolding(container: HostContainer): Promise<KamalConfig | undefined> {
    for (const [key, reading] of this.inventories) {
      const inventory = await reading.catch(() => undefined);
      const found = inventory?.hosts.some((host) => host.host === container.host && host.containers.some((c) => c.id === container.id));
      if (found) return this.config(key === '' ? undefined : key);
    }
    return undefined;
  }
}

function keyOf(destination: string | undefined): string {
  return destination ?? '';
}

function aheadKey(config: KamalConfig, host: string): string {
  return `${keyOf(config.destination)}\n${host}`;
}

function destinationOf(environment: Pick<Environment, 'name'>): string | undefined {
  return environment.name === DEFAULT_ENVIRONMENT ? undefined : environment.name;
}

/** Why the inventory cannot run on this config, or undefined. Kamal itself refuses a config with errors. */
function unusableReason(config: KamalConfig): string | undefined {
  const error = config.problems.find((problem) => problem.severity === 'error');
  if (error) return `The Kamal config has errors; fix them first: ${error.message} (${error.file}${error.line !== undefined ? `:${error.line}` : ''})`;
  const unknown = config.unknown.filter((key) => INVENTORY_KEYS.some((needed) => key === needed || key.startsWith(`${needed}.`)));
  if (unknown.length > 0) return `The Kamal config has values that could not be resolved, so its hosts cannot be read: ${unknown.join(', ')}`;
  if (!config.service) return 'The Kamal config has no service';
  if (config.hosts.length === 0) return `The Kamal config for ${config.service} lists no servers`;
  return undefined;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function noLock(host: string, directory: string): { removed: boolean; message: string } {
  return { removed: false, message: `There is no deploy lock on ${host} (${directory} is not there): nothing to release.` };
}
