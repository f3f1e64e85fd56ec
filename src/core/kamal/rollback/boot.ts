/**
 * The boot phase, one host's roles in order: Kamal's `kamal app boot` for a version that is
 * already there. Keep the retained container aside (renamed), start V beside the version serving,
 * switch to it once healthy, then stop the old one. Every step is recorded in the run's progress
 * first, so a failure or cancel knows what to put back.
 */
import { DeployRollbackError, type Reporter } from '../../model';
import { looksLikeDockerDown } from '../../ssh/errors';
import type { ExecResult } from '../../ssh/types';
import { escapeControl } from '../../text';
import { containerName, stopContainer, versionFromName } from '../commands/app';
import { recordAudit } from '../commands/auditor';
import { utcIso8601 } from '../commands/lock';
import { cleanUpAfterStop } from './prepare';
import { AFTERMATH_TIMEOUT_MS, CommandFailed, DockerDown, HostUnreachable, commandError, delay, dockerCause, errorText, isAbort, lastLine, raceAbort, type HostRunner } from './runner';
import { reportProgress, stepKey, type RunState, type StepProgress } from './run-state';
import { chain, markerWatcher, parseSections, section } from './sections';
import { TARGET_ARG_PLACEHOLDER, type KamalHostOutcome, type KamalHostPlan, type KamalPlanDetail, type KamalRoleStep } from './types';

const CONTAINER_ID = /^[0-9a-f]{12,64}$/;

/**
 * Kamal's boot barrier: containers of the other roles wait until the first container of the
 * primary role passed its health check, and are not booted at all if it failed.
 */
