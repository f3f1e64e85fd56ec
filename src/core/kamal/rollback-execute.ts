/**
 * Running a Kamal rollback plan: lock, hooks, boot groups (hosts in parallel, roles in order),
 * `latest` tag, unlock on every path out. Nothing is re-planned: the plan's lines are what runs,
 * plus the values only a run can know (the new container id, the version serving right now).
 */
import { DeployRollbackError, type Reporter, type RollbackOutcome, type RollbackPlan } from '../model';
import { quoteArgv } from '../shell';
import { looksLikeDockerDown } from '../ssh/errors';
import { redactSecrets } from '../ssh/redact';
import { escapeControl } from '../text';
import type { ExecResult, HostSession } from '../ssh/types';
import { containerName, stopContainer, tagLatestImage, versionFromName } from './commands/app';
import { recordAudit } from './commands/auditor';
import { acquireLock, describeLock, lockDetailsText, releaseAdvice, utcIso8601, type LockDetails } from './commands/lock';
import { parseReadBack, readBackCommand, undoRename, type RoleReadBack } from './commands/recovery';
import { runHook, type HookDetails, type KamalHookName } from './hooks';
import { assemblePlan } from './rollback-plan';
import { cleanUpAfterStop, prepareHosts } from './rollback-prepare';
import { uploadFiles } from '../ssh/sftp';
import { buildHostPlan } from './rollback-steps';
import { chain, markerWatcher, parseSections, section } from './sections';
import { changesSince, parseHostFacts, preflightScript, type HostFacts } from './rollback-preflight';
import { TARGET_ARG_PLACEHOLDER, type KamalHostOutcome, type KamalHostPlan, type KamalPlanDetail, type KamalRoleStep } from './rollback-types';

export interface ExecuteKamalRollbackDeps {
  sessions: (host: string) => Promise<HostSession>;
  reporter: Reporter;
  signal?: AbortSignal;
  runHooks: boolean;
  /** Environment the hooks start from (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** How often a non-proxy role's health is polled; tests shorten it. */
  healthPollMs?: number;
}

export type KamalRollbackResult = RollbackOutcome & { hosts: KamalHostOutcome[]; rollForward?: RollbackPlan<KamalPlanDetail> };

const CONTAINER_ID = /^[0-9a-f]{12,64}$/;
/** Unlock, read-back and undo run after a cancel or failure: never cancelled, always bounded. */
const AFTERMATH_TIMEOUT_MS = 15_000;

