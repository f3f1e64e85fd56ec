import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { readGitopsRepo } from '../../src/core/gitops/discovery';
import { executeGitopsRollback, planGitopsRollback, pruneStaleWorktrees } from '../../src/core/gitops/rollback';
import { listReleases } from '../../src/core/gitops/history';
import { copyGitopsFixture, gitopsScenarios, runGit, type GitopsFixture } from '../fixtures/gitops';
import { recordingReporter, rejection, snapshot } from '../unit/gitops/helpers';
import { waitFor } from '../hosts/exec';

/**
 * Gitops rollbacks against real remotes that misbehave: two clones pushing at the same moment,
 * a remote that accepts the TCP connection and never answers, and leftovers of a crashed run.
 */

const made: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitops-net-'));
  made.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function isAncestor(fixture: GitopsFixture, sha: string): boolean {
  try {
    runGit(['merge-base', '--is-ancestor', sha, 'main'], fixture.remote);
    return true;
  } catch {
    return false;
  }
}

function worktreeCount(fixture: GitopsFixture): number {
  return runGit(['worktree', 'list', '--porcelain'], fixture.work).split('\n').filter((line) => line.startsWith('worktree ')).length;
}

/** A TCP listener on loopback that accepts and never says a word, as a hung git daemon or proxy does. */
async function silentServer(): Promise<{ url: string; connections: () => number; open: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    // Read and drop what git sends, so its hang-up is seen; never answer.
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `git://127.0.0.1:${port}/gitops.git`,
    connections: () => connections,
    open: () => sockets.size,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('gitops push races: two clones pushing at the same moment', function () {
  this.timeout(120_000);
  const TRIALS = 6;

  it(`every trial (${TRIALS}) keeps every commit, and the rollback is pushed exactly or clearly refused`, async () => {
    const outcomes: string[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
      const repo = (await readGitopsRepo(fixture.work))!;
      const other = fixture.clone('other');
      // The other engineer deploys b: committed beforehand, pushed the moment our push starts.
      fixture.apply([{ kind: 'deploy', app: 'b', label: `b-race-${trial}` }], other);
      const theirs = runGit(['rev-parse', 'HEAD'], other).trim();
      let racer: Promise<number> | undefined;
      const reporter = recordingReporter();
      reporter.onStep('Pushing to origin/main', () => {
        racer ??= new Promise((resolve) => spawn('git', ['push', '-q', 'origin', 'main'], { cwd: other, stdio: 'ignore' }).on('close', (code) => resolve(code ?? -1)));
      });
      const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
      const result = await executeGitopsRollback(plan, reporter).then(
        (outcome) => ({ ok: true as const, outcome }),
        (error: Error) => ({ ok: false as const, error }),
      );
      const theirCode = await racer;
      assert.notEqual(theirCode, undefined, 'the racer ran');
      if (theirCode === 0) assert.ok(isAncestor(fixture, theirs), `trial ${trial}: their pushed commit is kept`);
      if (result.ok) {
        const pushed = runGit(['rev-parse', 'main'], fixture.remote).trim();
        assert.ok(result.outcome.lines[0].endsWith(pushed) || isAncestor(fixture, result.outcome.lines[0].split(': ')[1]), `trial ${trial}: our push is on main`);
        assert.equal(runGit(['diff', '--stat', fixture.shas.a1, 'main', '--', 'staging/a'], fixture.remote), '', `trial ${trial}: a is exactly a1`);
        const lost = reporter.debugs.filter((line) => line.startsWith('[git] push lost a race: ')).map((line) => /\(([a-z -]+)/.exec(line.replace(/^.*\[(remote )?rejected\] /, ''))?.[1] ?? 'race');
        outcomes.push(lost.length > 0 ? `pushed after losing (${lost.join(', ')})` : 'pushed first');
        if (theirCode !== 0) {
          // They lost the race: what a person does next, and nothing of ours is lost by it.
          runGit(['pull', '-q', '--rebase', 'origin', 'main'], other);
          runGit(['push', '-q', 'origin', 'main'], other);
          assert.ok(isAncestor(fixture, result.outcome.lines[0].split(': ')[1]));
        }
      } else {
        assert.match(result.error.message, /Push to origin\/main was rejected|changed on origin\/main/, `trial ${trial}: ${result.error.message}`);
        assert.match(result.error.message, /[Nn]othing was pushed/);
        assert.equal(runGit(['log', '--format=%s', 'main'], fixture.remote).includes('Revert'), false);
        outcomes.push('refused');
      }
      assert.equal(worktreeCount(fixture), 1);
    }
    // Printed so a run shows which interleavings it met (timing decides, not the test).
    process.stdout.write(`      race outcomes: ${outcomes.join(', ')}\n`);
  });
});

describe('gitops: a remote that never answers', function () {
  this.timeout(60_000);

  it('a stalled fetch ends within the network timeout, with nothing pushed and no worktree left', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const server = await silentServer();
    try {
      runGit(['remote', 'set-url', 'origin', server.url], fixture.work);
      const repo = (await readGitopsRepo(fixture.work))!;
      const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
      const before = snapshot(fixture);
      const started = Date.now();
      const error = await rejection(executeGitopsRollback(plan, recordingReporter(), undefined, { networkTimeoutMs: 1500 }));
      const took = Date.now() - started;
      assert.match(error.message, /^Rolling back staging\/a failed: git fetch got no answer within 1\.5 s while fetching origin\/main \(deployRollback\.gitops\.networkTimeout\): the remote is not responding, so git was stopped\. Nothing was pushed/);
      // The named bound is the 1.5 s network timeout: not before it, and within it plus 1.5 s for git's own
      // start and the plan's local steps on a loaded 2-core machine (seen: 1.5–1.8 s).
      assert.ok(took >= 1500 && took < 3000, `ended after ${took} ms`);
      assert.ok(server.connections() > 0, 'git did connect to the silent remote');
      await waitFor('git to drop its connection', () => server.open() === 0, 15_000, 20);
      assert.deepEqual(snapshot(fixture), before);
    } finally {
      await server.close();
    }
  });

  it('cancel stops a stalled fetch at once', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const server = await silentServer();
    try {
      runGit(['remote', 'set-url', 'origin', server.url], fixture.work);
      const repo = (await readGitopsRepo(fixture.work))!;
      const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
      const controller = new AbortController();
      const running = rejection(executeGitopsRollback(plan, recordingReporter(), controller.signal, { networkTimeoutMs: 600_000 }));
      await waitFor('git to connect', () => server.connections() > 0, 15_000, 20);
      const cancelled = Date.now();
      controller.abort();
      const error = await running;
      assert.ok(Date.now() - cancelled < 5_000, 'stopped at once');
      assert.match(error.message, /^Rollback cancelled while fetching origin\/main; nothing was pushed and your checkout is unchanged$/);
      await waitFor('git to drop its connection', () => server.open() === 0, 15_000, 20);
    } finally {
      await server.close();
    }
  });

  it('a stalled push is stopped within the timeout and the message says the remote may or may not have it', async () => {
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const server = await silentServer();
    try {
      runGit(['config', 'remote.origin.pushurl', server.url], fixture.work);
      const repo = (await readGitopsRepo(fixture.work))!;
      const plan = await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1);
      const remoteBefore = runGit(['for-each-ref'], fixture.remote);
      const error = await rejection(executeGitopsRollback(plan, recordingReporter(), undefined, { networkTimeoutMs: 1500 }));
      assert.match(error.message, /git push got no answer within 1\.5 s while pushing to origin\/main .*The push of [0-9a-f]{40} was stopped part-way: origin\/main may or may not have it; run git fetch/);
      assert.equal(runGit(['for-each-ref'], fixture.remote), remoteBefore);
      assert.equal(worktreeCount(fixture), 1);
    } finally {
      await server.close();
    }
  });
});

