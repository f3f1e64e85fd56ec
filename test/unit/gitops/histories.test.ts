import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readGitopsRepo, type GitopsRepo } from '../../../src/core/gitops/discovery';
import { listReleases, type GitopsRelease } from '../../../src/core/gitops/history';
import { executeGitopsRollback, planGitopsRollback, previewGitopsRollback, RestoreTreeOffer } from '../../../src/core/gitops/rollback';
import { GitopsSource } from '../../../src/core/gitops/source';
import { silentReporter } from '../../../src/core/model';
import { copyGitopsFixture, runGit, type GitopsFixture, type GitopsFixtureSpec } from '../../fixtures/gitops';
import { recordingReporter, rejection, snapshot, useTempDirs } from './helpers';

/**
 * Histories people really make on a gitops repository, each read with the product and rolled
 * back / forward; every rollback is checked on the remote with `git diff TARGET main -- <path>`.
 */

const API = 'production/api';

/** api r1..r4 in production, web deployed in between (so `<env>/release.json` keeps changing). */
function apiReleases(): GitopsFixtureSpec {
  return {
    env: 'production',
    steps: [
      { kind: 'bootstrap' },
      { kind: 'deploy', app: 'api', label: 'r1' },
      { kind: 'deploy', app: 'api', label: 'r2' },
      { kind: 'deploy', app: 'web', label: 'w1' },
      { kind: 'deploy', app: 'api', label: 'r3' },
      { kind: 'deploy', app: 'api', label: 'r4' },
    ],
  };
}

let clock = Date.UTC(2026, 1, 1) / 1000;
/** A commit by a person (not Gimlet), with the date after every fixture step. */
function commitByHand(fixture: GitopsFixture, message: string, dir = fixture.work): string {
  clock += 60;
  runGit(['add', '-A'], dir);
  runGit(['commit', '-q', '--allow-empty', '-m', message], dir, { GIT_AUTHOR_DATE: `@${clock} +0000`, GIT_COMMITTER_DATE: `@${clock} +0000` });
  return runGit(['rev-parse', 'HEAD'], dir).trim();
}

/** `git revert` exactly as a person runs it (whole commit, git's own message). */
function gitRevert(fixture: GitopsFixture, sha: string, dir = fixture.work): string {
  clock += 60;
  runGit(['revert', '--no-edit', sha], dir, { GIT_AUTHOR_DATE: `@${clock} +0000`, GIT_COMMITTER_DATE: `@${clock} +0000` });
  return runGit(['rev-parse', 'HEAD'], dir).trim();
}

function push(fixture: GitopsFixture, dir = fixture.work): void {
  runGit(['push', '-q', 'origin', 'HEAD:main'], dir);
  if (dir === fixture.work) runGit(['fetch', '-q', 'origin'], dir);
}

function flags(fixture: GitopsFixture, releases: GitopsRelease[]): string[] {
  const label = (id: string): string => Object.entries(fixture.shas).find(([, sha]) => sha === id)?.[0] ?? id.slice(0, 7);
  return releases.map(
    (r) => `${label(r.id)}:${r.current ? 'current' : r.rolledBack ? 'rolled-back' : 'older'}${r.direction ? `/${r.direction}` : ''}${r.previous ? '/previous' : ''}`,
  );
}

/** Rolls api to `target` with the product and checks the remote holds exactly the target's tree. */
async function rollTo(fixture: GitopsFixture, repo: GitopsRepo, target: string, where = API): Promise<void> {
  const [env, app] = where.split('/');
  const plan = await planGitopsRollback(repo, env, app, target);
  const outcome = await executeGitopsRollback(plan, recordingReporter());
  assert.equal(outcome.ok, true);
  assert.equal(runGit(['diff', '--stat', target, 'main', '--', where], fixture.remote), '', `remote ${where} equals ${target}`);
  assert.equal(runGit(['worktree', 'list', '--porcelain'], fixture.work).split('\n').filter((l) => l.startsWith('worktree ')).length, 1);
}

