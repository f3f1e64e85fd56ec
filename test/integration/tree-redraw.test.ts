import { strict as assert } from 'node:assert';
import type { App, Environment, Release, ReleaseSource } from '../../src/core/model';
import type { TreeNode } from '../../src/vscode/tree/nodes';
import { ReleasesTreeProvider } from '../../src/vscode/tree/provider';
import { waitFor } from './helpers';

/**
 * VS Code forgets the handles of the rows under a row it is told changed, until the window asks
 * for them again; a menu entry chosen on one of them meanwhile gets no row. These tests answer as
 * the window does (getChildren again after each redraw of a parent) and check what each redraw names.
 */
describe('tree redraws keep the rows on screen', function () {
  this.timeout(30_000);

  const environment: Environment = { id: 'gitops:/repo:staging', source: 'gitops', name: 'staging', location: '/repo', problems: [] };
  const app: App = { id: `${environment.id}/a`, environment, name: 'a', problems: [] };
  const release = (version: string, current: boolean): Release => ({ id: `sha-${version}`, app, version, current, previous: !current, rollbackable: !current });

  let versions: Release[];
  let gate: Promise<void> | undefined;
  let provider: ReleasesTreeProvider;
  let redraws: Array<TreeNode[] | undefined>;

  const source = {
    kind: 'gitops',
    location: '/repo',
    environments: async () => [environment],
    apps: async () => [app],
    releases: async () => {
      await gate;
      return versions.map((entry) => ({ ...entry }));
    },
  } as unknown as ReleaseSource;

  /** The rows the window shows under `parent`, asking again after each redraw that names it or an ancestor, as VS Code does. */
  async function shown(parent: TreeNode | undefined, what: string): Promise<TreeNode[]> {
    return waitFor(
      () => {
        const rows = provider.getChildren(parent);
        return rows.some((row) => row.kind === 'loading') ? undefined : rows;
      },
      { what },
    );
  }

  const description = (row: TreeNode) => String(provider.getTreeItem(row).description ?? '');

  beforeEach(() => {
    versions = [release('v3', true), release('v2', false), release('v1', false)];
    gate = undefined;
    redraws = [];
    provider = new ReleasesTreeProvider({ sources: async () => [source], releasesPerApp: () => 10, onProblems: () => undefined, onError: () => undefined });
    provider.onDidChangeTreeData((rows) => redraws.push(rows === undefined ? undefined : Array.isArray(rows) ? rows : [rows]));
  });
  afterEach(() => provider.dispose());

  async function releaseRows(): Promise<{ appRow: TreeNode; rows: TreeNode[] }> {
    const [environmentRow] = await shown(undefined, 'the environment');
    const [appRow] = await shown(environmentRow, 'the app');
    const rows = await shown(appRow, 'the releases');
    assert.deepEqual(rows.map((row) => row.id), ['sha-v3', 'sha-v2', 'sha-v1'].map((id) => `${app.id}/${id}`));
    return { appRow, rows };
  }

  it('a Refresh that changes how releases look redraws those rows themselves, the same objects, not their app', async () => {
    const { appRow, rows } = await releaseRows();
    redraws = [];
    versions = [release('v3', false), release('v2', true), release('v1', false)];
    provider.refresh();
    const redrawn = await waitFor(() => redraws.at(-1), { what: 'a redraw after the Refresh' });
    assert.ok(!redrawn.includes(appRow), 'the app row was redrawn: VS Code would drop the handles of its releases');
    assert.deepEqual(new Set(redrawn), new Set([rows[0], rows[1]]), 'the redrawn rows are not the two whose state changed, as the objects VS Code holds');
    assert.match(description(rows[1]), /^current\b/);
    assert.doesNotMatch(description(rows[0]), /^current\b/);
  });

  it('rows shown "reading…" during a slow Refresh become the read rows in place, and stay the objects VS Code holds', async () => {
    const { appRow, rows } = await releaseRows();
    redraws = [];
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    provider.refresh();
    const marked = await waitFor(() => redraws.at(-1), { what: 'the rows redrawn as being read' });
    assert.ok(!marked.includes(appRow), 'the app row was redrawn to mark its releases');
    assert.deepEqual(new Set(marked), new Set(rows));
    assert.ok(rows.every((row) => /reading…/.test(description(row))), `not marked as being read: ${rows.map(description).join(' | ')}`);

    redraws = [];
    open();
    const read = await waitFor(() => redraws.at(-1), { what: 'the rows redrawn once read' });
    assert.deepEqual(new Set(read), new Set(rows));
    assert.ok(rows.every((row) => !/reading…/.test(description(row))), `still marked: ${rows.map(description).join(' | ')}`);
    assert.deepEqual(provider.getChildren(appRow), rows, 'the app answers other objects than those VS Code holds');
  });

  it('a release that came redraws the app, so its rows are asked for again', async () => {
    const { appRow } = await releaseRows();
    redraws = [];
    versions = [release('v4', true), ...versions.map((entry) => ({ ...entry, current: false }))];
    provider.refresh();
    const redrawn = await waitFor(() => redraws.at(-1), { what: 'a redraw after the Refresh' });
    assert.deepEqual(redrawn, [appRow]);
    assert.equal((await shown(appRow, 'the releases')).length, 4);
  });
});