describe('gitops: temporary worktrees of a crashed run', () => {
  it('are removed by the next run; a live run\'s worktree is left alone', async function () {
    this.timeout(60_000);
    const fixture = copyGitopsFixture(tempDir(), gitopsScenarios.interleaved());
    const dead = await new Promise<number>((resolve) => {
      const child = spawn('true');
      child.on('close', () => resolve(child.pid!));
    });
    const live = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const crashed = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-rollback-'));
      const alive = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-rollback-'));
      made.push(alive);
      runGit(['worktree', 'add', '-q', '--no-checkout', '--detach', '--lock', '--reason', `deploy-rollback pid ${dead}`, path.join(crashed, 'worktree'), 'HEAD'], fixture.work);
      runGit(['worktree', 'add', '-q', '--no-checkout', '--detach', '--lock', '--reason', `deploy-rollback pid ${live.pid}`, path.join(alive, 'worktree'), 'HEAD'], fixture.work);
      assert.equal(worktreeCount(fixture), 3);
      const repo = (await readGitopsRepo(fixture.work))!;
      await executeGitopsRollback(await planGitopsRollback(repo, 'staging', 'a', fixture.shas.a1), recordingReporter());
      assert.equal(fs.existsSync(crashed), false, 'the crashed run\'s folder is gone');
      const left = runGit(['worktree', 'list', '--porcelain'], fixture.work);
      assert.equal(worktreeCount(fixture), 2);
      assert.ok(left.includes(path.join(alive, 'worktree')));
      assert.deepEqual(await pruneStaleWorktrees(fixture.work), []);
      assert.equal((await listReleases(repo, 'staging', 'a'))[2].current, true);
    } finally {
      live.kill();
    }
  });
});
