import * as path from 'node:path';
import * as vscode from 'vscode';
import { ReleaseCodeReader } from '../core/commits';
import { discoverSources, type SourceFinder } from '../core/discovery';
import type { ReleaseSource, Reporter } from '../core/model';
import type { SessionPool } from '../core/ssh/types';
import { readSettings, resolveWorkspacePath } from './settings';

/**
 * Finds the workspace's release sources on first use (never at activation), keeps them until
 * a refresh, and watches the files each one reads.
 */
export class SourceRegistry implements vscode.Disposable {
  private current: Promise<ReleaseSource[]> | undefined;
  private watchers: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when a watched file changes; the tree refreshes on it (debounced). */
  readonly onDidChange = this.changed.event;
  private debounce: NodeJS.Timeout | undefined;
  /** One across refreshes, so a commit missing from the local clone is said once per window, not per refresh. */
  private readonly code: ReleaseCodeReader;

  constructor(
    private readonly finders: readonly SourceFinder[],
    private readonly pool: () => SessionPool,
    private readonly reporter: Reporter,
  ) {
    this.code = new ReleaseCodeReader({ folders: () => (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath), reporter });
  }

  sources(): Promise<ReleaseSource[]> {
    this.current ??= this.discover();
    return this.current;
  }

  /** Forget everything: the next `sources()` discovers again and sources re-read their data. */
  async refresh(): Promise<void> {
    const previous = this.current;
    this.current = undefined;
    // A fetch, a new clone or folder: read repositories and commits again.
    this.code.refresh();
    this.disposeWatchers();
    for (const source of (await previous?.catch(() => [])) ?? []) source.dispose?.();
  }

  private async discover(): Promise<ReleaseSource[]> {
    const settings = readSettings();
    const folders = (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath);
    const started = Date.now();
    const sources = await discoverSources(
      this.finders,
      {
        folders,
        gitopsPaths: settings.gitopsPaths.map(resolveWorkspacePath),
        gitopsMode: settings.gitopsMode,
        gitopsEnvironmentName: settings.gitopsEnvironmentName || undefined,
        gitopsNetworkTimeoutSeconds: settings.gitopsNetworkTimeoutSeconds,
        kamalConfigPaths: settings.kamalConfigPaths.map(resolveWorkspacePath),
        kamalRunHooks: settings.runHooks,
        env: process.env,
      },
      { pool: this.pool, connectAllowed: () => vscode.workspace.isTrusted, reporter: this.reporter, code: this.code },
    );
    this.reporter.info(`Found ${sources.length} source(s) in ${Date.now() - started} ms: ${sources.map((s) => `${s.kind} ${s.location}`).join(', ') || 'none'}`);
    this.watch(sources);
    return sources;
  }

  private watch(sources: ReleaseSource[]): void {
    for (const source of sources) {
      const base = source.kind === 'kamal' ? path.dirname(path.dirname(source.location)) : source.location;
      for (const pattern of source.watchPatterns?.() ?? []) {
        const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(base), pattern));
        const fire = () => this.fireDebounced();
        watcher.onDidChange(fire);
        watcher.onDidCreate(fire);
        watcher.onDidDelete(fire);
        this.watchers.push(watcher);
      }
    }
  }

  private fireDebounced(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.changed.fire(), 300);
  }

  private disposeWatchers(): void {
    for (const watcher of this.watchers) watcher.dispose();
    this.watchers = [];
  }

  dispose(): void {
    clearTimeout(this.debounce);
    this.disposeWatchers();
    void this.current?.then((sources) => sources.forEach((source) => source.dispose?.()));
    this.changed.dispose();
  }
}
