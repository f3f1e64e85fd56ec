import { strict as assert } from 'node:assert';
import * as vscode from 'vscode';
import type { DeployRollbackApi } from '../../src/vscode/extension';
import type { AppNode, EnvironmentNode, ReleaseNode, TreeNode } from '../../src/vscode/tree/nodes';
import type { Prompter } from '../../src/vscode/ui';
import { gitopsScenarios, type GitopsFixture } from '../fixtures/gitops';
import { useGitopsFixture, waitFor } from './helpers';

async function childrenOf(api: DeployRollbackApi, node?: TreeNode): Promise<TreeNode[]> {
  return api.tree.getChildren(node);
}

describe('gitops releases in VS Code', function () {
  this.timeout(60_000);
  let api: DeployRollbackApi;
  let fixture: GitopsFixture;
  const settings = () => vscode.workspace.getConfiguration('deployRollback');
  const context = useGitopsFixture(gitopsScenarios.interleaved());
  before(() => {
    api = context.api();
    fixture = context.fixture();
  });

  async function appNode(name: string): Promise<AppNode> {
    const environments = (await childrenOf(api)).filter((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === fixture.work);
    assert.deepEqual(environments.map((node) => node.environment.name), ['staging']);
    const apps = (await childrenOf(api, environments[0])).filter((node): node is AppNode => node.kind === 'app');
    assert.deepEqual(apps.map((node) => node.app.name), ['a', 'b']);
    return apps.find((node) => node.app.name === name)!;
  }

  async function releaseNodes(app: AppNode): Promise<ReleaseNode[]> {
    return (await childrenOf(api, app)).filter((node): node is ReleaseNode => node.kind === 'release');
  }

  it('shows environment → apps → releases, the current one marked', async () => {
    const releases = await releaseNodes(await appNode('a'));
    assert.deepEqual(releases.map((node) => node.release.id), [fixture.shas.a3, fixture.shas.a2, fixture.shas.a1]);
    const items = releases.map((node) => api.tree.getTreeItem(node));
    assert.match(String(items[0]!.contextValue), /^release\b.*\bcurrent\b/);
    assert.doesNotMatch(String(items[0]!.contextValue), /\brollbackable\b/);
    assert.match(String(items[2]!.contextValue), /^release\b.*\brollbackable\b/);
    // The version alone is the label: state and age come first in the description, the title last (cut first).
    assert.equal(items[1]!.label, 'v2.0.0');
    assert.match(String(items[0]!.description), /^current · /);
    assert.match(String(items[1]!.description), /^previous · /);
    // Menus follow the flags: a gitops release opens its change on click.
    assert.equal(items[1]!.command?.command, 'deployRollback.openChange');
  });

  it('shows the latest releases, then "Show more…" for the rest', async () => {
    await settings().update('releasesPerApp', 2, vscode.ConfigurationTarget.Global);
    try {
      const app = await appNode('a');
      const children = await childrenOf(api, app);
      assert.deepEqual(children.map((node) => node.kind), ['release', 'release', 'showMore']);
      assert.equal(api.tree.getTreeItem(children[2]!).label, 'Show 1 more…');
      await vscode.commands.executeCommand('deployRollback.showMore', children[2]);
      assert.deepEqual((await childrenOf(api, app)).map((node) => node.kind), ['release', 'release', 'release']);
    } finally {
      await settings().update('releasesPerApp', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  it('rolls back from the release context command, confirmed in the modal, and marks the tree', async () => {
    const asked: string[] = [];
    const prompter: Prompter = {
      confirm: async (message, detail) => {
        asked.push(`${message}\n${detail}`);
        return true;
      },
      input: async () => undefined,
      pick: async () => undefined,
    };
    api.testing.setPrompter(prompter);
    const a1 = (await releaseNodes(await appNode('a'))).find((node) => node.release.id === fixture.shas.a1)!;
    const remoteBefore = fixture.git(['rev-parse', 'HEAD'], fixture.remote);

    const outcome = (await vscode.commands.executeCommand('deployRollback.rollbackToRelease', a1)) as { ok: boolean; message: string } | undefined;

    assert.equal(asked.length, 1, 'one confirmation');
    assert.match(asked[0]!, /Roll back a in staging from \S+ to \S+\?/);
    assert.match(asked[0]!, /Revert 2 commits/);
    assert.ok(outcome?.ok, outcome?.message ?? 'the command returned no outcome (an error was shown)');
    assert.notEqual(fixture.git(['rev-parse', 'HEAD'], fixture.remote), remoteBefore);
    assert.match(fixture.git(['log', '-1', '--format=%B'], fixture.remote), /This reverts commit [0-9a-f]{40}\./);

    const after = await releaseNodes(await appNode('a'));
    const flags = after.map((node) => [node.release.id, node.release.current, Boolean(node.release.rolledBack)]);
    assert.deepEqual(flags, [
      [fixture.shas.a3, false, true],
      [fixture.shas.a2, false, true],
      [fixture.shas.a1, true, false],
    ]);
    const b = await releaseNodes(await appNode('b'));
    assert.equal(b[0]!.release.id, fixture.shas.b2, "b's deploys are untouched");
    assert.ok(b[0]!.release.current);
  });

  it('refreshes by itself when the repository gets a new deploy', async () => {
    const before = (await releaseNodes(await appNode('b')))[0]!.release.id;
    assert.notEqual(before, fixture.shas.b3);
    fixture.apply([{ kind: 'deploy', app: 'b', label: 'b3' }]);
    // Nobody refreshes: the watcher on the repository does.
    await waitFor(async () => (await releaseNodes(await appNode('b')))[0]!.release.id === fixture.shas.b3 || undefined, {
      what: 'the tree to show b3 after a commit in the gitops repository',
      timeoutMs: 15_000,
    });
  });

  it('changes nothing when the confirmation is declined', async () => {
    const asked: string[] = [];
    api.testing.setPrompter({
      confirm: async (message) => {
        asked.push(message);
        return false;
      },
      input: async () => undefined,
      pick: async () => undefined,
    });
    const b1 = (await releaseNodes(await appNode('b'))).find((node) => node.release.id === fixture.shas.b1)!;
    const remoteBefore = fixture.git(['rev-parse', 'HEAD'], fixture.remote);
    const workBefore = fixture.git(['rev-parse', 'HEAD'], fixture.work);
    await vscode.commands.executeCommand('deployRollback.rollbackToRelease', b1);
    assert.equal(asked.length, 1, `the confirmation was asked once: ${asked.join(' | ')}`);
    assert.match(asked[0]!, /^Roll back b in staging from \S+ to \S+\?$/);
    assert.equal(fixture.git(['rev-parse', 'HEAD'], fixture.remote), remoteBefore);
    assert.equal(fixture.git(['rev-parse', 'HEAD'], fixture.work), workBefore);
    assert.equal(fixture.git(['status', '--porcelain'], fixture.work), '');
  });
});

describe('protected environments in VS Code', function () {
  this.timeout(60_000);
  let api: DeployRollbackApi;
  let fixture: GitopsFixture;
  const context = useGitopsFixture({ ...gitopsScenarios.interleaved(), env: 'production' });
  before(() => {
    api = context.api();
    fixture = context.fixture();
  });

  async function releaseA1(): Promise<ReleaseNode> {
    const environment = (await api.tree.getChildren()).find((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === fixture.work)!;
    const app = (await api.tree.getChildren(environment)).find((node): node is AppNode => node.kind === 'app' && node.app.name === 'a')!;
    return (await api.tree.getChildren(app)).find((node): node is ReleaseNode => node.kind === 'release' && node.release.id === fixture.shas.a1)!;
  }

  it('needs the app name typed: a wrong name changes nothing, the right one rolls back', async () => {
    const typedPrompts: string[] = [];
    let typed = 'wrong';
    api.testing.setPrompter({
      confirm: async () => true,
      input: async (options) => {
        typedPrompts.push(String(options.prompt));
        return typed;
      },
      pick: async () => undefined,
    });
    const remoteBefore = fixture.git(['rev-parse', 'HEAD'], fixture.remote);
    await vscode.commands.executeCommand('deployRollback.rollbackToRelease', await releaseA1());
    assert.equal(typedPrompts.length, 1, 'asked to type the app name');
    assert.match(typedPrompts[0]!, /Type "a"/);
    assert.equal(fixture.git(['rev-parse', 'HEAD'], fixture.remote), remoteBefore, 'a wrong name changed the remote');

    typed = 'a';
    const outcome = (await vscode.commands.executeCommand('deployRollback.rollbackToRelease', await releaseA1())) as { ok: boolean; message: string } | undefined;
    assert.ok(outcome?.ok, outcome?.message);
    assert.notEqual(fixture.git(['rev-parse', 'HEAD'], fixture.remote), remoteBefore);
  });
});
