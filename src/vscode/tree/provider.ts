import * as vscode from 'vscode';
import { isHostError, type HostError, type Problem, type ReleaseSource } from '../../core/model';
import { missingCodeNote } from '../code';
import { treeItemFor, type RowFacts } from './items';
import type { AppNode, EnvironmentNode, LastKnown, ReleaseNode, TreeNode } from './nodes';
import { rowsToRedraw } from './redraw';

/** How long a Refresh may read the rows on screen before it shows them, so fast sources never flash "reading…". */
const PREFETCH_MS = 400;

export interface ReleasesTreeOptions {
  sources: () => Promise<ReleaseSource[]>;
  releasesPerApp: () => number;
  onProblems: (problems: Problem[]) => void;
  onError: (message: string, error: unknown) => void;
  /** Rows the user left expanded, by id. */
  isExpanded?: (id: string) => boolean;
  /** VS Code asked for a row's children: it is expanded (told before its expand event arrives). */
  onExpanded?: (id: string) => void;
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
 * Environments → apps → releases → host containers, read in the background level by level.
 *
 * getChildren never waits: it answers at once from what was read (or the rows read before,
 * marked "reading…", or a "reading" row) and the tree is redrawn when a read ends. VS Code
 * (1.100) files the rows of a children request under the parent it had when the request began
 * and cancels requests in flight on a redraw; any request that spans a redraw leaves an expanded
 * row empty or its ids registered twice ("Element with id … is already registered"). An answer
 * that never awaits cannot span one. A Refresh reads the rows on screen first (up to PREFETCH_MS)
 * and redraws only what changed, so local sources show their new rows without a "reading…" between.
 */
export class ReleasesTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | TreeNode[] | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly limits = new Map<string, number>();
  private readonly problems = new Map<string, Problem[]>();
  private readonly facts: LearnedFacts;
  /** Read-aheads run one after another: a repository with many apps must not start a git per app at once. */
  private readAhead: Promise<void> = Promise.resolve();
  /** Environment id → its hosts that could not be read: the environment shows a warning state. */
  private readonly hostTrouble = new Map<string, HostError[]>();
  /** Bumped by a refresh: a read of an older generation is not an answer any more. */
  private generation = 0;
  /** The children read per node id, for the current generation (or still being read). */
  private readonly reads = new Map<string, ChildrenRead>();
  /** The last children read without error per node id, across refreshes, and when. */
  private readonly lastRead = new Map<string, { children: TreeNode[]; at: number }>();
  private redrawTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  /** What VS Code was answered, per node id, as drawn (see `drawing`): the rows it shows. */
  private readonly drawn = new Map<string, string>();
  /**
   * One object per row id across reads, updated in place: what VS Code holds (and passes to a
   * command) always carries the current source and data, and a redraw can name it.
   */
  private readonly rows = new Map<string, TreeNode>();
  /** The row objects VS Code holds, by id: a redraw of one row must name the object it was given. */
  private readonly given = new Map<string, TreeNode>();
  /** The row objects each set was last answered with, by the parent's id. */
  private readonly answered = new Map<string, TreeNode[]>();
  /** Each row as VS Code was last told to draw it (see `look`), by id: a row updated in place reads anew. */
  private readonly drawnLooks = new Map<string, string>();
  /** Rows whose own look changed, to redraw at the next redraw (ROOT_ID: the whole tree). */
  private readonly toRedraw = new Set<string>();
  /** Rows whose children changed, to redraw at the next redraw (see redraw.ts). */
  private readonly setsToRedraw = new Set<string>();

  constructor(private readonly options: ReleasesTreeOptions) {
    this.facts = new LearnedFacts(options.isExpanded);
  }

