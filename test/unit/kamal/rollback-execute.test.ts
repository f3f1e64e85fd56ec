import { strict as assert } from 'node:assert';
import { hookEnvironment } from '../../../src/core/kamal/rollback/hooks';
import { chmod, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executeKamalRollback, planKamalRollback } from '../../../src/core/kamal/rollback';
import type { KamalConfig } from '../../../src/core/kamal/config/types';
import { FakeHosts, kamalConfig, recentRead, RecordingReporter, role } from './rollback-fixtures';

function fleet(hosts: string[], overrides: Partial<KamalConfig> = {}): { config: KamalConfig; fakes: FakeHosts } {
  const config = kamalConfig({ roles: [role('web', hosts)], ...overrides });
  const fakes = new FakeHosts(hosts);
  for (const host of fakes.hosts.values()) host.seed('web', ['v1', 'v2', 'v3'], 'v3');
  return { config, fakes };
}

/** The commands each host got after planning, with random parts normalised. */
function runCommands(fakes: FakeHosts, host: string): string[] {
  return fakes
    .get(host)
    .commands.filter((command) => !command.includes('@@deploy-rollback'))
    .map((command) =>
      command
        .replace(/_replaced_[0-9a-f]{16}/g, '_replaced_X')
        .replace(/--hostname (\S+)-[0-9a-f]{12}/, '--hostname $1-H')
        .replace(/\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\]/g, '[T]')
        .replace(/--target="[0-9a-f]{12}/, '--target="CID')
        .replace(/^mkdir -p \.kamal && mkdir \.kamal\/lock-chat && \{ echo '[^']*'/s, "mkdir -p .kamal && mkdir .kamal/lock-chat && { echo 'B64'"),
    );
}

function isControl(char: string): boolean {
  const code = char.charCodeAt(0);
  return (code < 0x20 && char !== '\n' && char !== '\t') || (code >= 0x7f && code <= 0x9f);
}

describe('executeKamalRollback', () => {
  let hooksDir: string | undefined;
  afterEach(async () => {
    if (hooksDir) await rm(hooksDir, { recursive: true, force: true });
    hooksDir = undefined;
  });

  async function writeHooks(hooks: Record<string, string>): Promise<string> {
    hooksDir = await mkdtemp(join(tmpdir(), 'kamal-hooks-'));
    const dir = join(hooksDir, '.kamal', 'hooks');
    await mkdir(dir, { recursive: true });
    for (const [name, body] of Object.entries(hooks)) {
      await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
      await chmod(join(dir, name), 0o755);
    }
    return dir;
  }

  it('rolls every host back in Kamal\'s order and leaves them as Kamal would', async () => {
    const { config, fakes } = fleet(['web-1', 'web-2', 'web-3']);
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    const reporter = new RecordingReporter();
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter, runHooks: false });

    assert.equal(result.ok, true, result.message);
    const currentVersion = plan.detail.hostPlans[0].steps[0].commands.currentVersion;
    assert.deepEqual(runCommands(fakes, 'web-1'), [
      `mkdir -p .kamal && echo '[T] [ada] [web] Renaming container v2 to v2_replaced_X' >> .kamal/chat-audit.log && docker rename chat-web-v2 chat-web-v2_replaced_X && ${currentVersion}`,
      'docker run --detach --restart unless-stopped --name chat-web-v2 --network kamal --hostname web-1-H --env KAMAL_CONTAINER_NAME="chat-web-v2" --env KAMAL_VERSION="v2" --env KAMAL_HOST="web-1"' +
        ' --env-file .kamal/apps/chat/env/roles/web.env --log-opt max-size="10m" --label service="chat" --label role="web" --label destination localhost:5555/bars/app:v2',
      'docker exec kamal-proxy kamal-proxy deploy chat-web --target="CID:80" --deploy-timeout="10s" --drain-timeout="30s" --buffer-requests --buffer-responses --log-request-header="Cache-Control" --log-request-header="Last-Modified" --log-request-header="User-Agent"',
      "mkdir -p .kamal && echo '[T] [ada] [web] Booted app version v2' >> .kamal/chat-audit.log && docker container ls --all --filter 'name=^chat-web-v3$' --quiet | xargs docker stop",
      "mkdir -p .kamal && echo '[T] [ada] Tagging localhost:5555/bars/app:v2 as the latest image' >> .kamal/chat-audit.log && docker tag localhost:5555/bars/app:v2 localhost:5555/bars/app:latest",
      'rm .kamal/lock-chat/details && rm -r .kamal/lock-chat',
    ]);
    // Fused exchanges on the primary: the checks again with the lock; rename+run; switch+stop; tag+unlock (each line byte for byte in its section).
    const exchanges = fakes.get('web-1').exchanges.slice(1).map((command) => command.replace(/\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\]/g, '[T]'));
    assert.equal(exchanges.length, 4);
    assert.match(exchanges[0], /^\{ echo '@@deploy-rollback list web'; .* & \{ echo '@@deploy-rollback current web'; .* & wait; .*; echo '@@deploy-rollback prepare'; mkdir -p \.kamal && mkdir \.kamal\/lock-chat && \{ echo '[A-Za-z0-9+/=\n]+' > \.kamal\/lock-chat\/details \|\| \{ rm -rf \.kamal\/lock-chat; false; \}; \}; echo "@@deploy-rollback rc \$\?"$/s);
    assert.match(fakes.get('web-2').exchanges[1], /^\{ echo '@@deploy-rollback list web'; .* & wait; .*; echo '@@deploy-rollback prepare'; mkdir -p \.kamal; echo "@@deploy-rollback rc \$\?"$/s);
    assert.match(exchanges[1], /^echo '@@deploy-rollback current'; mkdir -p \.kamal && echo .* docker rename .* && sh -c .* \| head -1 && echo "@@deploy-rollback rc 0" && echo '@@deploy-rollback run' && docker run --detach .*; echo "@@deploy-rollback rc \$\?"$/);
    assert.match(exchanges[2], /^echo '@@deploy-rollback proxy'; docker exec kamal-proxy kamal-proxy deploy .* && echo "@@deploy-rollback rc 0" && echo '@@deploy-rollback booted' && mkdir -p \.kamal && echo '\[T\] \[ada\] \[web\] Booted app version v2' .* \| xargs docker stop; echo "@@deploy-rollback rc \$\?"$/);
    assert.equal(
      exchanges[3],
      "echo '@@deploy-rollback tag'; mkdir -p .kamal && echo '[T] [ada] Tagging localhost:5555/bars/app:v2 as the latest image' >> .kamal/chat-audit.log && docker tag localhost:5555/bars/app:v2 localhost:5555/bars/app:latest; echo \"@@deploy-rollback rc $?\"; " +
        "echo '@@deploy-rollback unlock'; rm .kamal/lock-chat/details && rm -r .kamal/lock-chat; echo \"@@deploy-rollback rc $?\"",
    );
    assert.equal(fakes.get('web-2').exchanges.length, 5, 'pre-flight, the checks again with mkdir, rename+run, switch+stop, tag');
    assert.equal(
      runCommands(fakes, 'web-1')[1],
      'docker run --detach --restart unless-stopped --name chat-web-v2 --network kamal --hostname web-1-H --env KAMAL_CONTAINER_NAME="chat-web-v2" --env KAMAL_VERSION="v2" --env KAMAL_HOST="web-1"' +
        ' --env-file .kamal/apps/chat/env/roles/web.env --log-opt max-size="10m" --label service="chat" --label role="web" --label destination localhost:5555/bars/app:v2',
    );
    // Only the primary host holds the lock.
    assert.ok(!runCommands(fakes, 'web-2').some((command) => command.includes('lock-chat')));
    for (const host of fakes.hosts.values()) {
      assert.deepEqual(host.running(), ['chat-web-v2'], host.host);
      const v2 = host.containers.find((container) => container.name === 'chat-web-v2');
      assert.equal(host.proxyTargets.get('chat-web'), v2?.id.slice(0, 12));
      assert.ok(host.containers.some((container) => /^chat-web-v2_replaced_[0-9a-f]{16}$/.test(container.name)));
      assert.deepEqual(host.tags, ['localhost:5555/bars/app:v2 -> localhost:5555/bars/app:latest']);
      assert.equal(host.lock, undefined);
    }
    assert.match(fakes.get('web-1').audit.join('\n'), /\[ada\] \[web\] Booted app version v2/);
    assert.deepEqual(result.hosts.map((entry) => [entry.host, entry.from, entry.to, entry.result]), [
      ['web-1', 'v3', 'v2', 'rolled-back'],
      ['web-2', 'v3', 'v2', 'rolled-back'],
      ['web-3', 'v3', 'v2', 'rolled-back'],
    ]);
    assert.match(result.lines[0], /^HOST\s+ROLE\s+FROM\s+TO\s+NOW\s+OUTCOME$/);
    assert.match(result.lines[2], /^web-2\s+web\s+v3\s+v2\s+v2\s+rolled-back$/);
    assert.equal(result.rollForward, undefined);
    assert.match(reporter.text('step'), /\[ssh web-2\] web: starting chat-web-v2/);
    // How far the run is, by phases: the lock, every new container started, every one serving, the tag; each once.
    assert.deepEqual(reporter.progressed, ['1/4', '2/4', '3/4', '4/4']);
    assert.match(reporter.text('debug'), /\[ssh web-3\] echo '@@deploy-rollback current'; mkdir -p .kamal && echo .* docker rename chat-web-v2 chat-web-v2_replaced_/);
  });

  describe('a plan confirmed on an earlier reading (the tree\'s, or before a confirmation)', () => {
    it('refuses when the lock is taken if a host runs another version than planned: nothing changed, the lock released', async () => {
      const { config, fakes } = fleet(['web-1', 'web-2']);
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
      // Someone deploys v4 on web-2 while the confirmation is open.
      const web2 = fakes.get('web-2');
      for (const container of web2.containers) container.state = 'exited';
      web2.seed('web', ['v4'], 'v4');
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(result.ok, false);
      assert.match(result.message, /Nothing was changed: the hosts no longer fit the confirmed plan: web-2 \(web\) runs v4 now, not v3 as planned\. Refresh and plan again\./);
      for (const host of fakes.hosts.values()) assert.ok(!host.commands.some((command) => /docker (run|rename|tag)/.test(command)), `${host.host}: ${host.commands.join(' | ')}`);
      assert.deepEqual(web2.running(), ['chat-web-v4']);
      assert.equal(fakes.get('web-1').lock, undefined, 'lock released');
    });

    it('does not count a _replaced_ copy left running since as a change (the run leaves it, as one without that step did)', async () => {
      const { config, fakes } = fleet(['web-1']);
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
      const web1 = fakes.get('web-1');
      web1.containers.push({ id: `${'f'.repeat(12)}${'ab'.repeat(26)}`, name: 'chat-web-v1_replaced_0123456789abcdef', state: 'running', created: 1_600_000_000, image: 'localhost:5555/bars/app:v1' });
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(result.ok, true, result.message);
      assert.ok(web1.running().includes('chat-web-v2'));
    });

    it('tells a roll forward from a rollback by the recent read as by the pre-flight', async () => {
      const { config, fakes } = fleet(['web-1']);
      const web1 = fakes.get('web-1');
      for (const container of web1.containers) container.state = container.name === 'chat-web-v2' ? 'running' : 'exited';
      const forward = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v3', performer: 'ada', recentRead: recentRead(config, fakes) });
      assert.equal(web1.exchanges.length, 0);
      assert.equal(forward.detail.kind, 'roll-forward');
      assert.equal(forward.direction, 'forward');
      const back = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada', recentRead: recentRead(config, fakes) });
      assert.equal(back.detail.kind, 'rollback');
      const read = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v3', performer: 'ada' });
      assert.deepEqual([read.detail.kind, read.from, read.to], [forward.detail.kind, forward.from, forward.to]);
    });

    it('plans from a recent read without reading the hosts; the run checks them again in its lock exchange', async () => {
      const { config, fakes } = fleet(['web-1', 'web-2']);
      const read = recentRead(config, fakes);
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', recentRead: read });
      for (const host of fakes.hosts.values()) assert.equal(host.exchanges.length, 0, `${host.host} was read again`);
      assert.match(plan.lines[0], new RegExp(`^Planned from the hosts as read at ${read.readAt.slice(11, 19)} UTC, \\d+ s ago; when the deploy lock is taken they are read again`));
      assert.deepEqual(plan.detail.hostPlans.map((host) => [host.host, host.steps[0].from, host.steps[0].to]), [['web-1', 'v3', 'v2'], ['web-2', 'v3', 'v2']]);

      // What the tree does not read (the env file) is checked with the lock: gone since, refused.
      fakes.get('web-2').envFiles.delete('web');
      const refused = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(refused.ok, false);
      assert.match(refused.message, /Nothing was changed: the hosts no longer fit the confirmed plan: the role env file is missing on web-2 \(web: \.kamal\/apps\/chat\/env\/roles\/web\.env\)/);
      assert.equal(fakes.get('web-1').lock, undefined, 'lock released');
      assert.deepEqual(fakes.get('web-2').running(), ['chat-web-v3']);

      fakes.get('web-2').envFiles.add('web');
      const before = fakes.get('web-1').exchanges.length;
      const again = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', recentRead: read });
      const result = await executeKamalRollback(again, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(result.ok, true, result.message);
      assert.equal(fakes.get('web-1').exchanges.length - before, 4, 'checks with the lock, rename+run, switch+stop, tag+unlock');
      for (const host of fakes.hosts.values()) assert.deepEqual(host.running(), ['chat-web-v2'], host.host);
    });
  });

  describe('with the lock taken in the pre-flight (a run that follows at once)', () => {
    it('locks on the primary and makes .kamal elsewhere in the pre-flight exchange, then runs without a lock exchange', async () => {
      const { config, fakes } = fleet(['web-1', 'web-2']);
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', takeLock: true });
      const preflight = fakes.get('web-1').commands[0];
      assert.match(preflight, /echo '@@deploy-rollback lock'; stat \.kamal\/lock-chat .*; echo '@@deploy-rollback prepare'; mkdir -p \.kamal && mkdir \.kamal\/lock-chat && \{ echo '[A-Za-z0-9+/=\n]+' > \.kamal\/lock-chat\/details \|\| \{ rm -rf \.kamal\/lock-chat; false; \}; \}; echo "@@deploy-rollback rc \$\?"$/s);
      assert.match(fakes.get('web-2').commands[0], /; echo '@@deploy-rollback prepare'; mkdir -p \.kamal; echo "@@deploy-rollback rc \$\?"$/);
      assert.match(fakes.get('web-1').lock ?? '', /^Locked by: ada at \S+\nVersion: v2\nMessage: Automatic deploy lock: rollback to v2 by Deploy Rollback \(pid \d+ on [^)]+\)$/);
      assert.equal(fakes.get('web-1').commands.length, 1, 'one exchange so far');

      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(result.ok, true, result.message);
      assert.equal(runCommands(fakes, 'web-1').filter((command) => command.includes('mkdir .kamal/lock-chat')).length, 0, 'no second lock exchange');
      assert.ok(!runCommands(fakes, 'web-2').includes('mkdir -p .kamal'));
      assert.equal(fakes.get('web-1').lock, undefined);
      for (const host of fakes.hosts.values()) assert.deepEqual(host.running(), ['chat-web-v2'], host.host);
    });

    it('releases the lock it took when the pre-flight refuses', async () => {
      const { config, fakes } = fleet(['web-1', 'web-2']);
      fakes.get('web-2').envFiles.delete('web');
      await assert.rejects(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', takeLock: true }), /role env file is missing on web-2/);
      assert.equal(fakes.get('web-1').lock, undefined);
      assert.match(fakes.get('web-1').commands.slice(-1)[0], /^if cat \.kamal\/lock-chat\/details .* then rm \.kamal\/lock-chat\/details && rm -r \.kamal\/lock-chat; fi$/);
      assert.ok(!fakes.allCommands().some((command) => command.startsWith('docker ')), 'no container was touched');
    });

    it('does not say the lock may have been taken when the primary host was never connected to', async () => {
      const { config, fakes } = fleet(['web-1', 'web-2']);
      fakes.unreachable.add('web-1');
      const error = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', takeLock: true }).then(
        () => assert.fail('planned without its primary host'),
        (reason: unknown) => reason as Error,
      );
      assert.match(error.message, /nothing was changed/);
      assert.match(error.message, /web-1/);
      assert.doesNotMatch(error.message, /may have been taken/);
      assert.equal(fakes.get('web-1').commands.length, 0);
    });

    it('says nothing was changed when the run cannot connect to take the lock (a plan confirmed earlier)', async () => {
      const { config, fakes } = fleet(['web-1', 'web-2']);
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
      fakes.unreachable.add('web-1');
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(result.ok, false);
      assert.match(result.message, /Nothing was changed: web-1 could not be reached: take the deploy lock with the checks: connect ETIMEDOUT/);
      assert.doesNotMatch(result.message, /may have been taken/);
      for (const host of fakes.hosts.values()) assert.deepEqual(host.running(), ['chat-web-v3'], host.host);
    });

    it("leaves someone else's lock alone and takes none", async () => {
      const { config, fakes } = fleet(['web-1']);
      fakes.get('web-1').lock = 'Locked by: Grace at 2026-11-23T00:00:00Z\nVersion: v3\nMessage: Deploying v3';
      await assert.rejects(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', takeLock: true }), /deploy lock on web-1 is held by Grace/);
      assert.match(fakes.get('web-1').lock ?? '', /Grace/);
      assert.equal(fakes.get('web-1').commands.length, 1, 'no release of a lock that is not ours');
    });

    it('writes a roll forward into the lock as the run would', async () => {
      const config = kamalConfig({ roles: [role('web', ['web-1'])] });
      const fakes = new FakeHosts(['web-1']);
      fakes.get('web-1').seed('web', ['v1', 'v2', 'v3'], 'v1');
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v3', performer: 'ada', takeLock: true });
      assert.equal(plan.detail.kind, 'roll-forward');
      // The switch is the plan's first step: it does not open with "Then".
      assert.ok(plan.lines.includes('1. On web-1:'), plan.lines.join('\n'));
      assert.ok(!plan.lines.some((line) => /^\d+\. Then\b/.test(line)), plan.lines.join('\n'));
      // Taken before the direction was known; rewritten with the first boot exchange, not in one of its own.
      assert.match(fakes.get('web-1').lock ?? '', /Message: Automatic deploy lock: rollback to v3 by Deploy Rollback \(pid \d+ on [^)]+\)$/);
      assert.equal(fakes.get('web-1').exchanges.length, 1);
      let lockAtRun: string | undefined;
      fakes.get('web-1').beforeExec = (command, host) => {
        if (command.startsWith('docker run')) lockAtRun = host.lock;
      };
      const reporter = new RecordingReporter();
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter, runHooks: false });
      assert.equal(result.ok, true, result.message);
      assert.match(lockAtRun ?? '', /^Locked by: ada at \S+\nVersion: v3\nMessage: Automatic deploy lock: roll forward to v3 by Deploy Rollback \(pid \d+ on [^)]+\)$/);
      assert.match(reporter.text('step'), /\[ssh web-1\] the deploy lock now says: Automatic deploy lock: roll forward to v3 by Deploy Rollback/);
      assert.equal(fakes.get('web-1').exchanges.length, 4, 'pre-flight with the lock, rewrite + rename + run, switch + stop, tag + unlock');
      assert.equal(fakes.get('web-1').lock, undefined);
      // Said as a roll forward everywhere: the message (in the form of a rollback's), the table, the JSON.
      assert.match(result.message, /^Rolled \S+ forward to v3 on 1 host role\.$/);
      assert.match(result.lines[1] ?? '', /^web-1\s+web\s+v1\s+v3\s+v3\s+rolled-forward$/);
      assert.deepEqual(result.hosts.map((entry) => entry.result), ['rolled-forward']);
      assert.ok(!result.lines.join('\n').includes('rolled-back'), result.lines.join('\n'));
    });

    it('takes the lock in the run, after the pre-connect hook, when there is one', async () => {
      const dir = await writeHooks({ 'pre-connect': 'true' });
      const { config, fakes } = fleet(['web-1'], { hooksPath: dir, file: join(dir, '..', '..', 'config', 'deploy.yml') });
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', takeLock: true });
      assert.equal(plan.detail.lockTaken, undefined);
      assert.equal(fakes.get('web-1').lock, undefined);
      assert.ok(!fakes.get('web-1').commands[0].includes('prepare'));
    });
  });

  it('runs groups one after another', async () => {
    const { config, fakes } = fleet(['web-1', 'web-2', 'web-3', 'web-4'], { boot: { limit: 2 } });
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    const order: string[] = [];
    for (const host of fakes.hosts.values()) host.beforeExec = (command) => command.startsWith('docker run') && order.push(host.host);
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(result.ok, true);
    assert.deepEqual(order.slice(0, 2).sort(), ['web-1', 'web-2']);
    assert.deepEqual(order.slice(2).sort(), ['web-3', 'web-4']);
  });

  it('keeps the old version serving when the new one fails its health check, and stops there', async () => {
    const { config, fakes } = fleet(['web-1', 'web-2', 'web-3'], { boot: { limit: 1 } });
    fakes.get('web-2').unhealthy.add('v2');
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    const reporter = new RecordingReporter();
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter, runHooks: false });

    assert.equal(result.ok, false);
    const web2 = fakes.get('web-2');
    assert.deepEqual(web2.running(), ['chat-web-v3'], 'v3 still serves on web-2');
    assert.equal(web2.containers.find((container) => container.name === 'chat-web-v2')?.state, 'exited', 'the failed v2 was stopped');
    // Unlike Kamal, the retained v2 gets its name back (the failed fresh one is removed): a re-run finds it.
    assert.equal(web2.containers.find((container) => container.name === 'chat-web-v2')?.created, fakes.get('web-3').containers.find((container) => container.name === 'chat-web-v2')?.created);
    assert.ok(!web2.containers.some((container) => container.name.includes('_replaced_')), web2.containers.map((container) => container.name).join(', '));
    assert.ok(runCommands(fakes, 'web-2').includes("docker container ls --all --filter 'name=^chat-web-v2$' --quiet | xargs docker logs --timestamps --tail 50 2>&1"));
    assert.match(reporter.text('error'), /last lines of chat-web-v2:\n.*health check failed/s);
    assert.ok(!web2.audit.some((line) => line.includes('Booted')), 'no Booted audit line for a failed boot');
    assert.deepEqual(web2.tags, []);
    assert.deepEqual(runCommands(fakes, 'web-3'), [], 'the next group never started');
    assert.equal(fakes.get('web-3').exchanges.length, 2, 'the pre-flight, then the checks again with mkdir -p .kamal');
    assert.equal(fakes.get('web-1').lock, undefined, 'lock released');
    assert.deepEqual(fakes.get('web-1').tags, [], 'latest stays until every host is on the target');
    assert.deepEqual(result.hosts.map((entry) => [entry.host, entry.result, entry.serving]), [
      ['web-1', 'rolled-back', 'v2'],
      ['web-2', 'failed', 'v3'],
      ['web-3', 'not-started', 'v3'],
    ]);
    assert.match(result.message, /kamal-proxy did not switch to chat-web-v2 on web-2/);
    assert.match(result.message, /Now serving: v2 on web-1 \(web\); v3 on web-2 \(web\), web-3 \(web\)/);
    // Three groups of one host: the lock, web-1's group started and serving, web-2's v2 started; nothing after its failure.
    assert.deepEqual(reporter.progressed, ['1/8', '2/8', '3/8', '4/8']);

    const forward = result.rollForward;
    assert.ok(forward, 'a roll-forward plan is offered');
    assert.equal(forward.to, 'v3');
    assert.deepEqual(forward.detail.hosts, ['web-1']);
    assert.equal(forward.detail.kind, 'roll-forward');
    const again = await executeKamalRollback(forward, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(again.ok, true, again.message);
    assert.deepEqual(fakes.get('web-1').running(), ['chat-web-v3']);
    assert.equal(fakes.get('web-1').lock, undefined);
  });

  it('stops the step in flight on cancel, puts the renamed container back, reads the host back and starts nothing else', async () => {
    const { config, fakes } = fleet(['web-1', 'web-2', 'web-3'], { boot: { limit: 1 } });
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    const controller = new AbortController();
    fakes.get('web-1').beforeExec = (command) => {
      if (command.startsWith('docker run')) controller.abort();
    };
    const reporter = new RecordingReporter();
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter, runHooks: false, signal: controller.signal });
    assert.equal(result.ok, false);
    const web1 = fakes.get('web-1');
    assert.deepEqual(web1.running(), ['chat-web-v3'], 'the old version keeps serving');
    assert.ok(web1.containers.some((container) => container.name === 'chat-web-v2' && container.state === 'exited'), 'v2 has its name back, so a re-run finds it');
    assert.ok(!web1.containers.some((container) => container.name.includes('_replaced_')));
    assert.ok(!web1.commands.some((command) => command.startsWith('docker exec kamal-proxy kamal-proxy deploy')), 'no step after the cancel');
    assert.deepEqual(runCommands(fakes, 'web-2'), []);
    assert.equal(fakes.get('web-2').exchanges.length, 2, 'the pre-flight, then the checks again with mkdir -p .kamal');
    assert.deepEqual(result.hosts.map((entry) => entry.result), ['cancelled', 'cancelled', 'cancelled']);
    assert.deepEqual(result.hosts.map((entry) => entry.serving), ['v3', 'v3', 'v3']);
    assert.match(result.message, /did not complete: cancelled\. Now serving: v3 on web-1 \(web\), web-2 \(web\), web-3 \(web\)/);
    assert.match(reporter.text('warn'), /Cancelling: closing the commands in flight/);
    assert.equal(web1.lock, undefined);
    assert.equal(result.rollForward, undefined, 'every host is on one version: nothing to restore');
    assert.match(result.lines[0], /^HOST\s+ROLE\s+FROM\s+TO\s+NOW\s+OUTCOME$/);
  });

  it('on cancel after a host switched, reports it on the new version and offers to restore one version everywhere', async () => {
    const { config, fakes } = fleet(['web-1', 'web-2'], { boot: { limit: 1 } });
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    const controller = new AbortController();
    fakes.get('web-1').beforeExec = (command) => {
      if (command.includes('xargs docker stop')) controller.abort();
    };
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false, signal: controller.signal });
    assert.equal(result.ok, false);
    assert.deepEqual(result.hosts.map((entry) => [entry.host, entry.serving]), [['web-1', 'v2'], ['web-2', 'v3']]);
    assert.match(result.hosts[0].note ?? '', /v3 also running/);
    assert.deepEqual(result.rollForward?.detail.hosts, ['web-1']);
    assert.equal(result.rollForward?.to, 'v3');
    assert.equal(fakes.get('web-1').lock, undefined);
  });

  describe('a same-version re-run (to v3, which runs) cancelled', () => {
    it('while stopping the old copy: names both copies of v3 running on that host, in the table and the message', async () => {
      const { config, fakes } = fleet(['web-1', 'web-2'], { boot: { limit: 1 } });
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v3', performer: 'ada' });
      const controller = new AbortController();
      fakes.get('web-1').beforeExec = (command) => {
        if (command.includes('xargs docker stop')) controller.abort();
      };
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false, signal: controller.signal });
      assert.equal(result.ok, false);
      const web1 = fakes.get('web-1');
      const copy = web1.running().find((name) => /^chat-web-v3_replaced_[0-9a-f]{16}$/.test(name));
      assert.ok(copy, web1.running().join(', '));
      assert.deepEqual(web1.running().sort(), ['chat-web-v3', copy].sort(), 'two copies of v3 run there');
      assert.deepEqual(fakes.get('web-2').running(), ['chat-web-v3']);
      assert.deepEqual(result.hosts[0].alsoRunning, [`another copy of v3 (${copy})`]);
      assert.equal(result.hosts[1].alsoRunning, undefined);
      assert.match(result.lines[1], new RegExp(`^web-1 +web +v3 +v3 +v3 +rolled-back: cancelled after the switch, before the old version was stopped \\(another copy of v3 \\(${copy}\\) also running\\)$`));
      assert.match(result.message, new RegExp(`did not complete: cancelled\\. Now serving: v3 on web-1 \\(web\\), web-2 \\(web\\)\\. Also running: another copy of v3 \\(${copy}\\) on web-1 \\(web\\)\\.$`));
      assert.equal(web1.lock, undefined);
    });

    it('as the switch went out (done on the host, its answer lost): says it switched, not only "cancelled while in flight", and names the copies', async () => {
      const { config, fakes } = fleet(['web-1']);
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v3', performer: 'ada' });
      const controller = new AbortController();
      const web1 = fakes.get('web-1');
      web1.beforeExec = (command, host) => {
        if (!command.includes('kamal-proxy deploy')) return;
        // The host carries out the switch; the cancel closes the channel before its answer comes.
        host.beforeExec = undefined;
        (host as unknown as { run(command: string): unknown }).run(command);
        controller.abort();
      };
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false, signal: controller.signal });
      assert.equal(result.ok, false);
      assert.equal(web1.running().length, 2, web1.running().join(', '));
      assert.equal(result.hosts[0].result, 'rolled-back');
      assert.equal(result.hosts[0].message, 'cancelled after the switch, before the old version was stopped');
      assert.equal(result.hosts[0].serving, 'v3');
      assert.match(result.hosts[0].alsoRunning?.[0] ?? '', /^another copy of v3 \(chat-web-v3_replaced_[0-9a-f]{16}\)$/);
      assert.doesNotMatch(result.lines.join('\n'), /in flight/);
      assert.match(result.message, /Also running: another copy of v3 \(chat-web-v3_replaced_[0-9a-f]{16}\) on web-1 \(web\)\.$/);
    });
  });

  it('changes nothing when cancelled before it starts', async () => {
    const { config, fakes } = fleet(['web-1', 'web-2']);
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    const controller = new AbortController();
    controller.abort();
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false, signal: controller.signal });
    assert.equal(result.ok, false);
    assert.match(result.message, /cancelled before any host was changed/);
    assert.deepEqual(result.hosts.map((entry) => entry.result), ['cancelled', 'cancelled']);
    assert.deepEqual(runCommands(fakes, 'web-1'), []);
    assert.deepEqual(runCommands(fakes, 'web-2'), []);
  });

  it('reports a host whose link drops mid-rollback, releases the lock and offers a roll-forward', async () => {
    const { config, fakes } = fleet(['web-1', 'web-2', 'web-3']);
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    fakes.get('web-3').beforeExec = (command, host) => {
      if (command.startsWith('docker exec kamal-proxy')) host.down = true;
    };
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(result.ok, false);
    const web3 = result.hosts.find((entry) => entry.host === 'web-3');
    assert.equal(web3?.result, 'unreachable');
    assert.equal(web3?.serving, undefined);
    assert.match(result.message, /web-3 stopped answering: kamal-proxy deploy, then stop v3: connect ECONNREFUSED/);
    assert.equal(fakes.get('web-1').lock, undefined);
    assert.deepEqual(fakes.get('web-1').tags, []);
    assert.deepEqual(result.rollForward?.detail.hosts, ['web-1', 'web-2']);
  });

  it('changes nothing when someone took the lock after planning, and leaves their lock alone', async () => {
    const { config, fakes } = fleet(['web-1', 'web-2']);
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    fakes.get('web-1').lock = 'Locked by: Grace at 2026-11-23T08:00:00Z\nVersion: v4\nMessage: deploying';
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(result.ok, false);
    assert.match(result.message, /the deploy lock on web-1 is held by Grace since 2026-11-23T08:00:00Z for version v4: "deploying"/);
    assert.match(fakes.get('web-1').lock ?? '', /Grace/);
    assert.ok(!fakes.allCommands().some((command) => command.startsWith('docker ') || command.startsWith('rm ')));
    assert.equal(result.rollForward, undefined);
  });

  it('names an empty lock left by a failed acquisition as such, with the release advice, and changes nothing', async () => {
    const { config, fakes } = fleet(['web-1']);
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    fakes.get('web-1').lock = '';
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(result.ok, false);
    assert.match(result.message, /the deploy lock on web-1 is present but its details are empty or unreadable.*`kamal lock release` cannot remove a lock without details .*If no deploy is running, remove it with `deploy-rollback release-lock --kamal \S+deploy\.yml` .*or `rm -r \.kamal\/lock-chat` on web-1/);
    assert.equal(fakes.get('web-1').lock, '', 'a lock we did not take is left alone');
    assert.ok(!fakes.allCommands().some((command) => command.startsWith('docker ') || command.startsWith('rm ')));
  });

  it('masks secret-looking env values in the plan, the dry run and the verbose log, but passes them to docker', async () => {
    const config = kamalConfig({ roles: [role('web', ['web-1'], { env: { clear: { STRIPE_API_KEY: 'sk_live_abc', DB_PASSWORD: 'hunter2', GREETING: 'hello' }, secret: [] } })] });
    const fakes = new FakeHosts(['web-1']);
    fakes.get('web-1').seed('web', ['v1', 'v2', 'v3'], 'v3');
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    const shown = [...plan.lines, ...(plan.overview ?? [])].join('\n');
    assert.doesNotMatch(shown, /sk_live_abc|hunter2/);
    assert.match(shown, /STRIPE_API_KEY=\[REDACTED\]/);
    assert.match(shown, /GREETING="hello"/, 'non-secret values stay visible');
    const reporter = new RecordingReporter();
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter, runHooks: false });
    assert.equal(result.ok, true, result.message);
    assert.doesNotMatch(reporter.text(), /sk_live_abc|hunter2/);
    assert.ok(fakes.get('web-1').commands.some((command) => command.includes('--env STRIPE_API_KEY="sk_live_abc"')), 'docker gets the real value');
  });

  it('escapes control characters in what a host printed before showing it', async () => {
    const { config, fakes } = fleet(['web-1']);
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    fakes.get('web-1').lock = 'Locked by: \u001b]0;owned\u0007eve at 2026-11-23T08:00:00Z\nVersion: v4\nMessage: \r\u001b[32mAll good';
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.ok(![...result.message].some(isControl), result.message);
    assert.match(result.message, /held by \\e\]0;owned\\x07eve/);
  });

  it('releases the lock when docker run fails', async () => {
    const { config, fakes } = fleet(['web-1']);
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    fakes.get('web-1').beforeExec = (command, host) => {
      // A container appeared under the name after the rename: docker run conflicts.
      if (command.startsWith('docker run')) host.containers.push({ id: 'f'.repeat(64), name: 'chat-web-v2', state: 'exited', created: 1, image: 'x' });
    };
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(result.ok, false);
    assert.match(result.message, /docker run chat-web-v2 failed on web-1 \(exit 125\): docker: Error response from daemon: Conflict/);
    assert.equal(fakes.get('web-1').lock, undefined);
    assert.deepEqual(fakes.get('web-1').running(), ['chat-web-v3']);
  });

  it('says how to release the lock by hand when the primary host is gone at the end', async () => {
    const { config, fakes } = fleet(['web-1', 'web-2']);
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    fakes.get('web-1').beforeExec = (command, host) => {
      if (command.includes('docker tag')) host.down = true;
    };
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(result.ok, false);
    assert.match(result.message, /Could not release the deploy lock on web-1 .*run `kamal lock release` once the host answers/);
  });

  it('polls health for a role without kamal-proxy', async () => {
    const config = kamalConfig({ roles: [role('web', ['web-1']), role('jobs', ['job-1'], { cmd: 'bin/jobs' })] });
    const fakes = new FakeHosts(['web-1', 'job-1']);
    fakes.get('web-1').seed('web', ['v1', 'v2'], 'v2');
    fakes.get('job-1').seed('jobs', ['v1', 'v2'], 'v2');
    fakes.get('job-1').unhealthy.add('v1');
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false, healthPollMs: 1 });
    assert.equal(result.ok, false);
    assert.ok(runCommands(fakes, 'job-1').some((command) => command.includes('xargs docker inspect --format')));
    assert.ok(!runCommands(fakes, 'job-1').some((command) => command.includes('kamal-proxy')));
    assert.match(result.message, /chat-jobs-v1 on job-1 did not become healthy within 10s \(last status: unhealthy\)/);
    assert.deepEqual(fakes.get('job-1').running(), ['chat-jobs-v2']);
  });

  it('boots other roles only after the first primary-role container is healthy', async () => {
    const config = kamalConfig({ roles: [role('web', ['web-1']), role('jobs', ['job-1'], { cmd: 'bin/jobs' })] });
    const fakes = new FakeHosts(['web-1', 'job-1']);
    fakes.get('web-1').seed('web', ['v1', 'v2'], 'v2');
    fakes.get('job-1').seed('jobs', ['v1', 'v2'], 'v2');
    const order: string[] = [];
    fakes.get('web-1').beforeExec = (command) => command.startsWith('docker exec kamal-proxy') && order.push('web proxy deploy');
    fakes.get('job-1').beforeExec = (command) => command.startsWith('docker run') && order.push('jobs run');
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false, healthPollMs: 1 });
    assert.equal(result.ok, true, result.message);
    assert.deepEqual(order, ['web proxy deploy', 'jobs run']);
  });

  it('does not boot other roles when the first primary-role container fails', async () => {
    const config = kamalConfig({ roles: [role('web', ['web-1']), role('jobs', ['job-1'], { cmd: 'bin/jobs' })] });
    const fakes = new FakeHosts(['web-1', 'job-1']);
    fakes.get('web-1').seed('web', ['v1', 'v2'], 'v2');
    fakes.get('job-1').seed('jobs', ['v1', 'v2'], 'v2');
    fakes.get('web-1').unhealthy.add('v1');
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false, healthPollMs: 1 });
    assert.equal(result.ok, false);
    assert.ok(!runCommands(fakes, 'job-1').some((command) => command.startsWith('docker run')), 'jobs never started v1');
    assert.deepEqual(fakes.get('job-1').running(), ['chat-jobs-v2']);
    const jobs = result.hosts.find((entry) => entry.role === 'jobs');
    assert.equal(jobs?.result, 'failed');
    assert.equal(jobs?.serving, 'v2');
    assert.match(jobs?.message ?? '', /not booted: the first web container of v1 failed its health check/);
  });

  it('rolls forward only the roles that were switched', async () => {
    const config = kamalConfig({ roles: [role('web', ['web-1']), role('jobs', ['web-1'], { cmd: 'bin/jobs' })] });
    const fakes = new FakeHosts(['web-1']);
    fakes.get('web-1').seed('web', ['v1', 'v2'], 'v2').seed('jobs', ['v1', 'v2'], 'v2');
    fakes.get('web-1').unhealthy.add('v1');
    // Only the jobs container of v1 is unhealthy: web switches through the proxy first.
    fakes.get('web-1').beforeExec = (command, host) => {
      if (command.startsWith('docker exec kamal-proxy')) host.unhealthy.delete('v1');
      if (command.includes('Booted app version v1') && command.includes('web')) host.unhealthy.add('v1');
    };
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false, healthPollMs: 1 });
    assert.equal(result.ok, false);
    assert.deepEqual(result.hosts.map((entry) => [entry.role, entry.result]), [['web', 'rolled-back'], ['jobs', 'failed']]);
    const steps = result.rollForward?.detail.hostPlans.flatMap((host) => host.steps.map((step) => [step.role, step.to]));
    assert.deepEqual(steps, [['web', 'v2']]);
    assert.equal(result.rollForward?.detail.hostPlans[0].tagLatest, 'docker tag localhost:5555/bars/app:v2 localhost:5555/bars/app:latest');
  });

  describe('hooks', () => {
    it('run in Kamal\'s order with KAMAL_* details (KAMAL_ROLES left out, as Kamal does without --roles)', async () => {
      const log = join(tmpdir(), `kamal-hooks-log-${process.pid}-${Date.now()}`);
      // cli/base.rb run_hook: `roles: KAMAL.specific_roles&.join(",")` then `.compact`, so no --roles means no KAMAL_ROLES at all.
      const record = `echo "$(basename "$0") $KAMAL_COMMAND $KAMAL_SERVICE_VERSION $KAMAL_VERSION hosts=$KAMAL_HOSTS roles=\${KAMAL_ROLES-unset} lock=$KAMAL_LOCK by=$KAMAL_PERFORMER" >> ${log}`;
      const dir = await writeHooks({ 'pre-connect': record, 'pre-deploy': record, 'pre-app-boot': record, 'post-app-boot': record, 'post-deploy': record });
      const { config, fakes } = fleet(['web-1', 'web-2'], { hooksPath: dir, file: join(dir, '..', '..', 'config', 'deploy.yml'), boot: { limit: 1 } });
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: true });
      assert.equal(result.ok, true, result.message);
      const lines = (await readFile(log, 'utf8')).trim().split('\n');
      await rm(log, { force: true });
      assert.deepEqual(lines, [
        'pre-connect rollback chat@v2 v2 hosts=web-1,web-2 roles=unset lock=false by=ada',
        'pre-deploy rollback chat@v2 v2 hosts=web-1,web-2 roles=unset lock=true by=ada',
        'pre-app-boot rollback chat@v2 v2 hosts=web-1 roles=unset lock=true by=ada',
        'post-app-boot rollback chat@v2 v2 hosts=web-1 roles=unset lock=true by=ada',
        'pre-app-boot rollback chat@v2 v2 hosts=web-2 roles=unset lock=true by=ada',
        'post-app-boot rollback chat@v2 v2 hosts=web-2 roles=unset lock=true by=ada',
        'post-deploy rollback chat@v2 v2 hosts=web-1,web-2 roles=unset lock=false by=ada',
      ]);
    });

    it('sets KAMAL_ROLES only for a run that covers some of the roles, as Kamal with --roles', () => {
      const details = { recordedAt: 'T', performer: 'ada', service: 'chat', version: 'v2', hosts: ['web-1'], lock: true, command: 'rollback' };
      assert.equal('KAMAL_ROLES' in hookEnvironment(details), false);
      assert.equal(hookEnvironment({ ...details, roles: ['web'] }).KAMAL_ROLES, 'web');
    });

    it('a failing hook aborts with its output and releases the lock', async () => {
      const dir = await writeHooks({ 'pre-deploy': 'echo "pending migrations: 20261122_add_index" >&2\nexit 3' });
      const { config, fakes } = fleet(['web-1', 'web-2'], { hooksPath: dir, file: join(dir, '..', '..', 'config', 'deploy.yml') });
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: true });
      assert.equal(result.ok, false);
      assert.match(result.message, /The pre-deploy hook \(.*pre-deploy\) exited with 3, so the rollback stopped\.\npending migrations: 20261122_add_index/);
      assert.ok(fakes.get('web-1').commands.includes('rm .kamal/lock-chat/details && rm -r .kamal/lock-chat'));
      assert.equal(fakes.get('web-1').lock, undefined);
      assert.ok(!fakes.allCommands().some((command) => command.startsWith('docker ')), 'no container was touched');
    });

    it('are skipped when runHooks is false', async () => {
      const dir = await writeHooks({ 'pre-deploy': 'exit 1' });
      const { config, fakes } = fleet(['web-1'], { hooksPath: dir });
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(result.ok, true, result.message);
    });
  });
});
