import * as assert from 'node:assert/strict';
import type { TestHosts } from '../../hosts/harness';
import { SAMPLE_SERVICE } from '../../fixtures/sample-workspace';
import { journey } from '../journey';
import { kamalSample, PROXY_SERVICE, proxyTargets } from '../kamal-sample';
import { readmeScreenshot } from '../readme-screenshots';
import { escapeRegExp, type Workbench } from '../workbench';

/** What `docker ps -a` lists on each host, without the ticking "Up 3 seconds" column. */
async function containersPerHost(hosts: TestHosts): Promise<Record<string, string>> {
  const listing: Record<string, string> = {};
  for (const host of hosts.hosts) {
    const result = await hosts.docker(host, ['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}} {{.Image}} {{.State}}']);
    listing[host.address] = result.stdout.split('\n').filter(Boolean).sort().join('\n');
  }
  return listing;
}

/**
 * Known hosts are seeded in the sample HOME, so SSH should not ask; if it does anyway, answer as
 * the user would after comparing the fingerprint, and count it so the journey can say so.
 */
async function trustHostKeysWhenAsked(workbench: Workbench): Promise<{ asked: number }> {
  const seen = { asked: 0 };
  const hostKeyDialog = workbench.page.locator('.monaco-dialog-box').filter({ hasText: /authenticity of host/ });
  await workbench.page.addLocatorHandler(hostKeyDialog, async () => {
    seen.asked++;
    await hostKeyDialog.getByRole('button', { name: 'Trust Host', exact: true }).click();
  });
  return seen;
}

