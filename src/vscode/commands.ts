import * as vscode from 'vscode';
import type { ReadOnlyDocuments } from './documents';
import {
  assertTrusted,
  confirmPlan,
  executeWithProgress,
  planWithProgress,
  reportOutcome,
  resolveTarget,
  UserCancelled,
  type RollbackContext,
} from './rollback';
import { readSettings } from './settings';
import type { ReleasesTreeProvider } from './tree/provider';
import type { AppNode, HostContainerNode, ReleaseNode, ShowMoreNode } from './tree/nodes';

export interface CommandDeps extends RollbackContext {
  tree: ReleasesTreeProvider;
  documents: ReadOnlyDocuments;
}

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

  const rollback = async (node: AppNode | ReleaseNode | undefined, askRelease: boolean) => {
    assertTrusted('Rollback');
    const target = await resolveTarget(deps, node, askRelease);
    const plan = await planWithProgress(target);
    if (!(await confirmPlan(deps, plan))) {
      output.channel.info(`Rollback of ${plan.app} (${plan.environment}) to ${plan.to} not confirmed: nothing changed.`);
      return undefined;
    }
    try {
      const outcome = await executeWithProgress(deps, target.source, plan);
      await deps.refresh();
      reportOutcome(deps, target.source, outcome);
      return outcome;
    } catch (error) {
      await deps.refresh();
      throw error;
    }
  };

  const preview = async (node: AppNode | ReleaseNode | undefined) => {
    assertTrusted('Preview');
    const target = await resolveTarget(deps, node, true);
    const plan = await planWithProgress(target);
    const extra = (await target.source.previewRollback?.(plan)) ?? [];
    const text = [
      `Dry run: roll back ${plan.app} in ${plan.environment} from ${plan.from} to ${plan.to}`,
      plan.summary,
      'Nothing has been changed.',
      '',
      ...plan.lines,
      ...(extra.length ? ['', ...extra] : []),
      '',
    ].join('\n');
    output.channel.info(`Preview of rollback of ${plan.app} (${plan.environment}) to ${plan.to}:\n${text}`);
    await deps.documents.open(`Rollback plan ${plan.environment} ${plan.app} to ${plan.to}`, text);
    return plan;
  };

  return [
    wrap('deployRollback.refresh', async () => deps.refresh()),
    wrap('deployRollback.showOutput', async () => output.show()),
    wrap('deployRollback.rollback', async (node?: AppNode | ReleaseNode) => rollback(node, true)),
    wrap('deployRollback.rollbackToRelease', async (node?: ReleaseNode) => rollback(node, true)),
    wrap('deployRollback.rollbackToPrevious', async (node?: AppNode) => rollback(node, false)),
    wrap('deployRollback.previewRollback', async (node?: AppNode | ReleaseNode) => preview(node)),
    wrap('deployRollback.showMore', async (node: ShowMoreNode) => deps.tree.showMore(node.app)),
    wrap('deployRollback.showContainerLogs', async (node: HostContainerNode) => {
      assertTrusted('Container logs');
      if (!node?.source.containerLogs) throw new Error('Pick a host container in the Releases view to see its logs.');
      const lines = readSettings().logLines;
      const text = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `Reading logs of ${node.container.name} on ${node.container.host}` },
        () => node.source.containerLogs!(node.container, lines),
      );
      await deps.documents.open(`${node.container.host} ${node.container.name}.log`, text);
    }),
  ];
}

