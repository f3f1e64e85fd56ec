import { strict as assert } from 'node:assert';
import { readGitopsRepo } from '../../../src/core/gitops/discovery';
import { environmentsJson, releasesJson } from '../../../src/core/gitops/json';
import { listReleases } from '../../../src/core/gitops/history';
import { GitopsSource } from '../../../src/core/gitops/source';
import { silentReporter } from '../../../src/core/model';
import { gitopsScenarios, copyGitopsFixture, runGit } from '../../fixtures/gitops';
import { useTempDirs } from './helpers';

describe('GitopsSource', () => {
  const tempDir = useTempDirs();

  it('walks environments, apps and releases with stable ids', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const source = new GitopsSource((await readGitopsRepo(fixture.work))!);
    const [env] = await source.environments();
    assert.equal(env.id, `gitops:${fixture.work}:staging`);
    assert.equal(env.source, 'gitops');
    assert.equal(env.location, fixture.work);
    const apps = await source.apps(env);
    assert.deepEqual(apps.map((app) => app.id), [`gitops:${fixture.work}:staging/a`, `gitops:${fixture.work}:staging/b`]);
    const releases = await source.releases(apps[0], { limit: 2 });
    assert.deepEqual(releases.map((r) => r.id), [fixture.shas.a3, fixture.shas.a2]);
    assert.equal(releases[0].app, apps[0]);
    assert.equal('files' in releases[0], false);
  });

  it('sees an app added after construction when environments are read again', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const source = new GitopsSource((await readGitopsRepo(fixture.work))!);
    fixture.apply([{ kind: 'deploy', app: 'c', label: 'c1' }]);
    const [env] = await source.environments();
    assert.deepEqual((await source.apps(env)).map((app) => app.name), ['a', 'b', 'c']);
  });

  it('plans a rollback to the previous release when no target is given', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.rolledBack());
    fixture.apply([{ kind: 'deploy', app: 'a', label: 'a3' }]);
    runGit(['push', '-q', 'origin', 'main'], fixture.work);
    const source = new GitopsSource((await readGitopsRepo(fixture.work))!);
    const [env] = await source.environments();
    const [app] = await source.apps(env);
    const plan = await source.planRollback(app, undefined);
    // a2 was rolled back, so "previous" is a1.
    assert.equal((plan.detail as { target: { id: string } }).target.id, fixture.shas.a1);
    const outcome = await source.executeRollback(plan, silentReporter);
    assert.equal(outcome.ok, true);
    const releases = await source.releases(app);
    assert.equal(releases.find((r) => r.current)?.id, fixture.shas.a1);
  });

  it('refuses to run a plan from another source', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.rootRelease());
    const source = new GitopsSource((await readGitopsRepo(fixture.work))!);
    await assert.rejects(
      source.executeRollback({ source: 'kamal', environment: 'x', app: 'y', from: '1', to: '0', summary: '', lines: [], detail: {} }, silentReporter),
      /Not a gitops rollback plan \(source: kamal\)/,
    );
  });

  it('watches HEAD, refs and release.json files', async () => {
    const multi = new GitopsSource({ root: '/r', layout: 'multi-env', envs: [], problems: [] });
    assert.deepEqual(multi.watchPatterns(), ['.git/HEAD', '.git/refs/**', '.git/packed-refs', '*/release.json', '*/*/release.json']);
    const single = new GitopsSource({ root: '/r', layout: 'repo-per-env', envs: [], problems: [] });
    assert.deepEqual(single.watchPatterns().slice(-2), ['release.json', '*/release.json']);
  });
});

describe('gitops CLI JSON', () => {
  const tempDir = useTempDirs();

  it('maps releases to exactly the CLI fields', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const releases = await listReleases((await readGitopsRepo(fixture.work))!, 'staging', 'a', { limit: 1 });
    const [json] = releasesJson(releases);
    assert.deepEqual(Object.keys(json), ['id', 'version', 'created', 'current', 'rolledBack', 'rollbackable', 'message', 'triggeredBy', 'author', 'sourceRepo', 'url']);
    assert.equal(json.id, fixture.shas.a3);
    assert.equal(json.current, true);
    assert.equal(json.rolledBack, false);
    assert.equal(json.rollbackable, false);
    assert.equal(json.sourceRepo, 'acme/a');
  });

  it('writes null for missing release fields', () => {
    const [json] = releasesJson([{ id: 'x', version: 'v', current: false, rollbackable: true }]);
    assert.deepEqual(json, { id: 'x', version: 'v', created: null, current: false, rolledBack: false, rollbackable: true, message: null, triggeredBy: null, author: null, sourceRepo: null, url: null });
  });

  it('lists one entry per environment', () => {
    assert.deepEqual(
      environmentsJson([
        { root: '/g', layout: 'multi-env', problems: [], envs: [{ name: 'staging', dir: 'staging', apps: ['a', 'b'] }, { name: 'prod', dir: 'prod', apps: [] }] },
      ]),
      [
        { source: 'gitops', path: '/g', environment: 'staging', apps: ['a', 'b'] },
        { source: 'gitops', path: '/g', environment: 'prod', apps: [] },
      ],
    );
  });
});
