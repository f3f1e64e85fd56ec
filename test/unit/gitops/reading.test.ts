import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readGitopsRepo } from '../../../src/core/gitops/discovery';
import { commitMessage, listReleases, readPathHistory, walkPathLog, type PathCommit } from '../../../src/core/gitops/history';
import { planGitopsRollback } from '../../../src/core/gitops/rollback';
import { copyGitopsFixture, gitopsScenarios, runGit, sourceShaFor, type GitopsFixture } from '../../fixtures/gitops';
import { useTempDirs } from './helpers';

/**
 * History reading that no commit message or file name can break: git log prints only shas,
 * times and paths (NUL-framed), the messages come length-framed from cat-file.
 */

let clock = Date.UTC(2026, 2, 1) / 1000;
function commitAll(fixture: GitopsFixture, message: string, env: NodeJS.ProcessEnv = {}): string {
  clock += 60;
  runGit(['add', '-A'], fixture.work);
  runGit(['commit', '-q', '--allow-empty', '--cleanup=verbatim', '-m', message], fixture.work, { GIT_AUTHOR_DATE: `@${clock} +0000`, GIT_COMMITTER_DATE: `@${clock} +0000`, ...env });
  return runGit(['rev-parse', 'HEAD'], fixture.work).trim();
}

/** A Gimlet deploy of staging/a whose commit message is `message` (a CI may put any byte in it). */
function deployWithMessage(fixture: GitopsFixture, message: string): string {
  fixture.apply([{ kind: 'deploy', app: 'a', label: `odd-${fixture.tick}` }]);
  const deployed = runGit(['rev-parse', 'HEAD'], fixture.work).trim();
  runGit(['reset', '-q', '--soft', 'HEAD~1'], fixture.work);
  const sha = commitAll(fixture, message, { GIT_AUTHOR_NAME: 'Gimlet', GIT_AUTHOR_EMAIL: 'gimlet@gimlet.io' });
  assert.equal(runGit(['rev-parse', `${sha}^{tree}`], fixture.work), runGit(['rev-parse', `${deployed}^{tree}`], fixture.work));
  return sha;
}

describe('gitops history reading: no message or file name breaks it', () => {
  const tempDir = useTempDirs();

  it('a release whose message holds 0x1e and 0x1f stays listed and current, and a rollback is planned from it', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const odd = deployWithMessage(fixture, '[Gimlet] staging/a automated deploy\n\nCI run \x1e42\x1f done\x1e\n');
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'a', { limit: 3 });
    assert.deepEqual(releases.map((r) => r.id), [odd, fixture.shas.a3, fixture.shas.a2]);
    assert.equal(releases[0].current, true);
    assert.equal(releases[1].previous, true);
    const history = await readPathHistory(repo, 'staging', 'a');
    assert.equal(history.commits[0].message, '[Gimlet] staging/a automated deploy\n\nCI run \x1e42\x1f done\x1e');
    assert.equal(history.head, odd);
    // The plan's base is that commit, so a rollback is not refused as "newer commits upstream".
    const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a3);
    assert.equal(plan.detail.pathHead, odd);
    assert.deepEqual(plan.detail.reverts.map((step) => step.sha), [odd]);
  });

  it('a NUL in a message (written as a raw object) hides nothing, before or after it', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    fs.writeFileSync(path.join(fixture.work, 'staging', 'a', 'hpa.yaml'), 'kind: HorizontalPodAutoscaler\n');
    runGit(['add', '-A'], fixture.work);
    // Written as a raw object: git commit refuses a NUL in a message, the object format does not.
    const tree = runGit(['write-tree'], fixture.work).trim();
    clock += 60;
    const parent = runGit(['rev-parse', 'HEAD'], fixture.work).trim();
    const body = Buffer.concat([Buffer.from(`tree ${tree}\nparent ${parent}\nauthor A <a@example.com> ${clock} +0000\ncommitter A <a@example.com> ${clock} +0000\n\nhand edit\0`), Buffer.from(`${'f'.repeat(40)} 1 \n`)]);
    const file = path.join(fixture.work, '..', 'nul-commit');
    fs.writeFileSync(file, body);
    const nul = runGit(['hash-object', '-t', 'commit', '-w', '--literally', file], fixture.work).trim();
    runGit(['reset', '-q', '--hard', nul], fixture.work);
    fixture.apply([{ kind: 'deploy', app: 'a', label: 'a4' }]);
    const repo = (await readGitopsRepo(fixture.work))!;
    const history = await readPathHistory(repo, 'staging', 'a');
    assert.deepEqual(history.commits.map((c) => c.sha).slice(0, 3), [fixture.shas.a4, nul, fixture.shas.a3]);
    assert.deepEqual(history.commits[1].files, ['staging/a/hpa.yaml']);
    assert.equal(history.commits[1].message, `hand edit\0${'f'.repeat(40)} 1 `);
    assert.deepEqual(history.releases.map((r) => r.id), [fixture.shas.a4, fixture.shas.a3, fixture.shas.a2, fixture.shas.a1]);
  });

  it('file names with newlines, NUL-like look-alikes of a log header and 0x1e are read as files of their commit', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const names = ['\nleading-newline.yaml', 'x\ny.yaml', `${'a'.repeat(40)} 1700000000 ${'b'.repeat(40)}`, 'rs\x1ename.yaml'];
    for (const name of names) fs.writeFileSync(path.join(fixture.work, 'staging', 'a', name), 'x\n');
    const edit = commitAll(fixture, 'hand: odd file names');
    fixture.apply([{ kind: 'deploy', app: 'a', label: 'a4' }]);
    const repo = (await readGitopsRepo(fixture.work))!;
    const seen: PathCommit[] = [];
    await walkPathLog(fixture.work, ['HEAD'], ['staging/a'], (commit) => seen.push(commit) > 0);
    assert.deepEqual(seen.map((c) => c.sha), [fixture.shas.a4, edit, fixture.shas.a3, fixture.shas.a2, fixture.shas.a1]);
    assert.deepEqual([...seen[1].files].sort(), names.map((name) => `staging/a/${name}`).sort());
    // The deploy rewrote the directory: it deleted every odd file.
    assert.deepEqual([...seen[0].files].sort(), [...names.map((name) => `staging/a/${name}`), 'staging/a/deployment.yaml', 'staging/a/release.json'].sort());
    const releases = await listReleases(repo, 'staging', 'a');
    assert.deepEqual(releases.map((r) => r.id), [fixture.shas.a4, fixture.shas.a3, fixture.shas.a2, fixture.shas.a1]);
  });

  it('stops git early and still delivers every commit before the stop in order', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const seen: string[] = [];
    const stopped = await walkPathLog(fixture.work, ['HEAD'], ['staging/a'], (commit) => {
      seen.push(commit.sha);
      return seen.length < 2;
    });
    assert.equal(stopped, true);
    assert.deepEqual(seen, [fixture.shas.a3, fixture.shas.a2]);
  });

  it('takes the message after the headers of a raw commit, gpgsig continuation lines included', () => {
    const raw = Buffer.from('tree t\nparent p\ngpgsig -----BEGIN-----\n \n x\n -----END-----\n\nsubject\x1e\n\nbody\n\n');
    assert.equal(commitMessage(raw), 'subject\x1e\n\nbody');
  });

  it('source shas are still read from the release files', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'a', { limit: 1 });
    assert.equal(releases[0].sourceSha, sourceShaFor('a3'));
  });
});

