/**
 * Kamal's scoping options on real hosts through the CLI bundle (issue 25): `-r web` leaves the
 * workers on their version, `-h` one host then a plain run converges, `--lock-wait` waits for a
 * lock released meanwhile, gives up at its timeout and stops at a signal, `-H` runs no hook.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestHost } from '../hosts/harness';
import type { CliResult } from './cli-bundle';
import { useKamalCli, writeDeployYml } from './kamal-project';

const SERVICE = 'scopesvc';

describe('deploy-rollback CLI: Kamal --roles, --hosts, --lock-wait, --skip-hooks on real hosts', function () {
  this.timeout(120_000);
  let first: TestHost;
  let second: TestHost;
  let hookLog: string;

  const kamal = useKamalCli({
    prefix: 'drb-cli-scope-',
    hosts: { count: 2, service: SERVICE, images: [{ version: 'v1' }, { version: 'v2' }, { version: 'v3' }] },
    async setup({ hosts, dir, project }) {
      [first, second] = hosts.hosts as [TestHost, TestHost];
      await hosts.seedKamalState({ service: SERVICE, role: 'web', versions: ['v1', 'v2', 'v3'], running: 'v3' });
      await hosts.seedKamalState({ service: SERVICE, role: 'workers', versions: ['v1', 'v2', 'v3'], running: 'v3', proxy: false, hosts: [second] });
      await writeDeployYml(project, hosts, {
        service: SERVICE,
        servers: ['  web:', ...hosts.hosts.map((host) => `    - ${host.address}`), '  workers:', '    hosts:', `      - ${second.address}`],
        beforeSsh: ['deploy_timeout: 10', 'readiness_delay: 1'],
        sshFromHome: true,
      });
      // A pre-deploy hook that records what Kamal tells hooks: the hosts and roles of the run.
      hookLog = path.join(dir, 'hook.log');
      fs.mkdirSync(path.join(project, '.kamal', 'hooks'), { recursive: true });
      fs.writeFileSync(path.join(project, '.kamal', 'hooks', 'pre-deploy'), `#!/bin/sh\necho "$KAMAL_VERSION hosts=$KAMAL_HOSTS roles=\${KAMAL_ROLES-unset}" >> ${hookLog}\n`, { mode: 0o755 });
    },
  });
  const cli = (args: string[]) => kamal.cli(['rollback', '--kamal', '.', ...args]);

  /** The running app containers of `role` on `host`. */
  async function running(host: TestHost, role: string): Promise<string[]> {
    const result = await kamal.hosts.docker(host, ['ps', '--filter', `label=service=${SERVICE}`, '--filter', `label=role=${role}`, '--format', '{{.Names}}']);
    return result.stdout.split('\n').filter((line) => line !== '' && !line.includes('_replaced_')).sort();
  }

  function hookRuns(): string[] {
    return fs.existsSync(hookLog) ? fs.readFileSync(hookLog, 'utf8').trim().split('\n') : [];
  }

  const lockDir = (host: TestHost) => path.join(host.home, '.kamal', `lock-${SERVICE}`);

  /** Someone else's deploy lock on `host`, as `kamal deploy` leaves it. */
  function takeForeignLock(host: TestHost): void {
    fs.mkdirSync(lockDir(host), { recursive: true });
    const details = `Locked by: Grace Hopper at 2026-12-03T09:00:00Z\nVersion: v9\nMessage: Automatic deploy lock`;
    fs.writeFileSync(path.join(lockDir(host), 'details'), `${Buffer.from(details).toString('base64')}\n`);
  }

  it('-r web rolls the web role back and leaves the worker on its version; --json says which were left', async () => {
    const { code, stdout, stderr } = await cli(['-r', 'web', '--to', 'v2', '--yes', '--json']);
    assert.equal(code, 0, stderr);
    for (const host of kamal.hosts.hosts) assert.equal(await kamal.hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v2`);
    assert.deepEqual(await running(second, 'workers'), [`${SERVICE}-workers-v3`]);
    const json = JSON.parse(stdout) as { plan: { scope: { hosts: string[]; roles: string[]; left: { host: string; role: string }[]; leftRoles: string[] } }; outcome: { lines: string[] } };
    assert.deepEqual(json.plan.scope.roles, ['web']);
    assert.deepEqual(json.plan.scope.hosts, [first.address, second.address]);
    assert.deepEqual(json.plan.scope.left, [{ host: second.address, role: 'workers' }]);
    assert.ok(json.outcome.lines.includes(`Left as they were (outside --roles web): ${second.address} (workers)`), json.outcome.lines.join('\n'));
    assert.deepEqual(hookRuns(), [`v2 hosts=${first.address},${second.address} roles=web`]);
  });

  it('-h one host rolls only it back (its roles, the lock there); a plain run after it converges every host and role', async () => {
    const narrowed = await cli(['-h', first.address, '--to', 'v1', '--yes']);
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.equal(await kamal.hosts.proxyTargetContainer(first, `${SERVICE}-web`), `${SERVICE}-web-v1`);
    assert.equal(await kamal.hosts.proxyTargetContainer(second, `${SERVICE}-web`), `${SERVICE}-web-v2`);
    assert.deepEqual(await running(second, 'workers'), [`${SERVICE}-workers-v3`]);
    assert.match(narrowed.stdout, new RegExp(`Left as they are: ${second.address.replace(/\./g, '\\.')} \\(web, workers\\)\\.`));
    // The listing says where each version runs now: v1 on the primary host alone; no host runs v2 on all its roles.
    const listed = await kamal.cli(['releases', '--kamal', '.']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^v1\t.*\(current on 1\/2 hosts\b/m);
    const listedJson = await kamal.cli(['releases', '--kamal', '.', '--json']);
    const versions = JSON.parse(listedJson.stdout) as { version: string; runningOn: unknown }[];
    assert.deepEqual(versions.find((entry) => entry.version === 'v1')?.runningOn, { hosts: [first.address], otherHosts: [second.address], total: 2 });
    assert.equal(versions.find((entry) => entry.version === 'v2')?.runningOn, null);

    const whole = await cli(['--to', 'v1', '--yes']);
    assert.equal(whole.code, 0, whole.stderr);
    for (const host of kamal.hosts.hosts) assert.equal(await kamal.hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v1`);
    assert.deepEqual(await running(first, 'web'), [`${SERVICE}-web-v1`]);
    assert.deepEqual(await running(second, 'web'), [`${SERVICE}-web-v1`]);
    assert.deepEqual(await running(second, 'workers'), [`${SERVICE}-workers-v1`]);
    assert.deepEqual(hookRuns().slice(1), [`v1 hosts=${first.address} roles=unset`, `v1 hosts=${first.address},${second.address} roles=unset`]);
  });

  it('--lock-wait waits for a lock that is released during the wait, then rolls back', async () => {
    takeForeignLock(first);
    const child = spawn(process.execPath, [kamal.bundle, 'rollback', '--kamal', '.', '--to', 'v2', '--yes', '--lock-wait', '--lock-wait-timeout', '30', '--lock-wait-interval', '1'], {
      cwd: kamal.project,
      env: { ...process.env, HOME: kamal.home, SSH_AUTH_SOCK: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    let released = false;
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      // Released by its holder once this run says it waits (once: the lock taken next is this run's).
      if (!released && stderr.includes('waiting for it')) {
        released = true;
        fs.rmSync(lockDir(first), { recursive: true, force: true });
      }
    });
    const result = await new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
    assert.ok(released, 'the run waited');
    assert.match(result.stderr, /the deploy lock is held by Grace Hopper since 2026-12-03T09:00:00Z for version v9: "Automatic deploy lock": waiting for it, checking again in 1 s/);
    assert.equal(result.code, 0, result.stderr);
    for (const host of kamal.hosts.hosts) assert.equal(await kamal.hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v2`);
    assert.equal(fs.existsSync(lockDir(first)), false, 'this run released its own lock');
  });

  it('--lock-wait gives up at its timeout with a clear message and changes nothing', async () => {
    takeForeignLock(first);
    try {
      const startedAt = Date.now();
      const { code, stderr } = await cli(['--to', 'v1', '--yes', '--lock-wait', '--lock-wait-timeout', '2', '--lock-wait-interval', '1']);
      assert.equal(code, 1);
      assert.ok(Date.now() - startedAt < 15_000);
      assert.match(stderr, new RegExp(`Gave up waiting for the deploy lock on ${first.address.replace(/\./g, '\\.')} after \\d+ s \\(lock wait timeout 2 s\\), nothing was changed: it is still held by Grace Hopper`));
      assert.equal(await kamal.hosts.proxyTargetContainer(first, `${SERVICE}-web`), `${SERVICE}-web-v2`);
      assert.match(Buffer.from(fs.readFileSync(path.join(lockDir(first), 'details'), 'utf8'), 'base64').toString('utf8'), /^Locked by: Grace Hopper/);
    } finally {
      fs.rmSync(lockDir(first), { recursive: true, force: true });
    }
  });

  it('SIGINT during --lock-wait stops the wait at once: exit 130, nothing changed, the other lock left alone', async () => {
    takeForeignLock(first);
    try {
      const child = spawn(process.execPath, [kamal.bundle, 'rollback', '--kamal', '.', '--to', 'v1', '--yes', '--lock-wait', '--lock-wait-interval', '60'], {
        cwd: kamal.project,
        env: { ...process.env, HOME: kamal.home, SSH_AUTH_SOCK: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      let interruptedAt = 0;
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
        if (!interruptedAt && stderr.includes('waiting for it')) {
          interruptedAt = Date.now();
          child.kill('SIGINT');
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.ok(interruptedAt > 0, stderr);
      assert.equal(code, 130, stderr);
      assert.ok(Date.now() - interruptedAt < 5000, 'the 60 s wait did not hold the exit');
      assert.match(stderr, /Interrupted \(SIGINT\) while checking the hosts: nothing was changed/);
      assert.equal(await kamal.hosts.proxyTargetContainer(first, `${SERVICE}-web`), `${SERVICE}-web-v2`);
      assert.match(Buffer.from(fs.readFileSync(path.join(lockDir(first), 'details'), 'utf8'), 'base64').toString('utf8'), /^Locked by: Grace Hopper/);
    } finally {
      fs.rmSync(lockDir(first), { recursive: true, force: true });
    }
  });

  it('-H runs no hook', async () => {
    const before = hookRuns();
    assert.ok(before.length > 0, 'the hook ran on the runs without -H');
    const { code, stdout, stderr } = await cli(['-H', '-r', 'workers', '--to', 'v2', '--yes']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Hooks skipped \(--skip-hooks\)/);
    assert.deepEqual(await running(second, 'workers'), [`${SERVICE}-workers-v2`]);
    assert.deepEqual(hookRuns(), before);
  });
});
