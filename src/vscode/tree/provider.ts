import * as vscode from 'vscode';
import { isHostError, type Problem, type ReleaseSource } from '../../core/model';
import { treeItemFor, type RowFacts } from './items';
import type { AppNode, EnvironmentNode, ReleaseNode, TreeNode } from './nodes';

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

  constructor(private readonly options: ReleasesTreeOptions) {
    this.facts = new LearnedFacts(options.isExpanded);
  }

  refresh(node?: TreeNode): void {
    if (!node) {
      this.problems.clear();
      this.shownApps.clear();
    }
    this.changed.fire(node);
  }

  showMore(app: AppNode): void {
    this.limits.set(app.id, this.limitFor(app) + this.options.releasesPerApp());
    this.changed.fire(app);
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    return treeItemFor(node, Date.now(), this.facts);
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    try {
      if (!node) return await this.environments();
      switch (node.kind) {
        case 'environment':
          return await this.apps(node);
        case 'app':
          return await this.releases(node);
        case 'release':
          return await this.hostEntries(node);
        default:
          return [];
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.options.onError(message, error);
      return [{ kind: 'loadError', id: `${node?.id ?? 'root'}/error`, message }];
    }
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
    return all.map(({ source, environment }): EnvironmentNode => ({
      kind: 'environment',
      id: environment.id,
      source,
      environment,
      showSource: (nameCount.get(environment.name) ?? 0) > 1,
    }));
  }

  private async apps(node: EnvironmentNode): Promise<TreeNode[]> {
    const apps = await node.source.apps(node.environment);
    const children: TreeNode[] = node.environment.problems.map((problem, index) => ({ kind: 'problem', id: `${node.id}/problem/${index}`, problem }));
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
    const releases = await node.source.releases(node.app, { limit: limit + page });
    this.learned(node, releases.some((release) => release.previous));
    const children: TreeNode[] = releases.slice(0, limit).map((release): ReleaseNode => ({
      kind: 'release',
      id: `${node.id}/${release.id}`,
      source: node.source,
      release,
    }));
    if (releases.length > limit) children.push({ kind: 'showMore', id: `${node.id}/more`, app: node, count: Math.min(page, releases.length - limit) });
    return children;
  }

  private async hostEntries(node: ReleaseNode): Promise<TreeNode[]> {
    if (!node.source.hostEntries) return [];
    const entries = await node.source.hostEntries(node.release);
    return entries.map((entry): TreeNode =>
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
