import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ReleaseCodeReader } from '../../src/core/commits';
import type { App, Environment, Release, ReleaseCode, ReleaseSource, RollbackPlan } from '../../src/core/model';
import type { ChangesView } from '../../src/vscode/diff';
import type { DeployRollbackApi } from '../../src/vscode/extension';
import type { AppNode, EnvironmentNode, ReleaseNode } from '../../src/vscode/tree/nodes';
import { makeAppRepo, type AppRepo } from '../fixtures/app-repo';
import { makeGitopsFixture, runGit, type GitopsFixture, type ReleaseSourceCommit } from '../fixtures/gitops';
import { activateExtension, EXTENSION_ID, waitFor, workspaceFolder } from './helpers';

interface MenuEntry {
  command: string;
  when: string;
  group?: string;
}

/** The context-menu commands package.json shows for a contextValue (its `viewItem =~ /…/` clause). */
function menuFor(contextValue: string): string[] {
  const entries = (vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as { contributes: { menus: { 'view/item/context': MenuEntry[] } } }).contributes.menus['view/item/context'];
  return entries
    .filter((entry) => entry.group !== 'inline')
    .filter((entry) => new RegExp(/viewItem =~ \/(.*)\/$/.exec(entry.when)![1]).test(contextValue))
    .map((entry) => entry.command.replace('deployRollback.', ''))
    .filter((command) => /compare|Commit/.test(command));
}

const short = (sha: string) => sha.slice(0, 7);

const environment: Environment = { id: 'kamal:/shop/config/deploy.yml:production', source: 'kamal', name: 'production', location: '/shop/config/deploy.yml', problems: [] };
const app: App = { id: `${environment.id}/shop`, environment, name: 'shop', problems: [] };

