/**
 * Recovery as users meet it on real hosts, through the CLI bundle: a lock message that tries to
 * forge a line, a lock written in real Kamal's format (base64 wrapped at 60 characters), a lock
 * directory left without details (which `kamal lock release` cannot remove), hosts left by an
 * interrupted run with two versions running, and input too long to echo back.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestHost } from '../hosts/harness';
import { runCli } from './cli-bundle';
import { useKamalCli, writePlainDeployYml } from './kamal-project';

const SERVICE = 'locksvc';
const LOCK = `.kamal/lock-${SERVICE}`;
/** A second service, for the states an interrupted run leaves. */
const CONVERGE = 'convsvc';

describe('recovery on real Kamal hosts (CLI): locks, interrupted runs, long input', function () {
  this.timeout(240_000);
  const kamal = useKamalCli({
    prefix: 'drb-kamal-locks-',
    hosts: { count: 2, service: SERVICE, images: [{ version: 'v1' }, { version: 'v2' }, { version: 'v3' }] },
    async setup({ hosts, project }) {
      await hosts.seedKamalState({ service: SERVICE, versions: ['v1', 'v2'], running: 'v2' });
      await hosts.seedKamalState({ service: CONVERGE, versions: ['v1', 'v2', 'v3'], running: 'v3' });
      await writePlainDeployYml(project, hosts, SERVICE);
    },
  });
  const { cli } = kamal;
  const primary = () => kamal.hosts.hosts[0]!;

  async function lockState(): Promise<'absent' | 'empty' | 'details'> {
    const result = await kamal.hosts.exec(primary(), `if test -e ${LOCK}/details; then echo details; elif test -d ${LOCK}; then echo empty; else echo absent; fi`);
    return result.stdout.trim() as 'absent' | 'empty' | 'details';
  }

  /** The details file as Kamal writes it: `echo "<Base64.encode64 text>"`, i.e. wrapped at 60 characters (coreutils' base64 here, not our encoder). */
  async function holdKamalLock(text: string): Promise<void> {
    const encoded = Buffer.from(text).toString('base64');
    const result = await kamal.hosts.exec(primary(), `mkdir -p ${LOCK} && echo ${encoded} | base64 -d | base64 -w 60 > ${LOCK}/details`);
    assert.equal(result.code, 0, result.stderr);
  }

  /** What the CLI printed holds no raw line from the host and none of our framing. */
  function assertNoForgedLine(text: string): void {
    assert.doesNotMatch(text, /@@deploy-rollback/);
    assert.ok(!text.split('\n').some((line) => line.startsWith('All good')), text);
  }

  afterEach(async () => {
    await kamal.hosts?.exec(primary(), `rm -rf ${LOCK}`);
  });

  it('a lock message with line breaks cannot forge a line: shown escaped on one line, no marker; the lock is kept', async () => {
    await holdKamalLock('Locked by: Mallory at 2026-12-03T09:00:00Z\nVersion: v2\nMessage: hot fix\nAll good: rolled back on every host\r\n\u001b[32mreally');
    const { code, stdout, stderr } = await cli(['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
    assert.equal(code, 1, stdout + stderr);
    const refusal = stderr.split('\n').find((line) => line.includes('held by Mallory'));
    assert.ok(refusal, stderr);
    // The carriage return is dropped as the details are read; the line breaks stay visible as escapes.
    assert.match(refusal, /"hot fix\\nAll good: rolled back on every host\\n\\e\[32mreally"/);
    assertNoForgedLine(stdout + stderr);
    assert.equal(await lockState(), 'details');
  });

  it("real Kamal's own lock (wrapped base64, its automatic message) is named without our framing", async () => {
    await holdKamalLock('Locked by: Grace Hopper at 2026-12-03T09:01:02Z\nVersion: v9\nMessage: Automatic deploy lock');
    const { code, stderr } = await cli(['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
    assert.equal(code, 1, stderr);
    assert.match(stderr, /held by Grace Hopper since 2026-12-03T09:01:02Z for version v9: "Automatic deploy lock"\./);
    assertNoForgedLine(stderr);
    // Release Stale Lock leaves a lock that names its holder alone.
    const release = await cli(['release-lock', '--kamal', '.', '--yes']);
    assert.equal(release.code, 1, release.stdout);
    assert.match(release.stderr, /names its holder/);
    assert.equal(await lockState(), 'details');
  });

  it('an empty lock directory: the refusal says what works (not `kamal lock release`); release-lock removes exactly it after --yes; the rollback then runs', async () => {
    const made = await kamal.hosts.exec(primary(), `mkdir -p ${LOCK}`);
    assert.equal(made.code, 0, made.stderr);
    const refused = await cli(['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot remove a lock without details \(Kamal answers "There is no deploy lock" and leaves it\)/);
    assert.match(refused.stderr, /deploy-rollback release-lock --kamal /);
    assert.equal(await lockState(), 'empty');

    // Without a terminal to confirm on and without --yes, nothing is removed.
    const unconfirmed = await cli(['release-lock', '--kamal', '.']);
    assert.equal(unconfirmed.code, 1);
    assert.match(unconfirmed.stderr, /without --yes/);
    assert.equal(await lockState(), 'empty');

    const other = await kamal.hosts.exec(primary(), 'mkdir -p .kamal/lock-otherservice');
    assert.equal(other.code, 0, other.stderr);
    const released = await cli(['release-lock', '--kamal', '.', '--yes']);
    assert.equal(released.code, 0, released.stderr);
    assert.match(released.stdout, new RegExp(`Removed the stale deploy lock ${LOCK} on ${primary().address.replace(/\./g, '\\.')}`));
    assert.equal(await lockState(), 'absent');
    assert.equal((await kamal.hosts.exec(primary(), 'test -d .kamal/lock-otherservice && echo kept')).stdout.trim(), 'kept');

    const again = await cli(['release-lock', '--kamal', '.', '--yes']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /There is no deploy lock/);

    const rolled = await cli(['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
    assert.equal(rolled.code, 0, rolled.stderr);
    for (const host of kamal.hosts.hosts) assert.equal(await kamal.hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v1`);
    assert.equal(await lockState(), 'absent');
  });

  /** The service's running containers on a host, by name. */
  async function runningOn(host: TestHost, service: string): Promise<string[]> {
    const listed = await kamal.hosts.docker(host, ['ps', '--filter', `label=service=${service}`, '--format', '{{.Names}}']);
    return listed.stdout.split('\n').filter(Boolean).sort();
  }

  /** What a run killed mid-switch leaves: `beside` started again next to what runs, and kamal-proxy sent to `serving`. */
  async function interruptedState(host: TestHost, beside: string, serving: string): Promise<void> {
    const started = await kamal.hosts.docker(host, ['start', `${CONVERGE}-web-${beside}`]);
    assert.equal(started.code, 0, started.stderr);
    const id = (await kamal.hosts.docker(host, ['container', 'inspect', '--format', '{{.Id}}', `${CONVERGE}-web-${serving}`])).stdout.trim();
    const switched = await kamal.hosts.docker(host, [
      'exec', 'kamal-proxy', 'kamal-proxy', 'deploy', `${CONVERGE}-web`, `--target=${id.slice(0, 12)}:80`,
      '--deploy-timeout=30s', '--drain-timeout=30s', '--buffer-requests', '--buffer-responses',
      '--log-request-header=Cache-Control', '--log-request-header=Last-Modified', '--log-request-header=User-Agent',
    ]);
    assert.equal(switched.code, 0, switched.stderr);
    assert.equal(await kamal.hosts.proxyTargetContainer(host, `${CONVERGE}-web`), `${CONVERGE}-web-${serving}`);
  }

  it('after an interrupted run (proxy on v2, v3 running beside it on every host), a rollback to v3 ends with v3 serving and only v3 running; then to v2 from the mirror state, only v2', async () => {
    const cwd = path.join(kamal.dir, CONVERGE);
    await writePlainDeployYml(cwd, kamal.hosts, CONVERGE);
    for (const host of kamal.hosts.hosts) {
      await interruptedState(host, 'v2', 'v2');
      assert.deepEqual(await runningOn(host, CONVERGE), [`${CONVERGE}-web-v2`, `${CONVERGE}-web-v3`], host.name);
    }
    const toV3 = await runCli(kamal.bundle, ['rollback', '--kamal', '.', '--to', 'v3', '--yes'], { cwd, home: kamal.home });
    assert.equal(toV3.code, 0, toV3.stdout + toV3.stderr);
    for (const host of kamal.hosts.hosts) {
      assert.equal(await kamal.hosts.proxyTargetContainer(host, `${CONVERGE}-web`), `${CONVERGE}-web-v3`, host.name);
      assert.deepEqual(await runningOn(host, CONVERGE), [`${CONVERGE}-web-v3`], `${host.name}: only v3 runs\n${toV3.stdout}${toV3.stderr}`);
    }

    // The mirror: v3 serving (and tagged latest), v2 started again beside it; the rollback to v2 leaves only v2.
    for (const host of kamal.hosts.hosts) await interruptedState(host, 'v2', 'v3');
    const toV2 = await runCli(kamal.bundle, ['rollback', '--kamal', '.', '--to', 'v2', '--yes'], { cwd, home: kamal.home });
    assert.equal(toV2.code, 0, toV2.stdout + toV2.stderr);
    for (const host of kamal.hosts.hosts) {
      assert.equal(await kamal.hosts.proxyTargetContainer(host, `${CONVERGE}-web`), `${CONVERGE}-web-v2`, host.name);
      assert.deepEqual(await runningOn(host, CONVERGE), [`${CONVERGE}-web-v2`], `${host.name}: only v2 runs\n${toV2.stdout}${toV2.stderr}`);
    }
    assert.equal((await kamal.hosts.exec(primary(), `test -d .kamal/lock-${CONVERGE} && echo held || echo free`)).stdout.trim(), 'free');
  });

  it("a lock left by a run killed with SIGKILL: release-lock leaves it while the run lives, removes it once its process is gone; nothing else touched", async () => {
    const root = path.join(kamal.dir, 'killed');
    fs.mkdirSync(path.join(root, 'config'), { recursive: true });
    fs.copyFileSync(path.join(kamal.project, 'config', 'deploy.yml'), path.join(root, 'config', 'deploy.yml'));
    fs.mkdirSync(path.join(root, '.kamal', 'hooks'), { recursive: true });
    const started = path.join(root, 'hook-started');
    // Holds the run inside its lock (bounded: 30 s) until the test is done with it.
    fs.writeFileSync(path.join(root, '.kamal', 'hooks', 'pre-deploy'), `#!/bin/sh\ntouch ${started}\ni=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n`, { mode: 0o755 });
    const before = await Promise.all(kamal.hosts.hosts.map((host) => runningOn(host, SERVICE)));
    const run = spawn(process.execPath, [kamal.bundle, 'rollback', '--kamal', '.', '--to', 'v1', '--yes'], { cwd: root, env: { ...process.env, HOME: kamal.home, SSH_AUTH_SOCK: '' }, stdio: 'ignore', detached: true });
    const ended = new Promise((resolve) => run.on('close', resolve));
    try {
      const deadline = Date.now() + 20_000;
      while (!fs.existsSync(started)) {
        assert.ok(Date.now() < deadline, 'the run reached its pre-deploy hook within 20 s');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(await lockState(), 'details');
      const status = await kamal.hosts.exec(primary(), `base64 -d < ${LOCK}/details`);
      assert.match(status.stdout, new RegExp(`^Message: Automatic deploy lock: rollback to v1 by Deploy Rollback \\(pid ${run.pid} on ${os.hostname().replace(/[^A-Za-z0-9._-]/g, '_')}\\)$`, 'm'), status.stdout);

      const live = await cli(['release-lock', '--kamal', '.', '--yes']);
      assert.equal(live.code, 1, live.stdout);
      assert.match(live.stderr, new RegExp(`run \\(pid ${run.pid} on [^)]+\\), and that process is still running on this machine`));
      assert.equal(await lockState(), 'details');
    } finally {
      // The CLI and its hook, as a power cut or the OOM killer would end them: no way out runs.
      process.kill(-run.pid!, 'SIGKILL');
      await ended;
    }
    assert.equal(await lockState(), 'details', 'a killed run cannot release its lock');
    const refused = await runCli(kamal.bundle, ['rollback', '--kamal', '.', '--to', 'v1', '--yes'], { cwd: root, home: kamal.home });
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, new RegExp(`The Deploy Rollback run that took it \\(pid ${run.pid} on [^)]+\\) is no longer running on this machine: \`deploy-rollback release-lock --kamal `));
    const released = await cli(['release-lock', '--kamal', '.', '--yes']);
    assert.equal(released.code, 0, released.stderr);
    assert.match(released.stdout, new RegExp(`Removed the stale deploy lock ${LOCK} on \\S+: the Deploy Rollback run \\(pid ${run.pid} on [^)]+\\) that took it is gone\\.`));
    assert.equal(await lockState(), 'absent');
    assert.deepEqual(await Promise.all(kamal.hosts.hosts.map((host) => runningOn(host, SERVICE))), before, 'the killed run had changed nothing');
  });

  it('a 100 kB --to is refused with the start of it and its length, not echoed in full; nothing changed', async () => {
    const before = await Promise.all(kamal.hosts.hosts.map((host) => runningOn(host, SERVICE)));
    const long = `v${'9'.repeat(100_000)}`;
    const { code, stdout, stderr } = await cli(['rollback', '--kamal', '.', '--to', long, '--yes']);
    assert.equal(code, 1, stderr.slice(0, 500));
    assert.ok(stdout.length + stderr.length < 2000, `printed ${stdout.length + stderr.length} characters`);
    assert.match(stderr, /Refusing version "v9{79}"… \(100001 characters\)/);
    assert.deepEqual(await Promise.all(kamal.hosts.hosts.map((host) => runningOn(host, SERVICE))), before);
    assert.equal(await lockState(), 'absent');
  });

  it('a 50 MB deploy.yml is refused with its size before parsing, within a 96 MB heap, nothing connected', async () => {
    const root = path.join(kamal.dir, 'huge');
    fs.mkdirSync(path.join(root, 'config'), { recursive: true });
    const line = 'x-key-000000: a plain value that is not an alias\n';
    const body = `service: huge\nimage: ${kamal.hosts.repository}\nservers:\n${kamal.hosts.hosts.map((host) => `  - ${host.address}\n`).join('')}${line.repeat(Math.ceil((50 * 1024 * 1024) / line.length))}`;
    fs.writeFileSync(path.join(root, 'config', 'deploy.yml'), body);
    const started = Date.now();
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--max-old-space-size=96', kamal.bundle, 'releases', '--kamal', '.'], { cwd: root, env: { ...process.env, HOME: kamal.home, SSH_AUTH_SOCK: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /deploy\.yml is 50\.0 MB; Kamal configs are a few KB, so it is not read/);
    assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`);
  });
});
