import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readGitopsRepo, type GitopsRepo } from '../../../src/core/gitops/discovery';
import { listReleases } from '../../../src/core/gitops/history';
import { executeGitopsRollback, planGitopsRollback } from '../../../src/core/gitops/rollback';
import { fileAt, gimletReleases, gimletStatus } from '../../fixtures/gimlet-listing';
import { copyGitopsFixture, runGit, type GitopsFixture, type GitopsFixtureSpec } from '../../fixtures/gitops';
import { recordingReporter, useTempDirs } from './helpers';

/**
 * Gimlet's release listing (ported in test/fixtures/gimlet-listing.ts) run over every kind of
 * commit this product writes: whatever it writes, Gimlet must read the same current release, never
 * list a commit of ours as a release, and never call the release now running rolled back because
 * of a commit of ours.
 */

let clock = Date.UTC(2026, 3, 1) / 1000;
function commitByHand(fixture: GitopsFixture, message: string): string {
  clock += 60;
  runGit(['add', '-A'], fixture.work);
  runGit(['commit', '-q', '-m', message], fixture.work, { GIT_AUTHOR_DATE: `@${clock} +0000`, GIT_COMMITTER_DATE: `@${clock} +0000` });
  runGit(['push', '-q', 'origin', 'main'], fixture.work);
  return runGit(['rev-parse', 'HEAD'], fixture.work).trim();
}

const base = (extra: GitopsFixtureSpec['steps'] = []): GitopsFixtureSpec => ({
  steps: [
    { kind: 'bootstrap' },
    { kind: 'deploy', app: 'a', label: 'a1' },
    { kind: 'deploy', app: 'a', label: 'a2' },
    { kind: 'deploy', app: 'b', label: 'b1' },
    { kind: 'deploy', app: 'a', label: 'a3' },
    { kind: 'deploy', app: 'b', label: 'b2' },
    ...extra,
  ],
});

/** Gimlet rolled a3 back itself (a whole-commit revert, right after it), then b was deployed. */
const gimletRolledBack = (): GitopsFixtureSpec => ({
  steps: [
    { kind: 'bootstrap' },
    { kind: 'deploy', app: 'a', label: 'a1' },
    { kind: 'deploy', app: 'a', label: 'a2' },
    { kind: 'deploy', app: 'b', label: 'b1' },
    { kind: 'deploy', app: 'a', label: 'a3' },
    { kind: 'gimletRevert', of: 'a3' },
    { kind: 'deploy', app: 'b', label: 'b2' },
  ],
});

interface Case {
  name: string;
  spec: GitopsFixtureSpec;
  /** Hand-made history after the fixture, before the product's rollback. */
  prepare?: (fixture: GitopsFixture) => void;
  app?: string;
  target: (fixture: GitopsFixture) => string;
  restoreTree?: boolean;
  /** Gimlet itself already named the target in a revert (its own rollback): its listing cannot un-see that. */
  targetNamedBefore?: boolean;
}

const cases: Case[] = [
  { name: 'reverts, back two releases past another app\'s deploys', spec: base(), target: (f) => f.shas.a1 },
  { name: 'reverts, forward to a release Gimlet rolled back', spec: gimletRolledBack(), target: (f) => f.shas.a3, targetNamedBefore: true },
  {
    name: 'reverts over hand edits (a release.json delete included)',
    spec: base(),
    prepare: (f) => {
      fs.writeFileSync(path.join(f.work, 'staging', 'a', 'hpa.yaml'), 'kind: HorizontalPodAutoscaler\n');
      commitByHand(f, 'a: autoscaling');
      runGit(['rm', '-q', 'staging/a/release.json'], f.work);
      commitByHand(f, 'a: drop release.json');
    },
    target: (f) => f.shas.a2,
  },
  { name: 'reverts bringing back an app deleted at HEAD', spec: base([{ kind: 'delete', app: 'a' }]), target: (f) => f.shas.a3 },
  { name: 'restore-tree, back (the target named by a short sha only)', spec: base(), target: (f) => f.shas.a1, restoreTree: true },
  {
    name: 'restore-tree, forward while <env>/release.json holds another app',
    spec: gimletRolledBack(),
    target: (f) => f.shas.a3,
    restoreTree: true,
    targetNamedBefore: true,
  },
  {
    name: 'restore-tree, forward past a hand restore (no revert message anywhere)',
    spec: base(),
    prepare: (f) => {
      runGit(['checkout', f.shas.a2, '--', 'staging/a'], f.work);
      commitByHand(f, 'put a2 back by hand');
    },
    target: (f) => f.shas.a3,
    restoreTree: true,
  },
];