export const kamalRollback = journey(
  'Kamal: host containers per release, a canary rollback of one host from its container row then the other host from the release row, and a refused rollback to a pruned version that changes nothing',
  async (ui) => {
    const { sample, hosts } = await kamalSample(ui);
    const [firstHost] = hosts.hosts;
    assert.deepEqual(await proxyTargets(hosts), hosts.hosts.map(() => `${PROXY_SERVICE}-v3`), 'the sample hosts do not start on v3');

    const workbench = await ui.openWorkbench(sample.folder, { trusted: true, env: { HOME: sample.home } });
    const hostKeys = await trustHostKeysWhenAsked(workbench);
    await workbench.openView();
    await workbench.setSidebarWidth(560);
    await workbench.expandTreeItem('default');
    await workbench.expandTreeItem(SAMPLE_SERVICE);
    // Every host has both: nothing to say about presence; the versions are tags of the app's commits, named after the state.
    assert.match(await workbench.treeItemDescription('v3'), /^current · [0-9a-f]{7} Bump rack to 3\.1\.8 · Alice Example · \w+ ago$/);
    assert.match(await workbench.treeItemDescription('v2'), /^previous · [0-9a-f]{7} Add product search \(#12\) · Alice Example · \w+ ago$/);
    await workbench.expandTreeItem('v3');
    await workbench.expandTreeItem('v2');
    const hostRows = (rows: Array<{ label: string; description: string }>) => rows.map((row) => `${row.label}: ${row.description}`);
    const v3Rows = hostRows(await workbench.waitForTreeChildren('v3', hosts.hosts.length));
    hosts.hosts.forEach((host, index) => assert.match(v3Rows[index], new RegExp(`^${host.address.replace(/\./g, '\\.')} · web: up \\w+$`)));
    const v2Rows = hostRows(await workbench.waitForTreeChildren('v2', hosts.hosts.length));
    hosts.hosts.forEach((host, index) => assert.match(v2Rows[index], new RegExp(`^${host.address.replace(/\./g, '\\.')} · web: exited · created (\\w+ ago|just now)$`)));
    await workbench.expandTreeItem('staging');
    await workbench.expandTreeItem('a');
    await workbench.treeItem('v2.0.0').waitFor({ state: 'visible' });
    await workbench.page.mouse.move(900, 600);
    const lastRow = workbench.releasesView.getByRole('treeitem').last();
    await readmeScreenshot(workbench, 'tree', await workbench.regionAround([workbench.sidebar.locator('.composite.title'), lastRow], 4));

    // A canary: the second host alone, from its container row, then the rest from the release row.
    const [, canaryHost] = hosts.hosts;
    const canary = escapeRegExp(canaryHost.address);
    const first = escapeRegExp(firstHost.address);
    await workbench.rightClickTreeItem(`${canaryHost.address} · web`);
    await workbench.clickContextMenu('Roll Back This Host to…');
    await workbench.waitForQuickInputTitle(new RegExp(`Roll Back ${SAMPLE_SERVICE} \\(default\\) to`));
    await workbench.pickQuickItem('v2');
    const confirmation = await workbench.modalText();
    assert.match(confirmation, new RegExp(`Roll back ${SAMPLE_SERVICE} in default from v3 to v2\\?`));
    assert.match(confirmation, new RegExp(`--hosts ${canary}; left as they are: ${first} web`));
    assert.deepEqual(await proxyTargets(hosts), hosts.hosts.map(() => `${PROXY_SERVICE}-v3`), 'a host switched before the rollback was confirmed');
    // Checked at the end so the rest of the journey still runs: with the whole plan as its
    // detail the dialog can outgrow the window, and then its buttons cannot be clicked.
    // The README's confirmation comes from commits.ts, where the versions are commits and it lists them.
    const confirmationFit = await workbench.modalOverflow();
    await workbench.screenshot('confirmation');
    if (confirmationFit.hiddenAbove || confirmationFit.hiddenBelow) await workbench.answerModalWithEnter('Roll Back');
    else await workbench.answerModal('Roll Back');

    assert.match(await workbench.waitForNotification(/Rolled shop back to v2|did not complete/, 90_000), new RegExp(`^Rolled shop back to v2 on 1 host \\(--hosts ${canary}; left as they were: ${first} web\\)`));
    assert.deepEqual(await proxyTargets(hosts), [`${PROXY_SERVICE}-v3`, `${PROXY_SERVICE}-v2`], 'only the canary routes to v2');
    assert.ok((await workbench.notificationActions()).includes('Bring the Other Hosts to v2'), 'the notification offers the rest');
    // The primary host still runs v3: it stays current, each on 1 of the 2 hosts.
    await workbench.waitForTreeItemDescription('v3', /^current on 1\/2 hosts\b/);
    await workbench.waitForTreeItemDescription('v2', /^previous · current on 1\/2 hosts\b/);
    await workbench.page.mouse.move(900, 400);
    await readmeScreenshot(workbench, 'canary', await workbench.regionAround([workbench.sidebar.locator('.composite.title'), workbench.treeItem('v1')], 4));
    await workbench.clearNotifications();

    await workbench.rightClickTreeItem('v2');
    await workbench.clickContextMenu('Bring the Other Hosts to This Release');
    assert.match(await workbench.modalText(), new RegExp(`--hosts ${first}; left as they are: ${canary} web`));
    await workbench.answerModal('Roll Back');
    assert.match(await workbench.waitForNotification(/Rolled shop back to v2|did not complete/, 90_000), new RegExp(`^Rolled shop back to v2 on 1 host \\(--hosts ${first}\\b`));
    assert.deepEqual(await proxyTargets(hosts), hosts.hosts.map(() => `${PROXY_SERVICE}-v2`), 'not every host routes to v2 after the rest');
    await workbench.waitForTreeItemDescription('v2', /^current(?! on)\b/);
    assert.doesNotMatch(await workbench.treeItemDescription('v3'), /^current\b/);
    // The second run's outcome table: its host switched, the canary named as left as it was.
    await workbench.waitForOutputText(new RegExp(`${first}\\s+web\\s+v3\\s+v2\\s+v2\\s+rolled-back`));
    await workbench.waitForOutputText(new RegExp(`Left\\sas\\sthey\\swere\\s\\(outside\\s--hosts\\s${first}\\):`));
    await workbench.clearNotifications();
    await workbench.page.mouse.move(200, 700);
    await readmeScreenshot(workbench, 'output', await workbench.regionAround([workbench.page.locator('.part.panel')], 0));
    assert.equal(hostKeys.asked, 0, 'SSH asked about a host key although the sample known_hosts lists every host');

    // A refused rollback: v1 is gone from one host, so it is no target and nothing may change.
    const pruned = await hosts.docker(firstHost, ['rm', '-f', `${PROXY_SERVICE}-v1`]);
    assert.equal(pruned.code, 0, `docker rm on ${firstHost.address} failed: ${pruned.stderr}`);
    const containersBefore = await containersPerHost(hosts);
    const targetsBefore = await proxyTargets(hosts);
    await workbench.runPaletteCommand('Deploy Rollback: Refresh');
    await workbench.expandTreeItem('default');
    await workbench.expandTreeItem(SAMPLE_SERVICE);
    await workbench.waitForTreeItemDescription('v1', /^pruned · 1\/2 hosts\b/);
    const menu = (await workbench.treeItemMenuEntries('v1')).map((entry) => entry.label);
    assert.ok(!menu.some((label) => label.startsWith('Roll Back to This Release')), `v1's menu offers a rollback: ${menu.join(' | ')}`);

    await workbench.runPaletteCommand('Deploy Rollback: Roll Back…');
    await workbench.waitForQuickInputTitle(/Roll Back: environment/);
    await workbench.pickQuickItem('default');
    await workbench.waitForQuickInputTitle(/Roll Back: app in default/);
    await workbench.pickQuickItem(SAMPLE_SERVICE);
    await workbench.waitForQuickInputTitle(new RegExp(`Roll Back ${SAMPLE_SERVICE} \\(default\\) to`));
    const offered = await workbench.quickItems();
    const v1 = offered.find((item) => /\bv1\b/.test(item));
    assert.ok(v1, `v1 is not listed: ${offered.join(' | ')}`);
    assert.match(v1, new RegExp(`Not pickable: pruned on ${firstHost.address.replace(/\./g, '\\.')}`));
    await readmeScreenshot(workbench, 'palette', await workbench.regionAround([workbench.page.locator('.quick-input-widget')], 8));
    await workbench.pickQuickItem('$(circle-slash) v1');
    assert.match(await workbench.waitForNotification(/v1 cannot be rolled back to/), new RegExp(`pruned on ${firstHost.address.replace(/\./g, '\\.')}`));
    await workbench.screenshot('refused');
    await workbench.closeQuickInput();

    assert.deepEqual(await containersPerHost(hosts), containersBefore, 'a host\'s containers changed although the rollback was refused');
    assert.deepEqual(await proxyTargets(hosts), targetsBefore, 'a host\'s proxy target changed although the rollback was refused');

    assert.ok(
      !confirmationFit.hiddenAbove && !confirmationFit.hiddenBelow,
      `the confirmation of the Kamal rollback is ${confirmationFit.height} px tall in a ${confirmationFit.windowHeight} px window: ` +
        `${confirmationFit.hiddenAbove} px (its question) are cut off above and ${confirmationFit.hiddenBelow} px (its Roll Back and Cancel buttons) below, ` +
        'so a mouse user cannot confirm (the journey pressed Enter instead)',
    );
  },
  { timeoutMs: 240_000 },
);
