import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeployRollbackError } from '../../../src/core/model';
import { readGitopsRepo, type GitopsRepo } from '../../../src/core/gitops/discovery';
import { listReleases } from '../../../src/core/gitops/history';
import { executeGitopsRollback, planGitopsRollback, previewGitopsRollback } from '../../../src/core/gitops/rollback';
import { gitopsScenarios, copyGitopsFixture, runGit, type GitopsFixture } from '../../fixtures/gitops';
import { recordingReporter, rejection, snapshot, useTempDirs } from './helpers';

async function interleaved(dir: string): Promise<{ fixture: GitopsFixture; repo: GitopsRepo }> {
  const fixture = copyGitopsFixture(dir, gitopsScenarios.interleaved());
  return { fixture, repo: (await readGitopsRepo(fixture.work))! };
}

function show(fixture: GitopsFixture, rev: string, file: string, dir = fixture.work): string {
  return runGit(['show', `${rev}:${file}`], dir);
}

describe('gitops rollback planning', () => {
  const tempDir = useTempDirs();

  it('plans reverting a3 then a2 (newest first) with their files, leaving b alone', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    assert.deepEqual(plan.detail.reverts.map((step) => step.sha), [fixture.shas.a3, fixture.shas.a2]);
    assert.deepEqual(plan.detail.reverts[0].files, ['staging/a/deployment.yaml', 'staging/a/release.json']);
    assert.equal(plan.detail.appPath, 'staging/a');
    assert.equal(plan.detail.upstream?.name, 'origin/main');
    assert.equal(plan.summary, `Revert 2 commits in staging/a and push to origin/main, rolling staging/a back to ${plan.to}`);
    // The plan counts as its summary does (the preview shows both).
    assert.ok(plan.lines.includes('Revert 2 commits touching staging/a, newest first, one revert commit each:'), plan.lines.join('\n'));
    assert.ok(plan.lines.some((line) => line.includes(`revert ${fixture.shas.a3.slice(0, 10)} [Gimlet] staging/a automated deploy`)));
    assert.ok(plan.lines.some((line) => line.includes('Leave staging/release.json and every other app untouched')));
    assert.equal(plan.from, (await listReleases(repo, 'staging', 'a'))[0].version);
    assert.deepEqual(plan.overview, [
      `Revert ${fixture.shas.a3.slice(0, 10)} (2 files in staging/a)`,
      `Revert ${fixture.shas.a2.slice(0, 10)} (2 files in staging/a)`,
      'Only staging/a changes; push to origin/main without force, leased on the commit it is made on.',
    ]);
  });

  it('refuses a short sha', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const error = await rejection(planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1.slice(0, 10)));
    assert.ok(error instanceof DeployRollbackError);
    assert.match(error.message, /^Not a release sha of staging\/a: "[0-9a-f]{10}" is a short sha \(10 characters\): give the full 40-hex sha/);
  });

  it('refuses an unknown sha', async () => {
    const { repo } = await interleaved(tempDir());
    const error = await rejection(planGitopsRollback(repo, 'staging', 'a', 'f'.repeat(40)));
    assert.match(error.message, /Unknown commit f{40}: it is not in the gitops repository/);
  });

  it('refuses a sha that is not a release of this app', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const error = await rejection(planGitopsRollback(repo, 'staging', 'a', fixture.shas.b1));
    assert.match(error.message, /is not a release of staging\/a: it does not touch staging\/a/);
  });

  it('refuses the current release', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const error = await rejection(planGitopsRollback(repo, 'staging', 'a', fixture.shas.a3));
    assert.match(error.message, /is already the current release/);
  });

  it('plans a roll forward to a release that was rolled back: reverting the revert', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.rolledBack());
    const repo = (await readGitopsRepo(fixture.work))!;
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a2);
    assert.equal(plan.direction, 'forward');
    assert.deepEqual(plan.detail.reverts.map((step) => [step.sha, step.kind]), [[fixture.shas['revert-a2'], 'revert']]);
    assert.match(plan.summary, /^Revert 1 commit in staging\/a and push to origin\/main, rolling staging\/a forward to /);
    assert.match(plan.lines[0], /^Roll forward staging\/a in /);
  });

  it('skips commits whose change to the path was undone later', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.rolledBack());
    fixture.apply([{ kind: 'deploy', app: 'a', label: 'a3' }]);
    const repo = (await readGitopsRepo(fixture.work))!;
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    assert.equal(plan.direction, 'back');
    assert.deepEqual(plan.detail.reverts.map((step) => step.sha), [fixture.shas.a3]);
    assert.deepEqual(plan.detail.skipped.map((skip) => skip.sha), [fixture.shas['revert-a2'], fixture.shas.a2]);
    assert.match(plan.detail.skipped[0].reason, new RegExp(`undone later: ${fixture.shas['revert-a2'].slice(0, 10)} left the path as it was`));
  });

  it('previews the diff stat in a throw-away worktree without changing the checkout', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const before = snapshot(fixture);
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    const stat = await previewGitopsRollback(plan);
    assert.match(stat.join('\n'), /staging\/a\/deployment\.yaml \| 2 \+-/);
    assert.match(stat.join('\n'), /staging\/a\/release\.json +\| 2 \+-/);
    assert.match(stat[stat.length - 2], /2 files changed, 2 insertions\(\+\), 2 deletions\(-\)/);
    assert.equal(stat[stat.length - 1], `Verified: staging/a equals ${fixture.shas.a1.slice(0, 10)} (${plan.to}) exactly, and nothing outside it changes`);
    assert.doesNotMatch(stat.join('\n'), /staging\/release\.json|staging\/b/);
    assert.deepEqual(snapshot(fixture), before);
  });
});

