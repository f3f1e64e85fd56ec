import * as assert from 'node:assert/strict';
import { journey } from '../journey';
import { OUTPUT_CHANNEL } from '../workbench';

export const emptyWorkspace = journey('an empty workspace shows the Releases welcome; Refresh and Show Output work from the palette', async (ui) => {
  const workbench = await ui.openWorkbench(ui.emptyWorkspace(), { trusted: true });
  await workbench.openView();
  const title = await workbench.sidebar.locator('.composite.title h2').innerText();
  assert.match(title, /Deploy Rollback/i);
  assert.match(title, /Releases/i);
  const welcome = await workbench.welcomeText();
  assert.ok(welcome.startsWith('No Kamal config or gitops repository found'), `welcome text was: ${welcome}`);
  await workbench.screenshot('releases-welcome');

  await workbench.runPaletteCommand('Deploy Rollback: Refresh');
  await workbench.welcomeText();
  await workbench.runPaletteCommand('Deploy Rollback: Show Output');
  await workbench.page.locator('.part.panel [id="workbench.panel.output"]').waitFor({ state: 'visible' });
  // Refresh logs what it found, so our channel cannot be empty.
  const output = await workbench.waitForOutputText(/\S/, OUTPUT_CHANNEL);
  assert.ok(output.length > 0);
  await workbench.screenshot('output-channel');
  assert.equal(await workbench.page.locator('.notifications-toasts .codicon-error').count(), 0, 'an error notification appeared');
});
