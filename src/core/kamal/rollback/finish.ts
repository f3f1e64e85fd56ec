/**
 * The finish: tag V as latest and release the lock; after a failure or cancel, put half-done steps
 * back and read what the hosts really serve; then the outcome, with a roll-forward plan when some
 * host was left behind.
 */
import type { RollbackOutcome, RollbackPlan } from '../../model';
import { quoteArgv } from '../../shell';
import type { ExecResult } from '../../ssh/types';
import { containerName, tagLatestImage, versionFromName } from '../commands/app';
import { recordAudit } from '../commands/auditor';
import { lockDetailsText, releaseAdvice, utcIso8601 } from '../commands/lock';
import { parseReadBack, readBackCommand, undoRename, type RoleReadBack } from '../commands/recovery';
import { assemblePlan, redactPlanLines } from './assemble';
import { AFTERMATH_TIMEOUT_MS, HostUnreachable, commandError, delay, dockerCause, errorText } from './runner';
import { fail, reportProgress, stepKey, touchedAny, type RunState } from './run-state';
import { parseSections, section } from './sections';
import { buildHostPlan } from './steps';
import { describeScopeRequest, leftSummary } from './scope';
import type { KamalHostOutcome, KamalHostPlan, KamalPlanDetail, KamalRoleStep } from './types';

export type KamalRollbackResult = RollbackOutcome & { hosts: KamalHostOutcome[]; rollForward?: RollbackPlan<KamalPlanDetail> };

/** Every group booted: tag V as latest everywhere; the primary host's tag and unlock share one exchange (Kamal's order: tag, then release). */
export async function tagAndUnlock(run: RunState): Promise<void> {
  const { detail, lock } = run;
  const unlocked = await tagLatest(run, lock.held);
  if (unlocked !== 'held') {
    lock.held = false;
    lock.uncertain = unlocked === 'unknown';
  }
  if (typeof unlocked === 'object') {
    // The host went silent: asking it again would only wait out another bound.
    fail(run, `Could not release the deploy lock on ${detail.primaryHost} (${errorText(unlocked.lost)}): run ${releaseAdvice(detail.config)} once the host answers.`);
  }
  run.tagged = run.problems.length === 0;
  reportProgress(run);
}

/**
 * Tags V as latest on every host; on the primary host the lock is released in the same exchange
 * when `unlockToo`. Returns what became of the lock: released, still held, or unknown (the
 * exchange ended before the host said).
 */
async function tagLatest(run: RunState, unlockToo: boolean): Promise<'released' | 'held' | 'unknown' | { lost: HostUnreachable }> {
  const { detail, reporter, runner } = run;
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
      if (tag !== 0) throw commandError(host.host, `tag ${image} as latest`, { code: tag ?? result.code, stdout: '', stderr: result.stderr });
    }),
  );
  results.forEach((entry, index) => {
    if (entry.status === 'rejected') {
      fail(run, `${detail.hostPlans[index]?.host}: the new version serves, but tagging it as latest failed (${errorText(entry.reason)}); \`kamal app containers\` may name the wrong current version there`);
    }
  });
  return lock;
}

/**
 * The unfinished run: cancelled steps say so; half-done ones are put back and the hosts read, while
 * the lock still keeps others out.
 */
export async function settle(run: RunState): Promise<void> {
  const touched = touchedAny(run);
  const { cancelled, detail } = run;
  if (cancelled) run.reporter.warn(touched ? `Cancelled after ${run.groupsDone} of ${detail.groups.length} groups: putting back what was half-done, then reading every host.` : 'Cancelled before any host was changed.');
  for (const outcome of run.outcomes.values()) if (outcome.result === 'not-started' && cancelled) outcome.result = 'cancelled';
  const unfinished = cancelled || run.problems.length > 0 || [...run.outcomes.values()].some((outcome) => outcome.result !== 'rolled-back');
  // Read back where a container was renamed, or a switch or stop was cut off: there the state is not what the run last heard.
  const unsure = (step: KamalRoleStep) => {
    const done = run.progress.get(stepKey(step.host, step.role));
    return done?.renamed === true || done?.stopping === true || done?.switching === true;
  };
  if (touched && unfinished) await Promise.all(detail.hostPlans.filter((host) => host.steps.some(unsure)).map((host) => readBack(run, host)));
}

/**
 * One host the run touched (the others serve what the pre-flight saw): read what runs and what
 * the proxy serves, put the retained container back under its name where the new one does not
 * serve (so a re-run finds it), and record the real state. A host that does not answer stays
 * "unknown".
 */
