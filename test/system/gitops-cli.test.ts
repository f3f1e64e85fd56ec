import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gitopsScenarios, makeGitopsFixture, runGit, type GitopsFixture } from '../fixtures/gitops';
import { gitWrapper, useCliBundle } from './cli-bundle';

/** The gitops CLI as users run it (the bundle): roll forward, `--to` messages, SIGTERM mid-revert. */


describe('deploy-rollback CLI: gitops back and forward', function () {
  this.timeout(120_000);
  const suite = useCliBundle('drb-gitops-cli-');
  const cli = suite.run;
  let dir: string;
  let bundle: string;
  before(() => {
    dir = suite.dir();
    bundle = suite.bundle();
  });

  let count = 0;
  function fixture(spec = gitopsScenarios.rolledBack()): GitopsFixture {
    return makeGitopsFixture(path.join(dir, `repo-${count++}`), spec);
  }

  it('says exactly what is wrong with --to, before reading anything', () => {
    const repo = fixture();
    const sha = repo.shas.a1;
    const cases: Array<[string, RegExp]> = [
      [sha.toUpperCase(), /has uppercase letters; git shas are lowercase: use [0-9a-f]{40}/],
      [`${sha}0`, /is 41 characters long; a full sha has exactly 40/],
      [` ${sha}`, /has spaces around it: give the sha alone/],
      ['HEAD~1', /"HEAD~1" is a revision expression, not a sha/],
      ['v2.0.0', /"v2.0.0" is not a sha \(it contains "v"; a tag, branch or version\?\)/],
      [sha.slice(0, 7), /is a short sha \(7 characters\): give the full 40-hex sha/],
    ];
    for (const [to, expected] of cases) {
      const { code, stderr } = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', to, '--yes']);
      assert.equal(code, 1, `${to}: ${code} ${stderr}`);
      assert.match(stderr, new RegExp(`^deploy-rollback: --to .*${expected.source}`), to);
    }
  });

  it('rolls forward to a rolled-back release, says so, and the remote holds it exactly', () => {
    const repo = fixture();
    const dry = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a2, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^Roll forward a in staging from \S+ to \S+\nRevert 1 commit in staging\/a and push to origin\/main, rolling staging\/a forward to /);
    assert.match(dry.stdout, /Verified: staging\/a equals [0-9a-f]{10} .* exactly, and nothing outside it changes/);
    const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a2, '--yes']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Rolled forward staging\/a to \S+: pushed 1 revert commit\(s\) to origin\/main/);
    assert.equal(runGit(['diff', '--stat', repo.shas.a2, 'main', '--', 'staging/a'], repo.remote), '');
    assert.match(runGit(['log', '-1', '--format=%B', 'main'], repo.remote), new RegExp(`This reverts commit ${repo.shas['revert-a2']}\\.`));
    const back = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a1, '--dry-run']);
    assert.match(back.stdout, /^Roll back a in staging from/);
  });

  it('names a sha beyond a shallow clone\'s boundary as such, with the fetch to run', () => {
    const repo = fixture(gitopsScenarios.interleaved());
    const shallow = path.join(dir, `shallow-${count++}`);
    runGit(['clone', '-q', '--depth', '2', `file://${repo.remote}`, shallow], dir);
    const { code, stderr } = cli(['rollback', '--gitops', shallow, '--env', 'staging', '--app', 'a', '--to', repo.shas.a1, '--dry-run']);
    assert.equal(code, 1);
    assert.match(stderr, /is not in the gitops repository .*this clone is shallow \(its history is cut at [0-9a-f]{10}\): run git fetch --unshallow origin/);
  });

  it('SIGTERM in the middle of the reverts: nothing pushed, no worktree and no temporary folder left', async () => {
    const repo = fixture(gitopsScenarios.interleaved());
    // Real git, slowed down at `git apply` only, so the signal lands while the reverts run.
    const { env: slowApply, mark } = gitWrapper(dir, 'apply', ': > "$MARK"; exec sleep 30');
    const tmp = fs.mkdtempSync(path.join(dir, 'tmp-'));
    const remoteBefore = runGit(['for-each-ref'], repo.remote);
    const child = spawn(process.execPath, [bundle, 'rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a1, '--yes'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '', ...slowApply, TMPDIR: tmp },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (!fs.existsSync(mark)) {
        if (Date.now() > deadline) throw new Error(`the rollback never reached git apply: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(fs.readdirSync(tmp).filter((name) => name.startsWith('deploy-rollback-')).length, 1, 'the worktree exists while reverting');
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000))]);
      assert.equal(code, 143, stderr);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    assert.match(stderr, /SIGTERM: cancelling…/);
    assert.match(stderr, /Rollback cancelled while reverting [0-9a-f]{10} in staging\/a; nothing was pushed and your checkout is unchanged/);
    assert.equal(runGit(['worktree', 'list', '--porcelain'], repo.work).split('\n').filter((line) => line.startsWith('worktree ')).length, 1);
    assert.deepEqual(fs.readdirSync(tmp), []);
    assert.equal(runGit(['for-each-ref'], repo.remote), remoteBefore);
  });
});
