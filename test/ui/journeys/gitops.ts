import * as assert from 'node:assert/strict';
import path from 'node:path';
import { gitopsScenarios, makeGitopsFixture } from '../../fixtures/gitops';
import { journey } from '../journey';

export const gitopsCancelledRollback = journey('a gitops release offers Roll Back, and cancelling the confirmation changes nothing', async (ui) => {
  const fixture = makeGitopsFixture(path.join(ui.emptyWorkspace(), 'gitops'), gitopsScenarios.interleaved());
  const headBefore = fixture.git(['rev-parse', 'HEAD']).trim();
  const workbench = await ui.openWorkbench(fixture.work, { trusted: true });
  await workbench.openView();
  await workbench.expandTreeItem(fixture.env);
  await workbench.expandTreeItem('a');
  await workbench.treeItem('v2.0.0').waitFor({ state: 'visible' });
  await workbench.screenshot('gitops-releases');

  await workbench.rightClickTreeItem('v2.0.0');
  const entries = await workbench.contextMenuEntries();
  const rollBack = entries.find((entry) => entry.label.startsWith('Roll Back to This Release'));
  assert.ok(rollBack, `context menu was: ${entries.map((entry) => entry.label).join(' | ')}`);
  assert.equal(rollBack.enabled, true, 'Roll Back is disabled in a trusted workspace');
  await workbench.screenshot('release-context-menu');
  await workbench.clickContextMenu('Roll Back to This Release');
  const confirmation = await workbench.modalText();
  assert.match(confirmation, /Roll back a in staging from \S+ to v2\.0\.0\?/);
  await workbench.screenshot('rollback-confirmation');
  await workbench.answerModal('Cancel');

  assert.equal(fixture.git(['rev-parse', 'HEAD']).trim(), headBefore, 'HEAD moved although the rollback was cancelled');
  assert.equal(fixture.git(['status', '--porcelain']).trim(), '', 'the working tree changed although the rollback was cancelled');
});
