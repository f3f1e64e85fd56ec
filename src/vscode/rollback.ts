import * as vscode from 'vscode';
import { shortSha } from '../core/gitops/git';
import { RestoreTreeOffer } from '../core/gitops/rollback';
import { describeScopeRequest, scopeRequested, type KamalScopeRequest } from '../core/kamal/rollback/scope';
import { runningOnLabel } from '../core/kamal/hosts/releases';
import type { KamalPlanDetail } from '../core/kamal/rollback';
import { DeployRollbackError, type App, type Environment, type PlanRequest, Release, ReleaseSource, RollDirection, RollbackOutcome, RollbackPlan } from '../core/model';
import { codeChangeLines, commitLine, releaseLabel, shortenShaVersions } from './code';
import { confirmWithEnvFiles, withEnvFiles } from './env-files';
import { NARROW_ACTION, pickKamalScope } from './kamal-scope';
import type { Output } from './log';
import { readSettings } from './settings';
import { isUncertain } from './tree/items';
import type { AppNode, EnvironmentNode, ReleaseNode } from './tree/nodes';
import { relativeTime } from './tree/time';
import type { PickItem, Prompter } from './ui';

export interface RollbackTarget {
  source: ReleaseSource;
  app: App;
  /** Absent: the source picks the previous release. */
  release?: Release;
}

export interface RollbackContext {
  output: Output;
  prompter: () => Prompter;
  sources: () => Promise<ReleaseSource[]>;
  refresh: () => Promise<void>;
}

export class UserCancelled extends Error {
  constructor() {
    super('Cancelled');
  }
}

/** How every title, dialog and output line names a move: to an older release or to a newer one. */
export function rollWords(direction: RollDirection | undefined) {
  return direction === 'forward'
    ? { title: 'Roll Forward', verb: 'roll forward', Verb: 'Roll forward', ing: 'Rolling forward', noun: 'Roll forward', planNoun: 'roll forward' }
    : { title: 'Roll Back', verb: 'roll back', Verb: 'Roll back', ing: 'Rolling back', noun: 'Rollback', planNoun: 'rollback' };
}

/** Restricted Mode may look but never act; every acting command starts here. */
export function assertTrusted(action: string): void {
  if (!vscode.workspace.isTrusted) {
    throw new Error(`${action} is not available in Restricted Mode: trust this workspace to connect to hosts, run hooks or roll back.`);
  }
}

/**
 * From a tree node, or by asking what the node does not say: environment → app → release. One
 * path for the palette, environment and app rows. `preview` titles every question as a dry run.
 */
export async function resolveTarget(
  context: RollbackContext,
  node: EnvironmentNode | AppNode | ReleaseNode | undefined,
  askRelease: boolean,
  preview = false,
): Promise<RollbackTarget> {
  if (node?.kind === 'release') return { source: node.source, app: node.release.app, release: node.release };
  const action = preview ? 'Preview Rollback (Dry Run)' : 'Roll Back';
  const { source, app } = node?.kind === 'app' ? { source: node.source, app: node.app } : await pickApp(context, action, node);
  if (!askRelease) return { source, app };
  return { source, app, release: await pickRelease(context, action, source, app) };
}

