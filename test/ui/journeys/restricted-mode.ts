import * as assert from 'node:assert/strict';
import path from 'node:path';
import { gitopsScenarios, makeGitopsFixture } from '../../fixtures/gitops';
import { journey } from '../journey';

export const restrictedMode = journey('an untrusted workspace shows the Restricted Mode text in the Releases view', async (ui) => {
  const workbench = await ui.openWorkbench(ui.emptyWorkspace(), { trusted: false });
  // The workbench's own indicator proves the folder really opened untrusted.
  await workbench.page.locator('.part.statusbar').getByText('Restricted Mode').first().waitFor({ state: 'visible' });
  await workbench.openView();
  const text = await workbench.waitForViewText(/Restricted Mode/);
  assert.match(text, /Restricted Mode/);
  await workbench.screenshot('restricted-mode');
});

export const restrictedGitops = journey('in Restricted Mode gitops releases are listed but Roll Back is disabled', async (ui) => {
  const fixture = makeGitopsFixture(path.join(ui.emptyWorkspace(), 'gitops'), gitopsScenarios.interleaved());
  const headBefore = fixture.git(['rev-parse', 'HEAD']).trim();
  const workbench = await ui.openWorkbench(fixture.work, { trusted: false });
  await workbench.page.locator('.part.statusbar').getByText('Restricted Mode').first().waitFor({ state: 'visible' });
  await workbench.openView();
  await workbench.expandTreeItem(fixture.env);
  await workbench.expandTreeItem('a');
  await workbench.treeItem('v2.0.0').waitFor({ state: 'visible' });
  await workbench.rightClickTreeItem('v2.0.0');
  const entries = await workbench.contextMenuEntries();
  await workbench.screenshot('restricted-context-menu');
  const rollBack = entries.find((entry) => entry.label.startsWith('Roll Back to This Release'));
  assert.ok(rollBack, `context menu was: ${entries.map((entry) => entry.label).join(' | ')}`);
  assert.equal(rollBack.enabled, false, 'Roll Back is clickable in Restricted Mode');
  await workbench.closeContextMenu();
  assert.equal(fixture.git(['rev-parse', 'HEAD']).trim(), headBefore);
});
