import * as assert from 'node:assert/strict';
import path from 'node:path';
import { gitopsScenarios, makeGitopsFixture, sourceShaFor, type GitopsFixture } from '../../fixtures/gitops';
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

/** The short version the tree shows for an untagged Gimlet release: its source sha. */
function untaggedVersion(label: string): string {
  return sourceShaFor(label).slice(0, 8);
}

function remoteState(fixture: GitopsFixture): { head: string; message: string } {
  return {
    head: fixture.git(['--git-dir', fixture.remote, 'rev-parse', 'main']).trim(),
    message: fixture.git(['--git-dir', fixture.remote, 'log', '-1', '--format=%B', 'main']),
  };
}

export const gitopsRollback = journey('a gitops rollback from the tree: confirm from → to, see the steps, the tree marks the new current and the rolled-back releases', async (ui) => {
  const fixture = makeGitopsFixture(path.join(ui.emptyWorkspace(), 'gitops'), gitopsScenarios.interleaved());
  const current = untaggedVersion('a3');
  const target = untaggedVersion('a1');
  const remoteBefore = remoteState(fixture);
  const workbench = await ui.openWorkbench(fixture.work, { trusted: true });
  await workbench.openView();
  await workbench.setSidebarWidth(520);
  await workbench.expandTreeItem(fixture.env);
  await workbench.expandTreeItem('a');
  assert.match(await workbench.treeItemDescription(current), /^current\b/);
  assert.match(await workbench.treeItemDescription('v2.0.0'), /^previous\b/);
  assert.doesNotMatch(await workbench.treeItemDescription(target), /current|rolled back/);
  await workbench.screenshot('releases-before');

  await workbench.rightClickTreeItem(target);
  await workbench.clickContextMenu('Roll Back to This Release');
  const confirmation = await workbench.modalText();
  assert.match(confirmation, new RegExp(`Roll back a in staging from ${current} to ${target}\\?`));
  await workbench.screenshot('confirmation');
  await workbench.answerModal('Roll Back');
  assert.equal(remoteState(fixture).head, remoteBefore.head, 'the remote moved before the rollback was confirmed');

  const done = await workbench.waitForNotification(/rolled back|Rolled back/);
  assert.match(done, new RegExp(target));
  assert.match(await workbench.outputLinesContaining('Reverting'), /Reverting [0-9a-f]{7,} [\s\S]*?\(staging\/a only\)/);
  assert.match(await workbench.outputLinesContaining('Pushing'), /Pushing to origin/);
  await workbench.screenshot('output-after-rollback');

  const remoteAfter = remoteState(fixture);
  assert.notEqual(remoteAfter.head, remoteBefore.head, 'nothing was pushed to the remote');
  assert.match(remoteAfter.message, /This reverts commit [0-9a-f]{40}/);
  assert.equal(fixture.git(['status', '--porcelain']).trim(), '', 'the rollback left the clone dirty');

  await workbench.waitForTreeItemDescription(target, /^current\b/);
  assert.match(await workbench.treeItemDescription(current), /^rolled back\b/);
  assert.match(await workbench.treeItemDescription('v2.0.0'), /^rolled back\b/);
  await workbench.screenshot('releases-after');
});

export const gitopsPaletteRollback = journey('Deploy Rollback: Roll Back… from the palette asks environment → app → release, confirms and reports success', async (ui) => {
  const fixture = makeGitopsFixture(path.join(ui.emptyWorkspace(), 'gitops'), gitopsScenarios.interleaved());
  const remoteBefore = remoteState(fixture);
  const workbench = await ui.openWorkbench(fixture.work, { trusted: true });
  await workbench.openView();
  await workbench.expandTreeItem(fixture.env);

  await workbench.runPaletteCommand('Deploy Rollback: Roll Back…');
  await workbench.waitForQuickInputTitle(/Roll Back: environment/);
  assert.deepEqual((await workbench.quickItems()).map((item) => item.split(',')[0]), ['staging']);
  await workbench.pickQuickItem('staging');
  await workbench.waitForQuickInputTitle(/Roll Back: app in staging/);
  await workbench.pickQuickItem('a');
  await workbench.waitForQuickInputTitle(/Roll Back a \(staging\) to/);
  const releases = await workbench.quickItems();
  assert.ok(releases.some((item) => item.startsWith('v2.0.0')), `releases offered: ${releases.join(' | ')}`);
  assert.ok(
    releases.some((item) => item.includes(untaggedVersion('a3')) && /Not pickable: current/.test(item)),
    `the current release is not listed as not pickable: ${releases.join(' | ')}`,
  );
  await workbench.screenshot('release-pick');
  await workbench.pickQuickItem('v2.0.0');

  assert.match(await workbench.answerModal('Roll Back'), new RegExp(`Roll back a in staging from ${untaggedVersion('a3')} to v2\\.0\\.0\\?`));
  assert.match(await workbench.waitForNotification(/rolled back|Rolled back/), /v2\.0\.0/);
  await workbench.screenshot('success');
  const remoteAfter = remoteState(fixture);
  assert.notEqual(remoteAfter.head, remoteBefore.head, 'nothing was pushed to the remote');
  assert.match(remoteAfter.message, /This reverts commit/);
  await workbench.expandTreeItem('a');
  await workbench.waitForTreeItemDescription('v2.0.0', /^current\b/);
});