/** Environment (unless the row is one) → app (unless the environment row has only one). */
async function pickApp(context: RollbackContext, action: string, node: EnvironmentNode | undefined): Promise<{ source: ReleaseSource; app: App }> {
  const prompter = context.prompter();
  let chosen: { source: ReleaseSource; environment: Environment };
  if (node) {
    chosen = { source: node.source, environment: node.environment };
  } else {
    const environments: PickItem<{ source: ReleaseSource; environment: Environment }>[] = [];
    for (const source of await context.sources()) {
      for (const environment of await source.environments()) {
        environments.push({ label: environment.name, description: `${source.kind} · ${vscode.workspace.asRelativePath(environment.location)}`, value: { source, environment } });
      }
    }
    if (environments.length === 0) throw new Error('No Kamal config or gitops repository found in this workspace.');
    const picked = await prompter.pick(environments, { title: `${action}: environment`, placeHolder: 'Pick the environment' });
    if (!picked?.value) throw new UserCancelled();
    chosen = picked.value;
  }
  const { source, environment } = chosen;
  const apps = await source.apps(environment);
  if (apps.length === 0) throw new Error(`No app to roll back in ${environment.name} (${vscode.workspace.asRelativePath(environment.location)}).`);
  if (apps.length === 1 && node) return { source, app: apps[0] };
  const picked = await prompter.pick(
    apps.map((candidate) => ({ label: candidate.name, description: candidate.lock ? `locked by ${candidate.lock.holder}` : undefined, value: candidate })),
    { title: `${action}: app in ${environment.name}`, placeHolder: 'Pick the app' },
  );
  if (!picked?.value) throw new UserCancelled();
  return { source, app: picked.value };
}

/** The app's releases, non-targets visible with their reason: picking one explains instead of acting. */
async function pickRelease(context: RollbackContext, action: string, source: ReleaseSource, app: App): Promise<Release> {
  const releases = await source.releases(app, { limit: 50 });
  const items: PickItem<{ release: Release; why?: string }>[] = releases.map((release) => {
    const partly = runningOnLabel(release);
    const why = release.rollbackable ? undefined : release.current ? (partly ? `${partly}; its row's Bring the Other Hosts to This Release moves the rest` : 'current') : release.reason ?? 'not a rollback target';
    return {
      label: release.rollbackable ? releaseLabel(release) : `$(circle-slash) ${releaseLabel(release)}`,
      description: [release.code?.commit ? commitLine(release.code.commit, releaseLabel(release)) : release.title, release.previous ? 'previous' : undefined, release.rollbackable && release.direction === 'forward' ? 'roll forward' : undefined].filter(Boolean).join(' · '),
      detail: why
        ? `Not pickable: ${why}`
        : [isUncertain(release.reason) && `$(warning) ${release.reason}`, runningOnLabel(release), release.created && `created ${relativeTime(Date.parse(release.created), Date.now())}`, release.presence, release.triggeredBy && `by ${release.triggeredBy}`].filter(Boolean).join(' · '),
      value: { release, why },
    };
  });
  for (;;) {
    const picked = await context.prompter().pick(items, { title: `${action} ${app.name} (${app.environment.name}) to…`, placeHolder: 'Pick the release to go to', matchOnDetail: true });
    if (!picked?.value) throw new UserCancelled();
    const { release, why } = picked.value;
    if (!why) return release;
    void vscode.window.showInformationMessage(`${release.version} cannot be ${release.direction === 'forward' ? 'rolled forward' : 'rolled back'} to: ${why}.`);
  }
}

type Progress = vscode.Progress<{ message?: string; increment?: number }>;