function abortError(): Error {
  const error = new Error('Cancelled');
  error.name = 'AbortError';
  return error;
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts. */
function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `work`, or an AbortError as soon as `signal` aborts (the work itself goes on, bounded by its own deadline). */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The last line of a host's output, control characters escaped: it goes into messages as is. */
function lastLine(text: string): string {
  return escapeControl(text.trim().split('\n').slice(-1)[0] ?? '');
}

/** A command failed with this exit status: the host answered. */
class CommandFailed extends Error {
  constructor(readonly host: string, readonly what: string, readonly result: ExecResult) {
    super(`${what} failed on ${host} (exit ${result.code}${result.stderr.trim() ? `: ${lastLine(result.stderr)}` : ''})`);
  }
}

/** The host stopped answering (connection lost or closed mid-command). */
class HostUnreachable extends Error {
  constructor(readonly host: string, cause: string) {
    super(`${host} stopped answering: ${cause}`);
  }
}

/** sshd answers but `docker` cannot reach its daemon (exit 255 from `docker exec`, or docker's own words). */
class DockerDown extends Error {
  constructor(readonly host: string, what: string, result: ExecResult) {
    super(`Docker is not answering on ${host} (${what}: exit ${result.code}${result.stderr.trim() ? `: ${lastLine(result.stderr)}` : ''})`);
  }
}

interface ExecHow {
  /** Default true: the run's cancel closes the channel. Unlock, read-back and undo pass false. */
  cancellable?: boolean;
  timeoutMs?: number;
  onStdout?: (text: string) => void;
}

/** What a step did so far on its host: decides what a failure or cancel must put back. */
interface StepProgress {
  renamed: boolean;
  /** `docker run` was sent (it may have created the container even if its answer never came). */
  ranNew: boolean;
  containerId?: string;
  /** The new version serves: a later failure (stopping O) leaves it serving. */
  switched: boolean;
}

/**
 * Kamal's boot barrier: containers of the other roles wait until the first container of the
 * primary role passed its health check, and are not booted at all if it failed.
 */
class Barrier {
  private state?: boolean;
  private settle!: (opened: boolean) => void;
  readonly settled = new Promise<boolean>((resolve) => (this.settle = resolve));

  constructor(readonly primaryRole: string) {}

  /** True only for the call that decided the barrier. */
  set(opened: boolean): boolean {
    if (this.state !== undefined) return false;
    this.state = opened;
    this.settle(opened);
    return true;
  }
}

class HostRunner {
  constructor(private readonly deps: ExecuteKamalRollbackDeps) {}

  /** Runs one line; a lost connection becomes HostUnreachable, a cancel an AbortError, an exit status is returned. */
  async exec(host: string, command: string, what: string, how: ExecHow = {}): Promise<ExecResult> {
    const signal = how.cancellable === false ? undefined : this.deps.signal;
    if (signal?.aborted) throw abortError();
    this.deps.reporter.debug(`[ssh ${host}] ${redactSecrets(command)}`);
    let result: ExecResult;
    try {
      const session = await raceAbort(this.deps.sessions(host), signal);
      result = await session.exec(command, { signal, timeoutMs: how.timeoutMs, onStdout: how.onStdout });
    } catch (error) {
      if (isAbort(error) || signal?.aborted) throw abortError();
      throw new HostUnreachable(host, `${what}: ${errorText(error)}`);
    }
    if (result.code === null) throw new HostUnreachable(host, `${what}: the connection closed before the command finished`);
    return result;
  }

  async run(host: string, command: string, what: string, how: ExecHow = {}): Promise<ExecResult> {
    const result = await this.exec(host, command, what, how);
    if (result.code !== 0) {
      if (looksLikeDockerDown(result.stderr)) throw new DockerDown(host, what, result);
      throw new CommandFailed(host, what, result);
    }
    return result;
  }
}

export async function executeKamalRollback(plan: RollbackPlan<KamalPlanDetail>, deps: ExecuteKamalRollbackDeps): Promise<KamalRollbackResult> {
  const detail = plan.detail;
  const { config } = detail;
  const reporter = deps.reporter;
  const runner = new HostRunner(deps);
  const startedAt = Date.now();
  const outcomes = new Map<string, KamalHostOutcome>();
  const progress = new Map<string, StepProgress>();
  for (const host of detail.hostPlans) {
    for (const step of host.steps) {
      outcomes.set(key(step.host, step.role), { host: step.host, role: step.role, from: step.from, to: step.to, result: 'not-started', serving: step.from });
      progress.set(key(step.host, step.role), { renamed: false, ranNew: false, switched: false });
    }
  }

  const allSteps = detail.hostPlans.flatMap((host) => host.steps);
  const primaryRole = config.primaryRole;
  // Without both kinds of step in the plan nobody could decide the barrier, so none is used.
  const barrier =
    allSteps.some((step) => step.role === primaryRole) && allSteps.some((step) => step.role !== primaryRole) ? new Barrier(primaryRole) : undefined;
  let lockHeld = false;
  let lockSent = false;
  let holdingLockForHooks = false;
  const problems: string[] = [];
  let cancelled = false;
  let groupsDone = 0;
  let tagged = false;
  /** The tag-and-unlock exchange ended without saying whether the release ran. */
  let unlockUncertain = false;
  const lockDetails: LockDetails = detail.lockTaken ?? { holder: detail.lockHolder, lockedAt: utcIso8601(), version: detail.hostPlans[0]?.tagVersion ?? '', message: detail.lockMessage };
  // The pre-flight took it (and made `.kamal` everywhere): every way out below releases it.
  if (detail.lockTaken) {
    lockSent = true;
    lockHeld = true;
    holdingLockForHooks = true;
  }
  let pendingLockRewrite = detail.lockTaken ? detail.lockRewrite : undefined;
  /** The roll forward's lock message, for the first exchange on the primary host only. */
  const takeLockRewrite = (host: string): string | undefined => {
    if (host !== detail.primaryHost) return undefined;
    const rewrite = pendingLockRewrite;
    pendingLockRewrite = undefined;
    return rewrite;
  };
  const onCancel = () => reporter.warn('Cancelling: closing the commands in flight; no further step starts.');
  deps.signal?.addEventListener('abort', onCancel, { once: true });

  const hook = async (name: KamalHookName, hosts: string[] = detail.hosts, runtime?: number, cancellable = true): Promise<void> => {
    if (!deps.runHooks) return;
    const details: HookDetails = {
      recordedAt: utcIso8601(),
      performer: detail.performer,
      service: detail.service,
      version: plan.to,
      destination: detail.destination,
      hosts,
      roles: detail.roles.length < config.roles.length ? detail.roles : undefined,
      lock: holdingLockForHooks,
      command: 'rollback',
      runtime,
    };
    const entry = detail.hooks.find((candidate) => candidate.name === name);
    const run = await runHook(name, { hooksPath: config.hooksPath, cwd: detail.hooksCwd, details, env: deps.env, signal: cancellable ? deps.signal : undefined });
    if (run.ran) {
      reporter.step(`[local] ran the ${name} hook${entry ? ` (${entry.file})` : ''}`);
      if (run.output.trim()) reporter.info(`[local] ${name}: ${run.output.trimEnd()}`);
    }
  };

  /**
   * The deploy lock on the primary host and `mkdir -p .kamal` on the others, each in one exchange
   * with the pre-flight's checks read again: the plan was confirmed on an earlier reading (maybe
   * the tree's), so it runs only if it still fits the hosts.
   */
  const takeLockWithChecks = async (): Promise<void> => {
    const primary = detail.primaryHost;
    reporter.step(`[ssh ${detail.hosts.join(', ')}] ${detail.commands.makeRunDirectory}, the deploy lock on ${primary}, and the checks again`);
    lockSent = true;
    const prepareOn = (host: string) => (host === primary ? `${detail.commands.makeRunDirectory} && ${acquireLock(config, lockDetails)}` : detail.commands.makeRunDirectory);
    const settled = await Promise.allSettled(
      detail.hosts.map(async (host) => {
        const what = host === primary ? 'take the deploy lock with the checks' : 'mkdir -p .kamal with the checks';
        const result = await runner.exec(host, preflightScript(config, host, host === primary, prepareOn(host)), what);
        return parseHostFacts(config, host, host === primary, result.stdout, result.stderr);
      }),
    );
    const locked = settled[detail.hosts.indexOf(primary)];
    if (locked?.status === 'fulfilled' && locked.value.prepared === 0) lockHeld = true;
    if (deps.signal?.aborted) throw abortError();
    if (!locked || locked.status === 'rejected') {
      const reason: unknown = locked?.status === 'rejected' ? locked.reason : new Error(`${primary} is not among the hosts`);
      // The lock line may have reached the host before it went silent: say how to check.
      if (reason instanceof HostUnreachable) {
        throw new DeployRollbackError(`${errorText(reason)}. The deploy lock may have been taken there: once it answers, \`kamal lock status\` tells, and ${releaseAdvice(config)} releases it if it names this run.`, 'lock');
      }
      throw reason;
    }
    if (locked.value.prepared !== 0) {
      const lock = locked.value.lock;
      if (lock?.unreadable) {
        throw new DeployRollbackError(`Nothing was changed: the deploy lock on ${primary} is ${describeLock(lock)}. If no deploy is running, release it with ${releaseAdvice(config)}.`, 'lock');
      }
      if (lock) throw new DeployRollbackError(`Nothing was changed: the deploy lock on ${primary} is ${describeLock(lock)}.`, 'lock');
      throw new DeployRollbackError(`Nothing was changed: could not take the deploy lock on ${primary} (exit ${locked.value.prepared ?? 'unknown'}${locked.value.prepareError ? `: ${locked.value.prepareError}` : ''}).`, 'lock');
    }
    const facts: HostFacts[] = [];
    const unmade = settled.flatMap((entry, index) => {
      if (entry.status === 'rejected') return [`${detail.hosts[index]}: ${errorText(entry.reason)}`];
      facts.push(entry.value);
      return entry.value.prepared !== 0 ? [`${detail.hosts[index]}: mkdir -p .kamal failed (exit ${entry.value.prepared ?? 'unknown'}${entry.value.prepareError ? `: ${entry.value.prepareError}` : ''})`] : [];
    });
    if (unmade.length > 0) throw new DeployRollbackError(`Nothing was changed: could not prepare ${unmade.join('; ')}.`, 'prepare');
    const changes = changesSince(detail, facts);
    if (changes.length > 0) {
      throw new DeployRollbackError(`Nothing was changed: the hosts no longer fit the confirmed plan: ${changes.join('; ')}. Refresh and plan again.`, 'preflight');
    }
  };

  try {
    await hook('pre-connect');
    if (deps.signal?.aborted) throw abortError();

    if (!detail.lockTaken) await takeLockWithChecks();
    lockHeld = true;
    holdingLockForHooks = true;

    await hook('pre-deploy');
    await prepareHosts(detail, (host, command, what) => runner.exec(host, command, what), reporter, async (host, directory, files) => uploadFiles(await deps.sessions(host), directory, files));

    for (const [index, group] of detail.groups.entries()) {
      if (deps.signal?.aborted) throw abortError();
      if (index > 0 && detail.bootWait > 0) await delay(detail.bootWait * 1000, deps.signal);
      reporter.step(`Group ${index + 1} of ${detail.groups.length}: ${group.join(', ')}`);
      await hook('pre-app-boot', group);
      const hostPlans = group.map((name) => detail.hostPlans.find((host) => host.host === name)).filter((host): host is KamalHostPlan => host !== undefined);
      await Promise.all(hostPlans.map((host) => bootHost(host, runner, detail, deps, outcomes, progress, barrier, takeLockRewrite)));
      if (deps.signal?.aborted) throw abortError();
      const failed = hostPlans.flatMap((host) => host.steps).filter((step) => {
        const result = outcomes.get(key(step.host, step.role))?.result;
        return result === 'failed' || result === 'unreachable';
      });
      if (failed.length > 0) {
        problems.push(...failed.map((step) => `${step.host} (${step.role}): ${outcomes.get(key(step.host, step.role))?.message ?? 'failed'}`));
        break;
      }
      await hook('post-app-boot', group);
      groupsDone += 1;
    }

    if (groupsDone === detail.groups.length) {
      // The primary host's tag and unlock share one exchange (Kamal's order: tag, then release).
      const unlocked = await tagLatest(runner, detail, reporter, problems, lockHeld);
      if (unlocked !== 'held') {
        lockHeld = false;
        holdingLockForHooks = false;
        unlockUncertain = unlocked === 'unknown';
      }
      if (typeof unlocked === 'object') {
        // The host went silent: asking it again would only wait out another bound.
        const message = `Could not release the deploy lock on ${detail.primaryHost} (${errorText(unlocked.lost)}): run ${releaseAdvice(config)} once the host answers.`;
        problems.push(message);
        reporter.error(message);
      }
      tagged = problems.length === 0;
    }
  } catch (error) {
    if (deps.signal?.aborted) {
      cancelled = true;
    } else {
      problems.push(errorText(error));
      reporter.error(errorText(error));
    }
  } finally {
    deps.signal?.removeEventListener('abort', onCancel);
    const touched = [...progress.values()].some((entry) => entry.renamed || entry.ranNew);
    if (cancelled) reporter.warn(touched ? `Cancelled after ${groupsDone} of ${detail.groups.length} groups: putting back what was half-done, then reading every host.` : 'Cancelled before any host was changed.');
    for (const outcome of outcomes.values()) if (outcome.result === 'not-started' && cancelled) outcome.result = 'cancelled';
    // Put half-done steps back and read what hosts really run, while the lock still keeps others out.
    const unfinished = cancelled || problems.length > 0 || [...outcomes.values()].some((outcome) => outcome.result !== 'rolled-back');
    if (touched && unfinished) await settleAndReadBack(runner, detail, reporter, outcomes, progress);
    if (!lockHeld && lockSent && cancelled && !unlockUncertain) lockHeld = (await lockIsOurs(runner, detail, lockDetails)) === true;
    // Unknown whether the release ran: release again unless the lock is known to be gone or not ours.
    if (unlockUncertain) lockHeld = (await lockIsOurs(runner, detail, lockDetails)) !== false;
    if (lockHeld) {
      try {
        await runner.run(detail.primaryHost, detail.commands.releaseLock, 'release the deploy lock', { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
        holdingLockForHooks = false;
        reporter.step(`[ssh ${detail.primaryHost}] released the deploy lock`);
      } catch (error) {
        const message = `Could not release the deploy lock on ${detail.primaryHost} (${errorText(error)}): run ${releaseAdvice(config)} once the host answers.`;
        problems.push(message);
        reporter.error(message);
      }
    }
  }

  const entries = [...outcomes.values()];
  const allSwitched = entries.every((entry) => entry.result === 'rolled-back');
  const ok = allSwitched && tagged && !cancelled && problems.length === 0;

  if (ok) {
    try {
      await hook('post-deploy', detail.hosts, Math.round((Date.now() - startedAt) / 1000), false);
    } catch (error) {
      problems.push(errorText(error));
      reporter.error(errorText(error));
    }
  }

  // Offered only when some host was left behind; a failed unlock or tag needs no roll-forward.
  const rollForward = allSwitched ? undefined : rollForwardPlan(plan, entries);
  const touchedAny = [...progress.values()].some((entry) => entry.renamed || entry.ranNew);
  return {
    ok: ok && problems.length === 0,
    message: outcomeMessage(plan, entries, problems, cancelled ? (touchedAny ? 'cancelled' : 'cancelled before any host was changed') : undefined, ok && problems.length === 0),
    lines: outcomeTable(entries),
    hosts: entries,
    rollForward,
  };
}

function key(host: string, role: string): string {
  return `${host}\n${role}`;
}

/** A cancel closed the lock command's channel: the host may still have run it. Ours when it names us at our time. */
async function lockIsOurs(runner: HostRunner, detail: KamalPlanDetail, details: LockDetails): Promise<boolean | undefined> {
  try {
    const status = await runner.exec(detail.primaryHost, detail.commands.lockStatus, 'read the deploy lock', { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
    return status.code === 0 && status.stdout.includes(lockDetailsText(details).split('\n')[0]);
  } catch {
    return undefined;
  }
}

async function bootHost(
  host: KamalHostPlan,
  runner: HostRunner,
  detail: KamalPlanDetail,
  deps: ExecuteKamalRollbackDeps,
  outcomes: Map<string, KamalHostOutcome>,
  progress: Map<string, StepProgress>,
  barrier: Barrier | undefined,
  takeLockRewrite: (host: string) => string | undefined,
): Promise<void> {
  for (const step of host.steps) {
    const outcome = outcomes.get(key(step.host, step.role));
    const done = progress.get(key(step.host, step.role));
    if (!outcome || !done) continue;
    if (deps.signal?.aborted) return;
    const gatekeeper = barrier !== undefined && step.role === barrier.primaryRole;
    try {
      await bootRole(step, runner, detail, deps, outcome, done, gatekeeper ? undefined : barrier, takeLockRewrite(step.host));
      if (gatekeeper && barrier.set(true)) deps.reporter.step(`[ssh ${step.host}] first ${step.role} container is healthy: booting the other roles`);
    } catch (error) {
      if (gatekeeper && barrier.set(false)) deps.reporter.error(`[ssh ${step.host}] first ${step.role} container failed: not booting the other roles`);
      if (isAbort(error) || deps.signal?.aborted) {
        // Cancelled while stopping the old version: the new one already serves.
        outcome.result = done.switched ? 'rolled-back' : 'cancelled';
        outcome.message = done.switched ? `cancelled while stopping ${outcome.serving === step.to ? 'the old version' : 'it'}` : 'cancelled while in flight';
        return;
      }
      outcome.result = error instanceof HostUnreachable ? 'unreachable' : 'failed';
      outcome.message = errorText(error);
      if (error instanceof HostUnreachable) outcome.serving = undefined;
      deps.reporter.error(`[ssh ${step.host}] ${step.role}: ${outcome.message}`);
      return;
    }
  }
}

async function bootRole(
  step: KamalRoleStep,
  runner: HostRunner,
  detail: KamalPlanDetail,
  deps: ExecuteKamalRollbackDeps,
  outcome: KamalHostOutcome,
  done: StepProgress,
  waitFor: Barrier | undefined,
  lockRewrite?: string,
): Promise<void> {
  const { config } = detail;
  const { reporter } = deps;
  const prefix = `[ssh ${step.host}] ${step.role}:`;
  const lockRewritten = (rc: number | null | undefined) => {
    if (rc === 0) reporter.step(`[ssh ${step.host}] the deploy lock now says: ${detail.lockMessage}`);
    else reporter.warn(`[ssh ${step.host}] could not write "${detail.lockMessage}" into the deploy lock's details (exit ${rc ?? 'unknown'}); the lock holds and names this run.`);
  };
  if (lockRewrite && waitFor) {
    lockRewritten((await runner.exec(step.host, lockRewrite, 'write the roll forward into the deploy lock')).code);
    lockRewrite = undefined;
  }

  // The pre-flight saw the target container, and the lock has been held since, so Kamal's second
  // existence check is folded into the rename; without a barrier to wait at, `docker run` follows
  // in the same exchange (each step a marker section, reported as its marker arrives).
  const auditLine = (message: string, role?: string): string => recordAudit(config, { recordedAt: utcIso8601(), performer: detail.performer, role }, message);
  let readCurrent = step.commands.currentVersion;
  const renaming = step.renameExisting && step.commands.rename !== undefined;
  if (renaming) {
    reporter.step(`${prefix} renaming ${step.containerName} to ${containerName(config, step.role, step.renamedVersion)}`);
    readCurrent = `${auditLine(`Renaming container ${step.to} to ${step.renamedVersion}`, step.role)} && ${step.commands.rename} && ${step.commands.currentVersion}`;
    // Sent: from here a failure or cancel checks for the renamed copy and puts it back.
    done.renamed = true;
  }
  const readWhat = renaming ? `rename ${step.containerName}` : 'read the current version';
  let current: ExecResult;
  let run: ExecResult | undefined;
  if (waitFor) {
    current = await runner.run(step.host, readCurrent, readWhat);
  } else {
    // Sent with the run: a cancel or lost host from here may have left the new container created.
    done.ranNew = true;
    const watch = markerWatcher((name) => {
      if (name === 'run') reporter.step(`${prefix} starting ${step.containerName}`);
    });
    const line = chain([['current', readCurrent], ['run', step.commands.run]]);
    const fused = await runner.exec(step.host, lockRewrite ? `${section('lockmsg', lockRewrite)}; ${line}` : line, `${readWhat}, docker run ${step.containerName}`, { onStdout: watch.onStdout });
    watch.finish(fused.stdout);
    const sections = parseSections(fused.stdout);
    if (lockRewrite) lockRewritten(sections.get('lockmsg')?.rc);
    const read = sections.get('current');
    if (!sections.has('run')) {
      done.ranNew = false;
      const failed: ExecResult = { code: read?.rc ?? fused.code, stdout: read?.lines.join('\n') ?? '', stderr: fused.stderr };
      if (looksLikeDockerDown(failed.stderr)) throw new DockerDown(step.host, readWhat, failed);
      throw new CommandFailed(step.host, readWhat, failed);
    }
    current = { code: 0, stdout: `${read?.lines.join('\n') ?? ''}\n`, stderr: '' };
    const ran = sections.get('run');
    run = { code: ran?.rc ?? fused.code, stdout: `${ran?.lines.join('\n') ?? ''}\n`, stderr: fused.stderr };
  }
  const currentName = current.stdout.trim().split('\n')[0]?.trim();
  const oldVersion = currentName ? versionFromName(config, step.role, currentName) : undefined;
  if (oldVersion !== undefined) outcome.serving = oldVersion;

  if (!run) {
    if (waitFor) {
      reporter.step(`${prefix} waiting for the first healthy ${waitFor.primaryRole} container`);
      if (!(await raceAbort(waitFor.settled, deps.signal))) {
        throw new DeployRollbackError(`not booted: the first ${waitFor.primaryRole} container of ${step.to} failed its health check`, 'barrier');
      }
    }
    reporter.step(`${prefix} starting ${step.containerName}`);
    done.ranNew = true;
    run = await runner.exec(step.host, step.commands.run, `docker run ${step.containerName}`);
  }
  if (run.code !== 0) {
    await showLogsAndStop(step, runner, reporter, true);
    if (looksLikeDockerDown(run.stderr)) throw new DockerDown(step.host, `docker run ${step.containerName}`, run);
    throw new DeployRollbackError(`docker run ${step.containerName} failed on ${step.host} (exit ${run.code}): ${dockerCause(run.stderr) || 'no error output'}`, 'boot');
  }
  const containerId = run.stdout.trim().split('\n').slice(-1)[0]?.trim() ?? '';
  if (!CONTAINER_ID.test(containerId)) {
    await showLogsAndStop(step, runner, reporter, true);
    throw new DeployRollbackError(`docker run on ${step.host} printed no container id (${JSON.stringify(containerId.slice(0, 80))}).`, 'boot');
  }
  done.containerId = containerId;

  // Once V serves: the "Booted" audit line with the stop of the old version (behind kamal-proxy, in the switch's exchange).
  const booted = auditLine(`Booted app version ${step.to}`, step.role);
  const stopOld = oldVersion === undefined ? undefined : oldVersion === step.from && step.commands.stopOld ? step.commands.stopOld : stopContainer(config, step.role, oldVersion, step.stopTimeout);
  const bootedLine = stopOld ? `${booted} && ${stopOld}` : booted;
  const stopMs = ((step.stopTimeout ?? 10) + 30) * 1000;
  const onBooted = (name: string) => {
    if (name !== 'booted') return;
    done.switched = true;
    outcome.serving = step.to;
    if (oldVersion !== undefined) reporter.step(`${prefix} stopping ${oldVersion}`);
  };

  let after: ExecResult | undefined;
  try {
    if (step.commands.proxyDeploy) {
      const target = containerId.slice(0, 12);
      reporter.step(`${prefix} kamal-proxy switching to ${target} (waits for its health check)`);
      // kamal-proxy waits up to deploy_timeout for health, then drains the old target up to drain_timeout.
      const proxyLine = step.commands.proxyDeploy.replace(TARGET_ARG_PLACEHOLDER, target);
      const watch = markerWatcher(onBooted);
      const fused = await runner.exec(step.host, chain([['proxy', proxyLine], ['booted', bootedLine]]), `kamal-proxy deploy, then stop ${oldVersion ?? 'nothing'}`, {
        timeoutMs: (config.deployTimeout + config.drainTimeout + 30) * 1000 + stopMs,
        onStdout: watch.onStdout,
      });
      watch.finish(fused.stdout);
      const sections = parseSections(fused.stdout);
      if (!sections.has('booted')) {
        const proxied = sections.get('proxy');
        const code = proxied?.rc ?? fused.code;
        const deployed: ExecResult = { code, stdout: proxied?.lines.join('\n') ?? '', stderr: fused.stderr };
        // 255: `docker exec` itself failed (daemon gone), kamal-proxy never answered.
        if (code === 255 || looksLikeDockerDown(deployed.stderr)) throw new DockerDown(step.host, 'kamal-proxy deploy', deployed);
        throw new DeployRollbackError(
          `kamal-proxy did not switch to ${step.containerName} on ${step.host}: ${lastLine(deployed.stderr || deployed.stdout) || `exit ${code}`}`,
          'health',
        );
      }
      after = fused;
    } else {
      reporter.step(`${prefix} waiting for ${step.containerName} to be healthy`);
      await waitUntilHealthy(step, runner, detail, deps);
    }
  } catch (error) {
    if (!(error instanceof HostUnreachable) && !isAbort(error) && !(error instanceof DockerDown)) await showLogsAndStop(step, runner, reporter, false);
    throw error;
  }
  done.switched = true;
  outcome.serving = step.to;

  if (!after) {
    const watch = markerWatcher(onBooted);
    after = await runner.exec(step.host, section('booted', bootedLine), `stop ${oldVersion ?? 'nothing'}`, { timeoutMs: stopMs, onStdout: watch.onStdout });
    watch.finish(after.stdout);
  }
  const bootedStatus = parseSections(after.stdout).get('booted')?.rc ?? after.code;
  if (bootedStatus !== 0) {
    if (oldVersion === undefined) throw new CommandFailed(step.host, 'audit', { code: bootedStatus, stdout: '', stderr: after.stderr });
    // Kamal ignores a failed stop of the old version: the new one already serves.
    reporter.warn(`${prefix} could not stop ${oldVersion}: ${lastLine(after.stderr) || `exit ${bootedStatus}`}`);
  }
  if (oldVersion !== undefined) await cleanUpAfterStop(step, (host, command, what) => runner.exec(host, command, what), reporter);
  if (step.commands.stopReplaced) {
    reporter.step(`${prefix} stopping the _replaced_ copies an interrupted rollback left running`);
    const stopped = await runner.exec(step.host, step.commands.stopReplaced, 'stop _replaced_ copies', { timeoutMs: stopMs });
    if (stopped.code !== 0) reporter.warn(`${prefix} could not stop the _replaced_ copies: ${lastLine(stopped.stderr) || `exit ${stopped.code}`}`);
  }
  outcome.result = 'rolled-back';
  outcome.from = oldVersion ?? outcome.from;
}

/** Docker's own reason, not its usage line: the `Error response from daemon` / `docker:` line if any. */
function dockerCause(stderr: string): string {
  const lines = stderr.trim().split('\n').map((line) => line.trim()).filter(Boolean);
  return escapeControl(lines.find((line) => /Error response from daemon|^docker: |Unable to find image|No such image|Error:/i.test(line)) ?? lines[0] ?? '');
}

/** Shows why the new container failed, then stops it so the old version keeps serving alone. */
async function showLogsAndStop(step: KamalRoleStep, runner: HostRunner, reporter: Reporter, quiet: boolean): Promise<void> {
  const prefix = `[ssh ${step.host}] ${step.role}:`;
  try {
    const logs = await runner.exec(step.host, step.commands.logs, `logs of ${step.containerName}`, { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
    if (logs.stdout.trim()) reporter.error(`${prefix} last lines of ${step.containerName}:\n${escapeControl(logs.stdout.trimEnd())}`);
    reporter.step(`${prefix} stopping the failed ${step.containerName}`);
    const stopped = await runner.exec(step.host, step.commands.stopNew, `stop ${step.containerName}`, { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
    if (stopped.code !== 0 && !quiet) reporter.warn(`${prefix} could not stop ${step.containerName}: ${lastLine(stopped.stderr) || `exit ${stopped.code}`}`);
  } catch (error) {
    reporter.error(`${prefix} could not clean up ${step.containerName}: ${errorText(error)}`);
  }
}

/**
 * After a failure or cancel: on each host that still answers, read what runs and what the proxy
 * serves, put the retained container back under its name where the new one does not serve (so
 * a re-run finds it), and record the real state. Hosts that do not answer stay "unknown".
 */
async function settleAndReadBack(
  runner: HostRunner,
  detail: KamalPlanDetail,
  reporter: Reporter,
  outcomes: Map<string, KamalHostOutcome>,
  progress: Map<string, StepProgress>,
): Promise<void> {
  const { config } = detail;
  // Hosts the run never touched serve what the pre-flight saw; only touched ones are read again.
  const touchedHosts = detail.hostPlans.filter((host) => host.steps.some((step) => progress.get(key(step.host, step.role))?.renamed));
  await Promise.all(
    touchedHosts.map(async (host) => {
      const roles = host.steps.map((step) => step.role);
      const proxied = host.steps.some((step) => step.proxied);
      const unknown = (why: string) => {
        for (const step of host.steps) {
          const outcome = outcomes.get(key(step.host, step.role));
          if (outcome) {
            outcome.serving = undefined;
            outcome.note = why;
          }
        }
      };
      const read = async (): Promise<Map<string, RoleReadBack>> => {
        const result = await runner.exec(host.host, readBackCommand(config, roles, proxied), 'read back the state', { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
        return parseReadBack(config, roles, result.stdout, result.stderr);
      };
      if (host.steps.every((step) => outcomes.get(key(step.host, step.role))?.result === 'unreachable')) {
        unknown('state unknown: the host does not answer');
        return;
      }
      try {
        let state = await read();
        let undone = false;
        for (const step of host.steps) {
          const done = progress.get(key(step.host, step.role));
          const role = state.get(step.role);
          if (!done || !role || !done.renamed || done.switched) continue;
          const newServes = done.containerId !== undefined && role.proxyTarget !== undefined && done.containerId.startsWith(role.proxyTarget.id.slice(0, 12));
          if (newServes) {
            done.switched = true;
            continue;
          }
          reporter.step(`[ssh ${step.host}] ${step.role}: putting ${containerName(config, step.role, step.renamedVersion)} back as ${step.containerName}`);
          const undo = await runner.exec(step.host, undoRename(config, step.role, step.to, step.renamedVersion), 'undo the rename', { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
          if (undo.code !== 0) reporter.error(`[ssh ${step.host}] ${step.role}: could not put ${step.containerName} back (${dockerCause(undo.stderr) || `exit ${undo.code}`})`);
          undone = true;
        }
        if (undone) state = await read();
        for (const step of host.steps) {
          const outcome = outcomes.get(key(step.host, step.role));
          const role = state.get(step.role);
          if (!outcome || !role) continue;
          describeReadBack(config, step, outcome, role);
        }
      } catch (error) {
        unknown(`state unknown: ${errorText(error)}`);
      }
    }),
  );
}

/** Sets what a role really serves from the read-back: the proxy target, else the one running version. */
function describeReadBack(config: KamalPlanDetail['config'], step: KamalRoleStep, outcome: KamalHostOutcome, role: RoleReadBack): void {
  const version = (name: string) => versionFromName(config, step.role, name)?.replace(/_replaced_[0-9a-f]+$/, '');
  const running = [...new Set(role.containers.filter((container) => container.state === 'running' || container.state === 'restarting').map((container) => version(container.name)).filter((entry): entry is string => entry !== undefined))];
  if (role.listError) {
    outcome.serving = undefined;
    outcome.note = `state unknown: ${role.listError}`;
    return;
  }
  if (step.proxied) {
    if (role.proxyError) {
      outcome.serving = undefined;
      outcome.note = `proxy target unknown (${role.proxyError}); running: ${running.join(', ') || 'nothing'}`;
      return;
    }
    outcome.serving = role.proxyTarget ? version(role.proxyTarget.name) ?? role.proxyTarget.name : undefined;
    const others = running.filter((entry) => entry !== outcome.serving);
    outcome.note = outcome.serving === undefined ? `the proxy serves no container of ${step.role}` : others.length > 0 ? `${others.join(', ')} also running` : undefined;
    return;
  }
  outcome.serving = running.length === 1 ? running[0] : undefined;
  outcome.note = running.length === 0 ? 'nothing running' : running.length > 1 ? `running: ${running.join(', ')}` : undefined;
}

const HEALTHY_STATES = new Set(['healthy']);
const DEAD_STATES = new Set(['unhealthy', 'exited', 'dead', 'removing']);

/** Kamal's poller for roles without kamal-proxy: healthy, or still running after readiness_delay. */
async function waitUntilHealthy(step: KamalRoleStep, runner: HostRunner, detail: KamalPlanDetail, deps: ExecuteKamalRollbackDeps): Promise<void> {
  const { config } = detail;
  const command = step.commands.healthStatus;
  if (!command) return;
  const deadline = Date.now() + config.deployTimeout * 1000;
  const pollMs = deps.healthPollMs ?? 1000;
  let lastStatus = 'unknown';
  for (;;) {
    const result = await runner.exec(step.host, command, `health of ${step.containerName}`);
    lastStatus = result.stdout.trim().split('\n')[0]?.trim() || `no status (exit ${result.code})`;
    if (HEALTHY_STATES.has(lastStatus)) return;
    if (DEAD_STATES.has(lastStatus)) break;
    if (lastStatus === 'running') {
      // No health check configured: running after readiness_delay counts as ready.
      await delay(config.readinessDelay * 1000, deps.signal);
      const again = await runner.exec(step.host, command, `health of ${step.containerName}`);
      lastStatus = again.stdout.trim() || lastStatus;
      if (lastStatus === 'running' || HEALTHY_STATES.has(lastStatus)) return;
      break;
    }
    if (Date.now() + pollMs > deadline) break;
    await delay(pollMs, deps.signal);
  }
  throw new DeployRollbackError(`${step.containerName} on ${step.host} did not become healthy within ${config.deployTimeout}s (last status: ${lastStatus}).`, 'health');
}

/**
 * Tags V as latest on every host; on the primary host the lock is released in the same exchange
 * when `unlockToo`. Returns what became of the lock: released, still held, or unknown (the
 * exchange ended before the host said).
 */
async function tagLatest(
  runner: HostRunner,
  detail: KamalPlanDetail,
  reporter: Reporter,
  problems: string[],
  unlockToo: boolean,
): Promise<'released' | 'held' | 'unknown' | { lost: HostUnreachable }> {
  let lock: 'released' | 'held' | 'unknown' | { lost: HostUnreachable } = 'held';
  const results = await Promise.allSettled(
    detail.hostPlans.map(async (host) => {
      const image = `${detail.repository}:${host.tagVersion}`;
      reporter.step(`[ssh ${host.host}] tagging ${image} as the latest image`);
      const auditTag = recordAudit(detail.config, { recordedAt: utcIso8601(), performer: detail.performer }, `Tagging ${image} as the latest image`);
      const tagLine = `${auditTag} && ${host.tagLatest}`;
      if (!(unlockToo && host.host === detail.primaryHost)) {
        await runner.run(host.host, tagLine, `tag ${image} as latest`);
        return;
      }
      lock = 'unknown';
      // Never cancelled: everything already serves, and a closed channel would leave the lock in doubt.
      const script = `${section('tag', tagLine)}; ${section('unlock', detail.commands.releaseLock)}`;
      let result: ExecResult;
      try {
        result = await runner.exec(host.host, script, `tag ${image} as latest and release the deploy lock`, { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
      } catch (error) {
        if (error instanceof HostUnreachable) lock = { lost: error };
        throw error;
      }
      const sections = parseSections(result.stdout);
      const unlock = sections.get('unlock')?.rc;
      if (unlock === 0) {
        lock = 'released';
        reporter.step(`[ssh ${detail.primaryHost}] released the deploy lock`);
      } else if (unlock !== undefined) {
        lock = 'held';
      }
      const tag = sections.get('tag')?.rc;
      if (tag !== 0) {
        const failed = { code: tag ?? result.code, stdout: '', stderr: result.stderr };
        if (looksLikeDockerDown(result.stderr)) throw new DockerDown(host.host, `tag ${image} as latest`, failed);
        throw new CommandFailed(host.host, `tag ${image} as latest`, failed);
      }
    }),
  );
  results.forEach((entry, index) => {
    if (entry.status === 'rejected') {
      const message = `${detail.hostPlans[index]?.host}: the new version serves, but tagging it as latest failed (${errorText(entry.reason)}); \`kamal app containers\` may name the wrong current version there`;
      problems.push(message);
      reporter.error(message);
    }
  });
  return lock;
}

/** A plan that puts back the version each switched host ran before, run by this same executor. */
function rollForwardPlan(plan: RollbackPlan<KamalPlanDetail>, entries: KamalHostOutcome[]): RollbackPlan<KamalPlanDetail> | undefined {
  const detail = plan.detail;
  const { config } = detail;
  // What the hosts serve now (read back after a failure or cancel), not what the run hoped.
  const switched = entries.filter((entry) => (entry.result === 'rolled-back' || entry.serving === entry.to) && entry.serving !== undefined && entry.from !== undefined && entry.from !== entry.to && !/_replaced_/.test(entry.from));
  const hosts = detail.hosts.filter((host) => switched.some((entry) => entry.host === host));
  if (hosts.length === 0) return undefined;
  const previous = new Map(switched.map((entry) => [key(entry.host, entry.role), entry.from as string]));
  // Only the roles that were switched go back; a role still on its old version is left alone.
  const hostPlans = hosts.map((host) => {
    const built = buildHostPlan(config, host, host === detail.primaryHost, (role) => {
      const step = detail.hostPlans.find((candidate) => candidate.host === host)?.steps.find((candidate) => candidate.role === role.name);
      return { to: previous.get(key(host, role.name)) ?? step?.to ?? '', from: step?.to, renameExisting: true };
    });
    const steps = built.steps.filter((step) => previous.has(key(host, step.role)));
    const tagVersion = steps[0]?.to ?? built.tagVersion;
    return { ...built, steps, tagVersion, tagLatest: quoteArgv(tagLatestImage(config, tagVersion)) };
  });
  const groups = detail.groups.map((group) => group.filter((host) => hosts.includes(host))).filter((group) => group.length > 0);
  const targets = [...new Set(switched.map((entry) => entry.from as string))];
  return redactPlanLines(assemblePlan({
    config,
    kind: 'roll-forward',
    hosts,
    groups,
    primaryHost: detail.primaryHost,
    hostPlans,
    identity: { lockHolder: detail.lockHolder, performer: detail.performer },
    hooks: detail.hooks,
    lockVersion: targets.join(','),
    errorPages: detail.errorPages,
  }));
}

/** The plan shows (and the dry run prints) every command: secret-looking env values are masked there as in the log. */
export function redactPlanLines<T extends RollbackPlan<KamalPlanDetail>>(plan: T): T {
  plan.lines = plan.lines.map(redactSecrets);
  if (plan.overview) plan.overview = plan.overview.map(redactSecrets);
  return plan;
}

function outcomeTable(entries: KamalHostOutcome[]): string[] {
  const rows = [
    ['HOST', 'ROLE', 'FROM', 'TO', 'NOW', 'OUTCOME'],
    ...entries.map((entry) => [
      entry.host,
      entry.role,
      entry.from ?? '-',
      entry.to,
      entry.serving ?? 'unknown',
      entry.result + (entry.message ? `: ${entry.message}` : '') + (entry.note ? ` (${entry.note})` : ''),
    ]),
  ];
  const widths = [0, 1, 2, 3, 4].map((column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => (column < 5 ? cell.padEnd(widths[column]) : cell)).join('  ').trimEnd());
}

function outcomeMessage(plan: RollbackPlan<KamalPlanDetail>, entries: KamalHostOutcome[], problems: string[], cancelled: string | undefined, ok: boolean): string {
  const name = plan.detail.destination ? `${plan.app} (${plan.detail.destination})` : plan.app;
  if (ok) return plan.detail.kind === 'rollback' ? `Rolled ${name} back to ${plan.to} on ${entries.length === 1 ? '1 host role' : `every host (${new Set(entries.map((entry) => entry.host)).size})`}.` : `Rolled ${name} forward to ${plan.to}.`;
  const byServing = new Map<string, string[]>();
  for (const entry of entries) {
    const serving = entry.serving ?? 'unknown';
    byServing.set(serving, [...(byServing.get(serving) ?? []), `${entry.host} (${entry.role})`]);
  }
  const state = [...byServing].map(([version, where]) => `${version} on ${where.join(', ')}`).join('; ');
  const reason = [cancelled, ...problems].filter((part): part is string => part !== undefined).join('; ');
  return `Rollback of ${name} to ${plan.to} did not complete: ${reason}. Now serving: ${state}.`;
}