describe('gitops: real histories read from content', () => {
  const tempDir = useTempDirs();
  let fixture: GitopsFixture;
  let repo: GitopsRepo;
  beforeEach(async () => {
    fixture = copyGitopsFixture(tempDir(), apiReleases());
    repo = (await readGitopsRepo(fixture.work))!;
  });

  it('revert of a revert (GitHub\'s Revert button on a rollback): r4 is current again, and r2 is then reached exactly', async () => {
    await rollTo(fixture, repo, fixture.shas.r3);
    runGit(['pull', '-q', '--ff-only'], fixture.work);
    assert.deepEqual(flags(fixture, await listReleases(repo, 'production', 'api')), ['r4:rolled-back/forward', 'r3:current', 'r2:older/back/previous', 'r1:older/back']);
    gitRevert(fixture, runGit(['rev-parse', 'HEAD'], fixture.work).trim());
    push(fixture);
    assert.deepEqual(flags(fixture, await listReleases(repo, 'production', 'api')), ['r4:current', 'r3:older/back/previous', 'r2:older/back', 'r1:older/back']);
    await rollTo(fixture, repo, fixture.shas.r2);
    assert.deepEqual(flags(fixture, await listReleases(repo, 'production', 'api')), ['r4:rolled-back/forward', 'r3:rolled-back/forward', 'r2:current', 'r1:older/back/previous']);
  });

  it('a hand-added file, reverted, and that revert reverted: no current release ("uncertain"), and r3 is reached without the file', async () => {
    fs.writeFileSync(path.join(fixture.work, API, 'hpa.yaml'), 'kind: HorizontalPodAutoscaler\n');
    const manual = commitByHand(fixture, 'api: add an HPA');
    const revert = gitRevert(fixture, manual);
    gitRevert(fixture, revert);
    push(fixture);
    const releases = await listReleases(repo, 'production', 'api');
    assert.deepEqual(flags(fixture, releases), ['r4:older/back', 'r3:older/back', 'r2:older/back', 'r1:older/back']);
    assert.ok(releases.every((r) => /^uncertain: production\/api at HEAD matches no release \(last changed by [0-9a-f]{10} "Revert "Revert "api: add an HPA"""\)$/.test(r.reason ?? '')), releases[0].reason);
    const plan = await planGitopsRollback(repo, 'production', 'api', fixture.shas.r3);
    assert.deepEqual(plan.detail.reverts.map((s) => [s.sha, s.kind]), [[manual, 'manual'], [fixture.shas.r4, 'release']]);
    assert.equal(plan.from, 'unknown');
    await rollTo(fixture, repo, fixture.shas.r3);
    assert.throws(() => runGit(['cat-file', '-e', `main:${API}/hpa.yaml`], fixture.remote));
    assert.deepEqual(flags(fixture, await listReleases(repo, 'production', 'api')), ['r4:rolled-back/forward', 'r3:current', 'r2:older/back/previous', 'r1:older/back']);
  });

  it('a manual git revert and a manual restore by checkout are read by content, and a roll forward undoes both', async () => {
    gitRevert(fixture, fixture.shas.r4);
    push(fixture);
    assert.deepEqual(flags(fixture, await listReleases(repo, 'production', 'api')), ['r4:rolled-back/forward', 'r3:current', 'r2:older/back/previous', 'r1:older/back']);
    runGit(['checkout', fixture.shas.r2, '--', API], fixture.work);
    const restore = commitByHand(fixture, 'put api back to r2 by hand');
    push(fixture);
    const releases = await listReleases(repo, 'production', 'api');
    assert.deepEqual(flags(fixture, releases), ['r4:rolled-back/forward', 'r3:rolled-back/forward', 'r2:current', 'r1:older/back/previous']);
    assert.equal(releases[1].rollbackable, true);
    const plan = await planGitopsRollback(repo, 'production', 'api', fixture.shas.r4);
    assert.equal(plan.direction, 'forward');
    assert.deepEqual(plan.detail.reverts.map((s) => s.sha), [restore, runGit(['rev-parse', `${restore}~1`], fixture.work).trim()]);
    assert.match(plan.summary, /rolling production\/api forward to /);
    await rollTo(fixture, repo, fixture.shas.r4);
    const messages = runGit(['log', '-2', '--format=%B%x00', 'main'], fixture.remote).split('\0').map((m) => m.trim()).filter(Boolean);
    assert.match(messages[0], /\n\nThis reverts commit [0-9a-f]{40}\.$/);
    assert.deepEqual(flags(fixture, await listReleases(repo, 'production', 'api')), ['r4:current', 'r3:older/back/previous', 'r2:older/back', 'r1:older/back']);
  });

  it('a hand edit between releases is not a release; rolling back over it reverts it too', async () => {
    const other = copyGitopsFixture(tempDir(), { env: 'production', steps: apiReleases().steps.slice(0, 3) });
    fs.appendFileSync(path.join(other.work, API, 'deployment.yaml'), '# replicas bumped by hand\n');
    const manual = commitByHand(other, 'api: more replicas');
    other.apply([{ kind: 'deploy', app: 'api', label: 'r3' }]);
    push(other);
    const otherRepo = (await readGitopsRepo(other.work))!;
    const releases = await listReleases(otherRepo, 'production', 'api');
    assert.deepEqual(flags(other, releases), ['r3:current', 'r2:older/back/previous', 'r1:older/back']);
    const plan = await planGitopsRollback(otherRepo, 'production', 'api', other.shas.r1);
    assert.deepEqual(plan.detail.reverts.map((s) => [s.sha, s.kind]), [[other.shas.r3, 'release'], [manual, 'manual'], [other.shas.r2, 'release']]);
    assert.ok(plan.lines.some((line) => line.includes('a hand-made commit, not a release')));
    await rollTo(other, otherRepo, other.shas.r1);
  });

  it('a hand-made commit to another app changes nothing for api, and the rollback leaves it in place', async () => {
    fs.writeFileSync(path.join(fixture.work, 'production', 'web', 'configmap.yaml'), 'kind: ConfigMap\n');
    const handMade = commitByHand(fixture, 'web: add a configmap');
    push(fixture);
    assert.deepEqual(flags(fixture, await listReleases(repo, 'production', 'api')), ['r4:current', 'r3:older/back/previous', 'r2:older/back', 'r1:older/back']);
    await rollTo(fixture, repo, fixture.shas.r2);
    assert.equal(runGit(['diff', '--stat', handMade, 'main', '--', 'production/web', 'production/release.json', 'production/flux'], fixture.remote), '');
  });

  it('a hand edit on top of the newest release: uncertain, no previous, and the newest release is restored exactly', async () => {
    fs.appendFileSync(path.join(fixture.work, API, 'deployment.yaml'), '# hotfix\n');
    const hotfix = commitByHand(fixture, 'api: hotfix by hand');
    push(fixture);
    const releases = await listReleases(repo, 'production', 'api');
    assert.equal(releases.some((r) => r.current || r.previous), false);
    assert.match(releases[0].reason ?? '', new RegExp(`^uncertain: .*last changed by ${hotfix.slice(0, 10)}`));
    const source = new GitopsSource(repo);
    const [env] = await source.environments();
    const api = (await source.apps(env)).find((app) => app.name === 'api')!;
    await assert.rejects(source.planRollback(api, undefined), /^DeployRollbackError: Cannot tell which release of production\/api is previous: uncertain: .*; choose the release to go to$/);
    await rollTo(fixture, repo, fixture.shas.r4);
  });

  it('verifies before pushing: a plan whose reverts would not reach the target pushes nothing and names the paths', async () => {
    const plan = await planGitopsRollback(repo, 'production', 'api', fixture.shas.r2);
    plan.detail.reverts.pop();
    const before = snapshot(fixture);
    const error = await rejection(executeGitopsRollback(plan, recordingReporter()));
    assert.match(error.message, new RegExp(`^Verification failed, so nothing was pushed: production/api would not equal ${fixture.shas.r2.slice(0, 10)} .*: differs in production/api/deployment.yaml, production/api/release.json\\. The honest alternative is one commit writing production/api as at [0-9a-f]{10}: plan again choosing it \\(CLI: --restore-tree\\)$`));
    assert.deepEqual(snapshot(fixture), before);
  });

  it('a merge on the path: reverts are refused with the restore-tree offer, and restore-tree writes the target exactly in one commit', async () => {
    runGit(['checkout', '-q', '-b', 'side', fixture.shas.r3], fixture.work);
    fs.writeFileSync(path.join(fixture.work, API, 'pdb.yaml'), 'kind: PodDisruptionBudget\n');
    commitByHand(fixture, 'api: pdb on a side branch');
    runGit(['checkout', '-q', 'main'], fixture.work);
    runGit(['merge', '-q', '--no-ff', '--no-edit', 'side'], fixture.work);
    push(fixture);
    const error = await rejection(planGitopsRollback(repo, 'production', 'api', fixture.shas.r2));
    assert.ok(error instanceof RestoreTreeOffer);
    assert.match(error.message, /merge commit [0-9a-f]{10} .*one commit that writes production\/api as it is at [0-9a-f]{10} .*--restore-tree/);
    const plan = await planGitopsRollback(repo, 'production', 'api', fixture.shas.r2, { restoreTree: true });
    assert.equal(plan.detail.method, 'restore-tree');
    assert.match((await previewGitopsRollback(plan)).join('\n'), /Verified: production\/api equals/);
    await executeGitopsRollback(plan, recordingReporter());
    assert.equal(runGit(['diff', '--stat', fixture.shas.r2, 'main', '--', API], fixture.remote), '');
  });

  it('restore-tree: one commit naming the target and the releases it undoes', async () => {
    const plan = await planGitopsRollback(repo, 'production', 'api', fixture.shas.r2, { restoreTree: true });
    const outcome = await executeGitopsRollback(plan, recordingReporter());
    assert.match(outcome.message, /^Rolled back production\/api to .*: pushed 1 restore commit to origin\/main$/);
    assert.equal(runGit(['diff', '--stat', fixture.shas.r2, 'main', '--', API], fixture.remote), '');
    const message = runGit(['log', '-1', '--format=%B', 'main'], fixture.remote);
    assert.match(message, new RegExp(`^Restore production/api to \\S+ \\(${fixture.shas.r2.slice(0, 10)}\\)\n\nWrites production/api exactly as it is at commit ${fixture.shas.r2.slice(0, 12)} \\(short on purpose: Gimlet reads a full sha here as a rollback of that release\\)\\.`));
    assert.equal(message.includes(fixture.shas.r2), false, 'the target\'s full sha would make Gimlet call it rolled back');
    assert.ok(message.includes(`This reverts commit ${fixture.shas.r4}.`) && message.includes(`This reverts commit ${fixture.shas.r3}.`));
    assert.equal(runGit(['show', '--name-only', '--format=', 'main'], fixture.remote).split('\n').filter(Boolean).every((f) => f.startsWith(`${API}/`)), true);
    assert.deepEqual(flags(fixture, await listReleases(repo, 'production', 'api')), ['r4:rolled-back/forward', 'r3:rolled-back/forward', 'r2:current', 'r1:older/back/previous']);
  });
});

