/**
 * Planning `kamal rollback V`: validate the config, read every host once (in parallel), refuse
 * before touching anything, and produce the exact command lines the executor will run.
 */
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { DeployRollbackError, silentReporter, type Reporter, type RollDirection, type RollbackPlan } from '../../model';
import { oneLine } from '../../text';
import { shellLine, quoteArgv } from '../../shell';
import type { HostSession } from '../../ssh/types';
import { runGit } from '../../gitops/git';
import { makeRunDirectory, validateVersion, versionFromName } from '../commands/app';
import {
  describeLock,
  lockDetailsFile,
  lockDetailsText,
  releaseAdvice,
  releaseLockCommand,
  staleLockAdvice,
  releaseLockIfOurs,
  rubyBase64,
  utcIso8601,
  type LockDetails,
} from '../commands/lock';
import { goneRunAdvice } from '../commands/lock-run';
import { hasErrorPages, makeErrorPagesDirectory, readErrorPages } from '../commands/error-pages';
import { hookIsRunnable } from './hooks';
import { validateConfigForRollback } from './validate';
import { delay, raceAbort } from './runner';
import { assemblePlan, label, lockMessageFor, plural, projectRoot, redactPlanLines } from './assemble';
import { stopOtherRunningContainers } from '../commands/recovery';
import { factsFromInventory, leftoverCopy, needsOthersStopped, readHosts, readHostsTakingLock, REPLACED, targetProblems, type HostFacts, type ReadHost } from './preflight';
import type { KamalInventory } from '../hosts/inventory';
import { bootGroups, buildHostPlan, hostsInBootOrder, stopTimeout } from './steps';
import type { KamalHookPlan, KamalHostPlan, KamalPlanDetail } from './types';
import { compareEnvFiles, envFilesAsExpected, prepareEnvCheck, type EnvCheck, type EnvFilesRequest } from './env-check';
import type { KamalConfig } from '../config/types';
import { describeScopeRequest, leftSummary, resolveKamalScope, scopedConfig, scopeLines, type KamalScope, type KamalScopeRequest } from './scope';

export interface PlanKamalRollbackInput {
  config: KamalConfig;
  sessions: (host: string) => Promise<HostSession>;
  /** Default: the newest version older than the current one that is present on every host and role. */
  targetVersion?: string;
  /** Overrides the lock holder and audit performer (default: from git, else the OS user). */
  performer?: string;
  signal?: AbortSignal;
  reporter?: Reporter;
  /**
   * The run follows at once (no confirmation in between): take the deploy lock on the primary host
   * and make `.kamal` on the others in the pre-flight's own exchange, released again if the
   * pre-flight refuses. Ignored (the run takes the lock) when a pre-connect hook must run first
   * or no target is given (the lock names it).
   */
  takeLock?: boolean;
  /**
   * The hosts as a read moments ago saw them (the tree's inventory): planned from it without
   * reading them again. The run re-reads them when it takes the lock and refuses if the plan no
   * longer fits. Ignored with `takeLock`, or when a host could not be read.
   */
  recentRead?: KamalInventory;
  /** Kamal's `--roles`/`--hosts`/`--primary`: only these hosts and roles are read, locked on and booted. */
  scope?: KamalScopeRequest;
  /** Kamal's `--skip-hooks`: no hook runs. */
  skipHooks?: boolean;
  /**
   * Kamal's `--lock-wait`: while someone else holds the deploy lock, read the hosts again every
   * `intervalMs` until it is free, for at most `timeoutMs`; cancelled by `signal`.
   */
  lockWait?: { timeoutMs: number; intervalMs: number };
  /**
   * Compare each role's env file on the hosts with what Kamal's rollback would write (current
   * config and .kamal/secrets), in the pre-flight's own exchange: the plan then says which keys
   * differ. Planning reads the hosts then, even with `recentRead`.
   */
  envFiles?: EnvFilesRequest;
}

/** The plan was refused because someone else holds the deploy lock (what `--lock-wait` waits out). */
export class KamalLockHeldError extends DeployRollbackError {
  constructor(
    message: string,
    readonly host: string,
    readonly holder: string,
  ) {
    super(message, 'lock');
  }
}



/**
 * So that a plain re-run converges after an interrupted one: a target left only as a renamed copy
 * is renamed back first, and `_replaced_` copies left running are stopped once the target serves.
 */