/** Plans in its own notification (a preview); a rollback plans inside the run's one notification. */
export async function planWithProgress(target: RollbackTarget, request?: PlanRequest, within?: { progress: Progress; token: vscode.CancellationToken }): Promise<RollbackPlan> {
  if (within) {
    within.progress.report({ message: 'Planning…' });
    return target.source.planRollback(target.app, target.release, abortSignalFor(within.token), request);
  }
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Planning ${rollWords(target.release?.direction).planNoun} of ${target.app.name}…`, cancellable: true },
    async (_progress, token) => target.source.planRollback(target.app, target.release, abortSignalFor(token), request),
  );
}

/**
 * Plans, and when reverts cannot be proven to reach the target, offers the honest alternative
 * (one commit restoring the target's tree) in a modal; only the user's explicit choice plans it.
 */
export async function planOrOffer(
  context: RollbackContext,
  target: RollbackTarget,
  requested: PlanRequest = {},
  within?: { progress: Progress; token: vscode.CancellationToken },
): Promise<RollbackPlan> {
  const request = withEnvFiles(target.source.kind, context.prompter(), requested);
  try {
    return await planWithProgress(target, request, within);
  } catch (error) {
    if (!(error instanceof RestoreTreeOffer)) throw error;
    // "Previous" was the source's pick: the restore is planned against that exact release.
    const release = target.release ?? (await target.source.releases(target.app, { limit: 50 })).find((candidate) => candidate.previous);
    if (!release) throw error;
    const sha = shortSha(release.id);
    const label = `${target.app.environment.name}/${target.app.name}`;
    const words = rollWords(release.direction);
    const action = `Restore ${sha}'s Tree in One Commit`;
    const detail = [
      `Reverting commits cannot be shown to leave ${label} exactly as it is at ${release.version} (${sha}): ${error.reason}.`,
      '',
      `Instead, one new commit can write ${label} exactly as it is at ${sha}, naming that release and what it undoes. Nothing outside ${label} changes.`,
      '',
      'You will see the plan and confirm it before anything is pushed.',
    ].join('\n');
    context.output.channel.warn(`${words.noun} of ${label} to ${release.version}: ${error.message}`);
    if (!(await context.prompter().confirm(`Reverts cannot ${words.verb} ${target.app.name} (${target.app.environment.name}) to ${release.version} exactly`, detail, action))) {
      context.output.channel.info(`Restoring ${label} to ${sha} in one commit not chosen: nothing changed.`);
      throw new UserCancelled();
    }
    return planWithProgress({ ...target, release }, { ...request, restoreTree: true }, within);
  }
}

/**
 * A whole run in one notification: planning, the confirmation, then every step. Its title says
 * what its Cancel stops; undefined when the user did not confirm.
 */
export async function rollbackWithProgress(context: RollbackContext, target: RollbackTarget, request: PlanRequest = {}): Promise<(RollbackOutcome & { plan: RollbackPlan }) | undefined> {
  const words = rollWords(target.release?.direction);
  const to = target.release ? releaseLabel(target.release) : 'the previous release';
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `${words.ing} ${target.app.name} to ${to}${scopeNote(request.kamal?.scope)} (Cancel stops the ${words.planNoun})`, cancellable: true },
    async (progress, token) => {
      // One request for every plan of this run: the secrets file's question is asked once.
      const asked = withEnvFiles(target.source.kind, context.prompter(), request);
      let plan = await planOrOffer(context, target, asked, { progress, token });
      for (;;) {
        const planWords = rollWords(plan.direction);
        progress.report({ message: 'Waiting for your confirmation…' });
        const answer = token.isCancellationRequested ? false : await confirmPlan(context, plan, true);
        if (answer === 'narrow') {
          plan = (await narrowPlan(context, target, asked, plan, { progress, token })) ?? plan;
          continue;
        }
        if (!answer) {
          context.output.channel.info(`${planWords.noun} of ${plan.app} (${plan.environment}) to ${plan.to} not confirmed: nothing changed.`);
          return undefined;
        }
        progress.report({ message: '' });
        return { ...(await executeReporting(context, target.source, plan, progress, token)), plan };
      }
    },
  );
}

/**
 * "Only Some Roles or Hosts…": the plan again for the roles and hosts left checked. Undefined
 * (the confirmation comes back unchanged) when the list is closed or the scope leaves nothing.
 */
async function narrowPlan(
  context: RollbackContext,
  target: RollbackTarget,
  request: PlanRequest,
  plan: RollbackPlan,
  within: { progress: Progress; token: vscode.CancellationToken },
): Promise<RollbackPlan | undefined> {
  const scope = await pickKamalScope(context.prompter(), plan, rollWords(plan.direction).Verb);
  if (!scope) return undefined;
  try {
    const narrowed = await planOrOffer(context, target, { ...request, kamal: { ...request.kamal, scope } }, within);
    context.output.channel.info(`Narrowed to ${describeScopeRequest(scope)}.`);
    return narrowed;
  } catch (error) {
    if (!(error instanceof DeployRollbackError) || error.step !== 'scope') throw error;
    context.output.channel.warn(error.message);
    void vscode.window.showWarningMessage(error.message);
    return undefined;
  }
}

