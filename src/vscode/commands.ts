import * as vscode from 'vscode';
import type { GitopsRepo } from '../core/gitops/discovery';
import type { PlanRequest, Release, ReleaseSource, RollbackOutcome, RollbackPlan } from '../core/model';
import type { KamalPlanDetail } from '../core/kamal/rollback';
import { literalPattern } from '../core/kamal/rollback/scope';
import { judgeLockRun, notStaleReason, staleLockQuestion } from '../core/kamal/commands/lock-run';
import { commitLine } from './code';
import { compareWithRunning, openCommit } from './diff';
import { openReleaseChange, type ReadOnlyDocuments } from './documents';
import {
  assertTrusted,
  planOrOffer,
  reportOutcome,
  resolveTarget,
  rollbackWithProgress,
  rollWords,
  UserCancelled,
  type RollbackContext,
  type RollbackTarget,
} from './rollback';
import { readSettings } from './settings';
import type { ReleasesTreeProvider } from './tree/provider';
import type { AppNode, EnvironmentNode, HostContainerNode, ReleaseNode, ShowMoreNode } from './tree/nodes';

export interface CommandDeps extends RollbackContext {
  tree: ReleasesTreeProvider;
  documents: ReadOnlyDocuments;
}

type TargetNode = EnvironmentNode | AppNode | ReleaseNode;

