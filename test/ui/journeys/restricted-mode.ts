import * as assert from 'node:assert/strict';
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