async function readBack(run: RunState, host: KamalHostPlan): Promise<void> {
  const { detail, runner, reporter, outcomes, progress } = run;
  const { config } = detail;
  const roles = host.steps.map((step) => step.role);
  const proxied = host.steps.some((step) => step.proxied);
  const unknown = (why: string) => {
    for (const step of host.steps) {
      const outcome = outcomes.get(stepKey(step.host, step.role));
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
  if (host.steps.every((step) => outcomes.get(stepKey(step.host, step.role))?.result === 'unreachable')) {
    unknown('state unknown: the host does not answer');
    return;
  }
  try {
    let state = await switchesInFlight(run, host, await read(), read);
    let undone = false;
    for (const step of host.steps) {
      const done = progress.get(stepKey(step.host, step.role));
      const role = state.get(step.role);
      if (!done || !role || !done.renamed || done.switched) continue;
      const newServes = done.containerId !== undefined && role.proxyTarget !== undefined && done.containerId.startsWith(role.proxyTarget.id.slice(0, 12));
      if (newServes) {
        done.switched = true;
        // The switch reached the host though its answer did not: say so, as a cancel after the switch does.
        const outcome = outcomes.get(stepKey(step.host, step.role));
        if (outcome?.result === 'cancelled') {
          outcome.result = 'rolled-back';
          outcome.message = 'cancelled after the switch, before the old version was stopped';
        }
        continue;
      }
      reporter.step(`[ssh ${step.host}] ${step.role}: putting ${containerName(config, step.role, step.renamedVersion)} back as ${step.containerName}`);
      const undo = await runner.exec(step.host, undoRename(config, step.role, step.to, step.renamedVersion), 'undo the rename', { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
      if (undo.code !== 0) reporter.error(`[ssh ${step.host}] ${step.role}: could not put ${step.containerName} back (${dockerCause(undo.stderr) || `exit ${undo.code}`})`);
      undone = true;
    }
    if (undone) state = await read();
    state = await afterStopsInFlight(run, host, state, read);
    for (const step of host.steps) {
      const outcome = outcomes.get(stepKey(step.host, step.role));
      const role = state.get(step.role);
      if (!outcome || !role) continue;
      describeReadBack(config, step, outcome, role);
    }
  } catch (error) {
    unknown(`state unknown: ${errorText(error)}`);
  }
}

/** How long a read-back waits for a switch the cancel cut off (kamal-proxy carries it out without us) to show. */
const SWITCH_SETTLE_MS = 5000;

/**
 * A cancel that closed `kamal-proxy deploy` in flight does not stop it: the proxy may still switch
 * to the new container once healthy. Removing that container before then would leave the proxy
 * pointing at nothing, so read again, within a bound, until it switches; after the bound the
 * switch is taken as not coming and the step is put back.
 */
async function switchesInFlight(run: RunState, host: KamalHostPlan, first: Map<string, RoleReadBack>, read: () => Promise<Map<string, RoleReadBack>>): Promise<Map<string, RoleReadBack>> {
  const pending = (state: Map<string, RoleReadBack>) =>
    host.steps.some((step) => {
      const done = run.progress.get(stepKey(step.host, step.role));
      const target = state.get(step.role)?.proxyTarget;
      return done?.switching === true && done.containerId !== undefined && !(target && done.containerId.startsWith(target.id.slice(0, 12)));
    });
  let state = first;
  const until = Date.now() + Math.min(SWITCH_SETTLE_MS, run.detail.config.deployTimeout * 1000);
  while (pending(state) && Date.now() < until) {
    await delay(250);
    state = await read();
  }
  return state;
}

/** How long a read-back waits for a stop the cancel cut off (the host carries it out without us) to show. */
const STOP_SETTLE_MS = 4000;

/**
 * A cancel that closed a `docker stop` in flight does not stop it on the host: read again, within a
 * bound, until what was being stopped no longer runs, so the report says what is there at the end.
 * What still runs after the bound is reported running, with its stop noted as under way.
 */
async function afterStopsInFlight(run: RunState, host: KamalHostPlan, first: Map<string, RoleReadBack>, read: () => Promise<Map<string, RoleReadBack>>): Promise<Map<string, RoleReadBack>> {
  const stopping = host.steps.filter((step) => run.progress.get(stepKey(step.host, step.role))?.stopping);
  const besideServing = (state: Map<string, RoleReadBack>) =>
    stopping.some((step) => {
      const role = state.get(step.role);
      const target = role?.proxyTarget;
      const runningNow = (role?.containers ?? []).filter((container) => container.state === 'running' || container.state === 'restarting');
      // Without a proxy the new container is simply the one left running.
      if (!step.proxied) return runningNow.length > 1;
      return runningNow.some((container) => !(target && (container.id.startsWith(target.id) || target.id.startsWith(container.id))));
    });
  let state = first;
  const until = Date.now() + STOP_SETTLE_MS;
  while (stopping.length > 0 && besideServing(state) && Date.now() < until) {
    await delay(250);
    state = await read();
  }
  for (const step of stopping) {
    const outcome = run.outcomes.get(stepKey(step.host, step.role));
    if (outcome && besideServing(new Map([[step.role, state.get(step.role) ?? { containers: [] }]]))) outcome.stopUnderWay = true;
  }
  return state;
}

/**
 * Sets what a role really serves from the read-back: the proxy target, else the one running
 * version; and every other container running beside it, copies of the same version included
 * (an interrupted same-version re-run leaves `V` and `V_replaced_…` both running).
 */
function describeReadBack(config: KamalPlanDetail['config'], step: KamalRoleStep, outcome: KamalHostOutcome, role: RoleReadBack): void {
  const raw = (name: string) => versionFromName(config, step.role, name);
  const version = (name: string) => raw(name)?.replace(/_replaced_[0-9a-f]+$/, '');
  const runningContainers = role.containers.filter((container) => container.state === 'running' || container.state === 'restarting');
  const running = [...new Set(runningContainers.map((container) => version(container.name)).filter((entry): entry is string => entry !== undefined))];
  /** A container beside the one serving: its version, or "another copy of V (name)" when it is a copy. */
  const shown = (name: string, serving: string | undefined) => {
    const base = version(name);
    if (base === undefined) return name;
    return base === serving || raw(name) !== base ? `another copy of ${base} (${name})` : base;
  };
  outcome.alsoRunning = undefined;
  if (role.listError) {
    outcome.serving = undefined;
    outcome.note = `state unknown: ${role.listError}`;
    return;
  }
  if (step.proxied) {
    if (role.proxyError) {
      outcome.serving = undefined;
      outcome.note = `proxy target unknown (${role.proxyError}); running: ${runningContainers.map((container) => container.name).join(', ') || 'nothing'}`;
      return;
    }
    const target = role.proxyTarget;
    outcome.serving = target ? version(target.name) ?? target.name : undefined;
    const others = runningContainers.filter((container) => !(target && (container.id.startsWith(target.id) || target.id.startsWith(container.id))));
    if (others.length > 0) outcome.alsoRunning = others.map((container) => shown(container.name, outcome.serving));
    const underWay = outcome.stopUnderWay ? `, its stop under way when the run was cancelled` : '';
    outcome.note = outcome.serving === undefined ? `the proxy serves no container of ${step.role}` : outcome.alsoRunning ? `${outcome.alsoRunning.join(', ')} also running${underWay}` : undefined;
    return;
  }
  outcome.serving = running.length === 1 ? running[0] : undefined;
  if (runningContainers.length > 1) outcome.alsoRunning = runningContainers.slice(1).map((container) => shown(container.name, outcome.serving));
  outcome.note =
    running.length === 0
      ? 'nothing running'
      : runningContainers.length > 1
        ? `running: ${runningContainers.map((container) => container.name).join(', ')}`
        : undefined;
}

/** Releases the deploy lock if this run holds it, or may: the one place every way out passes. */
export async function releaseLock(run: RunState): Promise<void> {
  const { detail, lock } = run;
  // A cancel closed the lock command's channel: the host may still have run it.
  if (!lock.held && lock.sent && run.cancelled && !lock.uncertain) lock.held = (await lockIsOurs(run)) === true;
  // Unknown whether the release ran: release again unless the lock is known to be gone or not ours.
  if (lock.uncertain) lock.held = (await lockIsOurs(run)) !== false;
  if (!lock.held) return;
  try {
    await run.runner.run(detail.primaryHost, detail.commands.releaseLock, 'release the deploy lock', { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
    lock.held = false;
    run.reporter.step(`[ssh ${detail.primaryHost}] released the deploy lock`);
  } catch (error) {
    fail(run, `Could not release the deploy lock on ${detail.primaryHost} (${errorText(error)}): run ${releaseAdvice(detail.config)} once the host answers.`);
  }
}

/** Ours when the lock names us at our time; undefined when the host could not say. */
async function lockIsOurs(run: RunState): Promise<boolean | undefined> {
  try {
    const status = await run.runner.exec(run.detail.primaryHost, run.detail.commands.lockStatus, 'read the deploy lock', { cancellable: false, timeoutMs: AFTERMATH_TIMEOUT_MS });
    return status.code === 0 && status.stdout.includes(lockDetailsText(run.lock.details).split('\n')[0]);
  } catch {
    return undefined;
  }
}

/** The run's outcome: the table of host roles, the message, and a roll-forward plan where some host was left behind. */
export function runResult(run: RunState, ok: boolean): KamalRollbackResult {
  const entries = [...run.outcomes.values()];
  const allSwitched = entries.every((entry) => entry.result === 'rolled-back');
  // Offered only when some host was left behind; a failed unlock or tag needs no roll-forward.
  const rollForward = allSwitched ? undefined : rollForwardPlan(run.plan, entries);
  const cancelled = run.cancelled ? (touchedAny(run) ? 'cancelled' : 'cancelled before any host was changed') : undefined;
  // A switched host role is named by the run's direction, in the table, the message and the JSON alike.
  const shown = run.plan.detail.kind === 'roll-forward' ? entries.map((entry): KamalHostOutcome => (entry.result === 'rolled-back' ? { ...entry, result: 'rolled-forward' } : entry)) : entries;
  const scope = run.detail.scope;
  // A narrowed run says what it did not touch, so the table is not read as the whole app.
  const left = scope?.narrowed ? [`Left as they were (outside ${describeScopeRequest(scope.request)}): ${scope.left.map((entry) => `${entry.host} (${entry.role})`).join(', ')}`] : [];
  if (rollForward) {
    rollForward.detail.scope = scope;
    rollForward.detail.hooksSkipped = run.detail.hooksSkipped;
  }
  return { ok, message: outcomeMessage(run.plan, shown, run.problems, cancelled, ok), lines: [...outcomeTable(shown), ...left], hosts: shown, rollForward };
}

/** A plan that puts back the version each switched host ran before, run by this same executor. */
function rollForwardPlan(plan: RollbackPlan<KamalPlanDetail>, entries: KamalHostOutcome[]): RollbackPlan<KamalPlanDetail> | undefined {
  const detail = plan.detail;
  const { config } = detail;
  // What the hosts serve now (read back after a failure or cancel), not what the run hoped.
  const switched = entries.filter((entry) => (entry.result === 'rolled-back' || entry.serving === entry.to) && entry.serving !== undefined && entry.from !== undefined && entry.from !== entry.to && !/_replaced_/.test(entry.from));
  const hosts = detail.hosts.filter((host) => switched.some((entry) => entry.host === host));
  if (hosts.length === 0) return undefined;
  const previous = new Map(switched.map((entry) => [stepKey(entry.host, entry.role), entry.from as string]));
  // Only the roles that were switched go back; a role still on its old version is left alone.
  const hostPlans = hosts.map((host) => {
    const built = buildHostPlan(config, host, host === detail.primaryHost, (role) => {
      const step = detail.hostPlans.find((candidate) => candidate.host === host)?.steps.find((candidate) => candidate.role === role.name);
      return { to: previous.get(stepKey(host, role.name)) ?? step?.to ?? '', from: step?.to, renameExisting: true };
    });
    const steps = built.steps.filter((step) => previous.has(stepKey(host, step.role)));
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
  const forward = plan.detail.kind === 'roll-forward';
  const scope = plan.detail.scope;
  const hosts = new Set(entries.map((entry) => entry.host)).size;
  // "every host" would be read as the whole app: a narrowed run names what it left.
  if (ok && scope?.narrowed) return `Rolled ${name} ${forward ? 'forward' : 'back'} to ${plan.to} on ${hosts === 1 ? '1 host' : `${hosts} hosts`} (${describeScopeRequest(scope.request)}; left as they were: ${leftSummary(scope)}).`;
  if (ok) return `Rolled ${name} ${forward ? 'forward' : 'back'} to ${plan.to} on ${entries.length === 1 ? '1 host role' : `every host (${hosts})`}.`;
  const byServing = new Map<string, string[]>();
  for (const entry of entries) {
    const serving = entry.serving ?? 'unknown';
    byServing.set(serving, [...(byServing.get(serving) ?? []), `${entry.host} (${entry.role})`]);
  }
  const state = [...byServing].map(([version, where]) => `${version} on ${where.join(', ')}`).join('; ');
  const reason = [cancelled, ...problems].filter((part): part is string => part !== undefined).join('; ');
  const extra = entries.filter((entry) => entry.alsoRunning && entry.alsoRunning.length > 0).map((entry) => `${entry.alsoRunning!.join(', ')} on ${entry.host} (${entry.role})`);
  return `${forward ? 'Roll forward' : 'Rollback'} of ${name} to ${plan.to} did not complete: ${reason}. Now serving: ${state}.${extra.length > 0 ? ` Also running: ${extra.join('; ')}.` : ''}`;
}