  /**
   * Reads everything again: first the rows VS Code shows, for up to PREFETCH_MS, then redraws the
   * row sets that changed, none that read the same (a redraw between a right-click and its menu
   * choice would lose the row the choice is for). Rows still being read are redrawn marked.
   */
  refresh(): void {
    this.generation++;
    this.problems.clear();
    this.hostTrouble.clear();
    const generation = this.generation;
    const shown = new Map(this.drawn);
    if (shown.size === 0) return this.redraw(ROOT_ID, 0);
    void this.prefetchShown(new Set(shown.keys())).then(() => {
      if (generation !== this.generation) return;
      // A set read the same is left as drawn; one still being read is drawn marked "reading…".
      for (const [id, drawing] of shown) {
        const children = this.reads.get(id)?.children;
        if (!children || this.drawing(children) !== drawing) this.redrawSet(id, 0);
      }
    });
  }

  showMore(app: AppNode): void {
    this.limits.set(app.id, this.limitFor(app) + this.options.releasesPerApp());
    this.reads.delete(app.id);
    const generation = this.generation;
    void withDeadline(this.currentRead(app, app.id).done, Date.now() + PREFETCH_MS).then(() => {
      if (generation === this.generation) this.redrawSet(app.id, 0);
    });
  }

  /**
   * Redraws a row whose own look changed, and so what is under it (VS Code asks for its children
   * again), together with every other row asked for within `delayMs`. One row, not the whole tree:
   * a whole redraw while the user expands a row can leave that row collapsed.
   */
  private redraw(id: string, delayMs = 50): void {
    this.scheduleRedraw(this.toRedraw, id, delayMs);
  }

  /** Redraws the rows under a row (ROOT_ID: the environments), row by row where it can (see redraw.ts). */
  private redrawSet(id: string, delayMs = 50): void {
    this.scheduleRedraw(this.setsToRedraw, id, delayMs);
  }

  private scheduleRedraw(queue: Set<string>, id: string, delayMs: number): void {
    if (this.disposed) return;
    queue.add(id);
    if (this.redrawTimer) {
      if (delayMs > 0) return;
      clearTimeout(this.redrawTimer);
    }
    this.redrawTimer = setTimeout(() => this.redrawNow(), delayMs);
  }

  private redrawNow(): void {
    this.redrawTimer = undefined;
    const rowIds = [...this.toRedraw];
    const setIds = [...this.setsToRedraw];
    this.toRedraw.clear();
    this.setsToRedraw.clear();
    let whole = rowIds.includes(ROOT_ID);
    const rows = new Set<TreeNode>();
    for (const id of rowIds) {
      // A row VS Code was never given is not drawn: nothing to redraw.
      const row = this.given.get(id);
      if (row) rows.add(row);
    }
    for (const id of setIds) {
      const redrawn = this.rowsToRedrawUnder(id);
      if (redrawn === 'whole') whole = true;
      else redrawn.forEach((row) => rows.add(row));
    }
    if (whole) return this.changed.fire(undefined);
    for (const row of rows) this.drawnLooks.set(row.id, this.look(row));
    if (rows.size > 0) this.changed.fire([...rows]);
  }

  /**
   * The rows to redraw so that VS Code shows the set under `parentId` as it reads now: the rows
   * whose look changed, updated in place, when the set is the one on screen; else its parent
   * ('whole': the tree).
   */
  private rowsToRedrawUnder(parentId: string): TreeNode[] | 'whole' {
    const parent = parentId === ROOT_ID ? undefined : this.given.get(parentId);
    if (parentId !== ROOT_ID && !parent) return [];
    const shown = this.answered.get(parentId);
    const next = shown && this.childrenNow(parent);
    const changed = shown && next ? rowsToRedraw(shown.map((row) => ({ id: row.id, look: this.drawnLooks.get(row.id) ?? '' })), next.map((row) => ({ id: row.id, look: this.look(row) }))) : 'parent';
    if (changed === 'parent') return parent ? [parent] : 'whole';
    next!.forEach((row, index) => this.updateShownRow(parentId, shown![index], row));
    this.drawn.set(parentId, this.drawing(shown!));
    return changed.map((index) => shown![index]);
  }

