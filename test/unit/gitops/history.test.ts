import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findGitopsRepos, readGitopsRepo } from '../../../src/core/gitops/discovery';
import { listReleases } from '../../../src/core/gitops/history';
import { parseReleaseJson } from '../../../src/core/gitops/releaseJson';
import { gitopsScenarios, copyGitopsFixture, runGit, sourceShaFor, type GitopsFixture } from '../../fixtures/gitops';
import { useTempDirs } from './helpers';

function labelsOf(fixture: GitopsFixture, ids: string[]): string[] {
  return ids.map((id) => Object.entries(fixture.shas).find(([, sha]) => sha === id)?.[0] ?? id);
}

describe('gitops discovery', () => {
  const tempDir = useTempDirs();

  it('finds a multi-env repository in a direct subfolder with its envs and apps, skipping flux', async () => {
    const dir = tempDir();
    copyGitopsFixture(dir, gitopsScenarios.interleaved());
    const repos = await findGitopsRepos([dir]);
    assert.equal(repos.length, 1);
    assert.equal(repos[0].root, path.join(dir, 'work'));
    assert.equal(repos[0].layout, 'multi-env');
    assert.deepEqual(repos[0].envs, [{ name: 'staging', dir: 'staging', apps: ['a', 'b'] }]);
  });

  it('reads a repo-per-env repository and names the env from release.json', async () => {
    const dir = tempDir();
    const fixture = copyGitopsFixture(dir, gitopsScenarios.repoPerEnv());
    const repo = await readGitopsRepo(fixture.work);
    assert.equal(repo?.layout, 'repo-per-env');
    assert.deepEqual(repo?.envs, [{ name: 'production', dir: '', apps: ['a', 'b'] }]);
  });

  it('falls back to the envName setting, then the folder name, when release.json has no env', async () => {
    const dir = tempDir();
    const fixture = copyGitopsFixture(dir, gitopsScenarios.repoPerEnv());
    fs.writeFileSync(path.join(fixture.work, 'release.json'), '{"app":"a"}\n');
    assert.equal((await readGitopsRepo(fixture.work, { envName: 'prod-eu' }))?.envs[0].name, 'prod-eu');
    assert.equal((await readGitopsRepo(fixture.work))?.envs[0].name, 'work');
  });

  it('ignores folders that are not git repositories or hold no release.json', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'plain', 'staging'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'plain', 'staging', 'release.json'), '{}\n');
    fs.mkdirSync(path.join(dir, 'emptygit'));
    runGit(['init', '-q'], path.join(dir, 'emptygit'));
    assert.deepEqual(await findGitopsRepos([dir]), []);
  });

  it('uses exactly the paths setting and reports a listed path that is not a gitops repository', async () => {
    const dir = tempDir();
    const fixture = copyGitopsFixture(path.join(dir, 'one'), gitopsScenarios.rootRelease());
    fs.mkdirSync(path.join(dir, 'nothing'));
    const repos = await findGitopsRepos([dir], { paths: [fixture.work, 'nothing'] });
    assert.equal(repos.length, 2);
    assert.equal(repos[0].root, fixture.work);
    assert.deepEqual(repos[0].envs.map((env) => env.name), ['staging']);
    assert.equal(repos[1].envs.length, 0);
    assert.match(repos[1].problems[0].message, /nothing.*is not a git repository/);
  });

  it('forces repo-per-env when the mode says so', async () => {
    const dir = tempDir();
    const fixture = copyGitopsFixture(dir, gitopsScenarios.interleaved());
    const repo = await readGitopsRepo(fixture.work, { mode: 'repo-per-env', envName: 'all' });
    assert.equal(repo?.layout, 'repo-per-env');
    assert.deepEqual(repo?.envs[0].apps, ['staging']);
  });
});