export const gitopsPreview = journey('Preview Rollback (Dry Run) opens the plan read-only and changes nothing', async (ui) => {
  const fixture = makeGitopsFixture(path.join(ui.emptyWorkspace(), 'gitops'), gitopsScenarios.interleaved());
  const headBefore = fixture.git(['rev-parse', 'HEAD']).trim();
  const remoteBefore = remoteState(fixture);
  const workbench = await ui.openWorkbench(fixture.work, { trusted: true });
  await workbench.openView();
  await workbench.expandTreeItem(fixture.env);
  await workbench.expandTreeItem('a');
  await workbench.rightClickTreeItem('v2.0.0');
  await workbench.clickContextMenu('Preview Rollback to This Release (Dry Run)');

  const plan = await workbench.activeEditorText(/Rollback plan/);
  assert.match(plan.title, /Rollback plan staging a to v2\.0\.0/);
  assert.match(plan.text, new RegExp(`Dry run: roll back a in staging from ${untaggedVersion('a3')} to v2\\.0\\.0`));
  assert.match(plan.text, /Nothing has been changed\./);
  await workbench.screenshot('plan');
  assert.match(await workbench.typeIntoReadOnlyEditor('x'), /read-only/i);
  assert.equal((await workbench.activeEditorText(/Rollback plan/)).text, plan.text, 'typing changed the plan');

  assert.equal(fixture.git(['rev-parse', 'HEAD']).trim(), headBefore, 'the preview moved HEAD');
  assert.deepEqual(remoteState(fixture), remoteBefore, 'the preview changed the remote');
  assert.equal(fixture.git(['status', '--porcelain']).trim(), '', 'the preview changed the working tree');
  assert.match(await workbench.treeItemDescription(untaggedVersion('a3')), /^current\b/);
});

export const gitopsProtectedEnvironment = journey('in production Roll Back also asks to type the app name: a wrong name is not accepted, Escape changes nothing, the right name rolls back', async (ui) => {
  const fixture = makeGitopsFixture(path.join(ui.emptyWorkspace(), 'gitops'), { ...gitopsScenarios.interleaved(), env: 'production' });
  const remoteBefore = remoteState(fixture);
  const workbench = await ui.openWorkbench(fixture.work, { trusted: true });
  await workbench.openView();
  await workbench.expandTreeItem('production');
  await workbench.expandTreeItem('a');

  await workbench.rightClickTreeItem('v2.0.0');
  await workbench.clickContextMenu('Roll Back to This Release');
  await workbench.answerModal('Roll Back');
  await workbench.waitForQuickInputTitle(/production is a protected environment/);
  await workbench.typeInQuickInput('b');
  const validation = workbench.page.locator('.quick-input-widget .quick-input-message');
  await validation.getByText('Type a exactly').waitFor({ state: 'visible' });
  await workbench.screenshot('typed-confirmation-wrong-name');
  await workbench.page.keyboard.press('Enter');
  // Still asking after Enter: the box takes more typing and still names what to type.
  await workbench.waitForQuickInputTitle(/production is a protected environment/);
  await workbench.typeInQuickInput('bb');
  await validation.getByText('Type a exactly').waitFor({ state: 'visible' });
  assert.deepEqual(remoteState(fixture), remoteBefore, 'the remote changed after a wrong app name');
  await workbench.closeQuickInput();
  assert.deepEqual(remoteState(fixture), remoteBefore, 'the remote changed although the typed confirmation was cancelled');

  await workbench.rightClickTreeItem('v2.0.0');
  await workbench.clickContextMenu('Roll Back to This Release');
  await workbench.answerModal('Roll Back');
  await workbench.waitForQuickInputTitle(/production is a protected environment/);
  await workbench.typeInQuickInput('a');
  await workbench.page.keyboard.press('Enter');
  assert.match(await workbench.waitForNotification(/rolled back|Rolled back/), /v2\.0\.0/);
  const remoteAfter = remoteState(fixture);
  assert.notEqual(remoteAfter.head, remoteBefore.head, 'nothing was pushed after typing the app name');
  assert.match(remoteAfter.message, /This reverts commit/);
  await workbench.waitForTreeItemDescription('v2.0.0', /^current\b/);
});
