import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { judgeLockRun, lockRunOf, machineName, notStaleReason, processAlive, runMark, staleLockQuestion, thisRun } from '../../../src/core/kamal/commands/lock-run';
import { lockDetailsText, parseLockDetails, removeLockOfGoneRun, rubyBase64 } from '../../../src/core/kamal/commands/lock';
import { lockMessageFor } from '../../../src/core/kamal/rollback/assemble';

/** A pid that was just used and has exited (reaped by spawnSync). */
function deadPid(): number {
  const child = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' });
  return Number(child.stdout.trim());
}

describe('deploy lock left by a run that is gone', () => {
  const here = { machine: 'build-7', alive: (pid: number) => pid === 300, self: 200 };
  const lock = (message: string) => ({ holder: 'Ada', lockedAt: '2026-12-03T09:00:00Z', version: 'v2', message });

  it('names this process and machine at the end of the lock message, after what Kamal --lock-wait looks for', () => {
    const message = lockMessageFor('rollback', 'v2');
    assert.equal(message, `Automatic deploy lock: rollback to v2 by Deploy Rollback (pid ${process.pid} on ${machineName()})`);
    assert.deepEqual(lockRunOf({ message }), thisRun());
    assert.equal(machineName('web 1.example.com'), 'web_1.example.com');
  });

  it('calls stale only our run on this machine whose process is gone', () => {
    assert.deepEqual(judgeLockRun(lock(`Automatic deploy lock: rollback to v2 by Deploy Rollback ${runMark({ pid: 4242, machine: 'build-7' })}`), here), { kind: 'gone', run: { pid: 4242, machine: 'build-7' } });
    assert.equal(judgeLockRun(lock('Automatic deploy lock: rollback to v2 by Deploy Rollback (pid 300 on build-7)'), here).kind, 'alive');
    assert.equal(judgeLockRun(lock('Automatic deploy lock: rollback to v2 by Deploy Rollback (pid 200 on build-7)'), here).kind, 'alive', 'this very process');
    assert.equal(judgeLockRun(lock('Automatic deploy lock: rollback to v2 by Deploy Rollback (pid 4242 on laptop)'), here).kind, 'elsewhere');
    assert.equal(judgeLockRun({ holder: 'nobody recorded', unreadable: true }, here).kind, 'nameless');
  });

  it("leaves Kamal's own lock, a manual one, ours from before runs were named, and a mark not at the end alone", () => {
    for (const message of [
      'Automatic deploy lock',
      'Manual deploy lock: db migration',
      'Automatic deploy lock: rollback to v2 by Deploy Rollback',
      'by Deploy Rollback (pid 4242 on build-7) -- not really',
      'by Deploy Rollback (pid 0 on build-7)',
    ]) {
      assert.equal(judgeLockRun(lock(message), here).kind, 'unmarked', message);
    }
    assert.equal(judgeLockRun({ holder: 'Grace' }, here).kind, 'unmarked');
  });

  it('tells a live process from one that has exited', () => {
    assert.equal(processAlive(process.ppid), true);
    assert.equal(processAlive(process.pid), true);
    assert.equal(processAlive(deadPid()), false);
  });

  it('says why a lock is not stale and what removal asks', () => {
    const run = { pid: 4242, machine: 'laptop' };
    assert.match(notStaleReason({ kind: 'alive', run }, 'Ada', '`kamal lock release`'), /Ada's Deploy Rollback run \(pid 4242 on laptop\), and that process is still running on this machine/);
    assert.match(notStaleReason({ kind: 'elsewhere', run }, 'Ada', '`kamal lock release`'), /on another machine, where only it can be told/);
    assert.match(notStaleReason({ kind: 'unmarked' }, 'Grace\nAll good', '`kamal lock release`'), /names its holder \(Grace\\nAll good\)/);
    assert.equal(staleLockQuestion({ kind: 'gone', run }), 'names a Deploy Rollback run (pid 4242 on laptop) that is no longer running on this machine');
  });

  describe('removal on the host, run by a real sh', () => {
    let dir: string;
    const config = { service: 'chat', destination: undefined };
    const message = 'Automatic deploy lock: rollback to v2 by Deploy Rollback (pid 4242 on build-7)';
    const ours = { holder: 'Ada Lovelace', lockedAt: '2026-12-03T09:00:00Z', version: 'v2', message };
    const sh = (command: string) => spawnSync('sh', ['-c', command], { cwd: dir, encoding: 'utf8' });
    const write = (text: string) => {
      fs.mkdirSync(path.join(dir, '.kamal/lock-chat'), { recursive: true });
      fs.writeFileSync(path.join(dir, '.kamal/lock-chat/details'), rubyBase64(text));
    };

    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-lock-run-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('removes exactly the lock directory while its details still name that run', () => {
      write(lockDetailsText(ours));
      fs.mkdirSync(path.join(dir, '.kamal/lock-other'));
      const lock = parseLockDetails(Buffer.from(fs.readFileSync(path.join(dir, '.kamal/lock-chat/details'), 'utf8'), 'base64').toString('utf8'));
      const result = sh(removeLockOfGoneRun(config, lock));
      assert.equal(result.stdout.trim(), 'removed', result.stderr);
      assert.equal(fs.existsSync(path.join(dir, '.kamal/lock-chat')), false);
      assert.equal(fs.existsSync(path.join(dir, '.kamal/lock-other')), true);
    });

    it('leaves a lock taken by someone else since it was read', () => {
      write(lockDetailsText({ ...ours, holder: 'Grace Hopper', message: 'Automatic deploy lock' }));
      assert.equal(sh(removeLockOfGoneRun(config, ours)).stdout.trim(), 'changed');
      write(lockDetailsText({ ...ours, lockedAt: '2026-12-03T10:00:00Z' }));
      assert.equal(sh(removeLockOfGoneRun(config, ours)).stdout.trim(), 'changed', 'the same holder, a later lock');
      assert.ok(fs.existsSync(path.join(dir, '.kamal/lock-chat/details')));
    });

    it('says absent when there is no lock, and quotes what the details say', () => {
      assert.equal(sh(removeLockOfGoneRun(config, ours)).stdout.trim(), 'absent');
      const hostile = { ...ours, holder: "O'Brien $(touch pwned)" };
      write(lockDetailsText(hostile));
      assert.equal(sh(removeLockOfGoneRun(config, hostile)).stdout.trim(), 'removed');
      assert.equal(fs.existsSync(path.join(dir, 'pwned')), false);
    });
  });
});
