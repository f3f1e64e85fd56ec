import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gimletReleases, gimletStatus } from '../fixtures/gimlet-listing';
import { gitopsScenarios, makeGitopsFixture, runGit, type GitopsFixture, type GitopsFixtureSpec } from '../fixtures/gitops';
import { gitWrapper, useCliBundle } from './cli-bundle';

/**
 * Issue 20, as users meet it: the CLI bundle against a real clone and its bare remote. Every case
 * checks the remote's commits before and after (nothing lost, nothing re-added, no force) and the tree.
 */

describe('deploy-rollback CLI: gitops histories that once hid a release or lost a commit', function () {
  this.timeout(120_000);
  const suite = useCliBundle('drb-gitops-history-');
  const cli = suite.run;
  let dir: string;
  let bundle: string;
  before(() => {
    dir = suite.dir();
    bundle = suite.bundle();
  });

  let count = 0;
  function fixture(spec: GitopsFixtureSpec = gitopsScenarios.interleaved()): GitopsFixture {
    const made = makeGitopsFixture(path.join(dir, `repo-${count++}`), spec);
    // Every update of the remote's main is logged, so a force (an update that drops commits) shows.
    runGit(['config', 'core.logAllRefUpdates', 'always'], made.remote);
    return made;
  }

  /** The remote's main, newest first. */
  function remoteCommits(repo: GitopsFixture): string[] {
    return runGit(['rev-list', 'main'], repo.remote).trim().split('\n');
  }

  /** Every update of main on the remote (its reflog), each checked to be a fast-forward; `others` are the tests' own force-pushes. */
  function assertNoForce(repo: GitopsFixture, others: string[] = []): void {
    const log = path.join(repo.remote, 'logs', 'refs', 'heads', 'main');
    if (!fs.existsSync(log)) return;
    for (const line of fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
      const [from, to] = line.split(' ');
      if (/^0+$/.test(from) || others.includes(to)) continue;
      const ff = spawnSync('git', ['merge-base', '--is-ancestor', from, to], { cwd: repo.remote });
      assert.equal(ff.status, 0, `main moved from ${from} to ${to} without keeping it: a force`);
    }
  }

  /** After a rollback that pushed `added` commits: all of `before` is still there, below exactly `added` new ones. */
  function assertPushedOnTop(repo: GitopsFixture, before: string[], added: number, others: string[] = []): string[] {
    const after = remoteCommits(repo);
    assert.equal(after.length, before.length + added, `remote has ${after.length} commits, expected ${before.length} + ${added}`);
    assert.deepEqual(after.slice(added), before, 'every commit of before is kept, in order');
    assertNoForce(repo, others);
    return after.slice(0, added);
  }

  /**
   * PATH with a git that, the first time the CLI runs `git <when>`, first has `other` force-push
   * `main` to `to` (another engineer removing a bad deploy at that very moment), then runs git.
   */
  function forcePushAt(when: 'fetch' | 'push', other: string, to: string): NodeJS.ProcessEnv {
    const { env, mark } = gitWrapper(dir, when, `if [ ! -e "$MARK" ]; then : > "$MARK"; "$REAL_GIT" -C "${other}" push -q --force origin ${to}:main || exit 99; fi`);
    return { ...env, FORCED_MARK: mark };
  }

  /** git that may stop with a non-zero exit (a conflict, an edit stop): the state it leaves is the point. */
  function execGit(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): void {
    spawnSync('git', args, { cwd, env: { ...process.env, GIT_EDITOR: 'true', ...env }, stdio: 'ignore' });
  }

  function treeOf(repo: GitopsFixture, rev: string, where: string, cwd = repo.remote): string {
    return runGit(['rev-parse', `${rev}:${where}`], cwd).trim();
  }

  it('case 1: a release whose message holds 0x1e is listed, current, and rolled back from', () => {
    const repo = fixture();
    // A CI-made deploy: Gimlet's tree, a message carrying record separators.
    repo.apply([{ kind: 'deploy', app: 'a', label: 'a4' }]);
    runGit(['commit', '-q', '--amend', '--cleanup=verbatim', '-m', '[Gimlet] staging/a automated deploy\n\npipeline \x1e 1842 \x1f ok\n'], repo.work);
    runGit(['push', '-q', 'origin', 'main'], repo.work);
    const odd = runGit(['rev-parse', 'HEAD'], repo.work).trim();
    const listed = cli(['releases', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--limit', '3', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const releases = JSON.parse(listed.stdout) as Array<{ id: string; current: boolean }>;
    assert.deepEqual(releases.map((r) => r.id), [odd, repo.shas.a3, repo.shas.a2]);
    assert.equal(releases[0].current, true);
    const before = remoteCommits(repo);
    const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a3, '--yes']);
    assert.equal(run.code, 0, run.stderr);
    const [revert] = assertPushedOnTop(repo, before, 1);
    assert.match(runGit(['log', '-1', '--format=%B', revert], repo.remote), new RegExp(`This reverts commit ${odd}\\.`));
    assert.equal(treeOf(repo, 'main', 'staging/a'), treeOf(repo, repo.shas.a3, 'staging/a'));
    assert.equal(treeOf(repo, 'main', 'staging/b'), treeOf(repo, odd, 'staging/b'));
    assert.equal(treeOf(repo, 'main', 'staging/release.json'), treeOf(repo, odd, 'staging/release.json'));
  });

  it('case 2: a hand commit deleting release.json is not a release: "uncertain", and the rollback reverts it', () => {
    const repo = fixture({ steps: [{ kind: 'bootstrap' }, { kind: 'deploy', app: 'a', label: 'a1' }, { kind: 'deploy', app: 'b', label: 'b1' }, { kind: 'deploy', app: 'a', label: 'a2' }] });
    runGit(['rm', '-q', 'staging/a/release.json'], repo.work);
    runGit(['commit', '-q', '-m', 'remove the release file of a'], repo.work);
    fs.writeFileSync(path.join(repo.work, 'staging', 'a', 'deployment.yaml'), 'kind: Deployment\nreplicas: 3\n');
    runGit(['commit', '-q', '-am', 'a: 3 replicas'], repo.work);
    runGit(['push', '-q', 'origin', 'main'], repo.work);
    const listed = cli(['releases', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const releases = JSON.parse(listed.stdout) as Array<{ id: string; current: boolean }>;
    assert.deepEqual(releases.map((r) => [r.id, r.current]), [[repo.shas.a2, false], [repo.shas.a1, false]]);
    const text = cli(['releases', '--gitops', repo.work, '--env', 'staging', '--app', 'a']);
    assert.match(text.stdout.split('\n')[0], /uncertain: staging\/a at HEAD matches no release \(last changed by [0-9a-f]{10} "a: 3 replicas"\)/);
    const before = remoteCommits(repo);
    const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a2, '--yes']);
    assert.equal(run.code, 0, run.stderr);
    const added = assertPushedOnTop(repo, before, 2);
    assert.deepEqual(added.map((sha) => runGit(['log', '-1', '--format=%s', sha], repo.remote).trim()), ['Revert "remove the release file of a"', 'Revert "a: 3 replicas"']);
    assert.equal(treeOf(repo, 'main', 'staging/a'), treeOf(repo, repo.shas.a2, 'staging/a'));
    assert.equal(treeOf(repo, 'main', 'staging/b'), treeOf(repo, repo.shas.a2, 'staging/b'));
    const after = JSON.parse(cli(['releases', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--json']).stdout) as Array<{ id: string; current: boolean }>;
    assert.deepEqual(after.map((r) => [r.id, r.current]), [[repo.shas.a2, true], [repo.shas.a1, false]]);
  });

  /** The remote gets a bad deploy of b from another clone (which the user has not pulled unless told). */
  function badDeployOfB(repo: GitopsFixture, pull: boolean): { other: string; bad: string; good: string } {
    const other = repo.clone(`other-${count++}`);
    const good = runGit(['rev-parse', 'HEAD'], other).trim();
    repo.apply([{ kind: 'deploy', app: 'b', label: 'b-bad' }], other);
    runGit(['push', '-q', 'origin', 'main'], other);
    if (pull) runGit(['pull', '-q', '--ff-only'], repo.work);
    return { other, bad: runGit(['rev-parse', 'HEAD'], other).trim(), good };
  }

  function hasCommit(repo: GitopsFixture, sha: string): boolean {
    return spawnSync('git', ['merge-base', '--is-ancestor', sha, 'main'], { cwd: repo.remote }).status === 0;
  }

  it('case 4: a force-push between our fetch and our push (dropping a bad deploy of b) is not undone', () => {
    const repo = fixture();
    const { other, bad, good } = badDeployOfB(repo, false);
    const env = forcePushAt('push', other, good);
    const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a1, '--yes', '--verbose'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(fs.existsSync(env.FORCED_MARK!), 'the force-push happened during the run');
    assert.match(run.stderr, /\[rejected\].*\(stale info\)/);
    assert.match(run.stderr, new RegExp(`origin/main was force-pushed \\(dropping ${bad.slice(0, 10)}\\): redoing on its new tip; the dropped commits stay dropped`));
    assert.equal(hasCommit(repo, bad), false, 'the dropped deploy of b is not brought back');
    const before = runGit(['rev-list', good], repo.remote).trim().split('\n');
    assertPushedOnTop(repo, before, 2, [good]);
    assert.equal(treeOf(repo, 'main', 'staging/a'), treeOf(repo, repo.shas.a1, 'staging/a'));
    assert.equal(treeOf(repo, 'main', 'staging/b'), treeOf(repo, good, 'staging/b'));
    assert.equal(treeOf(repo, 'main', 'staging/release.json'), treeOf(repo, good, 'staging/release.json'));
  });

  it('case 4: a force-push before our fetch, dropping a commit the checkout has: refused, nothing pushed, the commit not brought back', () => {
    const repo = fixture();
    const { other, bad, good } = badDeployOfB(repo, true);
    const env = forcePushAt('fetch', other, good);
    const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a1, '--yes'], env);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, new RegExp(`origin/main was rewritten since the plan \\(a force-push\\): commit\\(s\\) the remote had are gone from it \\(${bad.slice(0, 10)}\\) but still in your main in .*They are not brought back: bring main in line with origin/main as your team decides \\(git reset --keep origin/main\\), then plan again`));
    assert.deepEqual(remoteCommits(repo), runGit(['rev-list', good], repo.remote).trim().split('\n'));
    assert.equal(hasCommit(repo, bad), false);
  });

  it('case 4: a force-push between fetch and push that drops a deploy of the app itself: refused, plan again', () => {
    const repo = fixture();
    const other = repo.clone(`other-${count++}`);
    const good = runGit(['rev-parse', 'HEAD'], other).trim();
    repo.apply([{ kind: 'deploy', app: 'a', label: 'a-bad' }], other);
    runGit(['push', '-q', 'origin', 'main'], other);
    const bad = runGit(['rev-parse', 'HEAD'], other).trim();
    runGit(['pull', '-q', '--ff-only'], repo.work);
    const env = forcePushAt('push', other, good);
    const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a2, '--yes'], env);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, new RegExp(`While rolling back, staging/a changed on origin/main \\([0-9a-f]{10}; a force-push dropped ${bad.slice(0, 10)}\\): nothing was pushed; refresh and plan again`));
    assert.deepEqual(remoteCommits(repo), runGit(['rev-list', good], repo.remote).trim().split('\n'));
    assert.equal(hasCommit(repo, bad), false);
  });

  it('case 3: --restore-tree commits are read by Gimlet\'s listing as the product reads them, back and forward', () => {
    // a3 rolled back by Gimlet itself, then b deployed: <env>/release.json holds b.
    const repo = fixture({
      steps: [
        { kind: 'bootstrap' },
        { kind: 'deploy', app: 'a', label: 'a1' },
        { kind: 'deploy', app: 'a', label: 'a2' },
        { kind: 'deploy', app: 'a', label: 'a3' },
        { kind: 'gimletRevert', of: 'a3' },
        { kind: 'deploy', app: 'b', label: 'b1' },
      ],
    });
    const roll = (to: string): string => {
      const before = remoteCommits(repo);
      const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', to, '--restore-tree', '--yes']);
      assert.equal(run.code, 0, run.stderr);
      const [restore] = assertPushedOnTop(repo, before, 1);
      assert.equal(treeOf(repo, 'main', 'staging/a'), treeOf(repo, to, 'staging/a'));
      assert.equal(treeOf(repo, 'main', 'staging/b'), treeOf(repo, repo.shas.b1, 'staging/b'));
      assert.equal(treeOf(repo, 'main', 'staging/release.json'), treeOf(repo, repo.shas.b1, 'staging/release.json'));
      assert.equal(runGit(['cat-file', 'commit', restore], repo.remote).includes(to), false, 'no full sha of the restored release');
      return restore;
    };
    // Forward to a3: the restore names the revert it undoes, so Gimlet skips it instead of listing b's release.json as a release of a.
    const forward = roll(repo.shas.a3);
    assert.match(runGit(['log', '-1', '--format=%B', forward], repo.remote), new RegExp(`\n\nThis reverts commit ${repo.shas['revert-a3']}\\.\n`));
    let listed = gimletReleases(repo.remote, 'staging', 'a');
    assert.equal(listed.some((entry) => entry.gitopsRef === forward), false);
    assert.match(gimletStatus(repo.remote, 'staging', 'a') ?? '', /"artifactId":"a-a3"/);
    // Back to a1: a3 and a2 named as reverted, a1 (the running release) not rolled back for Gimlet.
    const back = roll(repo.shas.a1);
    listed = gimletReleases(repo.remote, 'staging', 'a');
    assert.deepEqual(listed.map((entry) => [entry.gitopsRef, entry.rolledBack]), [
      [repo.shas.a3, true],
      [repo.shas.a2, true],
      [repo.shas.a1, false],
    ]);
    assert.equal(listed.some((entry) => entry.gitopsRef === back), false);
    assert.match(gimletStatus(repo.remote, 'staging', 'a') ?? '', /"artifactId":"a-a1"/);
    const product = JSON.parse(cli(['releases', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--json']).stdout) as Array<{ id: string; current: boolean }>;
    assert.equal(product.find((release) => release.current)?.id, repo.shas.a1);
  });

  it('also seen: releases text shows the id rollback --to takes, and that id rolls back', () => {
    const repo = fixture();
    const text = cli(['releases', '--gitops', repo.work, '--env', 'staging', '--app', 'a']);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.map((line) => line.split('\t')[0]), [repo.shas.a3, repo.shas.a2, repo.shas.a1]);
    assert.match(lines[0], /^[0-9a-f]{40}\t[0-9a-f]{8}\t2026-\S+\tRelease a3 of a\t\(current\)$/);
    assert.match(lines[1], /^[0-9a-f]{40}\tv2\.0\.0\t.*\(previous\)$/);
    const before = remoteCommits(repo);
    const to = lines[1].split('\t')[0];
    const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', to, '--yes']);
    assert.equal(run.code, 0, run.stderr);
    assertPushedOnTop(repo, before, 1);
    assert.equal(treeOf(repo, 'main', 'staging/a'), treeOf(repo, repo.shas.a2, 'staging/a'));
  });

  it('also seen: an app deleted at HEAD is brought back by rolling it to one of its releases', () => {
    const repo = fixture({ steps: [...gitopsScenarios.interleaved().steps, { kind: 'delete', app: 'b' }] });
    assert.equal(fs.existsSync(path.join(repo.work, 'staging', 'b')), false);
    const listed = cli(['releases', '--gitops', repo.work, '--env', 'staging', '--app', 'b', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const releases = JSON.parse(listed.stdout) as Array<{ id: string; current: boolean; rollbackable: boolean }>;
    assert.deepEqual(releases.map((r) => [r.id, r.current, r.rollbackable]), [[repo.shas.b2, false, true], [repo.shas.b1, false, true]]);
    // Names that are no directory Gimlet writes are refused as before, without running git on them.
    for (const name of ['../staging', ':(glob)*', 'c']) {
      const refused = cli(['releases', '--gitops', repo.work, '--env', 'staging', '--app', name]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`No app "${name.replace(/[.*()]/g, '\\$&')}" in staging \\(found: a\\)`));
    }
    const before = remoteCommits(repo);
    const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'b', '--to', repo.shas.b2, '--yes']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /revert [0-9a-f]{10} \[Gimlet\] staging\/b deleted by laszlo — a delete: this brings the app back/);
    assertPushedOnTop(repo, before, 1);
    assert.equal(treeOf(repo, 'main', 'staging/b'), treeOf(repo, repo.shas.b2, 'staging/b'));
    assert.equal(treeOf(repo, 'main', 'staging/a'), treeOf(repo, repo.shas.b2, 'staging/a'));
    assert.equal(fs.existsSync(path.join(repo.work, 'staging', 'b', 'release.json')), true, 'the checkout was fast-forwarded');
  });

  it('also seen: mid-rebase, mid-merge or mid-cherry-pick, a rollback is refused saying so, and releases warn', () => {
    const states: Array<{ what: string; end: string; enter: (repo: GitopsFixture) => void }> = [
      {
        what: 'a rebase',
        end: 'git rebase --continue or git rebase --abort',
        enter: (repo) => {
          fs.writeFileSync(path.join(repo.work, 'staging', 'b', 'notes.txt'), 'local\n');
          runGit(['add', '-A'], repo.work);
          runGit(['commit', '-q', '-m', 'local note'], repo.work);
          // Stops on the first commit to edit it: HEAD is detached at the rebase's commit.
          execGit(['rebase', '-q', '-i', 'HEAD~2'], repo.work, { GIT_SEQUENCE_EDITOR: 'sed -i s/^pick/edit/' });
        },
      },
      {
        what: 'a merge',
        end: 'git commit or git merge --abort',
        enter: (repo) => {
          runGit(['checkout', '-q', '-b', 'side', 'HEAD~1'], repo.work);
          fs.writeFileSync(path.join(repo.work, 'staging', 'flux', 'extra.yaml'), 'kind: Kustomization\n');
          runGit(['add', '-A'], repo.work);
          runGit(['commit', '-q', '-m', 'side change'], repo.work);
          runGit(['checkout', '-q', 'main'], repo.work);
          runGit(['merge', '-q', '--no-ff', '--no-commit', 'side'], repo.work);
        },
      },
      {
        what: 'a cherry-pick',
        end: 'git cherry-pick --continue or git cherry-pick --abort',
        enter: (repo) => {
          // a2's change on top of a3 conflicts: git stops with CHERRY_PICK_HEAD.
          execGit(['cherry-pick', repo.shas.a2], repo.work);
        },
      },
    ];
    for (const state of states) {
      const repo = fixture();
      state.enter(repo);
      const before = remoteCommits(repo);
      const run = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a1, '--yes']);
      assert.equal(run.code, 1, `${state.what}: ${run.stdout}`);
      const said = `${repo.work} is in the middle of ${state.what} (HEAD is git's working state, not your branch): finish it or abort it (${state.end}), then try again`;
      assert.equal(run.stderr, `deploy-rollback: Cannot plan a rollback of staging/a: ${said}\n`);
      const listed = cli(['releases', '--gitops', repo.work, '--env', 'staging', '--app', 'a']);
      assert.equal(listed.code, 0, listed.stderr);
      assert.ok(listed.stderr.includes(`warning: ${said}; the releases shown are read from that state`), listed.stderr);
      assert.deepEqual(remoteCommits(repo), before, `${state.what}: the remote is unchanged`);
      assertNoForce(repo);
    }
  });

  /** Gone, or a zombie waiting for its reaper: either way no longer running. */
  function gone(pid: number): boolean {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
    } catch {
      return true;
    }
  }

  async function until(what: string, condition: () => boolean, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** PATH with a git whose `git <command>` writes its pid to the returned mark and hangs (a remote that never answers). */
  function hangingGit(command: string): { env: NodeJS.ProcessEnv; mark: string } {
    return gitWrapper(dir, command, 'echo $$ > "$MARK.tmp"; mv "$MARK.tmp" "$MARK"; exec sleep 60');
  }

  function start(args: string[], env: NodeJS.ProcessEnv) {
    const child = spawn(process.execPath, [bundle, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', ...env } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    return { child, closed, stderr: () => stderr };
  }

  function worktrees(repo: GitopsFixture): number {
    return runGit(['worktree', 'list', '--porcelain'], repo.work).split('\n').filter((line) => line.startsWith('worktree ')).length;
  }

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    it(`also seen: ${signal} while git push hangs ends the push with the CLI (exit ${code}), nothing pushed`, async () => {
      const repo = fixture();
      const before = remoteCommits(repo);
      const tmp = fs.mkdtempSync(path.join(dir, 'tmp-'));
      const { env, mark } = hangingGit('push');
      const run = start(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a1, '--yes'], { ...env, TMPDIR: tmp });
      try {
        await until('the push to start', () => fs.existsSync(mark));
        const push = Number(fs.readFileSync(mark, 'utf8'));
        run.child.kill(signal);
        const ended = await run.closed;
        assert.equal(ended.code, code, run.stderr());
        await until(`git push (pid ${push}) to end`, () => gone(push), 5000);
      } finally {
        if (run.child.exitCode === null) run.child.kill('SIGKILL');
      }
      assert.deepEqual(remoteCommits(repo), before);
      assert.equal(worktrees(repo), 1);
      assert.deepEqual(fs.readdirSync(tmp), [], 'no worktree folder and no record of git children left');
    });
  }

  it('also seen: SIGTERM while releases reads history ends git with the CLI', async () => {
    const repo = fixture();
    const { env, mark } = hangingGit('log');
    const run = start(['releases', '--gitops', repo.work, '--env', 'staging', '--app', 'a'], env);
    try {
      await until('git log to start', () => fs.existsSync(mark));
      const log = Number(fs.readFileSync(mark, 'utf8'));
      run.child.kill('SIGTERM');
      assert.equal((await run.closed).code, 143);
      await until(`git log (pid ${log}) to end`, () => gone(log), 5000);
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  });

  it('also seen: SIGKILL leaves git push running; the next run finds it, ends it and removes the worktree', async () => {
    const repo = fixture();
    const before = remoteCommits(repo);
    const tmp = fs.mkdtempSync(path.join(dir, 'tmp-'));
    const { env, mark } = hangingGit('push');
    const run = start(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a1, '--yes'], { ...env, TMPDIR: tmp });
    let push = 0;
    try {
      await until('the push to start', () => fs.existsSync(mark));
      push = Number(fs.readFileSync(mark, 'utf8'));
      run.child.kill('SIGKILL');
      await run.closed;
      assert.equal(gone(push), false, 'SIGKILL runs no handler: the push is orphaned');
      assert.equal(worktrees(repo), 2);
      const next = cli(['rollback', '--gitops', repo.work, '--env', 'staging', '--app', 'a', '--to', repo.shas.a1, '--dry-run'], { TMPDIR: tmp });
      assert.equal(next.code, 0, next.stderr);
      assert.ok(next.stderr.includes(`Ended git (process group ${push}) left running by an interrupted run (pid ${run.child.pid})`), next.stderr);
      assert.match(next.stderr, new RegExp(`Removed a temporary worktree left by an interrupted run \\(pid ${run.child.pid}\\)`));
      await until(`the orphaned push (pid ${push}) to end`, () => gone(push), 5000);
      assert.equal(worktrees(repo), 1);
    } finally {
      if (push && !gone(push)) process.kill(push, 'SIGKILL');
    }
    assert.deepEqual(remoteCommits(repo), before);
  });
});
