import * as vscode from 'vscode';
import { isHostError, type HostError, type Problem, type ReleaseSource } from '../../core/model';
import { missingCodeNote } from '../code';
import { treeItemFor, type RowFacts } from './items';
import type { AppNode, EnvironmentNode, LastKnown, ReleaseNode, TreeNode } from './nodes';

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

/** One read of a node's children, for one generation of the tree (a Refresh starts the next). */
interface ChildrenRead {
  generation: number;
  done: Promise<TreeNode[]>;
  children?: TreeNode[];
  /** Set once a change is owed to VS Code when this read ends (it answered with earlier rows). */
  redrawWhenDone?: boolean;
}

const ROOT_ID = '';

/**
 * Environments → apps → releases → host containers, read lazily level by level.
 *
 * Every change is told to VS Code as a change of the whole tree, never of one row: VS Code (1.100)
 * registers the rows of a children request under the parent it had when the request began, so a
 * row changed while its own or an ancestor's children are being read leaves their ids registered
 * twice; the next read of that row then fails with "Element with id … is already registered" and
 * the row stays expanded and empty. A change of the whole tree cancels every request in flight
 * and forgets every id. Children are kept per generation, so such a redraw reads nothing again.
 */
export class ReleasesTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly limits = new Map<string, number>();
  private readonly problems = new Map<string, Problem[]>();
  private readonly facts: LearnedFacts;
  /** Read-aheads run one after another: a repository with many apps must not start a git per app at once. */
  private readAhead: Promise<void> = Promise.resolve();
  /** Environment id → its hosts that could not be read: the environment shows a warning state. */
  private readonly hostTrouble = new Map<string, HostError[]>();
  /** Bumped by a refresh: reads of an older generation are shown only as last known rows. */
  private generation = 0;
  /** The children read per node id, for the current generation (or still being read). */
  private readonly reads = new Map<string, ChildrenRead>();
  /** The last children read without error per node id, across refreshes, and when. */
  private readonly lastRead = new Map<string, { children: TreeNode[]; at: number }>();
  private redrawTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ReleasesTreeOptions) {
    this.facts = new LearnedFacts(options.isExpanded);
  }

  /** Reads everything again; the rows read before stay shown, marked, until their new read answers. */
  refresh(node?: TreeNode): void {
    if (node) {
      this.reads.delete(node.id);
    } else {
      this.generation++;
      this.problems.clear();
      this.hostTrouble.clear();
    }
    this.redraw(0);
  }

  showMore(app: AppNode): void {
    this.limits.set(app.id, this.limitFor(app) + this.options.releasesPerApp());
    this.reads.delete(app.id);
    this.redraw(0);
  }

  /** One change of the whole tree for every change asked for within `delayMs` (see the class comment). */
  private redraw(delayMs = 50): void {
    if (this.redrawTimer) {
      if (delayMs > 0) return;
      clearTimeout(this.redrawTimer);
    }
    this.redrawTimer = setTimeout(() => {
      this.redrawTimer = undefined;
      this.changed.fire(undefined);
    }, delayMs);
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

  /** Records what the app's host read found; redraws when the environment's warning state changes. */
  private noteHostTrouble(environmentId: string, errors: HostError[]): void {
    const before = (this.hostTrouble.get(environmentId) ?? []).map((error) => `${error.host} ${error.kind}`).join();
    if (errors.length > 0) this.hostTrouble.set(environmentId, errors);
    else this.hostTrouble.delete(environmentId);
    if (before !== errors.map((error) => `${error.host} ${error.kind}`).join()) this.redraw();
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    if (node && !['environment', 'app', 'release'].includes(node.kind)) return [];
    const id = node?.id ?? ROOT_ID;
    let read = this.reads.get(id);
    if (!read || read.generation !== this.generation) read = this.startRead(node, id);
    if (read.children) return read.children;
    // Only sources behind SSH can be slow; local repositories are waited for.
    if (!node || !('source' in node) || node.source.kind !== 'kamal') return read.done;
    let timer: NodeJS.Timeout | undefined;
    const early = await Promise.race([read.done, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), LOADING_AFTER_MS)))]);
    clearTimeout(timer);
    if (early !== undefined) return early;
    // A slow host: the rows read before stay, marked "reading…", so one host never blanks the others.
    read.redrawWhenDone = true;
    const last = this.lastRead.get(id);
    if (last && last.children.length > 0) return last.children.map((child) => marked(child, 'reading', last.at));
    return [{ kind: 'loading', id: `${id}/loading`, message: 'Reading the hosts…' }];
  }

  private startRead(node: TreeNode | undefined, id: string): ChildrenRead {
    const read: ChildrenRead = { generation: this.generation, done: Promise.resolve([]) };
    read.done = this.guarded(node, () => this.readChildren(node)).then((fresh) => {
      let children = uniqueIds(fresh);
      const failed = children.length === 1 && children[0]!.kind === 'loadError';
      const last = this.lastRead.get(id);
      if (!failed) this.lastRead.set(id, { children, at: Date.now() });
      // A read that failed keeps what was known, marked with its age, under the error.
      else if (last && last.children.length > 0) children = [...children, ...last.children.map((child) => marked(child, 'stale', last.at))];
      read.children = children;
      if (this.reads.get(id) !== read) return children;
      if (read.redrawWhenDone) this.redraw();
      return children;
    });
    this.reads.set(id, read);
    return read;
  }

  private readChildren(node: TreeNode | undefined): Promise<TreeNode[]> {
    if (!node) return this.environments();
    switch (node.kind) {
      case 'environment':
        return this.apps(node);
      case 'app':
        return this.releases(node);
      case 'release':
        return this.hostEntries(node);
      default:
        return Promise.resolve([]);
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
      return { kind: 'environment', id: environment.id, source, environment, showSource: (nameCount.get(environment.name) ?? 0) > 1 };
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
      this.readAhead = this.readAhead.then(() => this.learnPrevious(appNode));
    }
    return children;
  }

  /** Reads an app's releases ahead of its expansion, so its menu offers "Roll Back to Previous" only when there is one. */
  private learned(node: AppNode, hasPrevious: boolean): void {
    if (this.facts.setHasPrevious(node.id, hasPrevious)) this.redraw();
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
    clearTimeout(this.redrawTimer);
    this.changed.dispose();
  }
}

/** A row from an earlier read, shown as such. */
function marked(node: TreeNode, state: LastKnown['state'], since: number): TreeNode {
  return { ...node, lastKnown: { state, since: node.lastKnown?.since ?? since } };
}

/** VS Code refuses a second row with an id it has; a source that lists one twice must not blank the level. */
function uniqueIds(children: TreeNode[]): TreeNode[] {
  const seen = new Map<string, number>();
  return children.map((child) => {
    const count = seen.get(child.id) ?? 0;
    seen.set(child.id, count + 1);
    return count === 0 ? child : { ...child, id: `${child.id}#${count + 1}` };
  });
}
