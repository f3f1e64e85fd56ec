import * as vscode from 'vscode';
import { isHostError, type HostError, type Problem, type ReleaseSource } from '../../core/model';
import { missingCodeNote } from '../code';
import { treeItemFor, type RowFacts } from './items';
import type { AppNode, EnvironmentNode, ReleaseNode, TreeNode } from './nodes';

/** How long a node's children may take before it shows "reading…" and fills in when they arrive. */
const LOADING_AFTER_MS = 400;

export interface ReleasesTreeOptions {
  sources: () => Promise<ReleaseSource[]>;
  releasesPerApp: () => number;
  onProblems: (problems: Problem[]) => void;
  onError: (message: string, error: unknown) => void;
  /** Rows the user left expanded, by id. */
  isExpanded?: (id: string) => boolean;
}

/** Facts about rows learned while reading their children, so their items (and menus) can change. */
class LearnedFacts implements RowFacts {
  private readonly previous = new Map<string, boolean>();
  constructor(readonly isExpanded?: (id: string) => boolean) {}
  hasPrevious(appId: string): boolean | undefined {
    return this.previous.get(appId);
  }
  /** True when this changed what the app row shows. */
  setHasPrevious(appId: string, value: boolean): boolean {
    if (this.previous.get(appId) === value) return false;
    this.previous.set(appId, value);
    return true;
  }
}

