import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { ReleaseCodeReader } from '../../../src/core/commits';
import { readGitopsRepo } from '../../../src/core/gitops/discovery';
import { GitopsSource } from '../../../src/core/gitops/source';
import type { Reporter } from '../../../src/core/model';
import { makeAppRepo, type AppRepo } from '../../fixtures/app-repo';
import { makeGitopsFixture, type GitopsFixtureStep } from '../../fixtures/gitops';
import { useTempDirs } from '../gitops/helpers';

function deploy(app: AppRepo, label: string, release: string, repositoryName = 'acme/shop'): GitopsFixtureStep {
  const sha = app.sha(release);
  const message = app.git(['log', '-1', '--format=%B', sha]).trim();
  return { kind: 'deploy', app: 'a', label, source: { sha, repositoryName, message, authorName: 'Alice Example', authorEmail: 'alice@example.com' } };
}

describe('commits: gitops releases linked to the source repository release.json names', () => {
  const tempDir = useTempDirs();

  async function setUp(options: { remote?: string; folderName?: string; repositoryName?: string } = {}) {
    const dir = tempDir();
    const workspace = path.join(dir, 'workspace');
    const app = makeAppRepo(path.join(workspace, options.folderName ?? 'storefront'), { remote: options.remote ?? 'git@github.com:acme/shop.git' });
    const fixture = makeGitopsFixture(path.join(dir, 'gitops'), {
      steps: [{ kind: 'bootstrap' }, deploy(app, 'a1', 'r1', options.repositoryName), deploy(app, 'a2', 'r2', options.repositoryName), deploy(app, 'a3', 'r3', options.repositoryName)],
    });
    const info: string[] = [];
    const reporter: Reporter = { step() {}, info: (line) => void info.push(line), debug() {}, warn() {}, error() {} };
    const code = new ReleaseCodeReader({ folders: () => [workspace, fixture.work], reporter });
    const source = new GitopsSource((await readGitopsRepo(fixture.work))!, { code });
    const [env] = await source.environments();
    const [appEntry] = await source.apps(env);
    return { app, fixture, source, appEntry, code, info };
  }

  it('finds version.sha in the workspace repository whose remote is repositoryName, whatever its folder is called', async () => {
    const { app, source, appEntry, code } = await setUp();
    const releases = await source.releases(appEntry);
    assert.deepEqual(releases.map((release) => release.code?.commit?.sha), [app.sha('r3'), app.sha('r2'), app.sha('r1')]);
    assert.equal(releases[1].code?.commit?.pullRequest?.title, 'Add product search');
    assert.equal(releases[0].code?.repository, app.root);
    assert.equal(code.resolver.processes, 1, 'one git process for every release in view');
  });

  it('falls back to a folder named like the repository when no remote says so', async () => {
    const { app, source, appEntry } = await setUp({ remote: '/srv/elsewhere/other.git', folderName: 'shop' });
    const [current] = await source.releases(appEntry);
    assert.equal(current.code?.commit?.sha, app.sha('r3'));
  });

  it('says which repository is missing from the workspace instead of guessing', async () => {
    const { source, appEntry } = await setUp({ repositoryName: 'acme/billing' });
    const [current] = await source.releases(appEntry);
    assert.equal(current.code?.commit, undefined);
    assert.match(current.code?.missing ?? '', /no workspace repository is acme\/billing/);
  });

  it('plans a rollback with the commits it takes out of production', async () => {
    const { app, fixture, source, appEntry } = await setUp();
    const plan = await source.planRollback(appEntry, (await source.releases(appEntry)).find((release) => release.id === fixture.shas.a2));
    assert.equal(plan.codeChange?.fromSha, app.sha('r3'));
    assert.equal(plan.codeChange?.toSha, app.sha('r2'));
    assert.deepEqual(plan.codeChange?.commits.map((commit) => commit.subject), ['Bump rack to 3.1.8', 'Add checkout (#15)', 'Cache product pages']);
    const at = plan.lines.findIndex((line) => line.startsWith('Code: this rollback undoes 3 commits of storefront'));
    assert.ok(at > 0, plan.lines.join('\n'));
    assert.match(plan.lines[at + 1], /^ {2}\w{7} Bump rack to 3\.1\.8 \(Alice Example, 2026-01-05\)$/);
    const steps: string[] = [];
    const outcome = await source.executeRollback(plan, { step: (line) => void steps.push(line), info() {}, debug() {}, warn() {}, error() {} });
    assert.equal(outcome.ok, true, outcome.message);
    const said = 'Code: this rollback undoes 3 commits: Bump rack to 3.1.8; Add checkout (#15); Cache product pages';
    assert.equal(steps[0], said, 'the run starts by saying what code it takes out');
    assert.equal(outcome.lines.at(-1), said);
  });
});