describe('gitops: shallow clones', () => {
  const tempDir = useTempDirs();

  it('says the history is cut, never lists the boundary as a release it is not, and hints how to fetch more', async () => {
    const full = copyGitopsFixture(tempDir(), apiReleases());
    const shallow = path.join(path.dirname(full.work), 'shallow');
    runGit(['clone', '-q', '--depth', '3', `file://${full.remote}`, shallow], path.dirname(full.work));
    runGit(['config', 'user.name', 'Tester'], shallow);
    runGit(['config', 'user.email', 'tester@example.com'], shallow);
    const repo = (await readGitopsRepo(shallow))!;
    // The boundary is w1, a web deploy: it holds production/api files but is no api release.
    assert.equal(runGit(['rev-parse', 'HEAD~2'], shallow).trim(), full.shas.w1);
    const releases = await listReleases(repo, 'production', 'api');
    assert.deepEqual(releases.map((r) => r.id), [full.shas.r4, full.shas.r3]);
    assert.equal(releases[0].current, true);
    const webReleases = await listReleases(repo, 'production', 'web');
    assert.deepEqual(webReleases.map((r) => r.id), [full.shas.w1], 'the boundary is a web release by its own message');
    assert.match(webReleases[0].reason ?? '', /history cut here \(shallow clone\): run git fetch --unshallow origin/);
    const warnings: string[] = [];
    const source = new GitopsSource(repo, { reporter: { ...silentReporter, warn: (message) => warnings.push(message) } });
    const [env] = await source.environments();
    await source.releases((await source.apps(env)).find((app) => app.name === 'api')!);
    assert.deepEqual(warnings, [`The history of production/api is cut at ${full.shas.w1.slice(0, 10)} (this is a shallow clone): older releases are not here; run git fetch --unshallow origin (or git fetch --deepen=100 origin) to read older history`]);
    const beyond = await rejection(planGitopsRollback(repo, 'production', 'api', full.shas.r2));
    assert.match(beyond.message, new RegExp(`^Commit ${full.shas.r2} is not in the gitops repository .*; this clone is shallow \\(its history is cut at ${full.shas.w1.slice(0, 10)}\\): run git fetch --unshallow origin`));
    const boundary = await rejection(planGitopsRollback(repo, 'production', 'api', full.shas.w1));
    assert.match(boundary.message, /is where this shallow clone's history is cut: what it changed in production\/api is unknown/);
    const plan = await planGitopsRollback(repo, 'production', 'api', full.shas.r3);
    const outcome = await executeGitopsRollback(plan, recordingReporter());
    assert.equal(outcome.ok, true);
    assert.equal(runGit(['diff', '--stat', full.shas.r3, 'main', '--', API], full.remote), '');
  });
});
