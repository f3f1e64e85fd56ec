import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { missingHostPrerequisites, type TestHost, type TestHosts } from '../../hosts/harness';
import { createSampleWorkspace, SAMPLE_SERVICE } from '../../fixtures/sample-workspace';
import { journey } from '../journey';

const PROXY_SERVICE = `${SAMPLE_SERVICE}-web`;

async function proxyTargets(hosts: TestHosts): Promise<Array<string | undefined>> {
  return Promise.all(hosts.hosts.map((host: TestHost) => hosts.proxyTargetContainer(host, PROXY_SERVICE)));
}

export const kamalSilentHost = journey(
  'Kamal: a host that goes silent is shown once at the app within the bound while the gitops tree stays usable; Cancel during a rollback says Cancelling… at once and changes nothing',
  async (ui) => {
    const missing = missingHostPrerequisites();
    if (missing) ui.skip(missing);
    const sample = await createSampleWorkspace(ui.emptyWorkspace(), { kamal: true });
    ui.onCleanup(() => sample.stop());
    const hosts = sample.hosts;
    if (!hosts) return ui.skip(sample.kamalSkipped ?? 'the Kamal test hosts did not start');
    const [primary, second] = hosts.hosts as [TestHost, TestHost];

    const workbench = await ui.openWorkbench(sample.folder, { trusted: true, env: { HOME: sample.home } });
    await workbench.openView();
    await workbench.setSidebarWidth(560);
    await workbench.expandTreeItem('default');
    await workbench.expandTreeItem(SAMPLE_SERVICE);
    await workbench.waitForTreeItemDescription('v3', /^current\b/);
    await workbench.expandTreeItem('staging');
    await workbench.expandTreeItem('a');
    await workbench.treeItem('v2.0.0').waitFor({ state: 'visible' });

    await hosts.linkDown(second);
    try {
      const started = Date.now();
      await workbench.runPaletteCommand('Deploy Rollback: Refresh');
      await workbench.screenshot('refreshing');
      // While the silent host is waited for, the rows read before stay (marked "reading…"), sampled each second.
      for (let second = 0; second < 5; second++) {
        const rows = await workbench.treeLabels();
        assert.ok(rows.includes('v3') && rows.includes('v2'), `second ${second} of the read: the Kamal releases are gone (${rows.join(' | ')})`);
        assert.ok(!rows.includes('Reading the hosts…'), `second ${second}: the app is hidden behind "Reading the hosts…"`);
        await workbench.screenshot(`refreshing-${second}s`);
        await workbench.page.waitForTimeout(1_000);
      }
      assert.match(await workbench.treeItemDescription('v3'), /^(reading… · )?current\b/);
      // The gitops releases come back while the silent host is still being waited for.
      await workbench.treeItem('v2.0.0').waitFor({ state: 'visible', timeout: 10_000 });
      const gitopsMs = Date.now() - started;
      assert.ok(gitopsMs < 10_000, `the gitops releases took ${gitopsMs} ms while a Kamal host was silent`);
      await workbench.expandTreeItem('default');
      // The environment warns as soon as its hosts were read (the silent one timed out). The bound is
      // the 20 s of a silent host (keepalive 15 s + 5 s), plus 2 s for the tree to redraw in a loaded 2-core browser.
      const boundMs = 20_000 + 2_000;
      await workbench.waitForTreeItemDescription('default', new RegExp(`${second.address.replace(/\./g, '\\.')} not read`), boundMs);
      const kamalMs = Date.now() - started;
      assert.ok(kamalMs < boundMs, `the silent host was reported after ${kamalMs} ms`);
      await workbench.expandTreeItem(SAMPLE_SERVICE);
      const problem = `${second.address}: unreachable`;
      await workbench.treeItem(problem).waitFor({ state: 'visible', timeout: 10_000 });
      const labels = await workbench.treeLabels();
      assert.equal(labels.filter((label) => label.includes('unreachable')).length, 1, `the host problem is shown once: ${labels.join(' | ')}`);
      await workbench.screenshot('silent-host');
    } finally {
      await hosts.linkUp(second);
    }

    // Cancel while a hook holds the rollback (lock taken, nothing switched yet).
    const hooks = path.join(sample.folder, SAMPLE_SERVICE, '.kamal', 'hooks');
    const marker = path.join(sample.folder, 'hook-started');
    fs.mkdirSync(hooks, { recursive: true });
    fs.writeFileSync(path.join(hooks, 'pre-app-boot'), `#!/bin/sh\necho started > ${JSON.stringify(marker)}\nexec sleep 60\n`, { mode: 0o755 });
    await workbench.runPaletteCommand('Deploy Rollback: Refresh');
    await workbench.expandTreeItem('default');
    await workbench.expandTreeItem(SAMPLE_SERVICE);
    await workbench.waitForTreeItemDescription('v2', /^previous\b/);
    await workbench.rightClickTreeItem('v2');
    await workbench.clickContextMenu('Roll Back to This Release');
    await workbench.modalText();
    const fit = await workbench.modalOverflow();
    if (fit.hiddenAbove || fit.hiddenBelow) await workbench.answerModalWithEnter('Roll Back');
    else await workbench.answerModal('Roll Back');
    await workbench.waitFor(async () => fs.existsSync(marker), 'the pre-app-boot hook to start', 60_000);
    const progress = workbench.page.locator('.notifications-toasts .notification-list-item').filter({ hasText: /Rolling back shop to v2/ }).first();
    // One notification for the whole run (planning, confirmation, steps), saying what its Cancel stops.
    const withCancel = workbench.page.locator('.notifications-toasts .notification-list-item').filter({ has: workbench.page.getByRole('button', { name: 'Cancel' }) });
    const running = await withCancel.locator('.notification-list-item-message').allInnerTexts();
    assert.equal(running.length, 1, `notifications with Cancel: ${running.join(' | ')}`);
    assert.match(running[0]!, /^Rolling back shop to v2 \(Cancel stops the rollback\)/);
    // The bar fills as the run goes (here the lock with the checks is done), not VS Code's endless animation.
    // VS Code puts a notification's bar beside its item, in the list row.
    const bar = progress.locator('xpath=..').locator('.monaco-progress-container');
    await workbench.waitFor(async () => /\bdiscrete\b/.test((await bar.getAttribute('class')) ?? ''), 'the progress bar to be a filling one', 5_000);
    const filled = (await bar.locator('.progress-bit').getAttribute('style')) ?? '';
    assert.match(filled, /width: [1-9]\d?(\.\d+)?%/, `the bar shows the lock taken and nothing booted yet: width ${filled}`);
    await progress.getByRole('button', { name: 'Cancel' }).click();
    const cancelledAt = Date.now();
    // Visible at once: the progress says "Cancelling…", or the cancel is already over and its outcome shows.
    const outcome = workbench.page.locator('.notifications-toasts .notification-list-item-message').filter({ hasText: /did not complete/ });
    await progress.filter({ hasText: /Cancelling…/ }).or(outcome).first().waitFor({ state: 'visible', timeout: 2_000 });
    const shownMs = Date.now() - cancelledAt;
    await workbench.screenshot('cancelling');
    assert.match(await workbench.waitForNotification(/did not complete/, 15_000), /cancelled before any host was changed/);
    assert.ok(shownMs < 2_000, `"Cancelling…" or the outcome appeared ${shownMs} ms after Cancel`);
    assert.deepEqual(await proxyTargets(hosts), hosts.hosts.map(() => `${PROXY_SERVICE}-v3`), 'a host switched although the rollback was cancelled');
    assert.equal(fs.existsSync(path.join(primary.home, '.kamal', `lock-${SAMPLE_SERVICE}`)), false, 'the deploy lock was released');
  },
  { timeoutMs: 240_000 },
);
