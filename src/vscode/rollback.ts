import * as vscode from 'vscode';
import type { App, Environment, Release, ReleaseSource, RollbackOutcome, RollbackPlan } from '../core/model';
import type { Output } from './log';
import { readSettings } from './settings';
import type { AppNode, ReleaseNode } from './tree/nodes';
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

/** Restricted Mode may look but never act; every acting command starts here. */
export function assertTrusted(action: string): void {
  if (!vscode.workspace.isTrusted) {
    throw new Error(`${action} is not available in Restricted Mode: trust this workspace to connect to hosts, run hooks or roll back.`);
  }
}

/** From a tree node, or (palette) by asking environment → app → release. One path for all. */
export async function resolveTarget(context: RollbackContext, node: AppNode | ReleaseNode | undefined, askRelease: boolean): Promise<RollbackTarget> {
  if (node?.kind === 'release') return { source: node.source, app: node.release.app, release: node.release };
  if (node?.kind === 'app') return { source: node.source, app: node.app };

  const prompter = context.prompter();
  const sources = await context.sources();
  const environments: PickItem<{ source: ReleaseSource; environment: Environment }>[] = [];
  for (const source of sources) {
    for (const environment of await source.environments()) {
      environments.push({ label: environment.name, description: `${source.kind} · ${vscode.workspace.asRelativePath(environment.location)}`, value: { source, environment } });
    }
  }
  if (environments.length === 0) throw new Error('No Kamal config or gitops repository found in this workspace.');
  const environment = await prompter.pick(environments, { title: 'Roll Back: environment', placeHolder: 'Pick the environment' });
  if (!environment?.value) throw new UserCancelled();
  const { source } = environment.value;

  const apps = await source.apps(environment.value.environment);
  const app = await prompter.pick(
    apps.map((candidate) => ({ label: candidate.name, description: candidate.lock ? `locked by ${candidate.lock.holder}` : undefined, value: candidate })),
    { title: `Roll Back: app in ${environment.label}`, placeHolder: 'Pick the app' },
  );
  if (!app?.value) throw new UserCancelled();
  if (!askRelease) return { source, app: app.value };

  const releases = await source.releases(app.value, { limit: 50 });
  const items: PickItem<{ release: Release; why?: string }>[] = releases.map((release) => {
    const why = release.rollbackable ? undefined : release.current ? 'current' : release.reason ?? 'not a rollback target';
    return {
      label: release.rollbackable ? release.version : `$(circle-slash) ${release.version}`,
      description: [release.title, release.previous ? 'previous' : undefined].filter(Boolean).join(' · '),
      detail: why ? `Not pickable: ${why}` : [release.created && `created ${relativeTime(Date.parse(release.created), Date.now())}`, release.presence, release.triggeredBy && `by ${release.triggeredBy}`].filter(Boolean).join(' · '),
      value: { release, why },
    };
  });
  // Non-targets stay visible with their reason; picking one explains instead of acting.
  for (;;) {
    const picked = await prompter.pick(items, { title: `Roll Back ${app.value.name} (${environment.label}) to…`, placeHolder: 'Pick the release to go back to', matchOnDetail: true });
    if (!picked?.value) throw new UserCancelled();
    const { release, why } = picked.value;
    if (!why) return { source, app: app.value, release };
    void vscode.window.showInformationMessage(`${release.version} cannot be rolled back to: ${why}.`);
  }
}

export async function planWithProgress(target: RollbackTarget): Promise<RollbackPlan> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Planning rollback of ${target.app.name}…`, cancellable: true },
    async (_progress, token) => target.source.planRollback(target.app, target.release, abortSignalFor(token)),
  );
}

function isProtected(environment: string): boolean {
  const patterns = readSettings().protectedEnvironments;
  return patterns.some((pattern) => globToRegExp(pattern).test(environment));
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
}

export async function confirmPlan(context: RollbackContext, plan: RollbackPlan): Promise<boolean> {
  const prompter = context.prompter();
  const message = `Roll back ${plan.app} in ${plan.environment} from ${plan.from} to ${plan.to}?`;
  // The dialog stays short enough for any window; every command is in the output already.
  context.output.channel.info(`Plan for ${plan.app} (${plan.environment}), ${plan.from} → ${plan.to}:`);
  for (const line of plan.lines) context.output.channel.info(`  ${line}`);
  const overview = plan.overview ?? plan.lines.slice(0, 10).map((line) => (line.length > 110 ? `${line.slice(0, 109)}…` : line));
  const detail = [plan.summary, '', ...overview, '', 'Every command of the plan is in the Deploy Rollback output.'].join('\n');
  if (!(await prompter.confirm(message, detail, 'Roll Back'))) return false;
  if (!isProtected(plan.environment)) return true;
  const typed = await prompter.input({
    title: `${plan.environment} is a protected environment`,
    prompt: `Type "${plan.app}" to roll it back to ${plan.to}`,
    validateInput: (value) => (value === plan.app || value === '' ? undefined : `Type ${plan.app} exactly`),
  });
  return typed === plan.app;
}

/** Rollbacks in flight: each entry cancels one as its notification's Cancel button does, and returns what it showed. */
const runningRollbacks = new Set<() => string>();

/** Cancels every rollback in flight (the integration suite's Cancel button); returns the progress messages shown at once. */
export function cancelRunningRollbacks(): string[] {
  return [...runningRollbacks].map((cancel) => cancel());
}

export async function executeWithProgress(context: RollbackContext, source: ReleaseSource, plan: RollbackPlan): Promise<RollbackOutcome> {
  const { output } = context;
  output.channel.info(`Rollback of ${plan.app} (${plan.environment}) from ${plan.from} to ${plan.to}: ${plan.summary}`);
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Rolling back ${plan.app} to ${plan.to}`, cancellable: true },
    async (progress, token) => {
      let cancelling = false;
      const controller = new AbortController();
      // Once cancelled, later steps (putting things back, unlocking) must not hide that it is cancelling.
      const reporter = output.reporter(plan.source, (message) => progress.report({ message: cancelling ? `Cancelling… ${message}` : message }));
      const cancel = (): string => {
        if (!cancelling) {
          cancelling = true;
          progress.report({ message: 'Cancelling…' });
          reporter.warn('Cancel requested: stopping the commands in flight, putting back half-done steps, then releasing the lock.');
          controller.abort();
        }
        return 'Cancelling…';
      };
      if (token.isCancellationRequested) cancel();
      token.onCancellationRequested(cancel);
      runningRollbacks.add(cancel);
      try {
        return await source.executeRollback(plan, reporter, controller.signal);
      } finally {
        runningRollbacks.delete(cancel);
      }
    },
  );
}

/** Notifications are not awaited: their promise stays pending until the user closes them. */
export function reportOutcome(context: RollbackContext, source: ReleaseSource, outcome: RollbackOutcome & { rollForward?: RollbackPlan }): void {
  for (const line of outcome.lines) context.output.channel.info(line);
  if (outcome.ok) {
    context.output.channel.info(outcome.message);
    void vscode.window.showInformationMessage(outcome.message, 'Show Output').then((choice) => {
      if (choice === 'Show Output') context.output.show();
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