export class Barrier {
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

/** Without both kinds of step in the plan nobody could decide the barrier, so none is used. */
export function barrierFor(detail: KamalPlanDetail): Barrier | undefined {
  const steps = detail.hostPlans.flatMap((host) => host.steps);
  const primaryRole = detail.config.primaryRole;
  return steps.some((step) => step.role === primaryRole) && steps.some((step) => step.role !== primaryRole) ? new Barrier(primaryRole) : undefined;
}

/** One role on one host while it boots: what bootRole's pieces share. */
interface RoleRun {
  run: RunState;
  step: KamalRoleStep;
  outcome: KamalHostOutcome;
  done: StepProgress;
  prefix: string;
}

/** The roll forward's lock message, taken by the first exchange on the primary host only. */
function takeLockRewrite(run: RunState, host: string): string | undefined {
  if (host !== run.detail.primaryHost) return undefined;
  const rewrite = run.lock.pendingRewrite;
  run.lock.pendingRewrite = undefined;
  return rewrite;
}

/** The host's roles one after another; the first that fails or is cancelled ends the host's part. */
export async function bootHost(run: RunState, host: KamalHostPlan, barrier: Barrier | undefined): Promise<void> {
  const { deps, reporter } = run;
  for (const step of host.steps) {
    const outcome = run.outcomes.get(stepKey(step.host, step.role));
    const done = run.progress.get(stepKey(step.host, step.role));
    if (!outcome || !done) continue;
    if (deps.signal?.aborted) return;
    const gatekeeper = barrier !== undefined && step.role === barrier.primaryRole;
    try {
      await bootRole({ run, step, outcome, done, prefix: `[ssh ${step.host}] ${step.role}:` }, gatekeeper ? undefined : barrier, takeLockRewrite(run, step.host));
      if (gatekeeper && barrier.set(true)) reporter.step(`[ssh ${step.host}] first ${step.role} container is healthy: booting the other roles`);
    } catch (error) {
      if (gatekeeper && barrier.set(false)) reporter.error(`[ssh ${step.host}] first ${step.role} container failed: not booting the other roles`);
      if (isAbort(error) || deps.signal?.aborted) {
        // Cancelled while stopping the old version: the new one already serves.
        outcome.result = done.switched ? 'rolled-back' : 'cancelled';
        outcome.message = done.switched ? `cancelled while stopping ${outcome.serving === step.to ? 'the old version' : 'it'}` : 'cancelled while in flight';
        return;
      }
      outcome.result = error instanceof HostUnreachable ? 'unreachable' : 'failed';
      outcome.message = errorText(error);
      if (error instanceof HostUnreachable) outcome.serving = undefined;
      reporter.error(`[ssh ${step.host}] ${step.role}: ${outcome.message}`);
      return;
    }
  }
}

/**
 * One role on one host. `waitFor`: the barrier this role waits at (not for the primary role).
 * `lockRewrite` only ever comes with the first step on the primary host, which is its primary
 * role (rolesOnHost puts it first), so it never waits at the barrier: it rides the fused exchange.
 */
async function bootRole(role: RoleRun, waitFor: Barrier | undefined, lockRewrite: string | undefined): Promise<void> {
  const { run, step, outcome, done } = role;
  let oldVersion: string | undefined;
  let ran: ExecResult;
  if (waitFor) {
    oldVersion = readCurrent(role, await run.runner.run(step.host, renameAndRead(role), readWhat(step)));
    ran = await runAfterBarrier(role, waitFor);
  } else {
    ({ oldVersion, ran } = await renameReadAndRun(role, lockRewrite));
  }
  done.containerId = await startedContainer(role, ran);
  reportProgress(run);
  const booted = bootedExchange(role, oldVersion);
  const proxyExchange = await switchTraffic(role, done.containerId, booted, oldVersion);
  done.switched = true;
  outcome.serving = step.to;
  reportProgress(run);
  await stopOldVersion(role, booted, oldVersion, proxyExchange);
  outcome.result = 'rolled-back';
  outcome.from = oldVersion ?? outcome.from;
}

function readWhat(step: KamalRoleStep): string {
  return step.renameExisting && step.commands.rename !== undefined ? `rename ${step.containerName}` : 'read the current version';
}

function auditLine(run: RunState, message: string, role?: string): string {
  return recordAudit(run.detail.config, { recordedAt: utcIso8601(), performer: run.detail.performer, role }, message);
}

/**
 * The line that reads the version serving, behind the rename of the retained target when there is
 * one: the pre-flight saw that container, and the lock has been held since, so Kamal's second
 * existence check is folded into the rename.
 */
function renameAndRead({ run, step, done, prefix }: RoleRun): string {
  if (!(step.renameExisting && step.commands.rename !== undefined)) return step.commands.currentVersion;
  run.reporter.step(`${prefix} renaming ${step.containerName} to ${containerName(run.detail.config, step.role, step.renamedVersion)}`);
  // Sent: from here a failure or cancel checks for the renamed copy and puts it back.
  done.renamed = true;
  return `${auditLine(run, `Renaming container ${step.to} to ${step.renamedVersion}`, step.role)} && ${step.commands.rename} && ${step.commands.currentVersion}`;
}

/** The version serving before the switch, from the current-version query; the outcome says it serves. */
function readCurrent({ run, step, outcome }: RoleRun, current: ExecResult): string | undefined {
  const currentName = current.stdout.trim().split('\n')[0]?.trim();
  const oldVersion = currentName ? versionFromName(run.detail.config, step.role, currentName) : undefined;
  if (oldVersion !== undefined) outcome.serving = oldVersion;
  return oldVersion;
}

/** Without a barrier to wait at, `docker run` follows the rename in the same exchange (each a marker section, reported as it arrives). */
async function renameReadAndRun(role: RoleRun, lockRewrite: string | undefined): Promise<{ oldVersion?: string; ran: ExecResult }> {
  const { run, step, done, prefix } = role;
  const what = readWhat(step);
  const line = chain([['current', renameAndRead(role)], ['run', step.commands.runInExchange ?? step.commands.run]]);
  // Sent with the run: a cancel or lost host from here may have left the new container created.
  done.ranNew = true;
  const watch = markerWatcher((name) => {
    if (name === 'run') run.reporter.step(`${prefix} starting ${step.containerName}`);
  });
  const fused = await run.runner.exec(step.host, lockRewrite ? `${section('lockmsg', lockRewrite)}; ${line}` : line, `${what}, docker run ${step.containerName}`, { onStdout: watch.onStdout });
  watch.finish(fused.stdout);
  const sections = parseSections(fused.stdout);
  if (lockRewrite) reportLockRewrite(run, step.host, sections.get('lockmsg')?.rc);
  const read = sections.get('current');
  if (!sections.has('run')) {
    done.ranNew = false;
    throw commandError(step.host, what, { code: read?.rc ?? fused.code, stdout: read?.lines.join('\n') ?? '', stderr: fused.stderr });
  }
  const oldVersion = readCurrent(role, { code: 0, stdout: `${read?.lines.join('\n') ?? ''}\n`, stderr: '' });
  const started = sections.get('run');
  return { oldVersion, ran: { code: started?.rc ?? fused.code, stdout: `${started?.lines.join('\n') ?? ''}\n`, stderr: fused.stderr } };
}

function reportLockRewrite(run: RunState, host: string, rc: number | null | undefined): void {
  if (rc === 0) run.reporter.step(`[ssh ${host}] the deploy lock now says: ${run.detail.lockMessage}`);
  else run.reporter.warn(`[ssh ${host}] could not write "${run.detail.lockMessage}" into the deploy lock's details (exit ${rc ?? 'unknown'}); the lock holds and names this run.`);
}

async function runAfterBarrier({ run, step, done, prefix }: RoleRun, waitFor: Barrier): Promise<ExecResult> {
  run.reporter.step(`${prefix} waiting for the first healthy ${waitFor.primaryRole} container`);
  if (!(await raceAbort(waitFor.settled, run.deps.signal))) {
    throw new DeployRollbackError(`not booted: the first ${waitFor.primaryRole} container of ${step.to} failed its health check`, 'barrier');
  }
  run.reporter.step(`${prefix} starting ${step.containerName}`);
  done.ranNew = true;
  return run.runner.exec(step.host, step.commands.run, `docker run ${step.containerName}`);
}

/** The new container's id from `docker run`; a failed run is shown and stopped. */
async function startedContainer({ run, step }: RoleRun, ran: ExecResult): Promise<string> {
  if (ran.code !== 0) {
    await showLogsAndStop(step, run.runner, run.reporter, true);
    if (looksLikeDockerDown(ran.stderr)) throw new DockerDown(step.host, `docker run ${step.containerName}`, ran);
    throw new DeployRollbackError(`docker run ${step.containerName} failed on ${step.host} (exit ${ran.code}): ${dockerCause(ran.stderr) || 'no error output'}`, 'boot');
  }
  const containerId = ran.stdout.trim().split('\n').slice(-1)[0]?.trim() ?? '';
  if (!CONTAINER_ID.test(containerId)) {
    await showLogsAndStop(step, run.runner, run.reporter, true);
    throw new DeployRollbackError(`docker run on ${step.host} printed no container id (${JSON.stringify(containerId.slice(0, 80))}).`, 'boot');
  }
  return containerId;
}

/** The "Booted" audit line with the stop of the old version, sent once V serves (behind kamal-proxy, in the switch's exchange). */
interface BootedExchange {
  line: string;
  stopMs: number;
  /** Marker watcher callback: at `booted`, V serves. */
  onSection: (name: string) => void;
}

function bootedExchange({ run, step, outcome, done, prefix }: RoleRun, oldVersion: string | undefined): BootedExchange {
  const { config } = run.detail;
  const booted = auditLine(run, `Booted app version ${step.to}`, step.role);
  const stopOld = oldVersion === undefined ? undefined : oldVersion === step.from && step.commands.stopOld ? step.commands.stopOld : stopContainer(config, step.role, oldVersion, step.stopTimeout);
  return {
    line: stopOld ? `${booted} && ${stopOld}` : booted,
    stopMs: ((step.stopTimeout ?? 10) + 30) * 1000,
    onSection: (name: string) => {
      if (name !== 'booted') return;
      done.switched = true;
      outcome.serving = step.to;
      reportProgress(run);
      if (oldVersion !== undefined) {
        done.stopping = true;
        run.reporter.step(`${prefix} stopping ${oldVersion}`);
      }
    },
  };
}

/**
 * Behind kamal-proxy: the switch (it waits up to deploy_timeout for health, then drains the old
 * target up to drain_timeout) and the booted exchange in one; returns that exchange. Otherwise:
 * Kamal's health poll. A failure shows the new container's logs and stops it.
 */
async function switchTraffic(role: RoleRun, containerId: string, booted: BootedExchange, oldVersion: string | undefined): Promise<ExecResult | undefined> {
  const { run, step, prefix } = role;
  const { config } = run.detail;
  try {
    if (!step.commands.proxyDeploy) {
      run.reporter.step(`${prefix} waiting for ${step.containerName} to be healthy`);
      await waitUntilHealthy(step, run);
      return undefined;
    }
    const target = containerId.slice(0, 12);
    run.reporter.step(`${prefix} kamal-proxy switching to ${target} (waits for its health check)`);
    const watch = markerWatcher(booted.onSection);
    const line = chain([['proxy', step.commands.proxyDeploy.replace(TARGET_ARG_PLACEHOLDER, target)], ['booted', booted.line]]);
    role.done.switching = true;
    const fused = await run.runner.exec(step.host, line, `kamal-proxy deploy, then stop ${oldVersion ?? 'nothing'}`, {
      timeoutMs: (config.deployTimeout + config.drainTimeout + 30) * 1000 + booted.stopMs,
      onStdout: watch.onStdout,
    });
    role.done.switching = false;
    watch.finish(fused.stdout);
    const sections = parseSections(fused.stdout);
    if (sections.has('booted')) return fused;
    const proxied = sections.get('proxy');
    const code = proxied?.rc ?? fused.code;
    const deployed: ExecResult = { code, stdout: proxied?.lines.join('\n') ?? '', stderr: fused.stderr };
    // 255: `docker exec` itself failed (daemon gone), kamal-proxy never answered.
    if (code === 255 || looksLikeDockerDown(deployed.stderr)) throw new DockerDown(step.host, 'kamal-proxy deploy', deployed);
    throw new DeployRollbackError(`kamal-proxy did not switch to ${step.containerName} on ${step.host}: ${lastLine(deployed.stderr || deployed.stdout) || `exit ${code}`}`, 'health');
  } catch (error) {
    if (!(error instanceof HostUnreachable) && !isAbort(error) && !(error instanceof DockerDown)) await showLogsAndStop(step, run.runner, run.reporter, false);
    throw error;
  }
}

/** V serves: stop the old version (unless the switch's exchange did), clean up after it, stop whatever else an interrupted run left running. */
async function stopOldVersion({ run, step, prefix, done }: RoleRun, booted: BootedExchange, oldVersion: string | undefined, proxyExchange: ExecResult | undefined): Promise<void> {
  done.stopping = false;
  let after = proxyExchange;
  if (!after) {
    const watch = markerWatcher(booted.onSection);
    after = await run.runner.exec(step.host, section('booted', booted.line), `stop ${oldVersion ?? 'nothing'}`, { timeoutMs: booted.stopMs, onStdout: watch.onStdout });
    watch.finish(after.stdout);
    done.stopping = false;
  }
  const bootedStatus = parseSections(after.stdout).get('booted')?.rc ?? after.code;
  if (bootedStatus !== 0) {
    if (oldVersion === undefined) throw new CommandFailed(step.host, 'audit', { code: bootedStatus, stdout: '', stderr: after.stderr });
    // Kamal ignores a failed stop of the old version: the new one already serves.
    run.reporter.warn(`${prefix} could not stop ${oldVersion}: ${lastLine(after.stderr) || `exit ${bootedStatus}`}`);
  }
  if (oldVersion !== undefined) await cleanUpAfterStop(step, (host, command, what) => run.runner.exec(host, command, what), run.reporter);
  if (step.commands.stopOthers) {
    run.reporter.step(`${prefix} stopping what an interrupted run left running beside ${step.to}`);
    done.stopping = true;
    const stopped = await run.runner.exec(step.host, step.commands.stopOthers, `stop what runs beside ${step.to}`, { timeoutMs: booted.stopMs });
    done.stopping = false;
    if (stopped.code !== 0) run.reporter.warn(`${prefix} could not stop what runs beside ${step.to}: ${lastLine(stopped.stderr) || `exit ${stopped.code}`}`);
  }
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

const HEALTHY_STATES = new Set(['healthy']);
const DEAD_STATES = new Set(['unhealthy', 'exited', 'dead', 'removing']);

/** Kamal's poller for roles without kamal-proxy: healthy, or still running after readiness_delay. */
async function waitUntilHealthy(step: KamalRoleStep, run: RunState): Promise<void> {
  const { config } = run.detail;
  const command = step.commands.healthStatus;
  if (!command) return;
  const deadline = Date.now() + config.deployTimeout * 1000;
  const pollMs = run.deps.healthPollMs ?? 1000;
  let lastStatus = 'unknown';
  for (;;) {
    const result = await run.runner.exec(step.host, command, `health of ${step.containerName}`);
    lastStatus = result.stdout.trim().split('\n')[0]?.trim() || `no status (exit ${result.code})`;
    if (HEALTHY_STATES.has(lastStatus)) return;
    if (DEAD_STATES.has(lastStatus)) break;
    if (lastStatus === 'running') {
      // No health check configured: running after readiness_delay counts as ready.
      await delay(config.readinessDelay * 1000, run.deps.signal);
      const again = await run.runner.exec(step.host, command, `health of ${step.containerName}`);
      lastStatus = again.stdout.trim() || lastStatus;
      if (lastStatus === 'running' || HEALTHY_STATES.has(lastStatus)) return;
      break;
    }
    if (Date.now() + pollMs > deadline) break;
    await delay(pollMs, run.deps.signal);
  }
  throw new DeployRollbackError(`${step.containerName} on ${step.host} did not become healthy within ${config.deployTimeout}s (last status: ${lastStatus}).`, 'health');
}
