import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { activateExtension, EXPECTED_VSCODE_VERSION_ENV, EXTENSION_ID, workspaceIsEmpty } from './helpers';

describe('activation in a real VS Code', () => {
  it('runs in the VS Code version the runner asked for', function () {
    const expected = process.env[EXPECTED_VSCODE_VERSION_ENV];
    if (!expected) this.skip();
    assert.ok(vscode.version.startsWith(`${expected}.`), `expected VS Code ${expected}.x, running ${vscode.version}`);
  });

  it('is installed under its published id', () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} not found among ${vscode.extensions.all.length} extensions`);
    assert.equal(extension.packageJSON.displayName, 'Deploy Rollback');
  });

  it('activates and returns the test API', async () => {
    const api = await activateExtension();
    assert.equal(vscode.extensions.getExtension(EXTENSION_ID)?.isActive, true);
    assert.equal(typeof api.tree.getChildren, 'function');
    assert.equal(typeof api.tree.getTreeItem, 'function');
    assert.equal(typeof api.refresh, 'function');
    assert.equal(typeof api.sources, 'function');
  });

  it('registers the Refresh and Show Output commands', async () => {
    await activateExtension();
    const commands = await vscode.commands.getCommands(true);
    for (const id of ['deployRollback.refresh', 'deployRollback.showOutput']) {
      assert.ok(commands.includes(id), `command ${id} is not registered`);
    }
  });

  it('contributes the Deploy Rollback container with the Releases view', async () => {
    await activateExtension();
    const contributes = vscode.extensions.getExtension(EXTENSION_ID)?.packageJSON.contributes;
    const container = contributes?.viewsContainers?.activitybar?.find((entry: { id: string }) => entry.id === 'deployRollback');
    assert.equal(container?.title, 'Deploy Rollback');
    const view = contributes?.views?.deployRollback?.find((entry: { id: string }) => entry.id === 'deployRollback.releases');
    assert.equal(view?.name, 'Releases');
    // Both commands exist only when the workbench registered the container and the view.
    await vscode.commands.executeCommand('workbench.view.extension.deployRollback');
    await vscode.commands.executeCommand('deployRollback.releases.focus');
  });

  it('runs Refresh and Show Output from the command palette without an error', async () => {
    await activateExtension();
    await vscode.commands.executeCommand('deployRollback.refresh');
    await vscode.commands.executeCommand('deployRollback.showOutput');
  });

  it('shows no environments in an empty workspace', async function () {
    if (!workspaceIsEmpty()) this.skip();
    const api = await activateExtension();
    await api.refresh();
    assert.deepEqual(await api.sources(), []);
    assert.deepEqual(await api.tree.getChildren(), []);
  });
});
