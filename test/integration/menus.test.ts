import { strict as assert } from 'node:assert';
import * as vscode from 'vscode';
import type { App, Environment, HostContainer, Release, ReleaseSource } from '../../src/core/model';
import type { DeployRollbackApi } from '../../src/vscode/extension';
import type { AppNode, EnvironmentNode, ReleaseNode, TreeNode } from '../../src/vscode/tree/nodes';
import { gitopsScenarios, type GitopsFixture } from '../fixtures/gitops';
import { EXTENSION_ID, useGitopsFixture, waitFor } from './helpers';

interface MenuEntry {
  command: string;
  when: string;
  group?: string;
}

/** The commands package.json shows for a row, evaluating only its `viewItem =~ /…/` clause (the rest is the view id). */
function menuFor(contextValue: string, inline: boolean): string[] {
  const extension = vscode.extensions.getExtension(EXTENSION_ID)!;
  const entries = (extension.packageJSON as { contributes: { menus: { 'view/item/context': MenuEntry[] } } }).contributes.menus['view/item/context'];
  return entries
    .filter((entry) => (entry.group === 'inline') === inline)
    .filter((entry) => {
      const match = /viewItem =~ \/(.*)\/$/.exec(entry.when);
      assert.ok(match, `menu entry ${entry.command} is not driven by a viewItem regex: ${entry.when}`);
      assert.match(match[1], /^\^/, `the regex of ${entry.command} is anchored on the row kind`);
      return new RegExp(match[1]).test(contextValue);
    })
    .map((entry) => entry.command.replace('deployRollback.', ''));
}

const kamalEnvironment: Environment = { id: 'kamal:/p/config/deploy.yml:default', source: 'kamal', name: 'default', location: '/p/config/deploy.yml', problems: [] };
const kamalApp: App = { id: `${kamalEnvironment.id}/chat`, environment: kamalEnvironment, name: 'chat', problems: [] };
const kamalSource = { kind: 'kamal', location: '/p/config/deploy.yml', hostEntries: async () => [] } as unknown as ReleaseSource;

function kamalRelease(version: string, extra: Partial<Release>): ReleaseNode {
  const release: Release = { id: `${kamalApp.id}@${version}`, app: kamalApp, version, current: false, rollbackable: false, ...extra };
  return { kind: 'release', id: `${kamalApp.id}/${release.id}`, source: kamalSource, release };
}