describe('gitops release history', () => {
  const tempDir = useTempDirs();

  it('builds fixtures in Gimlet\'s format: one-line release.json in both places, Gimlet author and message', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const own = runGit(['show', `${fixture.shas.a2}:staging/a/release.json`], fixture.work);
    assert.equal(runGit(['show', `${fixture.shas.a2}:staging/release.json`], fixture.work), own);
    assert.match(own, /^\{"app":"a","env":"staging",.*"gitopsRef":"",.*\}\n$/);
    assert.equal(own.split('\n').length, 2);
    assert.equal(runGit(['log', '-1', '--format=%an <%ae>|%s', fixture.shas.a2], fixture.work).trim(), 'Gimlet <gimlet@gimlet.io>|[Gimlet] staging/a automated deploy');
    assert.equal(runGit(['ls-tree', '--name-only', `${fixture.shas.a2}:staging/a`], fixture.work), 'deployment.yaml\nrelease.json\n');
    assert.equal(runGit(['rev-parse', 'origin/main'], fixture.work), runGit(['rev-parse', 'main'], fixture.remote));
  });

  it('lists interleaved deploys of one app newest first with current and previous flags', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'a');
    assert.deepEqual(labelsOf(fixture, releases.map((r) => r.id)), ['a3', 'a2', 'a1']);
    assert.deepEqual(releases.map((r) => [r.current, r.rolledBack, r.rollbackable, r.previous ?? false]), [
      [true, false, false, false],
      [false, false, true, true],
      [false, false, true, false],
    ]);
    assert.equal(releases[0].reason, 'running now');
    assert.deepEqual(releases.map((r) => r.direction), [undefined, 'back', 'back']);
    assert.deepEqual(labelsOf(fixture, (await listReleases(repo, 'staging', 'b')).map((r) => r.id)), ['b2', 'b1']);
  });

  it('maps release.json and the commit to release fields', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const repo = (await readGitopsRepo(fixture.work))!;
    const [a3, a2] = await listReleases(repo, 'staging', 'a');
    const committed = runGit(['log', '-1', '--format=%cI', fixture.shas.a3], fixture.work).trim();
    assert.equal(a3.id, fixture.shas.a3);
    assert.equal(a3.gitopsSha, fixture.shas.a3);
    assert.equal(a3.version, sourceShaFor('a3').slice(0, 8));
    assert.equal(a2.version, 'v2.0.0');
    assert.equal(a3.title, 'Release a3 of a');
    assert.equal(a3.message, 'Release a3 of a\n\nChangelog for a3');
    assert.equal(a3.created, new Date(committed).toISOString());
    assert.equal(a3.created, '2026-01-01T05:00:00.000Z');
    assert.equal(a3.triggeredBy, 'policy');
    assert.equal(a3.author, 'Alice Example');
    assert.equal(a3.sourceRepo, 'acme/a');
    assert.equal(a3.sourceBranch, 'main');
    assert.equal(a3.sourceSha, sourceShaFor('a3'));
    assert.equal(a3.url, `https://github.com/acme/a/commit/${sourceShaFor('a3')}`);
    assert.deepEqual(a3.files, ['staging/a/deployment.yaml', 'staging/a/release.json']);
  });

  it('stops after limit releases but still knows which is current', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'a', { limit: 2 });
    assert.deepEqual(labelsOf(fixture, releases.map((r) => r.id)), ['a3', 'a2']);
    assert.equal(releases[0].current, true);
  });

  it('marks a release Gimlet reverted as rolled back, skips the revert commit, and makes the one before current', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.rolledBack());
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'a');
    assert.deepEqual(labelsOf(fixture, releases.map((r) => r.id)), ['a2', 'a1']);
    assert.equal(releases[0].rolledBack, true);
    assert.equal(releases[0].rolledBackBy, fixture.shas['revert-a2']);
    assert.equal(releases[0].rollbackable, true);
    assert.equal(releases[0].direction, 'forward');
    assert.match(releases[0].reason ?? '', /^rolled back: staging\/a holds .* now; choosing it rolls forward$/);
    assert.equal(releases[1].current, true);
    assert.equal(releases[1].direction, undefined);
  });

  it('reads past a revert at the top of the path when a limit is set', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.rolledBack());
    const repo = (await readGitopsRepo(fixture.work))!;
    const [newest] = await listReleases(repo, 'staging', 'a', { limit: 1 });
    assert.equal(newest.id, fixture.shas.a2);
    assert.equal(newest.rolledBack, true);
  });

  it('stops reading when the signal aborts', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const repo = (await readGitopsRepo(fixture.work))!;
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(listReleases(repo, 'staging', 'a', { signal: controller.signal }), /Cancelled while reading history/);
  });

  it('skips delete commits and shows the redeploy after a delete as current', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.deleted());
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'a');
    assert.deepEqual(labelsOf(fixture, releases.map((r) => r.id)), ['a3', 'a2', 'a1']);
    assert.equal(releases[0].current, true);
  });

  it('shows no current release when the newest commit deleted the app', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.rolledBack());
    fixture.apply([{ kind: 'delete', app: 'a' }]);
    const repo = { root: fixture.work, layout: 'multi-env' as const, envs: [{ name: 'staging', dir: 'staging', apps: ['a'] }], problems: [] };
    const releases = await listReleases(repo, 'staging', 'a');
    assert.deepEqual(labelsOf(fixture, releases.map((r) => r.id)), ['a2', 'a1']);
    assert.equal(releases.some((r) => r.current), false);
    assert.equal(releases[1].rollbackable, true);
  });

  it('reads a repo-per-env history', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.repoPerEnv());
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'production', 'a');
    assert.deepEqual(labelsOf(fixture, releases.map((r) => r.id)), ['a2', 'a1']);
    assert.deepEqual(releases[0].files, ['a/deployment.yaml', 'a/release.json']);
  });

  it('includes the repository root commit when it is a release (Gimlet drops it)', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.rootRelease());
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'a');
    assert.deepEqual(labelsOf(fixture, releases.map((r) => r.id)), ['a2', 'a1']);
    assert.equal(runGit(['rev-list', '--max-parents=0', 'HEAD'], fixture.work).trim(), fixture.shas.a1);
  });

  it('falls back to the env release.json only for an app that never had its own, when the commit writes it naming the app', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    // An old-style deploy of c: no release.json of its own; the env file names c.
    fs.mkdirSync(path.join(fixture.work, 'staging', 'c'));
    fs.writeFileSync(path.join(fixture.work, 'staging', 'release.json'), '{"app":"c","version":{"tag":"old-c"}}\n');
    fs.writeFileSync(path.join(fixture.work, 'staging', 'c', 'deployment.yaml'), 'kind: Deployment\n');
    runGit(['add', '-A'], fixture.work);
    runGit(['commit', '-q', '-m', 'old-style deploy of c'], fixture.work);
    const oldStyle = runGit(['rev-parse', 'HEAD'], fixture.work).trim();
    // A hand edit of c that leaves the env file alone is not a release.
    fs.writeFileSync(path.join(fixture.work, 'staging', 'c', 'deployment.yaml'), 'kind: Deployment\nx: 1\n');
    runGit(['add', '-A'], fixture.work);
    runGit(['commit', '-q', '-m', 'hand edit of c'], fixture.work);
    // Nor one while the env file names b.
    fs.writeFileSync(path.join(fixture.work, 'staging', 'release.json'), '{"app":"b"}\n');
    fs.writeFileSync(path.join(fixture.work, 'staging', 'c', 'deployment.yaml'), 'kind: Deployment\nx: 2\n');
    runGit(['add', '-A'], fixture.work);
    runGit(['commit', '-q', '-m', 'another hand edit of c'], fixture.work);
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'c');
    assert.deepEqual(releases.map((r) => [r.id, r.version]), [[oldStyle, 'old-c']]);
    assert.match(releases[0].reason ?? '', /^uncertain: staging\/c at HEAD matches no release/);
  });

  it('keeps walking when the first commits on the path are not releases and a limit is set', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    for (let edit = 0; edit < 3; edit++) {
      fs.rmSync(path.join(fixture.work, 'staging', 'a', 'release.json'), { force: true });
      fs.writeFileSync(path.join(fixture.work, 'staging', 'a', 'notes.txt'), `edit ${edit}\n`);
      runGit(['add', '-A'], fixture.work);
      runGit(['commit', '-q', '-m', `hand edit ${edit}`], fixture.work);
    }
    const repo = (await readGitopsRepo(fixture.work))!;
    const releases = await listReleases(repo, 'staging', 'a', { limit: 2 });
    assert.deepEqual(labelsOf(fixture, releases.map((r) => r.id)), ['a3', 'a2']);
  });
});

describe('release.json parsing', () => {
  it('keeps known fields and drops wrong-typed ones', () => {
    const parsed = parseReleaseJson('{"app":"web","triggeredBy":42,"version":{"sha":"abc","created":1700000000,"tag":7}}');
    assert.deepEqual(parsed?.version, { sha: 'abc', created: 1700000000 });
    assert.equal(parsed?.app, 'web');
    assert.equal(parsed?.triggeredBy, undefined);
  });
  it('returns undefined for text that is not a JSON object', () => {
    assert.equal(parseReleaseJson('not json'), undefined);
    assert.equal(parseReleaseJson('[1]'), undefined);
    assert.equal(parseReleaseJson('null'), undefined);
  });
});
