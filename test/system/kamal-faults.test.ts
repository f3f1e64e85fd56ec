/**
 * Hosts that go silent (link down: packets dropped, no TCP reset) while Deploy Rollback talks to
 * them, on real hosts (test/hosts/harness.ts) through the real SSH pool with its default
 * keepalive (5 s, 3 misses). Each case bounds the time to a clear answer and asserts what the
 * user was told, the deploy lock and every host's state.
 * Run: npx mocha --config test/system/.mocharc.json test/system/kamal-faults.test.ts
 */
import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeployRollbackError, silentReporter } from '../../src/core/model';
import { loadKamalConfig } from '../../src/core/kamal/config/read';
import { readKamalInventory } from '../../src/core/kamal/hosts/inventory';
import { sshTargetFor } from '../../src/core/kamal/ssh-target';
import { executeKamalRollback, planKamalRollback } from '../../src/core/kamal/rollback';
import type { KamalConfig } from '../../src/core/kamal/config/types';
import type { InspectableSessionPool } from '../../src/core/ssh/pool';
import { requireHostsOrSkip, startHosts, type TestHost, type TestHosts } from '../hosts/harness';
import { realPool, sessionsFor, writeDeployYml } from './kamal-hosts';
import { run, runOk } from '../hosts/exec';

/** The bound: a clear answer within 20 s of the link going down (keepalive gives 15 s). */
const ANSWER_BOUND_MS = 20_000;
/**
 * The cases after the first two run the same code with a 2 s x 3 keepalive, bounded the same way
 * (6 s + the 5 s margin the default has): what they check is what happens once a silent host is
 * declared, not how long the default waits, and the suite is 1.5 minutes shorter.
 */
const QUICK_KEEPALIVE = { intervalMs: 2_000, misses: 3 };
const QUICK_BOUND_MS = 11_000;