describe('Gimlet\'s listing, ported, over every kind of commit the product writes', () => {
  const tempDir = useTempDirs();

  for (const testCase of cases) {
    it(testCase.name, async () => {
      const fixture = copyGitopsFixture(tempDir(), testCase.spec);
      testCase.prepare?.(fixture);
      const app = testCase.app ?? 'a';
      const repo: GitopsRepo = (await readGitopsRepo(fixture.work))!;
      const target = testCase.target(fixture);
      const before = runGit(['rev-parse', 'HEAD'], fixture.work).trim();
      const plan = await planGitopsRollback(repo, 'staging', app, target, { restoreTree: testCase.restoreTree });
      const outcome = await executeGitopsRollback(plan, recordingReporter());
      assert.equal(outcome.ok, true);
      const ours = runGit(['rev-list', `${before}..HEAD`], fixture.work).trim().split('\n');
      assert.equal(ours.length, testCase.restoreTree ? 1 : plan.detail.reverts.length);

      const gimlet = gimletReleases(fixture.work, 'staging', app);
      const product = await listReleases(repo, 'staging', app);
      const current = product.find((release) => release.current);
      assert.equal(current?.id, target, 'the product reads the target as current');
      // Gimlet's status is the app's release.json: the target's.
      assert.equal(gimletStatus(fixture.work, 'staging', app), fileAt(fixture.work, target, `staging/${app}/release.json`));
      // No commit of ours is listed as a release (so no other app's <env>/release.json is shown for it).
      for (const sha of ours) assert.equal(gimlet.some((listed) => listed.gitopsRef === sha), false, `Gimlet lists our commit ${sha} as a release`);
      // No commit of ours holds the running release's full sha.
      for (const sha of ours) assert.equal(runGit(['cat-file', 'commit', sha], fixture.work).includes(target), false, `our commit ${sha} names the target's full sha`);
      const targetListed = gimlet.find((listed) => listed.gitopsRef === target);
      assert.ok(targetListed, 'Gimlet lists the target');
      if (!testCase.targetNamedBefore) {
        assert.equal(targetListed.rolledBack, false, 'Gimlet does not call the running release rolled back');
        assert.equal(gimlet.find((listed) => !listed.rolledBack && listed.app === app)?.gitopsRef, target, 'Gimlet\'s newest release not rolled back is the target');
      }
      // Every release the product calls rolled back, Gimlet does too.
      for (const release of product.filter((r) => r.rolledBack)) {
        const listed = gimlet.find((entry) => entry.gitopsRef === release.id);
        if (listed) assert.equal(listed.rolledBack, true, `Gimlet still shows ${release.id} as not rolled back`);
      }
    });
  }

  it('the port reads Gimlet\'s own rollback as Gimlet does: the reverted release rolled back, the revert not listed, the root never', () => {
    const fixture = copyGitopsFixture(tempDir(), gimletRolledBack());
    const listed = gimletReleases(fixture.work, 'staging', 'a');
    assert.deepEqual(listed.map((entry) => [entry.gitopsRef, entry.rolledBack]), [
      [fixture.shas.a3, true],
      [fixture.shas.a2, false],
      [fixture.shas.a1, false],
    ]);
    // Gimlet reads <env>/release.json first: for a2 (deployed before b1) it names a.
    assert.deepEqual(listed.map((entry) => entry.app), ['a', 'a', 'a']);
  });
});