describe('releases linked to their commits in VS Code', function () {
  this.timeout(60_000);
  let api: DeployRollbackApi;
  let dir: string;
  let repo: AppRepo;
  let code: ReleaseCodeReader;
  let nodes: Record<'running' | 'uncommitted' | 'tagged' | 'root' | 'unknown' | 'unknownToo', ReleaseNode>;
  let r1: string, r2: string, r3: string, r4: string;

  before(async () => {
    api = await activateExtension();
    // Inside the workspace folder, where the app's clone is for a user: the git extension opens no repository outside it.
    dir = fs.mkdtempSync(path.join(workspaceFolder(), 'drb-vscode-commits-'));
    // The app's own repository (a merged pull request, squash merges, tags v1…v3), pushed to a bare origin.
    repo = makeAppRepo(path.join(dir, 'shop'), { tags: true });
    runGit(['clone', '-q', '--bare', repo.root, path.join(dir, 'shop.git')], dir);
    repo.git(['remote', 'add', 'origin', path.join(dir, 'shop.git')]);
    repo.git(['fetch', '-q', 'origin']);
    [r1, r2, r3, r4] = repo.releases.map((release) => release.sha);
    code = new ReleaseCodeReader({ folders: () => [dir] });
    const configFile = path.join(repo.root, 'config', 'deploy.yml');
    // Each release's code as the Kamal source attaches it: the version read as a commit or tag of the config's repository.
    const release = (version: string, extra: Partial<Release>): Release => ({ id: `${app.id}@${version}`, app, version, current: false, rollbackable: true, direction: 'back', ...extra });
    const releases = {
      running: release(r4, { current: true, rollbackable: false, created: '2026-11-30T09:00:00Z', triggeredBy: 'deployer@example.com' }),
      uncommitted: release(`${r3}_uncommitted_0123456789abcdef`, { previous: true, created: '2026-11-29T09:00:00Z', triggeredBy: 'ops' }),
      tagged: release('v2', { created: '2026-11-01T09:00:00Z' }),
      root: release(r1, { created: '2026-10-20T09:00:00Z' }),
      unknown: release('f'.repeat(40), { created: '2026-10-01T09:00:00Z' }),
      unknownToo: release('e'.repeat(40), { created: '2026-09-01T09:00:00Z' }),
    };
    await code.attachKamalCode(configFile, Object.values(releases));
    const source = { kind: 'kamal', location: environment.location, releases: async () => Object.values(nodes).map((node) => node.release) } as unknown as ReleaseSource;
    // As the tree builds them: every row knows the running release; the first unknown one says so for all.
    nodes = Object.fromEntries(
      Object.entries(releases).map(([name, value]) => [
        name,
        { kind: 'release', id: `${app.id}/${value.id}`, source, release: value, running: releases.running, noteMissingCode: name === 'unknown' } satisfies ReleaseNode,
      ]),
    ) as typeof nodes;
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const item = (node: ReleaseNode) => api.tree.getTreeItem(node);
  /** The tooltip's markdown without its escapes, as it reads on screen. */
  const tooltip = (node: ReleaseNode) =>
    (item(node).tooltip as vscode.MarkdownString).value
      .replace(/&nbsp;/g, ' ')
      .replace(/\\(.)/g, '$1');

  it('labels a sha version by its short sha, and describes it by state, subject, author and the age of its commit', () => {
    const running = item(nodes.running);
    assert.equal(running.label, short(r4));
    // The label is the sha already: the description does not repeat it.
    assert.match(String(running.description), /^current · Faster search results \(#17\) · Bob Builder · \d+(mo|w|d) ago$/);
    // Built from a dirty tree says so before the commit.
    assert.equal(item(nodes.uncommitted).label, short(r3));
    assert.match(String(item(nodes.uncommitted).description), /^previous · uncommitted changes · Bump rack to 3\.1\.8 · Alice Example · \d+(mo|w|d) ago$/);
    // A tag is not the sha: the short sha first, and a merged pull request by its title, as GitLens shows it.
    assert.equal(item(nodes.tagged).label, 'v2');
    assert.match(String(item(nodes.tagged).description), new RegExp(`^${short(r2)} Add product search \\(#12\\) · Alice Example · \\d+(mo|w|d) ago$`));
  });

  it('says once that a commit is not in the local clone, without an error', () => {
    assert.match(String(item(nodes.unknown).description), /^not in your local clone: fetch to see it · \d+\w+ ago$/);
    assert.doesNotMatch(String(item(nodes.unknownToo).description), /local clone/);
    // Each row's tooltip still says why.
    assert.match(tooltip(nodes.unknownToo), /not in your local clone: fetch to see it/);
    assert.equal(item(nodes.unknown).label, 'fffffff');
  });

  it('puts the whole message, author, commit date, deploy time and deployer in the tooltip', () => {
    const text = tooltip(nodes.tagged);
    assert.match(text, /Merge pull request #12 from acme\/search/);
    assert.match(text, /Add product search/);
    assert.match(text, /Author: Alice Example <alice@example\.com>/);
    const committed = repo.git(['log', '-1', '--format=%cI', r2]).trim();
    assert.ok(text.includes(`Commit date: ${committed} (`), `no commit date ${committed} in:\n${text}`);
    assert.match(text, /Last booted: `2026-11-01T09:00:00Z/);
    const running = tooltip(nodes.running);
    assert.match(running, /Last booted by: `deployer@example\.com`/);
    assert.match(running, new RegExp(`\\*\\*${r4}\\*\\*`), 'the whole version');
    assert.match(tooltip(nodes.uncommitted), /Built from uncommitted changes/);
  });

  it('offers Compare with Running Release, Open Commit and Copy Commit SHA only where the commits are local', () => {
    assert.deepEqual(menuFor(String(item(nodes.tagged).contextValue)), ['compareWithRunning', 'openCommit', 'copyCommitSha']);
    // The running release is not compared with itself.
    assert.deepEqual(menuFor(String(item(nodes.running).contextValue)), ['openCommit', 'copyCommitSha']);
    assert.deepEqual(menuFor(String(item(nodes.unknown).contextValue)), []);
    // Nothing of it in the palette: each needs a release row.
    const palette = (vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as { contributes: { menus: { commandPalette: MenuEntry[] } } }).contributes.menus.commandPalette;
    for (const command of ['compareWithRunning', 'openCommit', 'copyCommitSha']) {
      assert.equal(palette.find((entry) => entry.command === `deployRollback.${command}`)?.when, 'false', `${command} is offered in the palette`);
    }
  });

  it('compares the running release with an older one in the multi-file diff editor, through git: URIs', async () => {
    const view = (await vscode.commands.executeCommand('deployRollback.compareWithRunning', nodes.tagged)) as ChangesView | undefined;
    assert.ok(view, 'the compare opened nothing (an error was shown)');
    const byFile = new Map(view.resources.map(([resource, original, modified]) => [path.relative(repo.root, resource.fsPath), { original, modified }]));
    assert.deepEqual([...byFile.keys()].sort(), ['Gemfile.lock', 'app/checkout.rb', 'app/products.rb', 'app/search/index.rb']);
    const gitUri = (file: string, ref: string) => {
      const fsPath = vscode.Uri.file(path.join(repo.root, file)).fsPath;
      return vscode.Uri.file(fsPath).with({ scheme: 'git', query: JSON.stringify({ path: fsPath, ref }) }).toString();
    };
    // Running on the left, the release on the right; a file the release lacks has no right side.
    assert.equal(byFile.get('app/products.rb')!.original?.toString(), gitUri('app/products.rb', r4));
    assert.equal(byFile.get('app/products.rb')!.modified?.toString(), gitUri('app/products.rb', r2));
    assert.equal(byFile.get('app/checkout.rb')!.original?.toString(), gitUri('app/checkout.rb', r4));
    assert.equal(byFile.get('app/checkout.rb')!.modified, undefined);
    assert.equal(view.title, `shop: ${short(r4)} (running) ↔ ${short(r2)}`);
    // The editor adds the file count to the title: "… (4 files)".
    await waitFor(() => vscode.window.tabGroups.activeTabGroup.activeTab?.label === `${view.title} (4 files)`, {
      what: `a changes editor titled "${view.title}" (active tab: "${vscode.window.tabGroups.activeTabGroup.activeTab?.label}")`,
    });
    // The git extension reads each side from the commit it names.
    const { original, modified } = byFile.get('app/products.rb')!;
    assert.equal((await vscode.workspace.openTextDocument(original!)).getText(), repo.git(['show', `${r4}:app/products.rb`]));
    assert.equal((await vscode.workspace.openTextDocument(modified!)).getText(), repo.git(['show', `${r2}:app/products.rb`]));
  });

  it('finds the running release itself when the row does not carry it', async () => {
    const node: ReleaseNode = { ...nodes.uncommitted, running: undefined };
    const view = (await vscode.commands.executeCommand('deployRollback.compareWithRunning', node)) as ChangesView | undefined;
    assert.deepEqual(view?.resources.map(([resource]) => path.relative(repo.root, resource.fsPath)), ['app/search/index.rb']);
  });

  it('opens a commit as its change to its first parent (a first commit: every file added), and copies its sha', async () => {
    const merge = (await vscode.commands.executeCommand('deployRollback.openCommit', nodes.tagged)) as ChangesView | undefined;
    assert.equal(merge?.title, `${short(r2)} Add product search (#12)`);
    assert.deepEqual(merge?.resources.map(([resource, original]) => [path.relative(repo.root, resource.fsPath), original]), [
      ['app/search/index.rb', undefined],
      ['app/views/search.html', undefined],
    ]);
    const first = (await vscode.commands.executeCommand('deployRollback.openCommit', nodes.root)) as ChangesView | undefined;
    assert.equal(first?.title, `${short(r1)} Initial shop app`);
    assert.deepEqual(first?.resources.map(([resource, original, modified]) => [path.relative(repo.root, resource.fsPath), original, modified?.toString()]), [
      ['app/shop.rb', undefined, vscode.Uri.file(path.join(repo.root, 'app/shop.rb')).with({ scheme: 'git', query: JSON.stringify({ path: path.join(repo.root, 'app/shop.rb'), ref: r1 }) }).toString()],
      ['config/routes.rb', undefined, vscode.Uri.file(path.join(repo.root, 'config/routes.rb')).with({ scheme: 'git', query: JSON.stringify({ path: path.join(repo.root, 'config/routes.rb'), ref: r1 }) }).toString()],
    ]);
    await vscode.commands.executeCommand('deployRollback.copyCommitSha', nodes.tagged);
    assert.equal(await vscode.env.clipboard.readText(), r2);
  });

  it('lists what a rollback undoes in the confirmation: a count and the first subjects', async () => {
    const asked: string[] = [];
    api.testing.setPrompter({ confirm: async (message, detail) => (asked.push(`${message}\n${detail}`), false), input: async () => undefined, pick: async () => undefined });
    const plan = { source: 'kamal', app: 'shop', environment: 'production', from: r4, to: r1, direction: 'back', summary: `Roll shop back from ${r4} to ${r1} on 2 hosts`, lines: ['step 1'], overview: ['step 1'], detail: {} } as unknown as RollbackPlan;
    await code.attachCodeChange(plan, nodes.running.release.code as ReleaseCode, nodes.root.release.code as ReleaseCode);
    const source = { ...nodes.root.source, planRollback: async () => plan, executeRollback: async () => assert.fail('executed without a confirmation') } as unknown as ReleaseSource;
    try {
      await vscode.commands.executeCommand('deployRollback.rollbackToRelease', { ...nodes.root, source });
    } finally {
      api.testing.setPrompter(undefined);
    }
    assert.equal(asked.length, 1, 'one confirmation');
    assert.match(asked[0]!, new RegExp(`^Roll back shop in production from ${short(r4)} to ${short(r1)}\\?\nRoll shop back from ${short(r4)} to ${short(r1)} on 2 hosts\n`));
    assert.match(
      asked[0]!,
      /\nThis rollback undoes 7 commits:\n• \w{7} Faster search results \(#17\)\n• \w{7} Bump rack to 3\.1\.8\n• \w{7} Add checkout \(#15\)\n• \w{7} Cache product pages\n• \w{7} Add product search \(#12\)\n• …and 2 more \(all in the output\)\n/,
    );
  });
});

describe('gitops releases linked to the app repository in the workspace', function () {
  this.timeout(60_000);
  let api: DeployRollbackApi;
  let dir: string;
  let appRoot: string;
  let repo: AppRepo;
  let fixture: GitopsFixture;
  const settings = () => vscode.workspace.getConfiguration('deployRollback');

  before(async () => {
    api = await activateExtension();
    // The app's clone directly in the workspace folder, its origin named as release.json names it.
    appRoot = fs.mkdtempSync(path.join(workspaceFolder(), 'drb-shop-'));
    repo = makeAppRepo(appRoot, { remote: 'https://github.com/acme/shop.git' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-vscode-gitops-commits-'));
    const source = (index: number): ReleaseSourceCommit => {
      const commit = repo.releases[index];
      return { sha: commit.sha, repositoryName: 'acme/shop', message: repo.git(['log', '-1', '--format=%B', commit.sha]).trim(), authorName: 'Alice Example', authorEmail: 'alice@example.com' };
    };
    fixture = makeGitopsFixture(path.join(dir, 'gitops'), {
      steps: [
        { kind: 'bootstrap' },
        { kind: 'deploy', app: 'shop', label: 's1', source: source(0) },
        { kind: 'deploy', app: 'shop', label: 's2', tag: 'v2.0.0', source: source(1) },
        { kind: 'deploy', app: 'shop', label: 's3', source: source(2) },
      ],
    });
    await settings().update('gitops.paths', [fixture.work], vscode.ConfigurationTarget.Global);
    await api.refresh();
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await settings().update('gitops.paths', undefined, vscode.ConfigurationTarget.Global);
    await api.refresh();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(appRoot, { recursive: true, force: true });
  });

  async function releaseNodes(): Promise<ReleaseNode[]> {
    const environment = (await api.tree.getChildren()).find((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === fixture.work)!;
    const app = (await api.tree.getChildren(environment)).find((node): node is AppNode => node.kind === 'app' && node.app.name === 'shop')!;
    return (await api.tree.getChildren(app)).filter((node): node is ReleaseNode => node.kind === 'release');
  }

  it('describes each release row by its app commit, read from the workspace clone through the real gitops source', async () => {
    const [current, previous, first] = await releaseNodes();
    const [r1, r2, r3] = repo.releases.map((release) => release.sha);
    assert.deepEqual([current, previous, first].map((node) => node.release.code?.commit?.sha), [r3, r2, r1]);
    assert.match(String(api.tree.getTreeItem(current).description), /^current · Bump rack to 3\.1\.8 · Alice Example · /);
    // A tag is the label: the short sha leads the description.
    assert.equal(api.tree.getTreeItem(previous).label, 'v2.0.0');
    assert.match(String(api.tree.getTreeItem(previous).description), new RegExp(`^previous · ${short(r2)} Add product search \\(#12\\) · Alice Example · `));
    assert.match(String(api.tree.getTreeItem(first).contextValue), /^release\+gitops\b.*\+commit\+compare$/);
  });

  it('compares the running release with the first one from the row the tree made', async () => {
    const [, , first] = await releaseNodes();
    const [r1, , r3] = repo.releases.map((release) => release.sha);
    const view = (await vscode.commands.executeCommand('deployRollback.compareWithRunning', first)) as ChangesView | undefined;
    assert.equal(view?.title, `shop: ${short(r3)} (running) ↔ ${short(r1)}`);
    const products = view?.resources.find(([resource]) => resource.fsPath === path.join(appRoot, 'app/products.rb'));
    assert.ok(products, `no app/products.rb among ${view?.resources.map(([resource]) => resource.fsPath).join(', ')}`);
    assert.equal(products[1]?.scheme, 'git');
    assert.deepEqual(JSON.parse(products[1]!.query), { path: path.join(appRoot, 'app/products.rb'), ref: r3 });
    assert.equal(products[2], undefined, 'app/products.rb does not exist in the first release');
  });
});