async function writeConfig(root: string, hosts: TestHosts, service: string): Promise<KamalConfig> {
  const file = await writeDeployYml(path.join(root, service), hosts, { service, beforeSsh: ['deploy_timeout: 10'] });
  const config = await loadKamalConfig(file, undefined, {});
  assert.deepEqual(config.problems.filter((problem) => problem.severity === 'error'), []);
  return config;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value?: T; error?: unknown; ms: number }> {
  const started = Date.now();
  try {
    const value = await work();
    return { value, ms: Date.now() - started };
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('Kamal hosts that go silent (link down, no reset)', function () {
  this.timeout(240_000);
  let hosts: TestHosts;
  let root: string;
  let appHosts: TestHost[];
  const pools: InspectableSessionPool[] = [];

  before(async function () {
    requireHostsOrSkip(this);
    hosts = await startHosts({ count: 2, images: [{ version: 'v1' }, { version: 'v2' }] });
    appHosts = hosts.hosts;
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kamal-faults-'));
  });

  afterEach(async () => {
    for (const pool of pools.splice(0)) pool.dispose();
    if (hosts) for (const host of appHosts) await hosts.linkUp(host);
  });

  after(async () => {
    await hosts?.stop();
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  /** The pool as the extension and CLI make it: default keepalive (5 s x 3), connect timeout 10 s; or the quick keepalive. */
  function pool(keepalive?: typeof QUICK_KEEPALIVE): InspectableSessionPool {
    const created = realPool(hosts, undefined, keepalive);
    pools.push(created);
    return created;
  }

  async function lockExists(service: string): Promise<boolean> {
    return fs.stat(path.join(appHosts[0].home, '.kamal', `lock-${service}`)).then(
      () => true,
      () => false,
    );
  }

  async function proxyTargets(service: string): Promise<Array<string | undefined>> {
    return Promise.all(appHosts.map((host) => hosts.proxyTargetContainer(host, `${service}-web`)));
  }

  it('tree refresh: a host that went silent on a pooled connection is reported unreachable within the bound, the other host still read', async () => {
    const service = 'tree';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const sessionPool = pool();
    const sessionFor = (host: string) => sessionPool.session(sshTargetFor(config, host));
    const first = await readKamalInventory(config, sessionFor);
    assert.deepEqual(first.hosts.map((host) => host.error), [undefined, undefined]);

    await hosts.linkDown(appHosts[1]);
    const { value: inventory, ms } = await timed(() => readKamalInventory(config, sessionFor));
    assert.ok(ms < ANSWER_BOUND_MS, `took ${ms} ms`);
    assert.ok(inventory);
    const [healthy, silent] = inventory.hosts;
    assert.equal(healthy.error, undefined);
    assert.equal(healthy.currentVersions.web, 'v2');
    assert.equal(silent.error?.kind, 'unreachable');
    assert.match(silent.error?.message ?? '', new RegExp(`${escaped(appHosts[1].address)}.*stopped answering`));
    assert.deepEqual(silent.containers, [], 'no container of a silent host is shown as running');
    assert.equal(sessionPool.stats().open, 1, 'the silent connection was evicted');

    // A fresh read while it is still down fails on connect (bounded too), and once back it reconnects.
    const again = await timed(() => readKamalInventory(config, sessionFor));
    assert.ok(again.ms < ANSWER_BOUND_MS, `took ${again.ms} ms`);
    assert.equal(again.value?.hosts[1].error?.kind, 'unreachable');
    await hosts.linkUp(appHosts[1]);
    const back = await readKamalInventory(config, sessionFor);
    assert.equal(back.hosts[1].error, undefined);
    assert.equal(back.hosts[1].currentVersions.web, 'v2');
  });

  it('pre-flight: a host that goes silent during the checks is named within the bound; nothing changed, no lock left', async () => {
    const service = 'preflight';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const sessionPool = pool();
    // Warm both connections first: the drop then hits an established session, the slow case.
    await readKamalInventory(config, (host) => sessionPool.session(sshTargetFor(config, host)));
    const { sessions } = sessionsFor(sessionPool, config, async (host) => {
      if (host === appHosts[1].address) await hosts.linkDown(appHosts[1]);
    });
    const { error, ms } = await timed(() => planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'fault-test' }));
    assert.ok(ms < ANSWER_BOUND_MS, `took ${ms} ms`);
    assert.ok(error instanceof DeployRollbackError, String(error));
    assert.match(error.message, new RegExp(`nothing was changed: ${escaped(appHosts[1].address)} is unreachable \\(.*stopped answering`));
    await hosts.linkUp(appHosts[1]);
    assert.equal(await lockExists(service), false);
    assert.deepEqual(await proxyTargets(service), [`${service}-web-v2`, `${service}-web-v2`]);
  });

  it('lock: the lock host going silent as the lock command is sent (it never arrives) gives a clear answer within the bound; after it answers again no lock is left', async () => {
    const service = 'lockdown';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const sessionPool = pool(QUICK_KEEPALIVE);
    let dropped = false;
    const { sessions } = sessionsFor(sessionPool, config, async (host, command) => {
      if (!dropped && host === appHosts[0].address && command.includes('mkdir .kamal/lock-')) {
        dropped = true;
        await hosts.linkDown(appHosts[0]);
      }
    });
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'fault-test' });
    const messages: string[] = [];
    const reporter = { ...silentReporter, error: (line: string) => messages.push(line) };
    const { value: result, ms } = await timed(() => executeKamalRollback(plan, { sessions, reporter, runHooks: false }));
    assert.ok(dropped);
    assert.ok(ms < QUICK_BOUND_MS, `took ${ms} ms`);
    assert.ok(result);
    assert.equal(result.ok, false);
    assert.match(result.message, new RegExp(`${escaped(appHosts[0].address)} stopped answering: take the deploy lock`));
    assert.ok(result.hosts.every((entry) => entry.result === 'not-started'), result.lines.join('\n'));
    await hosts.linkUp(appHosts[0]);
    assert.equal(await lockExists(service), false, 'the lock command never reached the host');
    assert.deepEqual(await proxyTargets(service), [`${service}-web-v2`, `${service}-web-v2`]);
  });

  it('lock: the lock command arrives but its answer is lost: a clear answer within the bound that the lock may be held and how to check; once the host answers, the lock names this run and Kamal\'s release frees it', async () => {
    const service = 'lockanswer';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const sessionPool = pool(QUICK_KEEPALIVE);
    const primary = appHosts[0];
    // Packets to the host still arrive (the command runs); nothing it sends back leaves it.
    const answers = (action: '-I' | '-D') => ['ip', ['netns', 'exec', primary.netns, 'iptables', action, 'OUTPUT', '-p', 'tcp', '--sport', '22', '-j', 'DROP']] as const;
    let dropped = 0;
    const { sessions } = sessionsFor(sessionPool, config, async (host, command) => {
      if (!dropped && host === primary.address && command.includes('mkdir .kamal/lock-')) {
        dropped = Date.now();
        await runOk(...answers('-I'));
      }
    });
    try {
      const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'fault-test' });
      const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
      assert.ok(dropped, 'the answers were cut as the lock command went out');
      const ms = Date.now() - dropped;
      assert.ok(ms < QUICK_BOUND_MS, `took ${ms} ms`);
      assert.equal(result.ok, false);
      assert.match(result.message, new RegExp(`${escaped(primary.address)} stopped answering: take the deploy lock`), result.message);
      assert.match(result.message, /The deploy lock may have been taken there: once it answers, `kamal lock status` tells, and `kamal lock release` releases it if it names this run\./);
      assert.ok(result.hosts.every((entry) => entry.result === 'not-started'), result.lines.join('\n'));
      assert.equal(await lockExists(service), true, 'the lock command ran on the host: the risky case, not a lost command');
    } finally {
      if (dropped) await run(...answers('-D'));
    }
    // As the user was told: the lock names this run, and Kamal's `kamal lock release` (its release command) frees it.
    const status = await hosts.exec(primary, `stat .kamal/lock-${service} > /dev/null && cat .kamal/lock-${service}/details | base64 -d`);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^Locked by: fault-test at \S+\nVersion: v1\nMessage: Automatic deploy lock: rollback to v1 by Deploy Rollback/);
    assert.equal((await hosts.exec(primary, `rm .kamal/lock-${service}/details && rm -r .kamal/lock-${service}`)).code, 0);
    assert.equal(await lockExists(service), false);
    assert.deepEqual(await proxyTargets(service), [`${service}-web-v2`, `${service}-web-v2`], 'nothing was switched');
    await convergesOnRerun(config, sessionPool, service);
  });

  it('lock: another host going silent while the lock is taken releases the lock within the bound and names that host', async () => {
    const service = 'lockother';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const sessionPool = pool(QUICK_KEEPALIVE);
    let dropped = false;
    const { sessions } = sessionsFor(sessionPool, config, async (host, command) => {
      // The other host's `mkdir -p .kamal` goes with the checks the run makes again.
      if (!dropped && host === appHosts[1].address && command.includes("echo '@@deploy-rollback prepare'; mkdir -p .kamal;")) {
        dropped = true;
        await hosts.linkDown(appHosts[1]);
      }
    });
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'fault-test' });
    const { value: result, ms } = await timed(() => executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false }));
    assert.ok(dropped);
    assert.ok(ms < QUICK_BOUND_MS, `took ${ms} ms`);
    assert.ok(result);
    assert.equal(result.ok, false);
    assert.match(result.message, new RegExp(`Nothing was changed: could not prepare ${escaped(appHosts[1].address)}: .*stopped answering`));
    assert.equal(await lockExists(service), false, 'the lock taken on the healthy primary was released');
    await hosts.linkUp(appHosts[1]);
    assert.deepEqual(await proxyTargets(service), [`${service}-web-v2`, `${service}-web-v2`]);
  });

  async function convergesOnRerun(config: KamalConfig, sessionPool: InspectableSessionPool, service: string): Promise<void> {
    const { sessions } = sessionsFor(sessionPool, config);
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'fault-test' });
    const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(result.ok, true, `${result.message}\n${result.lines.join('\n')}`);
    assert.deepEqual(await proxyTargets(service), [`${service}-web-v1`, `${service}-web-v1`]);
    for (const host of appHosts) {
      const running = await hosts.docker(host, ['ps', '--filter', `label=service=${service}`, '--format', '{{.Names}}']);
      assert.equal(running.stdout.trim(), `${service}-web-v1`, `${host.name}: only v1 runs after the re-run`);
    }
    assert.equal(await lockExists(service), false);
  }

  for (const phase of [
    // Fused exchanges: the link goes down as the rename-and-run, or the switch-and-stop, exchange is sent.
    { name: 'boot', host: 1, when: (command: string) => command.includes('docker run') },
    { name: 'stop', host: 1, when: (command: string) => command.includes('xargs docker stop') && !command.includes('_replaced_') },
    { name: 'tag', host: 1, when: (command: string) => command.includes('docker tag') },
    // The unlock shares the primary host's tag exchange.
    { name: 'unlock', host: 0, when: (command: string) => command.includes('rm .kamal/lock-') },
  ]) {
    it(`${phase.name}: a host going silent gives a clear answer within the bound, the others read back, the lock state told; a re-run converges`, async () => {
      const service = `ph${phase.name}`;
      await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
      const config = await writeConfig(root, hosts, service);
      const sessionPool = pool(QUICK_KEEPALIVE);
      const silent = appHosts[phase.host]!;
      let dropped = 0;
      const { sessions } = sessionsFor(sessionPool, config, async (host, command) => {
        if (!dropped && host === silent.address && phase.when(command)) {
          dropped = Date.now();
          await hosts.linkDown(silent);
        }
      });
      const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'fault-test' });
      const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
      assert.ok(dropped, 'the link went down');
      const ms = Date.now() - dropped;
      assert.ok(ms < QUICK_BOUND_MS, `took ${ms} ms`);
      assert.equal(result.ok, false);
      assert.match(result.message, new RegExp(`${escaped(silent.address)}.*stopped answering`), result.message);
      const lost = result.hosts.find((entry) => entry.host === silent.address)!;
      const other = result.hosts.find((entry) => entry.host !== silent.address)!;
      // The other host is read back: what the result says it serves is what its kamal-proxy routes to.
      const otherHost = appHosts.find((host) => host.address === other.host)!;
      assert.ok(other.serving, `the other host's version is known: ${result.lines.join('\n')}`);
      assert.equal(await hosts.proxyTargetContainer(otherHost, `${service}-web`), `${service}-web-${other.serving}`, result.lines.join('\n'));
      // Only the boot phase can stop before the other host switched (its boot runs beside the silent one's).
      if (phase.name !== 'boot') assert.equal(other.serving, 'v1');
      if (phase.name === 'unlock') {
        // Every host switched before the lock host went silent: the lock could not be given back.
        assert.match(result.message, /Could not release the deploy lock on .*run `kamal lock release` once the host answers/);
        await hosts.linkUp(silent);
        assert.equal(await lockExists(service), true, 'the lock is still there, as the user was told');
        assert.equal((await hosts.exec(appHosts[0], `rm .kamal/lock-${service}/details && rm -r .kamal/lock-${service}`)).code, 0);
      } else {
        if (phase.name === 'boot' || phase.name === 'stop') assert.equal(lost.result, 'unreachable', result.lines.join('\n'));
        if (phase.name !== 'tag') assert.equal(lost.serving, undefined, 'the silent host is unknown, not assumed');
        assert.equal(await lockExists(service), false, 'the lock on the healthy primary was released');
        await hosts.linkUp(silent);
      }
      assert.match(result.lines[0]!, /NOW/);
      await convergesOnRerun(config, sessionPool, service);
    });
  }

  it('lock on a full disk: the failed write leaves no empty lock behind and says why; a re-run converges', async () => {
    const service = 'fulldisk';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const sessionPool = pool();
    const { sessions } = sessionsFor(sessionPool, config);
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'fault-test' });
    // A full file system over the host's .kamal, inside its sshd's own mount namespace.
    const full = await hosts.exec(appHosts[0], 'mount -t tmpfs -o size=16k tmpfs .kamal && { dd if=/dev/zero of=.kamal/fill bs=4k 2>/dev/null; true; }');
    assert.equal(full.code, 0, full.stderr);
    try {
      const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
      assert.equal(result.ok, false);
      assert.match(result.message, new RegExp(`could not take the deploy lock on ${escaped(appHosts[0].address)} \\(exit 1: .*No space left on device\\)`), result.message);
      const left = await hosts.exec(appHosts[0], `test -e .kamal/lock-${service} && echo left || echo clean`);
      assert.equal(left.stdout.trim(), 'clean', 'no empty lock directory left behind');
    } finally {
      await hosts.exec(appHosts[0], 'umount .kamal');
    }
    assert.deepEqual(await proxyTargets(service), [`${service}-web-v2`, `${service}-web-v2`]);
    await convergesOnRerun(config, sessionPool, service);
  });

  it('target image missing on one host: refused in the pre-flight naming host and image, nothing changed; a re-run converges once it is back', async () => {
    const service = 'noimage';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const sessionPool = pool();
    const { sessions } = sessionsFor(sessionPool, config);
    const image = `${hosts.repository}:v1`;
    const id = (await hosts.docker(appHosts[1], ['image', 'inspect', '--format', '{{.Id}}', image])).stdout.trim();
    assert.equal((await hosts.docker(appHosts[1], ['rmi', '-f', image])).code, 0);
    try {
      await assert.rejects(planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'fault-test' }), (error: unknown) => {
        assert.ok(error instanceof DeployRollbackError);
        assert.match(error.message, new RegExp(`nothing was changed: the image ${escaped(image)} is missing on ${escaped(appHosts[1].address)}`));
        return true;
      });
      assert.deepEqual(await proxyTargets(service), [`${service}-web-v2`, `${service}-web-v2`]);
      assert.equal(await lockExists(service), false);
    } finally {
      await hosts.docker(appHosts[1], ['tag', id, image]);
    }
    await convergesOnRerun(config, sessionPool, service);
  });

  it('dockerd gone mid-switch on one host: told as Docker not answering (not a refused switch), that host unknown, the other read back, lock released; a re-run converges', async () => {
    const service = 'dockerdown';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const sessionPool = pool();
    const victim = appHosts[1]!;
    let stopped = false;
    const { sessions } = sessionsFor(sessionPool, config, async (host, command) => {
      if (!stopped && host === victim.address && command.includes('docker exec kamal-proxy kamal-proxy deploy')) {
        stopped = true;
        await hosts.stopDockerd(victim);
      }
    });
    try {
      const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'fault-test' });
      const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
      assert.ok(stopped);
      assert.equal(result.ok, false);
      assert.match(result.message, new RegExp(`Docker is not answering on ${escaped(victim.address)} \\(kamal-proxy deploy: exit \\d+`), result.message);
      assert.doesNotMatch(result.message, /kamal-proxy did not switch/);
      const lost = result.hosts.find((entry) => entry.host === victim.address)!;
      const other = result.hosts.find((entry) => entry.host !== victim.address)!;
      assert.equal(lost.serving, undefined, `${result.lines.join('\n')}`);
      assert.match(lost.note ?? '', /state unknown/);
      assert.equal(other.serving, 'v1', 'the other host is read back, not assumed');
      assert.equal(await lockExists(service), false);
    } finally {
      await hosts.startDockerd(victim);
    }
    await waitForProxy(victim, service);
    await convergesOnRerun(config, sessionPool, service);
  });

  async function waitForProxy(host: TestHost, service: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const answer = await hosts.docker(host, ['exec', 'kamal-proxy', 'kamal-proxy', 'list']);
      if (answer.code === 0 && answer.stdout.includes(`${service}-web`)) return;
      if (Date.now() > deadline) throw new Error(`kamal-proxy on ${host.name} did not come back: ${answer.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
});
