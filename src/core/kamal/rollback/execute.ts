/**
 * Running a Kamal rollback plan, phase after phase: the lock with the checks (preflight.ts), the
 * hosts' preparation (prepare.ts), the boot groups (boot.ts), the `latest` tag and the unlock
 * (finish.ts). Nothing is re-planned: the plan's lines are what runs, plus the values only a run
 * can know (the new container id, the version serving right now). One run state goes through the
 * phases; the one try/finally below is where every way out puts back what is half-done and
 * releases the lock.
 */
import type { RollbackPlan } from '../../model';
import { utcIso8601 } from '../commands/lock';
import { runHook, type HookDetails, type KamalHookName } from './hooks';
import { barrierFor, bootHost } from './boot';
import { releaseLock, runResult, settle, tagAndUnlock, type KamalRollbackResult } from './finish';
import { relockWithChecks } from './preflight';
import { prepareHosts } from './prepare';
import { uploadFiles } from '../../ssh/sftp';
import { abortError, delay, errorText } from './runner';
import { fail, reportProgress, startRun, stepKey, type ExecuteKamalRollbackDeps, type RunState } from './run-state';
import type { KamalHostPlan, KamalPlanDetail } from './types';

export type { ExecuteKamalRollbackDeps } from './run-state';
export type { KamalRollbackResult } from './finish';

export async function executeKamalRollback(plan: RollbackPlan<KamalPlanDetail>, deps: ExecuteKamalRollbackDeps): Promise<KamalRollbackResult> {
  const run = startRun(plan, deps);
  const onCancel = () => deps.reporter.warn('Cancelling: closing the commands in flight; no further step starts.');
  deps.signal?.addEventListener('abort', onCancel, { once: true });
  try {
    await runPhases(run);
  } catch (error) {
    if (deps.signal?.aborted) run.cancelled = true;
    else fail(run, errorText(error));
  } finally {
    deps.signal?.removeEventListener('abort', onCancel);
    await settle(run);
    await releaseLock(run);
  }
  const ok = run.tagged && !run.cancelled && run.problems.length === 0 && [...run.outcomes.values()].every((entry) => entry.result === 'rolled-back');
  if (ok) {
    try {
      await hook(run, 'post-deploy', run.detail.hosts, Math.round((Date.now() - run.startedAt) / 1000), false);
    } catch (error) {
      fail(run, errorText(error));
    }
  }
  return runResult(run, ok && run.problems.length === 0);
}

/** The phases in the order they run; any of them may throw, and the caller's finally cleans up. */
async function runPhases(run: RunState): Promise<void> {
  const { detail, deps } = run;
  await hook(run, 'pre-connect');
  if (deps.signal?.aborted) throw abortError();
  if (!detail.lockTaken) await relockWithChecks(run);
  run.lock.held = true;
  reportProgress(run);
  await hook(run, 'pre-deploy');
  await prepareHosts(detail, (host, command, what) => run.runner.exec(host, command, what), run.reporter, async (host, directory, files) => uploadFiles(await deps.sessions(host), directory, files));
  if (await bootGroups(run)) await tagAndUnlock(run);
}

/** `boot.limit` groups one after another (hosts of a group in parallel); true when every group booted. */
async function bootGroups(run: RunState): Promise<boolean> {
  const { detail, deps } = run;
  const barrier = barrierFor(detail);
  for (const [index, group] of detail.groups.entries()) {
    if (deps.signal?.aborted) throw abortError();
    if (index > 0 && detail.bootWait > 0) await delay(detail.bootWait * 1000, deps.signal);
    run.reporter.step(`Group ${index + 1} of ${detail.groups.length}: ${group.join(', ')}`);
    await hook(run, 'pre-app-boot', group);
    const hostPlans = group.map((name) => detail.hostPlans.find((host) => host.host === name)).filter((host): host is KamalHostPlan => host !== undefined);
    await Promise.all(hostPlans.map((host) => bootHost(run, host, barrier)));
    if (deps.signal?.aborted) throw abortError();
    const failed = hostPlans.flatMap((host) => host.steps).filter((step) => {
      const result = run.outcomes.get(stepKey(step.host, step.role))?.result;
      return result === 'failed' || result === 'unreachable';
    });
    if (failed.length > 0) {
      run.problems.push(...failed.map((step) => `${step.host} (${step.role}): ${run.outcomes.get(stepKey(step.host, step.role))?.message ?? 'failed'}`));
      return false;
    }
    await hook(run, 'post-app-boot', group);
    run.groupsDone += 1;
  }
  return true;
}

/** Kamal's local hook `name`, told whether this run holds the lock right now. */
async function hook(run: RunState, name: KamalHookName, hosts: string[] = run.detail.hosts, runtime?: number, cancellable = true): Promise<void> {
  const { detail, deps, reporter } = run;
  if (!deps.runHooks || detail.hooksSkipped) return;
  const details: HookDetails = {
    recordedAt: utcIso8601(),
    performer: detail.performer,
    service: detail.service,
    version: run.plan.to,
    destination: detail.destination,
    hosts,
    // Kamal's KAMAL_ROLES: the roles `--roles` matched, only when it was given.
    roles: detail.scope?.specificRoles,
    lock: run.lock.held,
    command: 'rollback',
    runtime,
  };
  const entry = detail.hooks.find((candidate) => candidate.name === name);
  const ran = await runHook(name, { hooksPath: detail.config.hooksPath, cwd: detail.hooksCwd, details, env: deps.env, signal: cancellable ? deps.signal : undefined });
  if (ran.ran) {
    reporter.step(`[local] ran the ${name} hook${entry ? ` (${entry.file})` : ''}`);
    if (ran.output.trim()) reporter.info(`[local] ${name}: ${ran.output.trimEnd()}`);
  }
}