  /** Makes the row object VS Code holds show `next` (a row of the same id), and the one object of that id from now on (see `rows`). */
  private updateShownRow(parentId: string, shown: TreeNode, next: TreeNode): void {
    if (shown === next) return;
    replaceContents(shown, next);
    // `next` was a marked copy: nothing else holds it.
    if (this.rows.get(next.id) !== next) return;
    this.rows.set(next.id, shown);
    for (const list of [this.reads.get(parentId)?.children, this.lastRead.get(parentId)?.children]) {
      const index = list?.indexOf(next) ?? -1;
      if (list && index >= 0) list[index] = shown;
    }
  }

  /**
   * Reads the row sets VS Code shows, from the root down (so each is read through the sources the
   * level above it just found), until they are read or PREFETCH_MS passed.
   */
  private async prefetchShown(shown: Set<string>): Promise<void> {
    const generation = this.generation;
    const deadline = Date.now() + PREFETCH_MS;
    const visit = async (node: TreeNode | undefined, id: string): Promise<void> => {
      if (generation !== this.generation) return;
      const children = await withDeadline(this.currentRead(node, id).done, deadline);
      if (!children) return;
      await Promise.all(children.filter((child) => hasChildren(child) && !child.lastKnown && shown.has(child.id)).map((child) => visit(child, child.id)));
    };
    await visit(undefined, ROOT_ID);
  }

  /** A row set as VS Code draws it: what a redraw would change. */
  private drawing(children: TreeNode[]): string {
    return children.map((child) => this.look(child)).join('\n');
  }

  /** A row as VS Code draws it. */
  private look(row: TreeNode): string {
    const item = this.getTreeItem(row);
    const tooltip = item.tooltip instanceof vscode.MarkdownString ? item.tooltip.value : item.tooltip;
    const icon = item.iconPath instanceof vscode.ThemeIcon ? item.iconPath.id : undefined;
    return JSON.stringify([row.id, item.label, item.description, item.contextValue, tooltip, icon, item.collapsibleState, item.command?.command]);
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
    if (before !== errors.map((error) => `${error.host} ${error.kind}`).join()) this.redraw(environmentId);
  }

  /** Answers at once, never awaiting a read (see the class comment). */
  getChildren(node?: TreeNode): TreeNode[] {
    // Noted before the redraw this answer may lead to, which would otherwise draw the row collapsed.
    if (node && hasChildren(node) && !this.options.isExpanded?.(node.id)) this.options.onExpanded?.(node.id);
    const children = this.childrenNow(node);
    if (!node || hasChildren(node)) {
      this.drawn.set(node?.id ?? ROOT_ID, this.drawing(children));
      this.answered.set(node?.id ?? ROOT_ID, [...children]);
    }
    for (const child of children) {
      this.given.set(child.id, child);
      this.drawnLooks.set(child.id, this.look(child));
    }
    return children;
  }

  private childrenNow(node?: TreeNode): TreeNode[] {
    if (node && !hasChildren(node)) return [];
    const id = node?.id ?? ROOT_ID;
    // A row from an earlier read: its source was replaced, so it shows what was read under it, marked
    // as it is. Never an empty answer for an expanded row: VS Code would leave it open and empty.
    if (node?.lastKnown) {
      const last = this.lastRead.get(id);
      if (last) return last.children.map((child) => marked(child, node.lastKnown!.state, last.at));
      return node.lastKnown.state === 'reading' ? [this.loadingRow(node, id)] : [];
    }
    // A row VS Code still shows before the redraw a Refresh owes it is read as the current one of its id.
    return this.answer(node, id, this.currentRead(node, id));
  }

  /**
   * The children once read, for callers that can wait (the test API): a source behind SSH is
   * waited for `patienceMs`, then answered as the view is (rows read before, or a "reading" row);
   * others are waited for. A row from before a Refresh is read again (its source still reads).
   */
  async readChildren(node?: TreeNode, patienceMs = PREFETCH_MS): Promise<TreeNode[]> {
    if (node && (!hasChildren(node) || node.lastKnown)) return this.childrenNow(node);
    const id = node?.id ?? ROOT_ID;
    const read = this.currentRead(node, id);
    if (!read.children) await (readsHosts(node) ? withDeadline(read.done, Date.now() + patienceMs) : read.done);
    return this.answer(node, id, read);
  }