function repairInterruptedSteps(config: KamalConfig, hostPlans: KamalHostPlan[], facts: HostFacts[], target: string, reporter: Reporter): void {
  for (const hostPlan of hostPlans) {
    for (const step of hostPlan.steps) {
      const role = facts.find((host) => host.host === step.host)?.roles.find((entry) => entry.role === step.role);
      if (!role) continue;
      const copy = leftoverCopy(config, role, target);
      if (copy && step.commands.rename) {
        reporter.warn(`[ssh ${step.host}] ${step.role}: ${target} is only there as ${copy.name} (left by an interrupted rollback): it is renamed back first.`);
        step.commands.rename = `${quoteArgv(['docker', 'rename', copy.name, step.containerName])} && ${step.commands.rename}`;
        step.restoresCopy = copy.name;
      }
      if (needsOthersStopped(config, role, target)) {
        step.commands.stopOthers = stopOtherRunningContainers(config, step.role, target, stopTimeout(config, config.roles.find((entry) => entry.name === step.role)!));
      }
    }
  }
}

/**
 * Kamal #1677: the newest version, first deployed before the current one, whose container is
 * present on every host and role. "First deployed" counts renamed `_replaced_` containers, so a
 * rollback's fresh container does not make an old version look new.
 */
export function pickDefaultTarget(config: KamalConfig, facts: HostFacts[]): string | undefined {
  const firstSeen = new Map<string, number>();
  const presentEverywhere: Set<string>[] = [];
  const currents = new Set<string>();
  for (const host of facts) {
    for (const role of host.roles) {
      const present = new Set<string>();
      for (const container of role.containers) {
        const version = versionFromName(config, role.role, container.name);
        if (version === undefined) continue;
        const base = version.replace(REPLACED, '');
        if (Number.isFinite(container.created)) firstSeen.set(base, Math.min(firstSeen.get(base) ?? Infinity, container.created));
        if (!REPLACED.test(version)) present.add(version);
      }
      presentEverywhere.push(present);
      if (role.current !== undefined) currents.add(role.current.replace(REPLACED, ''));
    }
  }
  if (presentEverywhere.length === 0) return undefined;
  const currentSince = Math.min(...[...currents].map((version) => firstSeen.get(version) ?? Infinity));
  const candidates = [...presentEverywhere[0]].filter(
    (version) => !currents.has(version) && presentEverywhere.every((set) => set.has(version)) && isDockerTag(version) && (firstSeen.get(version) ?? -Infinity) < currentSince,
  );
  candidates.sort((a, b) => (firstSeen.get(b) ?? -Infinity) - (firstSeen.get(a) ?? -Infinity));
  return candidates[0];
}

/** A target first deployed after the version running now is a roll forward (the tree's newest-first order). */
export function targetDirection(config: KamalConfig, facts: HostFacts[], target: string): RollDirection {
  const firstSeen = new Map<string, number>();
  const currents = new Set<string>();
  for (const host of facts) {
    for (const role of host.roles) {
      for (const container of role.containers) {
        const base = versionFromName(config, role.role, container.name)?.replace(REPLACED, '');
        if (base !== undefined && Number.isFinite(container.created)) firstSeen.set(base, Math.min(firstSeen.get(base) ?? Infinity, container.created));
      }
      if (role.current !== undefined) currents.add(role.current.replace(REPLACED, ''));
    }
  }
  const targetSince = firstSeen.get(target);
  if (targetSince === undefined || currents.has(target)) return 'back';
  return [...currents].some((version) => (firstSeen.get(version) ?? Infinity) < targetSince) ? 'forward' : 'back';
}

function isDockerTag(version: string): boolean {
  try {
    validateVersion(version);
    return true;
  } catch {
    return false;
  }
}

/**
 * `git config user.name` and `git config user.email` as one git process (a process start is the
 * costliest part, and this one runs while the SSH handshakes do): the last value of each key, as
 * `git config KEY` gives it, from `-z` output (`key LF value NUL`; a key without `=` has no LF).
 */
