import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { gitopsScenarios, makeGitopsFixture, sourceShaFor } from '../../fixtures/gitops';
import { journey } from '../journey';

export const gitopsRollForward = journey('a rolled-back gitops release offers Roll Forward: the dialog says roll forward, the tree marks it current, the remote holds its tree', async (ui) => {
  // a1, a2, then Gimlet's own rollback of a2: a1 runs, a2 is rolled back.
  const fixture = makeGitopsFixture(path.join(ui.emptyWorkspace(), 'gitops'), gitopsScenarios.rolledBack());
  const current = sourceShaFor('a1').slice(0, 8);
  const target = sourceShaFor('a2').slice(0, 8);
  const remoteHead = () => fixture.git(['--git-dir', fixture.remote, 'rev-parse', 'main']).trim();
  const remoteBefore = remoteHead();
  const workbench = await ui.openWorkbench(fixture.work, { trusted: true });
  await workbench.openView();
  await workbench.setSidebarWidth(520);
  await workbench.expandTreeItem(fixture.env);
  await workbench.expandTreeItem('a');
  assert.match(await workbench.treeItemDescription(current), /^current\b/);
  assert.match(await workbench.treeItemDescription(target), /^rolled back\b/);
  await workbench.screenshot('rolled-back-release');

  const entries = await workbench.treeItemMenuEntries(target);
  const labels = entries.map((entry) => entry.label);
  assert.ok(labels.some((label) => label.startsWith('Roll Forward to This Release')), `menu was: ${labels.join(' | ')}`);
  assert.ok(!labels.some((label) => label.startsWith('Roll Back to This Release')), `a rolled-back release is not offered as a rollback: ${labels.join(' | ')}`);
  await workbench.rightClickTreeItem(target);
  await workbench.screenshot('roll-forward-menu');
  await workbench.clickContextMenu('Roll Forward to This Release');

  const confirmation = await workbench.modalText();
  assert.match(confirmation, new RegExp(`Roll forward a in staging from ${current} to ${target}\\?`));
  assert.doesNotMatch(confirmation, /Roll back/);
  await workbench.screenshot('roll-forward-confirmation');
  await workbench.answerModal('Roll Forward');

  assert.match(await workbench.waitForNotification(/rolled forward|Rolled forward/), new RegExp(target));
  await workbench.waitForTreeItemDescription(target, /^current\b/);
  assert.doesNotMatch(await workbench.treeItemDescription(current), /^current\b/);
  await workbench.screenshot('rolled-forward');

  assert.notEqual(remoteHead(), remoteBefore, 'nothing was pushed to the remote');
  assert.equal(fixture.git(['--git-dir', fixture.remote, 'diff', fixture.shas.a2, 'main', '--', `${fixture.env}/a`]), '', `the remote's staging/a differs from ${target}'s`);
  assert.match(fixture.git(['--git-dir', fixture.remote, 'log', '-1', '--format=%B', 'main']), /This reverts commit [0-9a-f]{40}/);
  assert.equal(fixture.git(['status', '--porcelain']).trim(), '', 'the roll forward left the clone dirty');
});

export const gitopsRestoreTreeOffer = journey('a merge on the app path: the rows say uncertain history, Roll Back offers restoring the tree in one commit, Cancel changes nothing, choosing it pushes one commit', async (ui) => {
  const fixture = makeGitopsFixture(path.join(ui.emptyWorkspace(), 'gitops'), gitopsScenarios.interleaved());
  // A side branch from a2 adds a file and is merged after a3: reverts cannot be shown to unwind the merge.
  fixture.git(['checkout', '-q', '-b', 'side', fixture.shas.a2]);
  writeFileSync(path.join(fixture.work, fixture.env, 'a', 'pdb.yaml'), 'kind: PodDisruptionBudget\n');
  fixture.git(['add', '-A']);
  fixture.git(['commit', '-q', '-m', 'a: pdb on a side branch']);
  fixture.git(['checkout', '-q', 'main']);
  fixture.git(['merge', '-q', '--no-ff', '--no-edit', 'side']);
  fixture.git(['push', '-q', 'origin', 'HEAD:main']);
  fixture.git(['fetch', '-q', 'origin']);
  const remoteHead = () => fixture.git(['--git-dir', fixture.remote, 'rev-parse', 'main']).trim();
  const remoteBefore = remoteHead();
  const short = fixture.shas.a2.slice(0, 10);
  const workbench = await ui.openWorkbench(fixture.work, { trusted: true });
  await workbench.openView();
  await workbench.setSidebarWidth(520);
  await workbench.expandTreeItem(fixture.env);
  await workbench.expandTreeItem('a');
  assert.match(await workbench.treeItemDescription('v2.0.0'), /^uncertain history\b/);
  await workbench.screenshot('uncertain-history');

  const offer = async () => {
    await workbench.rightClickTreeItem('v2.0.0');
    await workbench.clickContextMenu('Roll Back to This Release');
    const text = await workbench.modalText();
    assert.match(text, /Reverts cannot roll back a \(staging\) to v2\.0\.0 exactly/);
    assert.match(text, /merge commit [0-9a-f]{10}/);
    return text;
  };
  await offer();
  await workbench.screenshot('restore-tree-offer');
  await workbench.answerModal('Cancel');
  assert.equal(remoteHead(), remoteBefore, 'the remote moved although the offer was cancelled');
  assert.equal(fixture.git(['status', '--porcelain']).trim(), '', 'the working tree changed although the offer was cancelled');

  await offer();
  await workbench.answerModal(`Restore ${short}'s Tree in One Commit`);
  assert.match(await workbench.modalText(), /Roll back a in staging from .+ to v2\.0\.0\?/);
  await workbench.screenshot('restore-tree-confirmation');
  assert.equal(remoteHead(), remoteBefore, 'the remote moved before the plan was confirmed');
  await workbench.answerModal('Roll Back');
  assert.match(await workbench.waitForNotification(/Rolled back/), /v2\.0\.0/);
  await workbench.waitForTreeItemDescription('v2.0.0', /^current\b/);
  await workbench.screenshot('restored');

  assert.equal(fixture.git(['--git-dir', fixture.remote, 'rev-parse', 'main^']).trim(), remoteBefore, 'more than one commit was pushed');
  assert.equal(fixture.git(['--git-dir', fixture.remote, 'diff', fixture.shas.a2, 'main', '--', `${fixture.env}/a`]), '', "the remote's staging/a differs from v2.0.0's");
});
