import * as assert from 'node:assert/strict';
import { SAMPLE_SERVICE } from '../../fixtures/sample-workspace';
import { journey } from '../journey';
import { kamalSample, PROXY_SERVICE, proxyTargets } from '../kamal-sample';
import { readmeScreenshot } from '../readme-screenshots';

/** Menu labels without their ellipsis variants' differences, for readable assertions. */
function has(menu: string[], label: string): boolean {
  return menu.some((entry) => entry === label || entry.startsWith(`${label} `));
}

export const everyRow = journey(
  'Every row: a menu per kind of row, a click on a gitops release opens its change, a Kamal roll forward called so everywhere, an error row to retry, expansion kept across a reload',
  async (ui) => {
    const { sample, hosts } = await kamalSample(ui);
    const [firstHost, secondHost] = hosts.hosts;

    const workbench = await ui.openWorkbench(sample.folder, { trusted: true, env: { HOME: sample.home } });
    await workbench.openView();
    await workbench.expandTreeItem('default');
    await workbench.expandTreeItem(SAMPLE_SERVICE);
    await workbench.waitForTreeItemDescription('v2', /^previous\b/);
    await workbench.expandTreeItem('v3');
    // At the default sidebar width nothing of the environment, app or container rows is cut off.
    for (const label of ['default', SAMPLE_SERVICE, `${firstHost.address} · web`]) {
      assert.equal(await workbench.isTreeItemTruncated(label), false, `"${label}: ${await workbench.treeItemDescription(label)}" is cut off at the default sidebar width`);
    }
    // A release names its commit (v1…v3 are tags of the app's commits): the end is cut, the state and commit show first.
    assert.match(await workbench.treeItemDescription('v3'), /^current · [0-9a-f]{7} Bump rack to 3\.1\.8 · Alice Example · /);
    assert.match(await workbench.treeItemDescription('v2'), /^previous · [0-9a-f]{7} Add product search \(#12\) · /);
    for (const label of ['v3', 'v2', 'v1']) {
      const shown = await workbench.visibleDescriptionWidth(label);
      assert.ok(shown > 120, `only ${Math.round(shown)} px of "${label}: ${await workbench.treeItemDescription(label)}" show at the default sidebar width`);
    }
    // A gitops row is cut too, its state still first.
    await workbench.expandTreeItem('staging');
    await workbench.expandTreeItem('a');
    assert.equal(await workbench.isTreeItemTruncated('v2.0.0'), true, 'the long gitops row is not cut off: the check above would not notice either');
    assert.match(await workbench.treeItemDescription('v2.0.0'), /^previous · /);
    await workbench.screenshot('default-width');
    await workbench.setSidebarWidth(420);

    // From the palette, a preview says it is a dry run in every question it asks.
    await workbench.runPaletteCommand('Deploy Rollback: Preview Rollback (Dry Run)…');
    await workbench.waitForQuickInputTitle(/^Preview Rollback \(Dry Run\): environment$/);
    await workbench.pickQuickItem('default');
    await workbench.waitForQuickInputTitle(/^Preview Rollback \(Dry Run\): app in default$/);
    await workbench.pickQuickItem(SAMPLE_SERVICE);
    await workbench.waitForQuickInputTitle(new RegExp(`^Preview Rollback \\(Dry Run\\) ${SAMPLE_SERVICE} \\(default\\) to…$`));
    await workbench.closeQuickInput();

    // Environment, app, current and previous release, container: each its own menu.
    const environmentMenu = await workbench.screenshotTreeItemMenu('default', 'menu-environment');
    for (const label of ['Refresh', 'Preview Rollback (Dry Run)…', 'Roll Back…']) assert.ok(has(environmentMenu, label), `environment menu: ${environmentMenu.join(' | ')}`);
    const appMenu = await workbench.screenshotTreeItemMenu(SAMPLE_SERVICE, 'menu-app');
    for (const label of ['Roll Back to Previous Release', 'Preview Rollback to Previous Release (Dry Run)', 'Show History', 'Roll Back…']) assert.ok(has(appMenu, label), `app menu: ${appMenu.join(' | ')}`);
    const currentMenu = await workbench.screenshotTreeItemMenu('v3', 'menu-release-current');
    assert.deepEqual(currentMenu, ['Show History on Hosts', 'Open Commit', 'Copy Version', 'Copy Commit SHA']);
    const previousMenu = await workbench.screenshotTreeItemMenu('v2', 'menu-release-previous');
    assert.deepEqual(previousMenu, [
      'Preview Rollback to This Release (Dry Run)',
      'Show History on Hosts',
      'Compare with Running Release',
      'Open Commit',
      'Copy Version',
      'Copy Commit SHA',
      'Roll Back to This Release',
    ]);
    await workbench.expandTreeItem('v3');
    const containerRow = `${firstHost.address} · web`;
    await workbench.waitForTreeChildren('v3', hosts.hosts.length);
    const containerMenu = await workbench.screenshotTreeItemMenu(containerRow, 'menu-container');
    assert.deepEqual(containerMenu, ['Show Container Logs', 'Copy Container Name', 'Roll Back This Host to…']);

    // A gitops release: its menu, and a click opens what it changed in <env>/<app>.
    await workbench.expandTreeItem('staging');
    await workbench.expandTreeItem('a');
    const gitopsMenu = await workbench.screenshotTreeItemMenu('v2.0.0', 'menu-release-gitops');
    assert.deepEqual(gitopsMenu, [
      'Preview Rollback to This Release (Dry Run)',
      'Open Change',
      'Compare with Running Release',
      'Open Commit',
      'Copy Version',
      'Copy Commit SHA',
      'Copy Gitops Commit SHA',
      'Roll Back to This Release',
    ]);
    await workbench.treeItem('v2.0.0').click();
    const changeTab = workbench.page.locator('.part.editor .tabs-container .tab.active');
    await changeTab.filter({ hasText: /staging\/a v2\.0\.0/ }).waitFor({ state: 'visible' });
    await workbench.page.locator('.part.editor').getByText('registry.example.com/a:a2').first().waitFor({ state: 'visible' });
    await workbench.page.locator('.part.editor').getByText('registry.example.com/a:a1').first().waitFor({ state: 'visible' });
    await readmeScreenshot(workbench, 'release-change', await workbench.regionAround([workbench.page.locator('.part.editor')], 0));
    await workbench.runPaletteCommand('View: Close All Editors');

    // Roll back to v2, then v3 is newer: its menu, dialog, progress and output say roll forward.
    await workbench.rightClickTreeItem('v2');
    await workbench.clickContextMenu('Roll Back to This Release');
    assert.match(await workbench.modalText(), new RegExp(`Roll back ${SAMPLE_SERVICE} in default from v3 to v2\\?`));
    // The confirmation can narrow the plan: the app's roles and hosts, all checked; Escape brings the confirmation back.
    await workbench.answerModal('Only Some Roles or Hosts…');
    await workbench.waitForQuickInputTitle(new RegExp(`Roll back ${SAMPLE_SERVICE} \\(default\\) only on…`));
    assert.deepEqual(await workbench.checkedQuickItems(), ['web: checked', ...hosts.hosts.map((host) => `${host.address}: checked`)]);
    await workbench.screenshot('only-some-roles-or-hosts');
    await workbench.closeQuickInput();
    assert.match(await workbench.modalText(), new RegExp(`Roll back ${SAMPLE_SERVICE} in default from v3 to v2\\?`));
    await workbench.answerModal('Roll Back');
    assert.match(await workbench.waitForNotification(/Rolled shop back to v2|did not complete/, 90_000), /^Rolled shop back to v2 on every host \(2\)\./);
    await workbench.clearNotifications();
    await workbench.waitForTreeItemDescription('v2', /^current\b/);
    await workbench.waitForTreeItemDescription('v3', /^newer\b/);
    const forwardMenu = await workbench.screenshotTreeItemMenu('v3', 'menu-release-newer');
    assert.deepEqual(forwardMenu, [
      'Preview Roll Forward to This Release (Dry Run)',
      'Show History on Hosts',
      'Compare with Running Release',
      'Open Commit',
      'Copy Version',
      'Copy Commit SHA',
      'Roll Forward to This Release',
    ]);
    assert.ok(!forwardMenu.some((label) => /Roll Back/.test(label)), `a newer release offers a rollback: ${forwardMenu.join(' | ')}`);
    await workbench.rightClickTreeItem('v3');
    const menuRegion = await workbench.regionAround([workbench.sidebar.locator('.composite.title'), workbench.treeItem('v1'), workbench.page.locator('.context-view .monaco-menu').first()], 6);
    await readmeScreenshot(workbench, 'roll-forward-menu', menuRegion);
    await workbench.clickContextMenu('Roll Forward to This Release');
    const question = await workbench.modalText();
    assert.match(question, new RegExp(`Roll forward ${SAMPLE_SERVICE} in default from v2 to v3\\?`));
    assert.match(question, new RegExp(`Roll ${SAMPLE_SERVICE} forward from v2 to v3 on 2 hosts`));
    await workbench.screenshot('roll-forward-confirmation');
    await workbench.answerModal('Roll Forward');
    // The same form as the rollback's toast, and the per-host table says so too.
    assert.match(await workbench.waitForNotification(/Rolled shop forward to v3|did not complete/, 90_000), /^Rolled shop forward to v3 on every host \(2\)\./);
    assert.deepEqual(await proxyTargets(hosts), hosts.hosts.map(() => `${PROXY_SERVICE}-v3`), 'not every host routes to v3 after the roll forward');
    assert.match(await workbench.outputLinesContaining('Roll forward of'), /Roll\sforward\sof\sshop\s\(default\)\sfrom\sv2\sto\sv3/);
    const forwardRows = await workbench.outputLinesContaining('rolled-forward');
    for (const host of hosts.hosts) assert.match(forwardRows, new RegExp(`${host.address.replace(/\./g, '\\.')}\\s+web\\s+v2\\s+v3\\s+v3\\s+rolled-forward`));
    // The earlier rollback's rows (v3 → v2) say rolled-back; none from v2 to v3 does.
    assert.doesNotMatch(await workbench.outputLinesContaining('rolled-back'), /\sv2\s+v3\s+v3\s+rolled-back/, "a roll forward's table row says rolled-back");
    await workbench.clearNotifications();
    await workbench.waitForTreeItemDescription('v3', /^current\b/);

    // A click on a Kamal release: its history on the hosts, from their audit logs.
    await workbench.treeItem('v2').click();
    const history = await workbench.activeEditorText(/History default shop v2/);
    for (const host of hosts.hosts) assert.match(history.text, new RegExp(`Z\\s+${host.address.replace(/\./g, '\\.')}\\s\\(web\\)\\s+by\\s`));
    await workbench.screenshot('release-history');
    await workbench.runPaletteCommand('View: Close All Editors');

    // Expansion survives a reload: the rows come back open, nothing clicked. The reload also starts a
    // new extension host (no SSH connection kept), so a host stopped meanwhile shows as an error row.
    const expanded = ['default', SAMPLE_SERVICE, 'v3', 'staging', 'a'];
    for (const label of expanded) assert.ok(await workbench.isExpanded(label), `${label} is not expanded before the reload`);
    let sshdStopped = true;
    await hosts.stopSshd(secondHost);
    ui.onCleanup(() => (sshdStopped ? hosts.startSshd(secondHost) : undefined));
    await workbench.reloadWindow();
    for (const label of expanded) {
      await workbench.waitFor(() => workbench.isExpanded(label).catch(() => false), `${label} to come back expanded after the reload`, 60_000);
    }
    await workbench.treeItem(`${firstHost.address} · web`).waitFor({ state: 'visible' });
    await workbench.treeItem(secondHost.address).waitFor({ state: 'visible', timeout: 60_000 });
    await workbench.screenshot('after-reload');

    // The error row: Retry (inline too) and Show Output; Retry after the host is back shows its container.
    const errorMenu = await workbench.screenshotTreeItemMenu(secondHost.address, 'menu-error');
    assert.deepEqual(errorMenu, ['Retry', 'Show Output']);
    assert.deepEqual(await workbench.inlineActions(secondHost.address), ['Retry']);
    await hosts.startSshd(secondHost);
    sshdStopped = false;
    await workbench.rightClickTreeItem(secondHost.address);
    await workbench.clickContextMenu('Retry');
    await workbench.treeItem(`${secondHost.address} · web`).waitFor({ state: 'visible', timeout: 60_000 });
  },
  { timeoutMs: 400_000 },
);