/** A narrowed run's progress says so in its title: " on --hosts 10.0.0.2". */
function scopeNote(scope: KamalScopeRequest | undefined): string {
  return scope && scopeRequested(scope) ? ` on ${describeScopeRequest(scope)}` : '';
}

function isProtected(environment: string): boolean {
  const patterns = readSettings().protectedEnvironments;
  return patterns.some((pattern) => globToRegExp(pattern).test(environment));
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
}

/**
 * The modal confirmation (then the typed one of a protected environment). `offerScope`: a Kamal
 * plan's dialog also offers to narrow it, answered as 'narrow'.
 */
export async function confirmPlan(context: RollbackContext, plan: RollbackPlan, offerScope = false): Promise<boolean | 'narrow'> {
  const prompter = context.prompter();
  const words = rollWords(plan.direction);
  const message = shortenShaVersions(`${words.Verb} ${plan.app} in ${plan.environment} from ${plan.from} to ${plan.to}?`);
  // The dialog stays short enough for any window; every command is in the output already.
  // One entry: a line each would be as many messages to the window, in the run's way.
  context.output.channel.info([`${words.noun} plan for ${plan.app} (${plan.environment}), ${plan.from} → ${plan.to}:`, ...plan.lines.map((line) => `  ${line}`)].join('\n'));
  const overview = plan.overview ?? plan.lines.slice(0, 10).map((line) => (line.length > 110 ? `${line.slice(0, 109)}…` : line));
  // What the move does to the code is the question an incident asks first: right after the summary.
  const code = codeChangeLines(plan.codeChange, plan.codeChangeUnknown);
  const detail = [plan.summary, ...(code.length ? ['', ...code] : []), '', ...overview, '', 'Every command of the plan is in the Deploy Rollback output.'].map(shortenShaVersions).join('\n');
  const narrow = offerScope && plan.source === 'kamal' && prompter.pickMany ? NARROW_ACTION : undefined;
  const answer = await confirmWithEnvFiles(prompter, context.output, plan, message, detail, words.title, narrow);
  if (answer === 'also') return 'narrow';
  if (!answer) return false;
  if (!isProtected(plan.environment)) return true;
  const typed = await prompter.input({
    title: `${plan.environment} is a protected environment`,
    prompt: `Type "${plan.app}" to ${words.verb} it to ${plan.to}`,
    validateInput: (value) => (value === plan.app || value === '' ? undefined : `Type ${plan.app} exactly`),
  });
  return typed === plan.app;
}

/** Rollbacks in flight: each entry cancels one as its notification's Cancel button does, and returns what the notification shows then. */
const runningRollbacks = new Set<() => string>();

/** Cancels every rollback in flight through the Cancel button's handler; returns what each notification shows right after. */
export function cancelRunningRollbacks(): string[] {
  return [...runningRollbacks].map((cancel) => cancel());
}

/** Runs a confirmed plan in its own notification (the roll forward offered after a failed run). */
export async function executeWithProgress(context: RollbackContext, source: ReleaseSource, plan: RollbackPlan): Promise<RollbackOutcome> {
  const words = rollWords(plan.direction);
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `${words.ing} ${plan.app} to ${plan.to}${scopeNote((plan as RollbackPlan<KamalPlanDetail>).detail.scope?.request)} (Cancel stops the ${words.planNoun})`, cancellable: true },
    async (progress, token) => executeReporting(context, source, plan, progress, token),
  );
}