/** Each handler has the `(node?)` shape: the tree passes its item, the palette passes nothing. */
export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const { output } = deps;
  const wrap = <A extends unknown[]>(name: string, handler: (...args: A) => Promise<unknown>) =>
    vscode.commands.registerCommand(name, async (...args: A) => {
      try {
        return await handler(...args);
      } catch (error) {
        if (error instanceof UserCancelled) return undefined;
        const message = error instanceof Error ? error.message : String(error);
        output.channel.error(message);
        if (error instanceof Error && error.stack && error.name !== 'DeployRollbackError') output.channel.debug(error.stack);
        void vscode.window.showErrorMessage(message, 'Show Output').then((choice) => choice && output.show());
        return undefined;
      }
    });

  const rollback = async (node: TargetNode | undefined, askRelease: boolean, request?: PlanRequest) => {
    assertTrusted('Rollback');
    return rollbackTarget(await resolveTarget(deps, node, askRelease), request);
  };

  const rollbackTarget = async (target: RollbackTarget, request?: PlanRequest): Promise<RollbackOutcome | undefined> => {
    try {
      const outcome = await rollbackWithProgress(deps, target, request);
      if (!outcome) return undefined;
      // The outcome first: the tree's read after it is not part of getting back to a good release.
      // After a narrowed run (a canary) the rest is one click away, read when clicked.
      const narrowed = outcome.ok && (outcome.plan as RollbackPlan<KamalPlanDetail>).detail?.scope?.narrowed === true;
      reportOutcome(deps, target.source, outcome, narrowed ? { action: `Bring the Other Hosts to ${outcome.plan.to}`, run: () => bringRest(target, outcome.plan.to) } : undefined);
      await deps.refresh();
      return outcome;
    } catch (error) {
      // A "no" to a picker or to the restore offer comes before anything ran, as a declined
      // confirmation does: the tree is as it was, and redrawing it would take away the row a second
      // right-click is about to use.
      if (!(error instanceof UserCancelled)) await deps.refresh();
      throw error;
    }
  };

  /** The notification's offer after a canary: the hosts that do not run `version` now, read as the click comes. */
  const bringRest = async (target: RollbackTarget, version: string) => {
    const release = (await target.source.releases(target.app, { limit: 500 })).find((candidate) => candidate.version === version);
    if (!release) throw new Error(`${version} of ${target.app.name} is not on the hosts any more.`);
    return bringOtherHosts(target.source, release);
  };

  /** Kamal's `--hosts` of the hosts that do not run the release (a canary's rest). */
  const bringOtherHosts = async (source: ReleaseSource, release: Release) => {
    assertTrusted('Rollback');
    const others = release.runningOn?.otherHosts ?? [];
    if (others.length === 0) throw new Error(`Every host read runs ${release.version} already: there are no other hosts to bring to it.`);
    return rollbackTarget({ source, app: release.app, release }, { kamal: { scope: { hosts: others.map(literalPattern) } } });
  };

  const preview = async (node: TargetNode | undefined, askRelease: boolean) => {
    assertTrusted('Preview');
    const target = await resolveTarget(deps, node, askRelease, true);
    const plan = await planOrOffer(deps, target, { dryRun: true });
    const words = rollWords(plan.direction);
    const extra = (await target.source.previewRollback?.(plan)) ?? [];
    const text = [
      `Dry run: ${words.verb} ${plan.app} in ${plan.environment} from ${plan.from} to ${plan.to}`,
      plan.summary,
      'Nothing has been changed.',
      '',
      ...plan.lines,
      ...(extra.length ? ['', ...extra] : []),
      '',
    ].join('\n');
    output.channel.info(`Preview of ${words.planNoun} of ${plan.app} (${plan.environment}) to ${plan.to}:\n${text}`);
    await deps.documents.open(`${words.noun} plan ${plan.environment} ${plan.app} to ${plan.to} (dry run)`, text);
    return plan;
  };

  // These commands are on rows' menus only; without a row, VS Code lost it while redrawing the view.
  const requireNode = <T>(node: T | undefined, what: string): T => {
    if (!node) throw new Error(`No row came with this command: pick ${what} in the Releases view and open its menu again (the view may have been redrawing it).`);
    return node;
  };

  const copy = async (text: string, what: string) => {
    await vscode.env.clipboard.writeText(text);
    vscode.window.setStatusBarMessage(`Copied ${what}: ${text}`, 4000);
  };

  return [
    wrap('deployRollback.refresh', async () => deps.refresh()),
    wrap('deployRollback.retry', async () => deps.refresh()),
    wrap('deployRollback.showOutput', async () => output.show()),
    wrap('deployRollback.rollback', async (node?: TargetNode) => rollback(node, true)),
    wrap('deployRollback.rollbackToRelease', async (node?: ReleaseNode) => rollback(requireNode(node, 'a release'), true)),
    wrap('deployRollback.rollForwardToRelease', async (node?: ReleaseNode) => rollback(requireNode(node, 'a release'), true)),
    wrap('deployRollback.rollbackToPrevious', async (node?: AppNode) => rollback(requireNode(node, 'an app'), false)),
    // Kamal's `--hosts <that host>`: a canary of one host, the others left as they are.
    wrap('deployRollback.rollbackHost', async (node?: HostContainerNode) => {
      const row = requireNode(node, 'a host container');
      const app: AppNode = { kind: 'app', id: `${row.id}#app`, source: row.source, app: row.release.app };
      return rollback(app, true, { kamal: { scope: { hosts: [literalPattern(row.container.host)] } } });
    }),
    wrap('deployRollback.bringOtherHostsToRelease', async (node?: ReleaseNode) => {
      const row = requireNode(node, 'a Kamal release');
      return bringOtherHosts(row.source, row.release);
    }),
    wrap('deployRollback.previewRollback', async (node?: EnvironmentNode | AppNode) => preview(node, true)),
    wrap('deployRollback.previewRollbackToRelease', async (node?: ReleaseNode) => preview(requireNode(node, 'a release'), true)),
    wrap('deployRollback.previewRollForwardToRelease', async (node?: ReleaseNode) => preview(requireNode(node, 'a release'), true)),
    wrap('deployRollback.previewRollbackToPrevious', async (node?: AppNode) => preview(requireNode(node, 'an app'), false)),
    wrap('deployRollback.showMore', async (node: ShowMoreNode) => deps.tree.showMore(node.app)),
    wrap('deployRollback.copyVersion', async (node?: ReleaseNode) => copy(requireNode(node, 'a release').release.version, 'version')),
    wrap('deployRollback.copySha', async (node?: ReleaseNode) => copy(requireNode(node, 'a release').release.id, 'gitops commit SHA')),
    wrap('deployRollback.copyCommitSha', async (node?: ReleaseNode) => {
      const { release } = requireNode(node, 'a release');
      const sha = release.code?.commit?.sha;
      if (!sha) throw new Error(`${release.version} has no commit in a local clone${release.code?.missing ? `: ${release.code.missing}` : ''}.`);
      return copy(sha, 'commit SHA');
    }),
    wrap('deployRollback.compareWithRunning', async (node?: ReleaseNode) => {
      const { source, release, running } = requireNode(node, 'a release');
      // The running release may be older than the rows shown (after a rollback): read further back for it.
      const current = running ?? (await source.releases(release.app, { limit: 500 })).find((candidate) => candidate.current);
      return compareWithRunning(release, current);
    }),
    wrap('deployRollback.openCommit', async (node?: ReleaseNode) => openCommit(requireNode(node, 'a release').release)),
    wrap('deployRollback.copyContainerName', async (node?: HostContainerNode) => copy(requireNode(node, 'a host container').container.name, 'container name')),
    wrap('deployRollback.openChange', async (node?: ReleaseNode) => {
      const { source, release } = requireNode(node, 'a gitops release');
      const repo = gitopsRepoOf(source);
      if (!repo) throw new Error(`${release.version} is not a gitops release: it has no commit to open.`);
      await openReleaseChange(repo, release);
    }),
    wrap('deployRollback.showReleaseHistory', async (node?: ReleaseNode) => {
      const { source, release } = requireNode(node, 'a Kamal release');
      assertTrusted('Release history on the hosts');
      if (!source.releaseHistory) throw new Error(`${release.version} has no history on hosts: it is not a Kamal release.`);
      const lines = await source.releaseHistory(release);
      await deps.documents.open(`History ${release.app.environment.name} ${release.app.name} ${release.version}`, `${lines.join('\n')}\n`);
    }),
    wrap('deployRollback.releaseStaleLock', async (node?: AppNode) => {
      assertTrusted('Release Stale Lock');
      const { source, app } = requireNode(node, 'an app');
      if (!source.releaseStaleLock) throw new Error('Release Stale Lock is for Kamal apps.');
      if (!app.lock) {
        void vscode.window.showInformationMessage(`There is no deploy lock for ${app.name} (${app.environment.name}).`);
        return undefined;
      }
      const verdict = judgeLockRun(app.lock);
      if (verdict.kind !== 'nameless' && verdict.kind !== 'gone') {
        throw new Error(`The deploy lock for ${app.name} is left alone: ${notStaleReason(verdict, app.lock.holder, '`kamal lock release`')}.`);
      }
      const detail =
        verdict.kind === 'gone'
          ? `The lock ${staleLockQuestion(verdict)}. It is removed only if it still names that run.`
          : 'The lock directory has no details, so `kamal lock release` cannot remove it. Remove it only if no deploy is running: it is removed only if it still names nobody.';
      if (!(await deps.prompter().confirm(`Remove the stale deploy lock of ${app.name} (${app.environment.name})?`, detail, 'Release Stale Lock'))) return undefined;
      const result = await source.releaseStaleLock(app);
      output.channel.info(result.message);
      await deps.refresh();
      if (result.removed) void vscode.window.showInformationMessage(result.message);
      else throw new Error(result.message);
      return result;
    }),
    wrap('deployRollback.showAppHistory', async (node?: AppNode) => {
      const { source, app } = requireNode(node, 'an app');
      const releases = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `Reading the history of ${app.name}` }, () =>
        source.releases(app, { limit: 500 }),
      );
      await deps.documents.open(`History ${app.environment.name} ${app.name}`, appHistoryText(source, app.name, app.environment.name, releases));
    }),
    wrap('deployRollback.showContainerLogs', async (node: HostContainerNode) => {
      assertTrusted('Container logs');
      if (!node?.source.containerLogs) throw new Error('Pick a host container in the Releases view to see its logs.');
      const lines = readSettings().logLines;
      const text = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `Reading logs of ${node.container.name} on ${node.container.host}` },
        () => node.source.containerLogs!(node.container, lines),
      );
      // An empty editor reads as a failure; say that the container printed nothing.
      const shown = text.trim() ? text : `(no output in the last ${lines} lines of ${node.container.name} on ${node.container.host})\n`;
      await deps.documents.open(`${node.container.host} ${node.container.name}.log`, shown);
    }),
  ];
}

