import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DeployRollbackApi } from '../../src/vscode/extension';
import type { AppNode, EnvironmentNode, ReleaseNode, TreeNode } from '../../src/vscode/tree/nodes';
import type { Prompter } from '../../src/vscode/ui';
import { gitopsScenarios, type GitopsFixture } from '../fixtures/gitops';
import { useGitopsFixture } from './helpers';

/**
 * A merge on `staging/a` (a side branch from a2 adding a file, merged after a3): HEAD's tree matches
 * no release (the tree says "uncertain") and reverts cannot be proven to reach a target, so the
 * rollback offers one commit restoring the target's tree, acted on only when chosen.
 */
describe('gitops: a history reverts cannot unwind, in VS Code', function () {
  this.timeout(90_000);
  let api: DeployRollbackApi;
  let fixture: GitopsFixture;
  const context = useGitopsFixture(gitopsScenarios.interleaved());
  before(async () => {
    api = context.api();
    fixture = context.fixture();
    // From a2 while main went on to a3: the merge differs from both parents on the path.
    fixture.git(['checkout', '-q', '-b', 'side', fixture.shas.a2]);
    fs.writeFileSync(path.join(fixture.work, 'staging', 'a', 'pdb.yaml'), 'kind: PodDisruptionBudget\n');
    fixture.git(['add', '-A']);
    fixture.git(['commit', '-q', '-m', 'a: pdb on a side branch']);
    fixture.git(['checkout', '-q', 'main']);
    fixture.git(['merge', '-q', '--no-ff', '--no-edit', 'side']);
    fixture.git(['push', '-q', 'origin', 'HEAD:main']);
    fixture.git(['fetch', '-q', 'origin']);
    await api.refresh();
  });

  /** The app's rows as the tree answers them: the list itself (a new one after every read) and its releases. */
  async function releaseNodesList(): Promise<TreeNode[]> {
    const environment = (await api.tree.getChildren()).find((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === fixture.work)!;
    const app = (await api.tree.getChildren(environment)).find((node): node is AppNode => node.kind === 'app' && node.app.name === 'a')!;
    return api.tree.getChildren(app);
  }

  async function releaseNodes(): Promise<ReleaseNode[]> {
    return releases(await releaseNodesList());
  }

  const releases = (list: TreeNode[]): ReleaseNode[] => list.filter((node): node is ReleaseNode => node.kind === 'release');

  function recordingPrompter(answers: boolean[]): { prompter: Prompter; asked: { message: string; detail: string; action: string }[] } {
    const asked: { message: string; detail: string; action: string }[] = [];
    return {
      asked,
      prompter: {
        confirm: async (message, detail, action) => {
          asked.push({ message, detail, action });
          return answers.shift() ?? false;
        },
        input: async () => undefined,
        pick: async () => undefined,
      },
    };
  }

  it('marks every release "uncertain" (short in the description, whole in the tooltip, a warning icon), still a target', async () => {
    const releases = await releaseNodes();
    assert.deepEqual(releases.map((node) => node.release.id), [fixture.shas.a3, fixture.shas.a2, fixture.shas.a1]);
    for (const node of releases) {
      assert.ok(node.release.rollbackable, `${node.release.version} stays a target`);
      assert.ok(!node.release.current);
      const item = api.tree.getTreeItem(node);
      assert.match(String(item.description), /^uncertain history · /);
      const tooltip = (item.tooltip as vscode.MarkdownString).value;
      assert.match(tooltip, /History: `uncertain: staging\/a at HEAD matches no release \(last changed by [0-9a-f]{10} "[^"]+"\)`/);
      assert.equal((item.iconPath as vscode.ThemeIcon).id, 'warning');
      assert.equal((item.iconPath as vscode.ThemeIcon).color?.id, 'problemsWarningIcon.foreground');
    }
  });

  it('offers restoring the tree in one commit; Cancel changes nothing, the tree not even read again', async () => {
    const { prompter, asked } = recordingPrompter([false]);
    api.testing.setPrompter(prompter);
    const listBefore = await releaseNodesList();
    const a2 = releases(listBefore).find((node) => node.release.id === fixture.shas.a2)!;
    const remoteBefore = fixture.git(['rev-parse', 'HEAD'], fixture.remote);
    const workBefore = fixture.git(['rev-parse', 'HEAD']);

    const outcome = await vscode.commands.executeCommand('deployRollback.rollbackToRelease', a2);

    assert.equal(outcome, undefined);
    // A refresh would start a new read (a new list): a right-click on a row being redrawn reaches the command with no row.
    assert.equal(await releaseNodesList(), listBefore, 'the tree was read again after a "no" that changed nothing');
    assert.equal(asked.length, 1, 'only the offer was shown: no plan to confirm without the choice');
    const short = fixture.shas.a2.slice(0, 10);
    assert.equal(asked[0]!.action, `Restore ${short}'s Tree in One Commit`);
    assert.equal(asked[0]!.message, 'Reverts cannot roll back a (staging) to v2.0.0 exactly');
    assert.match(asked[0]!.detail, /^Reverting commits cannot be shown to leave staging\/a exactly as it is at v2\.0\.0 \([0-9a-f]{10}\): merge commit [0-9a-f]{10} \("Merge branch 'side'"\) changed staging\/a after the target/);
    assert.match(asked[0]!.detail, new RegExp(`one new commit can write staging/a exactly as it is at ${short}`));
    assert.equal(fixture.git(['rev-parse', 'HEAD'], fixture.remote), remoteBefore);
    assert.equal(fixture.git(['rev-parse', 'HEAD']), workBefore);
    assert.equal(fixture.git(['status', '--porcelain']), '');
  });

  it("on the explicit choice, plans the restore, confirms it, and pushes one commit whose tree is the target's", async () => {
    const { prompter, asked } = recordingPrompter([true, true]);
    api.testing.setPrompter(prompter);
    const a2 = (await releaseNodes()).find((node) => node.release.id === fixture.shas.a2)!;
    const remoteBefore = fixture.git(['rev-parse', 'HEAD'], fixture.remote).trim();

    const outcome = (await vscode.commands.executeCommand('deployRollback.rollbackToRelease', a2)) as { ok: boolean; message: string } | undefined;

    assert.ok(outcome?.ok, outcome?.message ?? 'the command returned no outcome (an error was shown)');
    assert.equal(asked.length, 2, 'the offer, then the plan confirmation');
    assert.match(asked[1]!.message, /^Roll back a in staging from .+ to v2\.0\.0\?$/);
    assert.equal(fixture.git(['rev-list', '--count', `${remoteBefore}..main`], fixture.remote).trim(), '1', 'one commit pushed');
    assert.equal(fixture.git(['rev-parse', 'main^'], fixture.remote).trim(), remoteBefore);
    assert.equal(fixture.git(['diff', '--stat', fixture.shas.a2, 'main', '--', 'staging/a'], fixture.remote), '');
    const changed = fixture.git(['show', '--name-only', '--format=', 'main'], fixture.remote).split('\n').filter(Boolean);
    assert.ok(changed.length > 0 && changed.every((file) => file.startsWith('staging/a/')), `only staging/a changed: ${changed.join(', ')}`);
    assert.match(fixture.git(['log', '-1', '--format=%B', 'main'], fixture.remote), new RegExp(`^Restore staging/a to \\S+ \\(${fixture.shas.a2.slice(0, 10)}\\)`));

    const after = await releaseNodes();
    assert.deepEqual(
      after.map((node) => [node.release.id, node.release.current, Boolean(node.release.rolledBack)]),
      [
        [fixture.shas.a3, false, true],
        [fixture.shas.a2, true, false],
        [fixture.shas.a1, false, false],
      ],
    );
  });
});

/**
 * a1, a2; a side branch from a1 adds a file, merged after a2; then a3 is deployed. a3 is current
 * and a2 previous, but the merge on the path since a2 makes reverts unprovable: "Roll Back to
 * Previous" (no release named by the user) offers the restore of the previous release's tree.
 */
describe('gitops: the restore-tree offer for "previous", in VS Code', function () {
  this.timeout(90_000);
  let api: DeployRollbackApi;
  let fixture: GitopsFixture;
  const context = useGitopsFixture({ steps: [{ kind: 'bootstrap' }, { kind: 'deploy', app: 'a', label: 'a1' }, { kind: 'deploy', app: 'a', label: 'a2' }] });
  before(async () => {
    api = context.api();
    fixture = context.fixture();
    fixture.git(['checkout', '-q', '-b', 'side', fixture.shas.a1]);
    fs.writeFileSync(path.join(fixture.work, 'staging', 'a', 'pdb.yaml'), 'kind: PodDisruptionBudget\n');
    fixture.git(['add', '-A']);
    fixture.git(['commit', '-q', '-m', 'a: pdb on a side branch']);
    fixture.git(['checkout', '-q', 'main']);
    fixture.git(['merge', '-q', '--no-ff', '--no-edit', 'side']);
    fixture.apply([{ kind: 'deploy', app: 'a', label: 'a3' }]);
    fixture.git(['push', '-q', 'origin', 'HEAD:main']);
    fixture.git(['fetch', '-q', 'origin']);
    await api.refresh();
  });

  async function appA(): Promise<AppNode> {
    const environment = (await api.tree.getChildren()).find((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === fixture.work)!;
    return (await api.tree.getChildren(environment)).find((node): node is AppNode => node.kind === 'app' && node.app.name === 'a')!;
  }

  function answering(answers: boolean[]): string[] {
    const actions: string[] = [];
    api.testing.setPrompter({
      confirm: async (_message, _detail, action) => {
        actions.push(action);
        return answers.shift() ?? false;
      },
      input: async () => undefined,
      pick: async () => undefined,
    });
    return actions;
  }

  it('Preview Rollback to Previous: the offer, then the restore plan as a dry run, nothing changed', async () => {
    const releases = (await api.tree.getChildren(await appA())).filter((node): node is ReleaseNode => node.kind === 'release');
    assert.deepEqual(
      releases.map((node) => [node.release.id, Boolean(node.release.current), Boolean(node.release.previous)]),
      [
        [fixture.shas.a3, true, false],
        [fixture.shas.a2, false, true],
        [fixture.shas.a1, false, false],
      ],
    );
    const actions = answering([true]);
    const remoteBefore = fixture.git(['rev-parse', 'HEAD'], fixture.remote);

    await vscode.commands.executeCommand('deployRollback.previewRollbackToPrevious', await appA());

    assert.deepEqual(actions, [`Restore ${fixture.shas.a2.slice(0, 10)}'s Tree in One Commit`]);
    const plan = vscode.workspace.textDocuments.map((document) => document.getText()).find((text) => text.startsWith('Dry run: roll back a in staging'));
    assert.ok(plan, 'no dry-run document was opened');
    assert.match(plan, new RegExp(`Write staging/a as it is at ${fixture.shas.a2.slice(0, 10)} in one commit`));
    assert.match(plan, /Nothing has been changed\./);
    assert.equal(fixture.git(['rev-parse', 'HEAD'], fixture.remote), remoteBefore);
  });

  it("Roll Back to Previous: choosing the restore pushes one commit holding the previous release's tree", async () => {
    const actions = answering([true, true]);
    const remoteBefore = fixture.git(['rev-parse', 'HEAD'], fixture.remote).trim();

    const outcome = (await vscode.commands.executeCommand('deployRollback.rollbackToPrevious', await appA())) as { ok: boolean; message: string } | undefined;

    assert.ok(outcome?.ok, outcome?.message ?? 'the command returned no outcome (an error was shown)');
    assert.deepEqual(actions, [`Restore ${fixture.shas.a2.slice(0, 10)}'s Tree in One Commit`, 'Roll Back']);
    assert.equal(fixture.git(['rev-parse', 'main^'], fixture.remote).trim(), remoteBefore, 'one commit on top of what was there');
    assert.equal(fixture.git(['diff', '--stat', fixture.shas.a2, 'main', '--', 'staging/a'], fixture.remote), '');
  });
});