  private answer(node: TreeNode | undefined, id: string, read: ChildrenRead): TreeNode[] {
    if (read.children) return read.children;
    read.redrawWhenDone = true;
    const last = this.lastRead.get(id);
    if (last && last.children.length > 0) return last.children.map((child) => marked(child, 'reading', last.at));
    return [this.loadingRow(node, id)];
  }

  private loadingRow(node: TreeNode | undefined, id: string): TreeNode {
    return { kind: 'loading', id: `${id}/loading`, message: readsHosts(node) ? 'Reading the hosts…' : 'Reading…' };
  }

  private currentRead(node: TreeNode | undefined, id: string): ChildrenRead {
    const read = this.reads.get(id);
    return read && read.generation === this.generation ? read : this.startRead(node && this.rows.get(id)?.kind === node.kind ? this.rows.get(id) : node, id);
  }

  private startRead(node: TreeNode | undefined, id: string): ChildrenRead {
    const generation = this.generation;
    const read: ChildrenRead = { generation, done: Promise.resolve([]) };
    read.done = this.guarded(node, () => this.readChildrenOf(node)).then((fresh) => {
      let children = uniqueIds(fresh).map((child) => this.keep(child));
      const failed = children.length === 1 && children[0]!.kind === 'loadError';
      const last = this.lastRead.get(id);
      if (!failed) this.lastRead.set(id, { children, at: Date.now() });
      // A read that failed keeps what was known, marked with its age, under the error.
      else if (last && last.children.length > 0) children = [...children, ...last.children.map((child) => marked(child, 'stale', last.at))];
      read.children = children;
      if (this.reads.get(id) === read && read.redrawWhenDone) this.redrawSet(id);
      return children;
    });
    this.reads.set(id, read);
    return read;
  }

  /** The row's one object, updated to what was just read (see `rows`). */
  private keep(row: TreeNode): TreeNode {
    const known = this.rows.get(row.id);
    if (!known || known.kind !== row.kind || known === row) {
      this.rows.set(row.id, row);
      return row;
    }
    replaceContents(known, row);
    return known;
  }

  private readChildrenOf(node: TreeNode | undefined): Promise<TreeNode[]> {
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
    const generation = this.generation;
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
      this.readAhead = this.readAhead.then(() => this.readAheadOf(appNode, generation));
    }
    return children;
  }

  /** The app's menu offers "Roll Back to Previous" only once a previous release is known. */
  private learned(node: AppNode, hasPrevious: boolean): void {
    if (this.facts.setHasPrevious(node.id, hasPrevious)) this.redraw(node.id);
  }

  /** Reads an app's releases before it is expanded: its menu needs to know of a previous release, and its expansion is then instant. */
  private async readAheadOf(node: AppNode, generation: number): Promise<void> {
    if (generation === this.generation) await this.currentRead(node, node.id).done;
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
    this.disposed = true;
    clearTimeout(this.redrawTimer);
    this.changed.dispose();
  }
}

/** Its children come from hosts over SSH (Kamal), not a local repository: they can be slow. */
function readsHosts(node: TreeNode | undefined): boolean {
  return node !== undefined && 'source' in node && node.source.kind === 'kamal';
}

function hasChildren(node: TreeNode): boolean {
  return node.kind === 'environment' || node.kind === 'app' || node.kind === 'release';
}

/** The promise's value, or undefined once `deadline` (ms since the epoch) passed. */
async function withDeadline<T>(promise: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()))))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Makes `target` the same row as `source`, in place: whoever holds `target` sees `source`. */
function replaceContents(target: TreeNode, source: TreeNode): void {
  const fields = target as unknown as Record<string, unknown>;
  for (const key of Object.keys(fields)) delete fields[key];
  Object.assign(fields, source);
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