/** Environments → apps → releases → host containers, read lazily level by level. */
export class ReleasesTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly limits = new Map<string, number>();
  private readonly problems = new Map<string, Problem[]>();
  private readonly facts: LearnedFacts;
  /** Read-aheads run one after another: a repository with many apps must not start a git per app at once. */
  private readAhead: Promise<void> = Promise.resolve();
  /** The app nodes the tree shows now: only these may be named in a change event (a stale one is not in VS Code's tree). */
  private readonly shownApps = new Map<string, AppNode>();
  /** Environment id → its hosts that could not be read: the environment shows a warning state. */
  private readonly hostTrouble = new Map<string, HostError[]>();
  private readonly environmentNodes = new Map<string, EnvironmentNode>();
  /** Children still being read, per node: a slow Kamal host delays only its own node. */
  private readonly pending = new Map<string, Promise<TreeNode[]>>();

  constructor(private readonly options: ReleasesTreeOptions) {
    this.facts = new LearnedFacts(options.isExpanded);
  }

  refresh(node?: TreeNode): void {
    if (!node) {
      this.problems.clear();
      this.shownApps.clear();
      this.hostTrouble.clear();
    }
    if (node) this.pending.delete(node.id);
    else this.pending.clear();
    this.changed.fire(node);
  }

  showMore(app: AppNode): void {
    this.limits.set(app.id, this.limitFor(app) + this.options.releasesPerApp());
    this.changed.fire(app);
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const item = treeItemFor(node, Date.now(), this.facts);
    const trouble = node.kind === 'environment' ? this.hostTrouble.get(node.id) : undefined;
    if (trouble && trouble.length > 0) {
      const hosts = [...new Set(trouble.map((error) => error.host))];
      item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
      item.description = `${item.description ? `${String(item.description)} · ` : ''}${hosts.length === 1 ? `${hosts[0]} not read` : `${hosts.length} hosts not read`}`;
      item.tooltip = `${typeof item.tooltip === 'string' ? `${item.tooltip}\n` : ''}${trouble.map((error) => `${error.host} (${error.kind ?? 'unreachable'}): ${error.message}`).join('\n')}`;
    }
    return item;
  }

  /** Records what the app's host read found; redraws the environment when its warning state changes. */
  private noteHostTrouble(environmentId: string, errors: HostError[]): void {
    const before = (this.hostTrouble.get(environmentId) ?? []).map((error) => `${error.host} ${error.kind}`).join();
    if (errors.length > 0) this.hostTrouble.set(environmentId, errors);
    else this.hostTrouble.delete(environmentId);
    const node = this.environmentNodes.get(environmentId);
    if (node && before !== errors.map((error) => `${error.host} ${error.kind}`).join()) this.changed.fire(node);
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    if (!node) return this.guarded(undefined, () => this.environments());
    switch (node.kind) {
      // Only sources behind SSH can be slow; local repositories answer at once.
      case 'environment':
        return node.source.kind === 'kamal' ? this.progressive(node, 'Reading the hosts…', () => this.apps(node)) : this.guarded(node, () => this.apps(node));
      case 'app':
        return node.source.kind === 'kamal' ? this.progressive(node, 'Reading the hosts…', () => this.releases(node)) : this.guarded(node, () => this.releases(node));
      case 'release':
        return this.guarded(node, () => this.hostEntries(node));
      default:
        return [];
    }
  }

  private async guarded(node: TreeNode | undefined, read: () => Promise<TreeNode[]>): Promise<TreeNode[]> {
    try {
      return await read();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.options.onError(message, error);
      return [{ kind: 'loadError', id: `${node?.id ?? 'root'}/error`, message }];
    }
  }

  /**
   * Children that arrive within a moment are returned as they are; slower ones (hosts that do not
   * answer until their timeout) show a "reading" row at once and replace it when they arrive, so
   * the view is never held by one source.
   */
  private async progressive(node: TreeNode, message: string, read: () => Promise<TreeNode[]>): Promise<TreeNode[]> {
    let pending = this.pending.get(node.id);
    if (!pending) {
      pending = this.guarded(node, read);
      this.pending.set(node.id, pending);
    }
    const settled = pending;
    let timer: NodeJS.Timeout | undefined;
    const early = await Promise.race([settled, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), LOADING_AFTER_MS)))]);
    clearTimeout(timer);
    if (early !== undefined) {
      if (this.pending.get(node.id) === settled) this.pending.delete(node.id);
      return early;
    }
    void settled.then(() => {
      // The next getChildren takes the result from `pending` at once.
      if (this.pending.get(node.id) === settled) this.changed.fire(node);
    });
    return [{ kind: 'loading', id: `${node.id}/loading`, message }];
  }

  private async environments(): Promise<TreeNode[]> {
    const sources = await this.options.sources();
    const perSource = await Promise.all(
      sources.map(async (source) => {
        try {
          return (await source.environments()).map((environment) => ({ source, environment }));
        } catch (error) {
          this.options.onError(`${source.location}: ${error instanceof Error ? error.message : String(error)}`, error);
          return [];
        }
      }),
    );
    const all = perSource.flat();
    const nameCount = new Map<string, number>();
    for (const { environment } of all) nameCount.set(environment.name, (nameCount.get(environment.name) ?? 0) + 1);
    for (const { environment } of all) this.recordProblems(environment.id, environment.problems);
    return all.map(({ source, environment }): EnvironmentNode => {
      const node: EnvironmentNode = { kind: 'environment', id: environment.id, source, environment, showSource: (nameCount.get(environment.name) ?? 0) > 1 };
      this.environmentNodes.set(node.id, node);
      return node;
    });
  }

  private async apps(node: EnvironmentNode): Promise<TreeNode[]> {
    const apps = await node.source.apps(node.environment);
    const children: TreeNode[] = node.environment.problems.map((problem, index) => ({ kind: 'problem', id: `${node.id}/problem/${index}`, problem }));
    if (node.source.hostErrors && apps.length > 0) {
      // The host read behind the apps is already done (the lock comes from it): this costs nothing.
      void Promise.all(apps.map((app) => node.source.hostErrors!(app).catch(() => [] as HostError[]))).then((errors) => this.noteHostTrouble(node.id, errors.flat()));
    }
    for (const app of apps) {
      this.recordProblems(app.id, app.problems);
      children.push(...app.problems.map((problem, index): TreeNode => ({ kind: 'problem', id: `${app.id}/problem/${index}`, problem })));
      const appNode: AppNode = { kind: 'app', id: app.id, source: node.source, app };
      children.push(appNode);
      this.shownApps.set(appNode.id, appNode);
      this.readAhead = this.readAhead.then(() => this.learnPrevious(appNode));
    }
    return children;
  }

  /** Reads an app's releases ahead of its expansion, so its menu offers "Roll Back to Previous" only when there is one. */
  private learned(node: AppNode, hasPrevious: boolean): void {
    if (this.facts.setHasPrevious(node.id, hasPrevious) && this.shownApps.get(node.id) === node) this.changed.fire(node);
  }

  private async learnPrevious(node: AppNode): Promise<void> {
    try {
      const releases = await node.source.releases(node.app, { limit: this.limitFor(node) + this.options.releasesPerApp() });
      this.learned(node, releases.some((release) => release.previous));
    } catch {
      // Expanding the app shows why its releases cannot be read.
    }
  }

  private limitFor(app: AppNode): number {
    return this.limits.get(app.id) ?? this.options.releasesPerApp();
  }

  private async releases(node: AppNode): Promise<TreeNode[]> {
    const limit = this.limitFor(node);
    const page = this.options.releasesPerApp();
    // A page more than shown tells how many "Show more…" has behind it.
    const [releases, hostErrors] = await Promise.all([node.source.releases(node.app, { limit: limit + page }), node.source.hostErrors?.(node.app) ?? []]);
    this.learned(node, releases.some((release) => release.previous));
    // A host that could not be read is said once, here at the app, not under every release.
    const children: TreeNode[] = hostErrors.map((error): TreeNode => ({ kind: 'hostError', id: `${node.id}/${error.id}`, error }));
    const running = releases.find((release) => release.current);
    const firstMissing = releases.slice(0, limit).find((release) => missingCodeNote(release));
    children.push(...releases.slice(0, limit).map((release): ReleaseNode => ({
      kind: 'release',
      id: `${node.id}/${release.id}`,
      source: node.source,
      release,
      running,
      noteMissingCode: release === firstMissing,
    })));
    if (releases.length > limit) children.push({ kind: 'showMore', id: `${node.id}/more`, app: node, count: Math.min(page, releases.length - limit) });
    return children;
  }

  private async hostEntries(node: ReleaseNode): Promise<TreeNode[]> {
    if (!node.source.hostEntries) return [];
    const entries = await node.source.hostEntries(node.release);
    // Sources that list host errors at the app leave them out here.
    const shown = node.source.hostErrors ? entries.filter((entry) => !isHostError(entry)) : entries;
    return shown.map((entry): TreeNode =>
      isHostError(entry)
        ? { kind: 'hostError', id: `${node.id}/${entry.id}`, error: entry }
        : { kind: 'hostContainer', id: `${node.id}/${entry.id}`, source: node.source, release: node.release, container: entry },
    );
  }

  private recordProblems(key: string, problems: Problem[]): void {
    this.problems.set(key, problems);
    this.options.onProblems([...this.problems.values()].flat());
  }

  dispose(): void {
    this.changed.dispose();
  }
}
