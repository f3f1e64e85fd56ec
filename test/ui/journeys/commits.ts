import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import path from 'node:path';
import { makeAppRepo } from '../../fixtures/app-repo';
import { missingHostPrerequisites, startHosts } from '../../hosts/harness';
import { journey } from '../journey';
import { proxyTargets } from '../kamal-sample';
import { readmeScreenshot } from '../readme-screenshots';

const SERVICE = 'shop';

export const releaseCommits = journey(
  'Kamal releases deployed as Kamal deploys them (version = commit sha): rows with subjects, the confirmation lists the commits a rollback undoes, Compare with Running Release opens the code diff',
  async (ui) => {
    const missing = missingHostPrerequisites();
    if (missing) ui.skip(missing);
    const dir = ui.emptyWorkspace();
    const folder = path.join(dir, 'workspace');
    const home = path.join(dir, 'home');
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
    // The app's repository is the Kamal project: each deploy's version is `git rev-parse HEAD` there.
    const repo = makeAppRepo(path.join(folder, SERVICE));
    const versions = repo.releases.map((release) => release.sha);
    const [first, second, previous, running] = versions;
    const short = (sha: string) => sha.slice(0, 7);

    const hosts = await startHosts({ count: 2, service: SERVICE, images: versions.map((version) => ({ version })) });
    ui.onCleanup(() => hosts.stop());
    await hosts.seedKamalState({ service: SERVICE, versions, running });
    fs.copyFileSync(hosts.clientKeyPath, path.join(home, '.ssh', 'id_ed25519'));
    fs.chmodSync(path.join(home, '.ssh', 'id_ed25519'), 0o600);
    fs.copyFileSync(hosts.knownHostsPath, path.join(home, '.ssh', 'known_hosts'));
    fs.mkdirSync(path.join(repo.root, 'config'), { recursive: true });
    fs.writeFileSync(
      path.join(repo.root, 'config', 'deploy.yml'),
      [
        `service: ${SERVICE}`,
        `image: ${hosts.repository}`,
        'servers:',
        '  web:',
        ...hosts.hosts.filter((host) => !host.jumpOnly).map((host) => `    - ${host.address}`),
        'proxy:',
        '  app_port: 80',
        'registry:',
        '  username: demo',
        '  password:',
        '    - KAMAL_REGISTRY_PASSWORD',
        '',
      ].join('\n'),
    );
    const proxiesBefore = await proxyTargets(hosts);

    const workbench = await ui.openWorkbench(folder, { trusted: true, env: { HOME: home } });
    await workbench.openView();
    await workbench.expandTreeItem('default');
    await workbench.expandTreeItem(SERVICE);

    // A sha version is labelled by its short sha; the description says what the commit is, state first.
    await workbench.waitForTreeItemDescription(short(running), /^current · Faster search results \(#17\) · Bob Builder · /, 60_000);
    assert.match(await workbench.treeItemDescription(short(previous)), /^previous · Bump rack to 3\.1\.8 · Alice Example · \w+ ago$/);
    // A merged pull request by its title, as GitLens shows it.
    assert.match(await workbench.treeItemDescription(short(second)), /^Add product search \(#12\) · Alice Example · \w+ ago$/);
    assert.match(await workbench.treeItemDescription(short(first)), /^Initial shop app · Alice Example · \w+ ago$/);
    // At the default width the state and the first words of the subject show, whatever is cut after.
    const visibleWidth = await workbench.visibleDescriptionWidth(short(running));
    assert.ok(visibleWidth > 120, `only ${Math.round(visibleWidth)} px of the description shows at the default sidebar width`);
    await workbench.screenshot('rows-default-width');
    await workbench.setSidebarWidth(560);
    await workbench.page.mouse.move(900, 600);
    const lastRow = workbench.treeItem(short(first));
    await readmeScreenshot(workbench, 'release-commits', await workbench.regionAround([workbench.sidebar.locator('.composite.title'), lastRow], 4));

    // The confirmation says what the rollback takes out of production: the count and the subjects.
    await workbench.rightClickTreeItem(short(second));
    await workbench.clickContextMenu('Roll Back to This Release');
    const confirmation = await workbench.modalText();
    assert.match(confirmation, new RegExp(`Roll back ${SERVICE} in default from ${short(running)} to ${short(second)}\\?`));
    assert.match(
      confirmation,
      /This rollback undoes 4 commits:\s+• \w{7} Faster search results \(#17\)\s+• \w{7} Bump rack to 3\.1\.8\s+• \w{7} Add checkout \(#15\)\s+• \w{7} Cache product pages\s/,
    );
    // Sha versions are short in the dialog (whole in the output), so it fits the window.
    assert.doesNotMatch(confirmation, /[0-9a-f]{40}/);
    const fit = await workbench.modalOverflow();
    assert.equal(fit.hiddenAbove + fit.hiddenBelow, 0, `the dialog does not fit the window: ${JSON.stringify(fit)}`);
    await readmeScreenshot(workbench, 'rollback-confirmation', await workbench.regionAround([workbench.page.locator('.monaco-dialog-box')], 12));
    await workbench.answerModal('Cancel');
    assert.deepEqual(await proxyTargets(hosts), proxiesBefore, 'a host switched although the rollback was cancelled');

    // Compare with Running Release: the code diff from what runs to the release, in the multi-file diff editor.
    const menu = await workbench.treeItemMenuEntries(short(second));
    for (const label of ['Compare with Running Release', 'Open Commit', 'Copy Commit SHA']) {
      assert.ok(menu.some((entry) => entry.label === label && entry.enabled), `${label} missing from the menu: ${menu.map((entry) => entry.label).join(' | ')}`);
    }
    const runningMenu = await workbench.treeItemMenuEntries(short(running));
    assert.ok(!runningMenu.some((entry) => entry.label === 'Compare with Running Release'), 'the running release offers to compare with itself');
    await workbench.rightClickTreeItem(short(second));
    await workbench.clickContextMenu('Compare with Running Release');
    const title = `${SERVICE}: ${short(running)} (running) ↔ ${short(second)}`;
    const editor = workbench.page.locator('.part.editor');
    await editor.locator('.tabs-container .tab.active').filter({ hasText: title }).waitFor({ state: 'visible' });
    // Both sides come from git: the running release's product cache on the left, the plain list it replaced on the right.
    await editor.getByText('products.rb').first().waitFor({ state: 'visible' });
    await editor.getByText('Rails.cache.fetch').first().waitFor({ state: 'visible' });
    await editor.getByText(/def\slist\s=\s\[\]/).first().waitFor({ state: 'visible' });
    await readmeScreenshot(workbench, 'compare-running', await workbench.regionAround([editor], 0));
  },
  { timeoutMs: 400_000 },
);