/** The gitops repository a source reads, or undefined for a Kamal source. */
function gitopsRepoOf(source: ReleaseSource): GitopsRepo | undefined {
  return source.kind === 'gitops' && 'snapshot' in source ? (source as { snapshot: GitopsRepo }).snapshot : undefined;
}

/** Every release of an app, newest first, one line each: version, state, when, who, then its commit (short sha and subject) or title. */
export function appHistoryText(source: ReleaseSource, app: string, environment: string, releases: readonly Release[]): string {
  const rows = releases.map((release) => {
    const state = release.current
      ? 'current'
      : release.rolledBack
        ? 'rolled back'
        : release.rollbackable
          ? release.direction === 'forward'
            ? 'roll forward target'
            : release.previous
              ? 'previous'
              : 'rollback target'
          : `not a target: ${release.reason ?? 'unknown'}`;
    const commit = release.code?.commit;
    return [release.version, state, release.created ?? '', release.triggeredBy ? `by ${release.triggeredBy}` : '', commit ? commitLine(commit) : (release.title ?? '')];
  });
  const widths = [0, 1, 2, 3].map((column) => Math.max(0, ...rows.map((row) => row[column].length)));
  const lines = rows.map((row) => row.map((cell, column) => (column < 4 ? cell.padEnd(widths[column]) : cell)).join('  ').trimEnd());
  const where = source.kind === 'kamal' ? `Kamal ${source.location}` : `gitops ${source.location}`;
  return [`${app} in ${environment} (${where}): ${releases.length} ${releases.length === 1 ? 'release' : 'releases'}, newest first`, '', ...lines, ''].join('\n');
}