async function executeReporting(context: RollbackContext, source: ReleaseSource, plan: RollbackPlan, progress: Progress, token: vscode.CancellationToken): Promise<RollbackOutcome> {
  const { output } = context;
  const words = rollWords(plan.direction);
  output.channel.info(`${words.noun} of ${plan.app} (${plan.environment}) from ${plan.from} to ${plan.to}: ${plan.summary}`);
  let cancelling = false;
  let shown = '';
  const controller = new AbortController();
  // A step can follow another within milliseconds: the notification is redrawn at most every
  // PROGRESS_INTERVAL_MS with the latest one and how far the run is (its renderer competes with
  // the run for the CPU). The bar fills as the run goes (Reporter.progress): VS Code's endless bar
  // is an animation that keeps the window painting for the whole run.
  let reportedAt = 0;
  let trailing: NodeJS.Timeout | undefined;
  let percentShown = 0;
  let percentDone = 0;
  const report = (message: string, now = false) => {
    shown = message;
    clearTimeout(trailing);
    const wait = reportedAt + PROGRESS_INTERVAL_MS - Date.now();
    const show = () => {
      reportedAt = Date.now();
      const increment = percentDone - percentShown;
      percentShown = percentDone;
      progress.report(increment > 0 ? { message: shown, increment } : { message: shown });
    };
    if (now || wait <= 0) show();
    else trailing = setTimeout(show, wait);
  };
  progress.report({ increment: 0 });
  // Once cancelled, later steps (putting things back, unlocking) must not hide that it is cancelling.
  const reporter = output.reporter(
    plan.source,
    (message) => report(cancelling ? `Cancelling… ${message}` : message),
    (done, total) => {
      percentDone = Math.min(100, Math.floor((100 * done) / total));
      report(shown);
    },
  );
  const cancel = (): string => {
    if (!cancelling) {
      cancelling = true;
      report('Cancelling…', true);
      reporter.warn('Cancel requested: stopping the commands in flight, putting back half-done steps, then releasing the lock.');
      controller.abort();
    }
    return shown;
  };
  if (token.isCancellationRequested) cancel();
  token.onCancellationRequested(cancel);
  runningRollbacks.add(cancel);
  try {
    return await source.executeRollback(plan, reporter, controller.signal);
  } finally {
    clearTimeout(trailing);
    runningRollbacks.delete(cancel);
  }
}

const PROGRESS_INTERVAL_MS = 300;

/** Notifications are not awaited: their promise stays pending until the user closes them. */
export function reportOutcome(
  context: RollbackContext,
  source: ReleaseSource,
  outcome: RollbackOutcome & { rollForward?: RollbackPlan },
  next?: { action: string; run: () => Promise<unknown> },
): void {
  for (const line of outcome.lines) context.output.channel.info(line);
  if (outcome.ok) {
    context.output.channel.info(outcome.message);
    const actions = next ? [next.action, 'Show Output'] : ['Show Output'];
    void vscode.window.showInformationMessage(outcome.message, ...actions).then(async (choice) => {
      if (choice === 'Show Output') context.output.show();
      if (!next || choice !== next.action) return;
      try {
        await next.run();
      } catch (error) {
        if (error instanceof UserCancelled) return;
        const message = error instanceof Error ? error.message : String(error);
        context.output.channel.error(message);
        void vscode.window.showErrorMessage(message);
      }
    });
    return;
  }
  context.output.channel.error(outcome.message);
  const rollForward = outcome.rollForward;
  const actions = rollForward ? ['Roll Forward', 'Show Output'] : ['Show Output'];
  void vscode.window.showErrorMessage(outcome.message, ...actions).then(async (choice) => {
    if (choice === 'Show Output') context.output.show();
    if (choice !== 'Roll Forward' || !rollForward) return;
    try {
      if (!(await confirmPlan(context, rollForward))) return;
      const again = await executeWithProgress(context, source, rollForward);
      await context.refresh();
      reportOutcome(context, source, again);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      context.output.channel.error(message);
      void vscode.window.showErrorMessage(message);
    }
  });
}

export function abortSignalFor(token: vscode.CancellationToken): AbortSignal {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  token.onCancellationRequested(() => controller.abort());
  return controller.signal;
}