describe('gitops releases: deleting or moving release.json is a hand edit, never a release', () => {
  const tempDir = useTempDirs();
  // a1, a2 of a only, so `<env>/release.json` names a: the file a fallback would wrongly read.
  const spec = () => ({ steps: [{ kind: 'bootstrap' as const }, { kind: 'deploy' as const, app: 'a', label: 'a1' }, { kind: 'deploy' as const, app: 'a', label: 'a2' }] });

  for (const [name, change] of [
    ['git rm of release.json', (work: string) => runGit(['rm', '-q', 'staging/a/release.json'], work)],
    ['git mv of release.json', (work: string) => runGit(['mv', 'staging/a/release.json', 'staging/a/release.json.bak'], work)],
  ] as const) {
    it(`${name}, then a hand edit: neither is a release, nothing is current ("uncertain"), a2 is restored exactly`, async () => {
      const fixture = copyGitopsFixture(tempDir(), spec());
      assert.match(runGit(['show', 'HEAD:staging/release.json'], fixture.work), /"app":"a"/);
      change(fixture.work);
      const removed = commitAll(fixture, 'drop the release file');
      fs.writeFileSync(path.join(fixture.work, 'staging', 'a', 'deployment.yaml'), 'kind: Deployment\nreplicas: 3\n');
      const edited = commitAll(fixture, 'hand edit: 3 replicas');
      const repo = (await readGitopsRepo(fixture.work))!;
      const history = await readPathHistory(repo, 'staging', 'a');
      assert.deepEqual(history.commits.map((c) => c.sha).slice(0, 2), [edited, removed]);
      assert.deepEqual(history.releases.map((r) => r.id), [fixture.shas.a2, fixture.shas.a1]);
      assert.equal(history.releases.some((r) => r.current), false);
      assert.match(history.uncertain ?? '', /^uncertain: staging\/a at HEAD matches no release \(last changed by [0-9a-f]{10} "hand edit: 3 replicas"\)/);
      const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a2);
      assert.deepEqual(plan.detail.reverts.map((step) => [step.sha, step.kind]), [[edited, 'manual'], [removed, 'manual']]);
    });
  }

  it('moving the app folder away: the app has no current release and its releases stay targets; the new folder has none', async () => {
    const fixture = copyGitopsFixture(tempDir(), spec());
    runGit(['mv', 'staging/a', 'staging/a-old'], fixture.work);
    const moved = commitAll(fixture, 'park a');
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'a');
    assert.deepEqual(releases.map((r) => [r.id, r.current, r.rollbackable]), [[fixture.shas.a2, false, true], [fixture.shas.a1, false, true]]);
    const parked = await readPathHistory(repo, 'staging', 'a-old');
    assert.deepEqual(parked.commits.map((c) => c.sha), [moved]);
    assert.deepEqual(parked.releases, []);
  });
});
