import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { defaultFinders } from '../core/finders';
import type { ReleaseSource } from '../core/model';
import type { SessionPool } from '../core/ssh/types';
import { registerCommands } from './commands';
import { GitContent, ReadOnlyDocuments } from './documents';
import { Output } from './log';
import { cancelRunningRollbacks } from './rollback';
import { readSettings } from './settings';
import { createPool } from './pool';
import { SourceRegistry } from './sources';
import type { TreeNode } from './tree/nodes';
import { ReleasesTreeProvider } from './tree/provider';
import { windowPrompter, type Prompter } from './ui';

/** What activate() returns: used by the integration suite, and a stable surface for other extensions. */
export interface DeployRollbackApi {
  /** The Releases tree as a caller that can wait sees it: children once read (see ReleasesTreeProvider.readChildren). */
  tree: {
    getChildren(node?: TreeNode): Promise<TreeNode[]>;
    getTreeItem(node: TreeNode): vscode.TreeItem;
    onDidChangeTreeData: vscode.Event<TreeNode | TreeNode[] | undefined>;
  };
  refresh(): Promise<void>;
  sources(): Promise<ReleaseSource[]>;
  testing: { setPrompter(prompter: Prompter | undefined): void; cancelRollbacks(): string[] };
}

export function activate(context: vscode.ExtensionContext): DeployRollbackApi {
  const output = new Output();
  const reporter = output.reporter();
  let prompter: Prompter = windowPrompter;
  let pool: SessionPool | undefined;
  const getPool = () => (pool ??= createPool(output, () => prompter, readSettings()));
  const registry = new SourceRegistry(defaultFinders, getPool, reporter);
  const diagnostics = vscode.languages.createDiagnosticCollection('deploy-rollback');
  const expanded = new ExpandedRows(context.workspaceState, context.storageUri?.scheme === 'file' ? path.join(context.storageUri.fsPath, 'expanded-rows.json') : undefined);

  const tree = new ReleasesTreeProvider({
    sources: async () => {
      const sources = await registry.sources();
      await vscode.commands.executeCommand('setContext', 'deployRollback.state', sources.length === 0 ? 'empty' : 'ready');
      return sources;
    },
    releasesPerApp: () => readSettings().releasesPerApp,
    onProblems: (problems) => {
      diagnostics.clear();
      const byFile = new Map<string, vscode.Diagnostic[]>();
      for (const problem of problems) {
        const line = Math.max(0, (problem.line ?? 1) - 1);
        const column = Math.max(0, (problem.column ?? 1) - 1);
        const diagnostic = new vscode.Diagnostic(
          new vscode.Range(line, column, line, Number.MAX_SAFE_INTEGER),
          problem.message,
          problem.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning,
        );
        diagnostic.source = 'Deploy Rollback';
        byFile.set(problem.file, [...(byFile.get(problem.file) ?? []), diagnostic]);
      }
      for (const [file, list] of byFile) diagnostics.set(vscode.Uri.file(file), list);
    },
    onError: (message) => output.channel.error(message),
    isExpanded: (id) => expanded.has(id),
    onExpanded: (id) => expanded.set(id, true),
  });

  const view = vscode.window.createTreeView('deployRollback.releases', { treeDataProvider: tree, showCollapseAll: true });
  const updateTrustMessage = () => {
    view.message = vscode.workspace.isTrusted ? undefined : 'Restricted Mode: showing local files only. Trust the workspace to connect to hosts and roll back.';
  };
  updateTrustMessage();

  const refresh = async () => {
    await registry.refresh();
    tree.refresh();
  };

  let poll: NodeJS.Timeout | undefined;
  const schedulePolling = () => {
    clearInterval(poll);
    const seconds = readSettings().pollIntervalSeconds;
    if (seconds > 0 && view.visible && vscode.workspace.isTrusted) poll = setInterval(() => void refresh(), seconds * 1000);
  };

  const documents = new ReadOnlyDocuments();
  context.subscriptions.push(
    output,
    registry,
    tree,
    view,
    diagnostics,
    documents,
    vscode.workspace.registerTextDocumentContentProvider(ReadOnlyDocuments.scheme, documents),
    vscode.workspace.registerTextDocumentContentProvider(GitContent.scheme, new GitContent()),
    registry.onDidChange(() => void refresh()),
    view.onDidExpandElement(({ element }) => expanded.set(element.id, true)),
    view.onDidCollapseElement(({ element }) => expanded.set(element.id, false)),
    view.onDidChangeVisibility(schedulePolling),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      updateTrustMessage();
      void refresh();
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => void refresh()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('deployRollback')) {
        schedulePolling();
        void refresh();
      }
    }),
    { dispose: () => clearInterval(poll) },
    { dispose: () => pool?.dispose() },
    ...registerCommands({ output, tree, documents, prompter: () => prompter, sources: () => registry.sources(), refresh }),
  );
  schedulePolling();

  return {
    tree: { getChildren: (node) => tree.readChildren(node), getTreeItem: (node) => tree.getTreeItem(node), onDidChangeTreeData: tree.onDidChangeTreeData },
    refresh,
    sources: () => registry.sources(),
    testing: {
      setPrompter: (replacement) => {
        prompter = replacement ?? windowPrompter;
      },
      cancelRollbacks: () => cancelRunningRollbacks(),
    },
  };
}

export function deactivate(): void {}

/**
 * The rows the user left expanded, so a reload opens them again (per workspace, newest last and
 * bounded so stale ids age out). Kept in a file in the extension's
 * workspace storage, written at once: the window's own storage (workspaceState) is flushed later,
 * and a reload right after an expansion lost it. workspaceState is the fallback without a folder.
 */
class ExpandedRows {
  private static readonly key = 'deployRollback.expandedRows';
  private static readonly limit = 500;
  private readonly ids: Set<string>;

  constructor(
    private readonly state: vscode.Memento,
    private readonly file: string | undefined,
  ) {
    this.ids = new Set(this.readFile() ?? state.get<string[]>(ExpandedRows.key, []));
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  set(id: string, open: boolean): void {
    if (this.ids.has(id) === open && (!open || [...this.ids].at(-1) === id)) return;
    this.ids.delete(id);
    if (open) this.ids.add(id);
    const ids = [...this.ids].slice(-ExpandedRows.limit);
    if (this.file) {
      try {
        fs.mkdirSync(path.dirname(this.file), { recursive: true });
        fs.writeFileSync(`${this.file}.tmp`, JSON.stringify(ids));
        fs.renameSync(`${this.file}.tmp`, this.file);
        return;
      } catch {
        // An unwritable storage folder: the window's storage still keeps them, a little later.
      }
    }
    void this.state.update(ExpandedRows.key, ids);
  }

  private readFile(): string[] | undefined {
    if (!this.file) return undefined;
    try {
      const ids: unknown = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : undefined;
    } catch {
      return undefined;
    }
  }
}
