import * as assert from 'node:assert/strict';
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
