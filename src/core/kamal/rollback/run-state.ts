/**
 * What one run of a plan holds while its phases run: the lock, what each host and role has done so
 * far, and the outcome. One object, made here, passed from phase to phase, read at the end.
 */
import type { Reporter, RollbackPlan } from '../../model';
import type { HostSession } from '../../ssh/types';
import { utcIso8601, type LockDetails } from '../commands/lock';
import { HostRunner } from './runner';
import type { KamalHostOutcome, KamalPlanDetail } from './types';

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

/** What a step did so far on its host: decides what a failure or cancel must put back. */
export interface StepProgress {
  renamed: boolean;
  /** `docker run` was sent (it may have created the container even if its answer never came). */
  ranNew: boolean;
  containerId?: string;
  /** The new version serves: a later failure (stopping O) leaves it serving. */
  switched: boolean;
  /** A stop of what ran before was sent and has not answered: the host may still be carrying it out. */
  stopping?: boolean;
  /** `kamal-proxy deploy` to the new container was sent and has not answered: the switch may still happen. */
  switching?: boolean;
}

export interface LockState {
  readonly details: LockDetails;
  /** The line taking it went out: a cancel may have left it taken even without an answer. */
  sent: boolean;
  held: boolean;
  /** The tag-and-unlock exchange ended without saying whether the release ran. */
  uncertain: boolean;
  /** The roll forward's lock message, for the first exchange on the primary host only. */
  pendingRewrite?: string;
}

export interface RunState {
  readonly plan: RollbackPlan<KamalPlanDetail>;
  readonly detail: KamalPlanDetail;
  readonly deps: ExecuteKamalRollbackDeps;
  readonly reporter: Reporter;
  readonly runner: HostRunner;
  readonly startedAt: number;
  readonly lock: LockState;
  /** Per host and role (by stepKey): the line of the result table, and what was done there. */
  readonly outcomes: Map<string, KamalHostOutcome>;
  readonly progress: Map<string, StepProgress>;
  readonly problems: string[];
  cancelled: boolean;
  groupsDone: number;
  tagged: boolean;
  /** The units of progress last reported (reportProgress). */
  progressReported: number;
}

export function stepKey(host: string, role: string): string {
  return `${host}\n${role}`;
}

export function startRun(plan: RollbackPlan<KamalPlanDetail>, deps: ExecuteKamalRollbackDeps): RunState {
  const { detail } = plan;
  const outcomes = new Map<string, KamalHostOutcome>();
  const progress = new Map<string, StepProgress>();
  for (const step of detail.hostPlans.flatMap((host) => host.steps)) {
    outcomes.set(stepKey(step.host, step.role), { host: step.host, role: step.role, from: step.from, to: step.to, result: 'not-started', serving: step.from });
    progress.set(stepKey(step.host, step.role), { renamed: false, ranNew: false, switched: false });
  }
  // Taken by the pre-flight (which made `.kamal` everywhere too): the run starts holding it.
  const taken = detail.lockTaken !== undefined;
  const lock: LockState = {
    details: detail.lockTaken ?? { holder: detail.lockHolder, lockedAt: utcIso8601(), version: detail.hostPlans[0]?.tagVersion ?? '', message: detail.lockMessage },
    sent: taken,
    held: taken,
    uncertain: false,
    pendingRewrite: taken ? detail.lockRewrite : undefined,
  };
  const runner = new HostRunner(deps);
  return { plan, detail, deps, reporter: deps.reporter, runner, startedAt: Date.now(), lock, outcomes, progress, problems: [], cancelled: false, groupsDone: 0, tagged: false, progressReported: 0 };
}

/** Some host was changed: a container renamed, or `docker run` sent. */
export function touchedAny(run: RunState): boolean {
  return [...run.progress.values()].some((entry) => entry.renamed || entry.ranNew);
}

/**
 * Reports how far the run is when that grew, in phases (a bar redrawn per host and role would
 * repaint the window 2n times): the lock with the checks, then per boot group every new container
 * started and every one serving, then the tag (Reporter.progress). Read from the run's state, so
 * it is right whichever phase calls it.
 */
export function reportProgress(run: RunState): void {
  const groupSteps = run.detail.groups.map((group) =>
    run.detail.hostPlans
      .filter((host) => group.includes(host.host))
      .flatMap((host) => host.steps)
      .flatMap((step) => run.progress.get(stepKey(step.host, step.role)) ?? []),
  );
  const started = groupSteps.filter((steps) => steps.every((step) => step.containerId !== undefined)).length;
  const serving = groupSteps.filter((steps) => steps.every((step) => step.switched)).length;
  // Anything booted means the lock was held, even once released.
  const locked = run.lock.held || started > 0 || serving > 0 || run.tagged ? 1 : 0;
  const done = locked + started + serving + (run.tagged ? 1 : 0);
  if (done <= run.progressReported) return;
  run.progressReported = done;
  run.reporter.progress?.(done, 2 + 2 * groupSteps.length);
}

/** Records a problem and reports it as an error. */
export function fail(run: RunState, message: string): void {
  run.problems.push(message);
  run.reporter.error(message);
}