describe('gitops rollback execution', () => {
  const tempDir = useTempDirs();

  it('rolls a back to a1 with b deployed in between: b and the shared release.json untouched, remote updated', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const sharedBefore = show(fixture, 'HEAD', 'staging/release.json');
    const reporter = recordingReporter();
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    const outcome = await executeGitopsRollback(plan, reporter);
    assert.equal(outcome.ok, true);
    const remoteHead = runGit(['rev-parse', 'main'], fixture.remote).trim();
    assert.equal(runGit(['rev-parse', 'HEAD'], fixture.work).trim(), remoteHead, 'checkout fast-forwarded');
    assert.equal(show(fixture, 'main', 'staging/a/release.json', fixture.remote), show(fixture, fixture.shas.a1, 'staging/a/release.json'));
    assert.equal(show(fixture, 'main', 'staging/a/deployment.yaml', fixture.remote), show(fixture, fixture.shas.a1, 'staging/a/deployment.yaml'));
    assert.equal(show(fixture, 'main', 'staging/release.json', fixture.remote), sharedBefore);
    assert.match(sharedBefore, /"app":"b"/);
    assert.equal(runGit(['diff', '--stat', fixture.shas.b2, 'main', '--', 'staging/b', 'staging/flux', 'staging/release.json'], fixture.remote), '');
    assert.equal(outcome.lines[1], `Fast-forwarded main in ${fixture.work} to origin/main`);
    assert.ok(reporter.steps.includes('Fetching origin/main'));
    assert.deepEqual(reporter.progressed, ['1/3 after Fetching origin/main', `2/3 after ${reporter.steps.find((step) => step.startsWith('Verified'))}`, '3/3 after Pushing to origin/main']);
    assert.ok(reporter.debugs.some((line) => line.startsWith(`[git] git push --porcelain --force-with-lease=refs/heads/main:${fixture.shas.b2} origin ${remoteHead}:refs/heads/main (in `)));
    assert.equal(outcome.lines[0], `Pushed 2 revert commit(s) to origin/main: ${remoteHead}`);
    assert.equal(runGit(['worktree', 'list', '--porcelain'], fixture.work).split('\n').filter((l) => l.startsWith('worktree ')).length, 1);
  });

  it('writes one revert per commit, newest first, with git\'s message naming the full sha', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    await executeGitopsRollback(await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1));
    const messages = runGit(['log', '-2', '--format=%B%x00'], fixture.remote).split('\0').map((m) => m.trim()).filter(Boolean);
    assert.deepEqual(messages, [
      `Revert "[Gimlet] staging/a automated deploy"\n\nThis reverts commit ${fixture.shas.a2}.`,
      `Revert "[Gimlet] staging/a automated deploy"\n\nThis reverts commit ${fixture.shas.a3}.`,
    ]);
    const touched = runGit(['log', '-2', '--name-only', '--format='], fixture.remote).split('\n').filter(Boolean);
    assert.ok(touched.every((file) => file.startsWith('staging/a/')), touched.join(', '));
  });

  it('afterwards shows a2 and a3 rolled back and a1 current', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    await executeGitopsRollback(await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1));
    const releases = await listReleases(repo, 'staging', 'a');
    assert.deepEqual(releases.map((r) => [r.id, r.current, r.rolledBack]), [
      [fixture.shas.a3, false, true],
      [fixture.shas.a2, false, true],
      [fixture.shas.a1, true, false],
    ]);
    assert.equal((await listReleases(repo, 'staging', 'b'))[0].id, fixture.shas.b2);
  });

  it('rolls back a repo-per-env app', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.repoPerEnv());
    const repo = (await readGitopsRepo(fixture.work))!;
    await executeGitopsRollback(await planGitopsRollback(repo, 'production', 'a', fixture.shas.a1));
    assert.equal(show(fixture, 'main', 'a/release.json', fixture.remote), show(fixture, fixture.shas.a1, 'a/release.json'));
    assert.equal(show(fixture, 'main', 'release.json', fixture.remote), show(fixture, fixture.shas.a2, 'release.json'));
  });

  it('rolls back to the root commit release and back over a delete', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.deleted());
    const repo = (await readGitopsRepo(fixture.work))!;
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a2);
    assert.deepEqual(plan.detail.reverts.map((s) => s.sha), [fixture.shas.a3, fixture.shas['delete-a']]);
    await executeGitopsRollback(plan);
    assert.equal(show(fixture, 'main', 'staging/a/release.json', fixture.remote), show(fixture, fixture.shas.a2, 'staging/a/release.json'));

    const rooted = copyGitopsFixture(tempDir(), gitopsScenarios.rootRelease());
    const rootedRepo = (await readGitopsRepo(rooted.work))!;
    await executeGitopsRollback(await planGitopsRollback(rootedRepo, 'staging', 'a', rooted.shas.a1));
    assert.equal((await listReleases(rootedRepo, 'staging', 'a')).find((r) => r.current)?.id, rooted.shas.a1);
  });

  it('retries after a push race: another clone pushes between our fetch and our push', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const other = fixture.clone('other');
    const reporter = recordingReporter();
    let raced = false;
    reporter.onStep('Pushing to origin/main', () => {
      if (raced) return;
      raced = true;
      fixture.apply([{ kind: 'deploy', app: 'b', label: 'b3' }], other);
      runGit(['push', '-q', 'origin', 'main'], other);
    });
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    const outcome = await executeGitopsRollback(plan, reporter);
    assert.equal(outcome.ok, true);
    assert.ok(reporter.steps.some((step) => step.startsWith('Someone pushed to origin/main at the same time')));
    assert.ok(reporter.steps.includes('Pushing to origin/main (retry 1 of 3)'));
    // The retry redoes the commits without the bar going back: pushed only once it took.
    assert.deepEqual(reporter.progressed.map((entry) => entry.split(' ')[0]), ['1/3', '2/3', '3/3']);
    assert.match(reporter.progressed[2]!, /after Pushing to origin\/main \(retry 1 of 3\)$/);
    const log = runGit(['log', '--format=%s', '-3', 'main'], fixture.remote).trim().split('\n');
    assert.deepEqual(log, ['Revert "[Gimlet] staging/a automated deploy"', 'Revert "[Gimlet] staging/a automated deploy"', '[Gimlet] staging/b automated deploy']);
    assert.match(show(fixture, 'main', 'staging/b/release.json', fixture.remote), /"artifactId":"b-b3"/);
    assert.match(show(fixture, 'main', 'staging/release.json', fixture.remote), /"artifactId":"b-b3"/);
    assert.equal(show(fixture, 'main', 'staging/a/release.json', fixture.remote), show(fixture, fixture.shas.a1, 'staging/a/release.json'));
  });

  it('refuses to push when a race changed the same app, leaving the remote as the racer left it', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const other = fixture.clone('other');
    const reporter = recordingReporter();
    reporter.onStep('Pushing to origin/main', () => {
      if (runGit(['rev-parse', 'HEAD'], other).trim() !== fixture.shas.b2) return;
      fixture.apply([{ kind: 'deploy', app: 'a', label: 'a4' }], other);
      runGit(['push', '-q', 'origin', 'main'], other);
    });
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    const error = await rejection(executeGitopsRollback(plan, reporter));
    assert.match(error.message, /While rolling back, staging\/a changed on origin\/main .*nothing was pushed; refresh and plan again/);
    assert.equal(runGit(['rev-parse', 'main'], fixture.remote).trim(), runGit(['rev-parse', 'HEAD'], other).trim());
  });

  it('refuses a plan made before someone else deployed the same app', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    const other = fixture.clone('other');
    fixture.apply([{ kind: 'deploy', app: 'a', label: 'a4' }], other);
    runGit(['push', '-q', 'origin', 'main'], other);
    const remoteBefore = runGit(['for-each-ref'], fixture.remote);
    const headBefore = runGit(['rev-parse', 'HEAD'], fixture.work);
    const error = await rejection(executeGitopsRollback(plan));
    assert.match(error.message, /Your checkout of main in .* is 1 commit\(s\) behind origin\/main, which has newer commits on staging\/a .*: run git pull --ff-only there, then plan again/);
    assert.equal(runGit(['for-each-ref'], fixture.remote), remoteBefore);
    assert.equal(runGit(['rev-parse', 'HEAD'], fixture.work), headBefore);
  });

  it('leaves remote refs and the checkout byte-identical when the remote rejects the push', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const hook = path.join(fixture.remote, 'hooks', 'pre-receive');
    fs.writeFileSync(hook, '#!/bin/sh\necho "pushes are frozen" >&2\nexit 1\n', { mode: 0o755 });
    fs.writeFileSync(path.join(fixture.work, 'scratch.txt'), 'untracked work in progress\n');
    const before = snapshot(fixture);
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    const error = await rejection(executeGitopsRollback(plan, recordingReporter()));
    assert.ok(error instanceof DeployRollbackError);
    assert.equal(error.step, 'pushing to origin/main');
    assert.match(error.message, /Push to origin\/main was rejected: .*pre-receive hook declined.*Nothing was pushed/);
    assert.deepEqual(snapshot(fixture), before);
  });

  it('leaves everything unchanged when a revert fails mid-way', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    // A commit git cannot read makes the second revert fail after the first succeeded.
    plan.detail.reverts[1] = { ...plan.detail.reverts[1], sha: 'e'.repeat(40) };
    const before = snapshot(fixture);
    const reporter = recordingReporter();
    const error = await rejection(executeGitopsRollback(plan, reporter));
    assert.match(error.message, /failed while reverting eeeeeeeeee: .*git diff/);
    assert.equal(reporter.steps.filter((step) => step.startsWith('Reverting')).length, 2);
    assert.deepEqual(snapshot(fixture), before);
  });

  it('refuses when the app path has uncommitted changes', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    fs.appendFileSync(path.join(fixture.work, 'staging', 'a', 'deployment.yaml'), '# local edit\n');
    const before = snapshot(fixture);
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    const error = await rejection(executeGitopsRollback(plan));
    assert.match(error.message, /Uncommitted changes in staging\/a in .*\(staging\/a\/deployment\.yaml\): commit or discard them/);
    assert.deepEqual(snapshot(fixture), before);
  });

  it('rolls back with unrelated local edits and then leaves the checkout for the user to pull', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    fs.appendFileSync(path.join(fixture.work, 'staging', 'b', 'deployment.yaml'), '# local edit\n');
    const headBefore = runGit(['rev-parse', 'HEAD'], fixture.work);
    const outcome = await executeGitopsRollback(await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1));
    assert.match(outcome.lines[1], /has uncommitted changes; left as is/);
    assert.equal(runGit(['rev-parse', 'HEAD'], fixture.work), headBefore);
  });

  it('refuses when the local branch has unpushed commits', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    fixture.apply([{ kind: 'deploy', app: 'b', label: 'b3' }]);
    const before = snapshot(fixture);
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    const error = await rejection(executeGitopsRollback(plan));
    assert.match(error.message, /Branch main in .* has 1 commit\(s\) not pushed to origin\/main: push or drop them/);
    assert.deepEqual(snapshot(fixture), before);
  });

  it('cancelling via AbortSignal before the push leaves nothing changed', async () => {
    const { fixture, repo } = await interleaved(tempDir());
    const before = snapshot(fixture);
    const controller = new AbortController();
    const reporter = recordingReporter();
    reporter.onStep('Reverting', () => controller.abort());
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
    const error = await rejection(executeGitopsRollback(plan, reporter, controller.signal));
    assert.match(error.message, /Rollback cancelled (while|before) .*nothing was pushed and your checkout is unchanged/);
    assert.equal(reporter.steps.some((step) => step.startsWith('Pushing')), false);
    assert.deepEqual(snapshot(fixture), before);
  });
});