describe('menus on every row', function () {
  this.timeout(60_000);
  let api: DeployRollbackApi;
  let fixture: GitopsFixture;
  const context = useGitopsFixture(gitopsScenarios.interleaved());
  before(() => {
    api = context.api();
    fixture = context.fixture();
  });
  after(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  const contextOf = (node: TreeNode) => String(api.tree.getTreeItem(node).contextValue);

  async function gitopsNodes(): Promise<{ environment: EnvironmentNode; app: AppNode; releases: ReleaseNode[] }> {
    const environment = (await api.tree.getChildren()).find((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === fixture.work)!;
    const app = (await api.tree.getChildren(environment)).find((node): node is AppNode => node.kind === 'app' && node.app.name === 'a')!;
    const releases = (await api.tree.getChildren(app)).filter((node): node is ReleaseNode => node.kind === 'release');
    return { environment, app, releases };
  }

  it('gives environments, apps and gitops releases their menus, Roll Back to Previous only once a previous release is known', async () => {
    const { environment, app, releases } = await gitopsNodes();
    assert.deepEqual(menuFor(contextOf(environment), false), ['refresh', 'previewRollback', 'rollback']);
    assert.deepEqual(menuFor(contextOf(environment), true), ['refresh']);
    // Reading the releases above taught the tree that "a" has a previous release.
    await waitFor(() => /\+hasPrevious\b/.test(contextOf(app)), { what: 'the app row to learn it has a previous release' });
    assert.deepEqual(menuFor(contextOf(app), false), ['previewRollbackToPrevious', 'previewRollback', 'showAppHistory', 'rollbackToPrevious', 'rollback']);
    assert.deepEqual(menuFor(contextOf(app), true), ['rollbackToPrevious']);
    const [current, previous] = releases;
    assert.deepEqual(menuFor(contextOf(current), false), ['openChange', 'copyVersion', 'copySha']);
    assert.deepEqual(menuFor(contextOf(previous), false), ['previewRollbackToRelease', 'openChange', 'copyVersion', 'copySha', 'rollbackToRelease']);
    assert.deepEqual(menuFor(contextOf(previous), true), ['rollbackToRelease']);
  });

  it('names a newer Kamal release a roll forward in its menu, and keeps the rollback entries off it', () => {
    const newer = kamalRelease('v3', { rollbackable: true, direction: 'forward' });
    assert.equal(contextOf(newer), 'release+kamal+rollbackable+forward');
    assert.deepEqual(menuFor(contextOf(newer), false), ['previewRollForwardToRelease', 'showReleaseHistory', 'copyVersion', 'rollForwardToRelease']);
    assert.deepEqual(menuFor(contextOf(newer), true), ['rollForwardToRelease']);
    assert.match(String(api.tree.getTreeItem(newer).description), /^newer\b/);
    const pruned = kamalRelease('v1', { direction: 'back', reason: 'pruned on 10.250.3.2', presence: '1 of 2 hosts' });
    assert.deepEqual(menuFor(contextOf(pruned), false), ['showReleaseHistory', 'copyVersion']);
    // Short enough for the default sidebar: the host is in the tooltip.
    assert.equal(api.tree.getTreeItem(pruned).description, 'pruned · 1/2 hosts');
    const current = kamalRelease('v2', { current: true, reason: 'running now' });
    assert.deepEqual(menuFor(contextOf(current), false), ['showReleaseHistory', 'copyVersion']);
  });

  it('offers Bring the Other Hosts on a Kamal release running on some hosts (a canary), current or not', () => {
    const canary = kamalRelease('v2', { current: true, reason: 'running now', runningOn: { hosts: ['10.0.0.1'], otherHosts: ['10.0.0.2', '10.0.0.3'], total: 3 } });
    assert.equal(contextOf(canary), 'release+kamal+current+partial');
    assert.deepEqual(menuFor(contextOf(canary), false), ['showReleaseHistory', 'copyVersion', 'bringOtherHostsToRelease']);
    assert.equal(api.tree.getTreeItem(canary).description, 'current on 1/3 hosts');
    const rest = kamalRelease('v3', { rollbackable: true, direction: 'forward', runningOn: { hosts: ['10.0.0.2', '10.0.0.3'], otherHosts: ['10.0.0.1'], total: 3 } });
    assert.equal(contextOf(rest), 'release+kamal+rollbackable+forward+partial');
    assert.deepEqual(menuFor(contextOf(rest), false), ['previewRollForwardToRelease', 'showReleaseHistory', 'copyVersion', 'rollForwardToRelease', 'bringOtherHostsToRelease']);
    assert.equal(api.tree.getTreeItem(rest).description, 'newer · current on 2/3 hosts');
    // The other host could not be read: nothing known to bring, so no offer.
    const unknown = kamalRelease('v4', { current: true, reason: 'running now' });
    assert.doesNotMatch(contextOf(unknown), /partial/);
  });

  it('gives containers Logs, Copy Name and (unless stale) Roll Back This Host, error rows Retry and Show Output', () => {
    const container: HostContainer = {
      id: 'c1',
      host: 'web-1',
      role: 'web',
      name: 'chat-web-v2',
      state: 'running',
      status: 'Up Less than a second',
      image: 'r/app:v2',
      created: new Date(Date.now() - 5 * 60_000).toISOString(),
      version: 'v2',
    };
    const release = kamalRelease('v2', { current: true });
    const row: TreeNode = { kind: 'hostContainer', id: 'x/c1', source: kamalSource, release: release.release, container };
    assert.deepEqual(menuFor(contextOf(row), false), ['showContainerLogs', 'copyContainerName', 'rollbackHost']);
    assert.deepEqual(menuFor(contextOf(row), true), ['showContainerLogs']);
    // A host that did not answer is not offered a rollback of its own (nor its logs, below).
    const staleRow: TreeNode = { ...row, container: { ...container, stale: { seenAt: '2026-12-03T10:00:00.000Z' } } };
    assert.deepEqual(menuFor(contextOf(staleRow), false), ['copyContainerName']);
    // The age is computed when drawn, not docker's status of the last read.
    assert.equal(api.tree.getTreeItem(row).description, 'up 5m');
    // A container seen by an earlier read (its host not answering, or its release being read again): no logs offered.
    const stale: TreeNode = { ...row, container: { ...container, stale: { seenAt: new Date().toISOString() } } };
    const reading: TreeNode = { ...row, lastKnown: { state: 'reading', since: Date.now() } };
    for (const node of [stale, reading]) {
      assert.deepEqual(menuFor(contextOf(node), false), ['copyContainerName'], contextOf(node));
      assert.deepEqual(menuFor(contextOf(node), true), [], contextOf(node));
    }
    assert.match(String(api.tree.getTreeItem(reading).description), /^reading… · up 5m$/);
    // The copy a rollback kept is told apart from the running one first, before the width cuts the row.
    const replaced: TreeNode = { ...row, container: { ...container, name: 'chat-web-v2_replaced_1a2b3c4d', state: 'exited' } };
    assert.equal(api.tree.getTreeItem(replaced).description, 'replaced copy · exited · created 5m ago');
    const message = 'Could not connect to web-2: connect ECONNREFUSED 10.250.0.6:22';
    const hostError: TreeNode = { kind: 'hostError', id: 'x!web-2', error: { id: 'e', host: 'web-2', message } };
    // A few words in the row; the whole message in the tooltip.
    assert.equal(api.tree.getTreeItem(hostError).description, 'cannot connect (ECONNREFUSED)');
    assert.equal(api.tree.getTreeItem(hostError).tooltip, `web-2 (unreachable): ${message}\nIts containers are not shown: they could not be read.`);
    const loadError: TreeNode = { kind: 'loadError', id: 'x/error', message: 'boom' };
    for (const node of [hostError, loadError]) {
      assert.deepEqual(menuFor(contextOf(node), false), ['retry', 'showOutput']);
      assert.deepEqual(menuFor(contextOf(node), true), ['retry']);
    }
  });

  it('opens a gitops release\'s change to <env>/<app> (two files: the changes editor) from git content', async () => {
    const { releases } = await gitopsNodes();
    const release = releases[1].release;
    const item = api.tree.getTreeItem(releases[1]);
    await vscode.commands.executeCommand(item.command!.command, ...(item.command!.arguments ?? []));
    const title = `${fixture.env}/a v2.0.0 (${release.id.slice(0, 7)}`;
    await waitFor(() => vscode.window.tabGroups.activeTabGroup.activeTab?.label.startsWith(title), {
      what: `a changes editor titled "${title}" (active tab: "${vscode.window.tabGroups.activeTabGroup.activeTab?.label}")`,
    });
    // The sides it compares: the file before the release commit and at it, read from git.
    const file = `${fixture.env}/a/deployment.yaml`;
    const side = (ref: string) => vscode.Uri.from({ scheme: 'deploy-rollback-git', path: `/${file}`, query: JSON.stringify({ root: fixture.work, ref }) });
    const after = (await vscode.workspace.openTextDocument(side(release.id))).getText();
    const before = (await vscode.workspace.openTextDocument(side(`${release.id}^`))).getText();
    assert.match(after, /image: registry\.example\.com\/a:a2\n/);
    assert.match(before, /image: registry\.example\.com\/a:a1\n/);
  });

  it('copies a release\'s version and sha, and shows an app\'s history as a read-only document', async () => {
    const { app, releases } = await gitopsNodes();
    await vscode.commands.executeCommand('deployRollback.copySha', releases[1]);
    assert.equal(await vscode.env.clipboard.readText(), releases[1].release.id);
    await vscode.commands.executeCommand('deployRollback.copyVersion', releases[1]);
    assert.equal(await vscode.env.clipboard.readText(), 'v2.0.0');
    await vscode.commands.executeCommand('deployRollback.showAppHistory', app);
    const text: string = await waitFor(() => (vscode.window.activeTextEditor?.document.uri.scheme === 'deploy-rollback' ? vscode.window.activeTextEditor.document.getText() : undefined), {
      what: 'the history document',
    });
    assert.match(text, /^a in staging \(gitops .*\): 3 releases, newest first/);
    assert.match(text, /\nv2\.0\.0 +previous /);
  });
  it('asks only what an environment row does not say, and titles a preview\'s questions as a dry run', async () => {
    const { environment } = await gitopsNodes();
    const titles: string[] = [];
    api.testing.setPrompter({
      confirm: async () => false,
      input: async () => undefined,
      pick: async (items, options) => {
        titles.push(String(options.title));
        return titles.length === 1 ? items.find((item) => item.label === 'a') : undefined;
      },
    });
    try {
      await vscode.commands.executeCommand('deployRollback.rollback', environment);
      assert.deepEqual(titles, ['Roll Back: app in staging', 'Roll Back a (staging) to…']);
      titles.length = 0;
      await vscode.commands.executeCommand('deployRollback.previewRollback', environment);
      assert.deepEqual(titles, ['Preview Rollback (Dry Run): app in staging', 'Preview Rollback (Dry Run) a (staging) to…']);
    } finally {
      api.testing.setPrompter(undefined);
    }
  });

  it('says so when a container printed nothing, instead of opening an empty editor', async () => {
    const container: HostContainer = { id: 'c2', host: 'web-1', role: 'web', name: 'chat-web-v2', state: 'exited', status: 'Exited (0)', image: 'r/app:v2', created: new Date().toISOString(), version: 'v2' };
    const silent = { ...kamalSource, containerLogs: async () => '' } as unknown as ReleaseSource;
    const row: TreeNode = { kind: 'hostContainer', id: 'x/c2', source: silent, release: kamalRelease('v2', {}).release, container };
    await vscode.commands.executeCommand('deployRollback.showContainerLogs', row);
    const lines = vscode.workspace.getConfiguration('deployRollback').get<number>('containerLogs.lines');
    const text: string = await waitFor(() => (vscode.window.activeTextEditor?.document.uri.path.endsWith('chat-web-v2.log') ? vscode.window.activeTextEditor.document.getText() : undefined), {
      what: 'the log document',
    });
    assert.equal(text, `(no output in the last ${lines} lines of chat-web-v2 on web-1)\n`);
  });
});