export async function gitIdentity(cwd: string): Promise<{ name?: string; email?: string }> {
  // No identity is no reason to stop a rollback: the performer then falls back to the OS user.
  const result = await runGit(['config', '-z', '--get-regexp', '^user\\.(name|email)$'], { cwd, timeoutMs: 5000, step: 'reading the git identity' }).catch(() => undefined);
  return result?.exitCode === 0 ? parseIdentity(result.stdout.toString('utf8')) : {};
}

export function parseIdentity(output: string): { name?: string; email?: string } {
  const values: Record<string, string | undefined> = {};
  for (const entry of output.split('\0')) {
    const newline = entry.indexOf('\n');
    const key = newline < 0 ? entry : entry.slice(0, newline);
    if (key === 'user.name' || key === 'user.email') values[key] = newline < 0 ? '' : entry.slice(newline + 1);
  }
  const value = (key: string) => values[key]?.trim() || undefined;
  return { name: value('user.name'), email: value('user.email') };
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** Kamal names the lock holder by git user.name and tags audit lines with git user.email, else whoami. */
export async function localIdentity(cwd: string, override?: string): Promise<{ lockHolder: string; performer: string }> {
  if (override !== undefined) return { lockHolder: override, performer: override };
  const { name, email } = await gitIdentity(cwd);
  const user = osUser();
  return { lockHolder: name ?? user, performer: email ?? user };
}

export async function planHooks(hooksPath: string): Promise<KamalHookPlan[]> {
  const names: KamalHookPlan['name'][] = ['pre-connect', 'pre-deploy', 'pre-app-boot', 'post-app-boot', 'post-deploy'];
  return Promise.all(names.map(async (name) => ({ name, file: join(hooksPath, name), present: await hookIsRunnable(join(hooksPath, name)) })));
}

export async function planKamalRollback(request: PlanKamalRollbackInput): Promise<RollbackPlan<KamalPlanDetail>> {
  if (!request.lockWait) return planOnce(request);
  const { timeoutMs, intervalMs } = request.lockWait;
  const reporter = request.reporter ?? silentReporter;
  const startedAt = Date.now();
  for (;;) {
    try {
      return await planOnce(request);
    } catch (error) {
      if (!(error instanceof KamalLockHeldError)) throw error;
      const left = startedAt + timeoutMs - Date.now();
      if (left <= 0) {
        throw new DeployRollbackError(
          `Gave up waiting for the deploy lock on ${error.host} after ${Math.round((Date.now() - startedAt) / 1000)} s (lock wait timeout ${Math.round(timeoutMs / 1000)} s), nothing was changed: it is still ${error.holder}.`,
          'lock',
        );
      }
      reporter.step(`[ssh ${error.host}] the deploy lock is ${error.holder}: waiting for it, checking again in ${Math.ceil(Math.min(intervalMs, left) / 1000)} s (giving up in ${Math.ceil(left / 1000)} s)`);
      await delay(Math.min(intervalMs, left), request.signal);
    }
  }
}

async function planOnce(request: PlanKamalRollbackInput): Promise<RollbackPlan<KamalPlanDetail>> {
  validateConfigForRollback(request.config);
  if (request.targetVersion !== undefined) validateVersion(request.targetVersion, `the rollback target of ${request.config.service}`);
  const scope = resolveKamalScope(request.config, request.scope);
  // A narrowed run sees only its roles on its hosts: every later step (checks, boots, tag, read-back) follows.
  const input = scope.narrowed ? { ...request, config: scopedConfig(request.config, scope) } : request;
  const plan = await planInScope(input, scope, request.config.hosts.length);
  plan.detail.scope = scope;
  if (input.skipHooks) {
    plan.detail.hooksSkipped = true;
    plan.lines.unshift('Hooks skipped (--skip-hooks): none of .kamal/hooks runs.');
  }
  if (scope.narrowed) {
    // A short summary stays short: past a few, the lines below name every one left.
    plan.summary = `${plan.summary} (${describeScopeRequest(scope.request)}; left as they are: ${leftSummary(scope)})`;
    plan.lines.unshift(...scopeLines(scope), '');
    plan.overview?.unshift(...scopeLines(scope));
  }
  return plan;
}

async function planInScope(input: PlanKamalRollbackInput, scope: KamalScope, hostCount: number): Promise<RollbackPlan<KamalPlanDetail>> {
  const { config } = input;
  const reporter = input.reporter ?? silentReporter;

  const hosts = scope.narrowed ? scope.hosts : hostsInBootOrder(config);
  const primaryRole = config.roles.find((role) => role.name === config.primaryRole);
  const primaryHost = scope.narrowed ? scope.primaryHost : primaryRole?.hosts[0];
  if (primaryHost === undefined) throw new DeployRollbackError(`The primary role ${config.primaryRole} of ${config.service} has no hosts.`, 'validate');
  // Kamal takes boot.limit's percentage of every host of the config, narrowed or not.
  const groups = bootGroups(hosts, config.boot.limit, config.destinationFile ?? config.file, hostCount);

  // Local reads, all at once (the connections' handshakes run meanwhile): identity, hooks, the secrets for the env files.
  const [identity, foundHooks, envCheck] = await Promise.all([
    localIdentity(projectRoot(config), input.performer),
    planHooks(config.hooksPath),
    input.envFiles ? prepareEnvCheck(config, input.envFiles, input.signal, reporter) : undefined,
  ]);
  const hooks = foundHooks.map((hook) => (input.skipHooks ? { ...hook, present: false } : hook));
  // Kamal runs pre-connect before the lock: with that hook the run takes the lock itself, after it.
  const lockTaken: LockDetails | undefined =
    input.takeLock === true && input.targetVersion !== undefined && !hooks.some((hook) => hook.name === 'pre-connect' && hook.present)
      ? { holder: identity.lockHolder, lockedAt: utcIso8601(), version: input.targetVersion, message: lockMessageFor('rollback', input.targetVersion) }
      : undefined;
  const recent = !lockTaken && input.recentRead ? factsFromInventory(config, input.recentRead) : undefined;
  // With env files to compare, the recent read serves only when its digests show them as Kamal would write them.
  const known = recent && (!envCheck || envFilesAsExpected(config, recent, envCheck)) ? recent : undefined;
  if (known) {
    const readAt = new Date(input.recentRead!.readAt);
    const when = `${readAt.toISOString().slice(11, 19)} UTC, ${Math.max(0, Math.round((Date.now() - readAt.getTime()) / 1000))} s ago`;
    reporter.step(`Planning from the hosts as read at ${when} (checked again when the lock is taken)`);
    const settled = hosts.map((host): PromiseSettledResult<HostFacts> => {
      const value = known.find((facts) => facts.host === host);
      return value ? { status: 'fulfilled', value } : { status: 'rejected', reason: new Error('not in the recent read') };
    });
    const plan = await planFromFacts(input, { hosts, groups, primaryHost, identity, hooks, settled, reporter, envCheck });
    plan.lines.unshift(`Planned from the hosts as read at ${when}; when the deploy lock is taken they are read again, and the run stops (nothing changed) if this plan no longer fits.`, '');
    return plan;
  }
  reporter.step(`Checking ${plural(hosts.length, 'host')} for ${label(config)}`);
  if (lockTaken) reporter.step(`[ssh ${primaryHost}] taking the deploy lock with the checks`);
  const read: ReadHost = async (host, script) => {
    input.signal?.throwIfAborted();
    reporter.debug(`[ssh ${host}] ${script}`);
    const session = await raceAbort(input.sessions(host), input.signal).catch((error: unknown) => {
      if (error instanceof Object) unsent.add(error);
      throw error;
    });
    const result = await session.exec(script, { signal: input.signal });
    if (result.code === null) throw new Error(`the connection closed before the checks finished${result.stderr.trim() ? `: ${oneLine(result.stderr.trim())}` : ''}`);
    return result;
  };
  if (!lockTaken) {
    const settled = await readHosts(config, hosts, primaryHost, read, undefined, envCheck && { nonce: envCheck.nonce, keys: true });
    input.signal?.throwIfAborted();
    return planFromFacts(input, { hosts, groups, primaryHost, identity, hooks, settled, reporter, envCheck });
  }
  const locked = await readHostsTakingLock(config, hosts, primaryHost, lockTaken, read, envCheck && { nonce: envCheck.nonce, keys: true });
  const { settled, held } = locked;
  try {
    input.signal?.throwIfAborted();
    const plan = await planFromFacts(input, { hosts, groups, primaryHost, identity, hooks, settled, reporter, lockTaken, envCheck });
    // An unreachable host or someone else's lock was refused by planFromFacts already.
    if (held !== true) throw new DeployRollbackError(`Cannot roll back ${label(config)}, nothing was changed: ${locked.refusal ?? `could not take the deploy lock on ${primaryHost}`}.`, 'lock');
    if (locked.unprepared.length > 0) throw new DeployRollbackError(`Cannot roll back ${label(config)}, nothing was changed: could not prepare ${locked.unprepared.join('; ')}.`, 'prepare');
    if (plan.detail.lockMessage !== lockTaken.message) {
      // A roll forward: the lock says so from the run's first exchange on the primary host (no exchange of its own).
      plan.detail.lockRewrite = shellLine(['echo', rubyBase64(lockDetailsText({ ...lockTaken, message: plan.detail.lockMessage }))], '>', [lockDetailsFile(config)]);
    }
    input.signal?.throwIfAborted();
    reporter.step(`[ssh ${hosts.join(', ')}] ${quoteArgv(makeRunDirectory())} (with the checks; the deploy lock on ${primaryHost} is held from here)`);
    return plan;
  } catch (error) {
    let note: string | undefined;
    if (held === true || (held === undefined && input.signal?.aborted)) {
      note = await releaseTakenLock(input, primaryHost, lockTaken, held === true);
    } else if (held === undefined && !neverConnected(locked.settled[hosts.indexOf(primaryHost)])) {
      // The host went silent with the lock line maybe run: asking again would wait out another bound.
      note = `The deploy lock may have been taken on ${primaryHost} with the checks: once it answers, \`kamal lock status\` tells, and ${releaseAdvice(config)} releases it if it names this run.`;
    }
    if (note && error instanceof DeployRollbackError) error.message = `${error.message} ${note}`;
    throw error;
  }
}

/** Errors of getting a connection: the pre-flight's line was never sent to that host. */
const unsent = new WeakSet<object>();

/** The host was never connected to, so no line of the pre-flight (the lock's included) ran there. */
function neverConnected(read: PromiseSettledResult<unknown> | undefined): boolean {
  return read?.status === 'rejected' && read.reason instanceof Object && unsent.has(read.reason);
}

/**
 * Puts back a lock the pre-flight took (or may have taken) when the plan refuses or is cancelled:
 * only if it still names this run. Returns a note when that could not be done.
 */
async function releaseTakenLock(input: PlanKamalRollbackInput, primaryHost: string, lock: LockDetails, surelyHeld: boolean): Promise<string | undefined> {
  const { config } = input;
  const advice = `run ${releaseAdvice(config)} if \`kamal lock status\` names this run`;
  try {
    const session = await input.sessions(primaryHost);
    const result = await session.exec(releaseLockIfOurs(config, lock.holder, lock.message, lock.lockedAt), { timeoutMs: 15_000 });
    if (result.code === 0) {
      if (surelyHeld) input.reporter?.step(`[ssh ${primaryHost}] released the deploy lock`);
      return undefined;
    }
    return `The deploy lock taken with the checks could not be released (exit ${result.code}): ${advice}.`;
  } catch (error) {
    return `The deploy lock taken with the checks may still be held (${error instanceof Error ? error.message : String(error)}): ${advice}.`;
  }
}

async function planFromFacts(
  input: PlanKamalRollbackInput,
  args: {
    hosts: string[];
    groups: string[][];
    primaryHost: string;
    identity: { lockHolder: string; performer: string };
    hooks: KamalHookPlan[];
    settled: PromiseSettledResult<HostFacts>[];
    reporter: Reporter;
    lockTaken?: LockDetails;
    envCheck?: EnvCheck;
  },
): Promise<RollbackPlan<KamalPlanDetail>> {
  const { config } = input;
  const { hosts, groups, primaryHost, identity, hooks, settled, reporter } = args;
  const problems: string[] = [];
  const facts: HostFacts[] = [];
  settled.forEach((entry, index) => {
    if (entry.status === 'rejected') {
      const reason = entry.reason instanceof Error ? entry.reason.message : String(entry.reason);
      problems.push(`${hosts[index]} is unreachable (${reason})`);
    } else {
      facts.push(entry.value);
      for (const role of entry.value.roles) for (const error of role.errors) problems.push(`${hosts[index]} (${role.role}): ${error}`);
    }
  });
  if (problems.length > 0) throw new DeployRollbackError(`Cannot roll back ${label(config)}, nothing was changed: ${problems.join('; ')}.`, 'preflight');

  const lock = facts.find((host) => host.host === primaryHost)?.lock;
  // With the lock taken in the same exchange, the lock read there is someone else's (ours failed to be made).
  if (lock) {
    throw new KamalLockHeldError(
      lock.unreadable
        ? `Cannot roll back ${label(config)}: the deploy lock on ${primaryHost} is ${describeLock(lock)}. ${staleLockAdvice(config, primaryHost)}.`
        : `Cannot roll back ${label(config)}: the deploy lock on ${primaryHost} is ${describeLock(lock)}. Wait for that deploy, or release it with ${releaseAdvice(config)} if it is stale.${goneRunAdvice(lock, releaseLockCommand(config))}`,
      primaryHost,
      describeLock(lock),
    );
  }

  const target = input.targetVersion ?? pickDefaultTarget(config, facts);
  if (target === undefined) {
    throw new DeployRollbackError(`Cannot pick a version to roll ${label(config)} back to: no earlier version has a container on every host and role. Pick one explicitly.`, 'preflight');
  }

  refuseUnbootableTarget(config, facts, target);

  const currentOf = new Map<string, string | undefined>();
  for (const host of facts) for (const role of host.roles) currentOf.set(`${host.host}\n${role.role}`, role.current);
  const hostPlans: KamalHostPlan[] = hosts.map((host) =>
    buildHostPlan(config, host, host === primaryHost, (role) => ({ to: target, from: currentOf.get(`${host}\n${role.name}`), renameExisting: true })),
  );
  repairInterruptedSteps(config, hostPlans, facts, target, reporter);

  const errorPages = hasErrorPages(config) ? { makeDirectory: makeErrorPagesDirectory(config), files: await readErrorPages(config, projectRoot(config)) } : undefined;
  const kind = targetDirection(config, facts, target) === 'forward' ? 'roll-forward' : 'rollback';
  const envFiles = args.envCheck ? compareEnvFiles(config, hostPlans, facts, args.envCheck, input.envFiles?.write === true) : undefined;
  const plan = assemblePlan({ config, kind, hosts, groups, primaryHost, hostPlans, identity, hooks, lockVersion: target, errorPages, envFiles });
  if (args.lockTaken) plan.detail.lockTaken = args.lockTaken;
  for (const step of hostPlans.flatMap((host) => host.steps)) {
    if (step.commands.stopOthers) plan.lines.push(`[ssh ${step.host}] ${step.role}: once ${target} serves, stop what an interrupted run left running beside it (other versions, _replaced_ copies): ${step.commands.stopOthers}`);
  }
  return redactPlanLines(plan);
}

/** Refuses, nothing changed, when `target` cannot boot on every host as read: no container, TLS files, image or env file missing. */
function refuseUnbootableTarget(config: KamalConfig, facts: HostFacts[], target: string): void {
  const { missing, missingEnv, missingTls, missingImage } = targetProblems(config, facts, target);
  if (missing.length > 0) {
    throw new DeployRollbackError(
      `Cannot roll back ${label(config)} to ${target}, nothing was changed: version ${target} has no container on ${missing.join(', ')} (pruned, or never deployed there).`,
      'preflight',
    );
  }
  if (missingTls.length > 0) {
    throw new DeployRollbackError(
      `Cannot roll back ${label(config)} to ${target}, nothing was changed: proxy.ssl uses a custom certificate, and the files the last deploy left for kamal-proxy are missing on ${missingTls.join(', ')}. Run \`kamal deploy\` (it uploads them from your secrets); Deploy Rollback never reads secrets.`,
      'preflight',
    );
  }
  if (missingImage.length > 0) {
    throw new DeployRollbackError(
      `Cannot roll back ${label(config)} to ${target}, nothing was changed: the image ${config.repository}:${target} is missing on ${missingImage.join(', ')} (its container is there, but docker run needs the image: pull or re-tag it there first).`,
      'preflight',
    );
  }
  if (missingEnv.length > 0) {
    throw new DeployRollbackError(
      `Cannot roll back ${label(config)} to ${target}, nothing was changed: the role env file is missing on ${missingEnv.join(', ')}. Run \`kamal env push\` or a deploy first.`,
      'preflight',
    );
  }
}
