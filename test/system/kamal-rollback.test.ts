/**
 * `kamal rollback` as Deploy Rollback does it, on real hosts (network namespaces with sshd +
 * dockerd and a kamal-proxy stand-in, see test/hosts/harness.ts) through the real SSH pool.
 * Each case uses its own service so the cases share hosts without sharing state.
 * Run: npx mocha --require tsx/cjs --timeout 180000 test/system/kamal-rollback.test.ts
 */
import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeployRollbackError, silentReporter } from '../../src/core/model';
import { loadKamalConfig } from '../../src/core/kamal/config/read';
import { readKamalInventory } from '../../src/core/kamal/hosts/inventory';
import { agreeToWriteEnvFiles, executeKamalRollback, planKamalRollback } from '../../src/core/kamal/rollback';
import type { KamalConfig } from '../../src/core/kamal/config/types';
import type { InspectableSessionPool } from '../../src/core/ssh/pool';
import { requireHostsOrSkip, startHosts, type TestHost, type TestHosts } from '../hosts/harness';
import { holdDeployLock, realPool, sessionsFor, writeDeployYml } from './kamal-hosts';
import { sshTargetFor } from '../../src/core/kamal/ssh-target';

/** A deploy.yml for `service` on the harness hosts, role web behind kamal-proxy. */
async function writeConfig(root: string, hosts: TestHosts, service: string, extra: string[] = [], servers?: string[]): Promise<KamalConfig> {
  const file = await writeDeployYml(path.join(root, service), hosts, {
    service,
    servers,
    beforeSsh: ['deploy_timeout: 10'],
    after: ['  keepalive_interval: 1', ...extra],
  });
  const config = await loadKamalConfig(file, undefined, {});
  assert.deepEqual(config.problems.filter((problem) => problem.severity === 'error'), []);
  return config;
}

async function dockerOk(hosts: TestHosts, host: TestHost, args: string[]): Promise<string> {
  const result = await hosts.docker(host, args);
  assert.equal(result.code, 0, `docker ${args.join(' ')} on ${host.name}: ${result.stderr}`);
  return result.stdout.trim();
}

async function containerState(hosts: TestHosts, host: TestHost, name: string): Promise<string> {
  return dockerOk(hosts, host, ['inspect', '--format', '{{.State.Status}}', name]);
}

async function allContainers(hosts: TestHosts, host: TestHost): Promise<string> {
  return dockerOk(hosts, host, ['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}} {{.State}} {{.Image}} {{.Labels}}']);
}

async function lockExists(host: TestHost, service: string): Promise<boolean> {
  return fs.stat(path.join(host.home, '.kamal', `lock-${service}`)).then(
    () => true,
    () => false,
  );
}

describe('kamal rollback on real hosts', function () {
  this.timeout(180_000);
  let hosts: TestHosts;
  let pool: InspectableSessionPool;
  let root: string;
  let appHosts: TestHost[];

  before(async function () {
    requireHostsOrSkip(this);
    hosts = await startHosts({ count: 3, images: [{ version: 'v1' }, { version: 'v2' }, { version: 'v1bad', unhealthy: true }] });
    appHosts = hosts.hosts.filter((host) => !host.jumpOnly);
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kamal-rollback-'));
    pool = realPool(hosts, 5000);
  });

  after(async () => {
    pool?.dispose();
    await hosts?.stop();
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it('rolls 3 hosts from v2 back to v1 and leaves them as Kamal would', async () => {
    const service = 'chat';
    // The env file Kamal wrote for the app's one secret: the rollback boots v1 with it as it is.
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2', envFileContent: 'SECRET_KEY_BASE=seeded-not-a-real-secret\n' });
    const config = await writeConfig(root, hosts, service, [], ['  web:', '    hosts:', ...appHosts.map((host) => `      - ${host.address}`), 'env:', '  secret:', '    - SECRET_KEY_BASE']);
    const { sessions } = sessionsFor(pool, config);
    const plan = await planKamalRollback({ config, sessions, performer: 'system-test' });
    assert.equal(plan.to, 'v1', 'the previous version is the default target');
    assert.equal(plan.from, 'v2');
    const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(result.ok, true, result.message);

    const repository = hosts.repository;
    for (const host of appHosts) {
      assert.equal(await hosts.proxyTargetContainer(host, 'chat-web'), 'chat-web-v1', `${host.name} proxy target`);
      const proxy = await hosts.proxyState(host, 'chat-web');
      // Kamal 2.12's test/commands/app_test.rb "deploy" (deploy_timeout 30 there, 10 here), flag for flag as the proxy took them.
      const kamal = 'docker exec kamal-proxy kamal-proxy deploy app-web --target="172.1.0.2:80" --deploy-timeout="30s" --drain-timeout="30s" --buffer-requests --buffer-responses --log-request-header="Cache-Control" --log-request-header="Last-Modified" --log-request-header="User-Agent"';
      const expected = kamal.split(' ').slice(6).map((flag) => flag.replace(/"/g, '')).map((flag) => (flag.startsWith('--target=') ? `--target=${proxy?.target}` : flag.replace('--deploy-timeout=30s', '--deploy-timeout=10s')));
      assert.deepEqual(proxy?.flags, expected, `full flag set on ${host.name}`);
      assert.equal(await containerState(hosts, host, 'chat-web-v2'), 'exited');
      assert.equal(await containerState(hosts, host, 'chat-web-v1'), 'running');
      const labels = JSON.parse(await dockerOk(hosts, host, ['inspect', '--format', '{{json .Config.Labels}}', 'chat-web-v1'])) as Record<string, string>;
      assert.equal(labels.service, 'chat');
      assert.equal(labels.role, 'web');
      assert.equal(labels.destination, '');
      const env = JSON.parse(await dockerOk(hosts, host, ['inspect', '--format', '{{json .Config.Env}}', 'chat-web-v1'])) as string[];
      assert.ok(env.includes('KAMAL_VERSION=v1') && env.includes('KAMAL_CONTAINER_NAME=chat-web-v1') && env.includes(`KAMAL_HOST=${host.address}`), env.join(' '));
      assert.ok(env.includes('SECRET_KEY_BASE=seeded-not-a-real-secret'), 'the env file on the host was reused');
      const names = await dockerOk(hosts, host, ['container', 'ls', '--all', '--filter', 'label=service=chat', '--format', '{{.Names}}']);
      assert.match(names, /chat-web-v1_replaced_[0-9a-f]{16}/);
      const latest = await dockerOk(hosts, host, ['image', 'inspect', '--format', '{{.Id}}', `${repository}:latest`]);
      const v1 = await dockerOk(hosts, host, ['image', 'inspect', '--format', '{{.Id}}', `${repository}:v1`]);
      assert.equal(latest, v1, `latest moved to v1 on ${host.name}`);
      const audit = await fs.readFile(path.join(host.home, '.kamal', 'chat-audit.log'), 'utf8');
      assert.match(audit, /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\] \[system-test\] \[web\] Renaming container v1 to v1_replaced_[0-9a-f]{16}$/m);
      assert.match(audit, /^\[[^\]]+\] \[system-test\] \[web\] Booted app version v1$/m);
      assert.match(audit, new RegExp(`^\\[[^\\]]+\\] \\[system-test\\] Tagging ${repository.replace('/', '\\/')}:v1 as the latest image$`, 'm'));
      assert.equal(await lockExists(host, service), false);
    }
  });

  it('rolls back a role without kamal-proxy after the web role, by its container state', async () => {
    const service = 'chatroles';
    const [first, second, third] = appHosts;
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2', hosts: [first, second] });
    await hosts.seedKamalState({ service, role: 'jobs', versions: ['v1', 'v2'], running: 'v2', proxy: false, hosts: [third] });
    const servers = ['  web:', '    hosts:', `      - ${first.address}`, `      - ${second.address}`, '  jobs:', '    hosts:', `      - ${third.address}`, '    cmd: /entrypoint'];
    const config = await writeConfig(root, hosts, service, ['readiness_delay: 1'], servers);
    const { sessions, commands } = sessionsFor(pool, config);
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'system-test' });
    const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false, healthPollMs: 200 });
    assert.equal(result.ok, true, `${result.message}\n${result.lines.join('\n')}`);
    assert.equal(await containerState(hosts, third, 'chatroles-jobs-v1'), 'running');
    assert.equal(await containerState(hosts, third, 'chatroles-jobs-v2'), 'exited');
    const jobCommands = commands.filter((entry) => entry.host === third.address).map((entry) => entry.command);
    assert.ok(jobCommands.some((command) => command.includes('xargs docker inspect --format')), 'health polled');
    assert.ok(!jobCommands.some((command) => command.includes('kamal-proxy deploy')), 'no proxy for jobs');
    const firstWebDeploy = commands.findIndex((entry) => entry.command.includes('docker exec kamal-proxy kamal-proxy deploy'));
    const jobsRun = commands.findIndex((entry) => entry.host === third.address && entry.command.startsWith('docker run'));
    assert.ok(firstWebDeploy >= 0 && jobsRun > firstWebDeploy, 'jobs booted after the first web container was healthy');
    for (const host of [first, second]) assert.equal(await hosts.proxyTargetContainer(host, 'chatroles-web'), 'chatroles-web-v1');
  });

  it('boots a worker whose cmd is shell (sh -c "…$…", as Kamal puts it on the line) through a rollback and a roll forward', async () => {
    const service = 'chatcmd';
    const [first, , third] = appHosts;
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2', hosts: [first] });
    await hosts.seedKamalState({ service, role: 'jobs', versions: ['v1', 'v2'], running: 'v2', proxy: false, hosts: [third] });
    // `${WORKER_NAME:-worker}` is the host shell's (unset there), `\$KAMAL_VERSION` and `\$!` the container's.
    const cmd = `sh -c "trap 'exit 0' TERM; echo \${WORKER_NAME:-worker} \\$KAMAL_VERSION; while :; do sleep 1 & wait \\$!; done"`;
    // The web role's cmd goes through the fused rename-and-run exchange (no barrier to wait at): its own sh -c.
    const webCmd = 'sh -c "echo web \\$KAMAL_VERSION; exec /entrypoint" # the app server';
    const servers = ['  web:', '    hosts:', `      - ${first.address}`, `    cmd: '${webCmd}'`, '  jobs:', '    hosts:', `      - ${third.address}`, `    cmd: ${cmd}`];
    const config = await writeConfig(root, hosts, service, ['readiness_delay: 1'], servers);
    assert.equal(config.roles.find((role) => role.name === 'jobs')?.cmd, cmd);
    assert.equal(config.roles.find((role) => role.name === 'web')?.cmd, webCmd);
    const { sessions, commands } = sessionsFor(pool, config);
    for (const [to, from] of [['v1', 'v2'], ['v2', 'v1']]) {
      const plan = await planKamalRollback({ config, sessions, targetVersion: to, performer: 'system-test' });
      const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false, healthPollMs: 200 });
      assert.equal(result.ok, true, `${result.message}\n${result.lines.join('\n')}`);
      const run = commands.filter((entry) => entry.host === third.address && entry.command.includes(`--name ${service}-jobs-${to} `)).map((entry) => entry.command);
      assert.ok(run.some((command) => command.includes(`:${to} ${cmd}`) || command.includes(` sh -c 'docker run `)), run.join('\n'));
      const webRun = commands.filter((entry) => entry.host === first.address && entry.command.includes(`--name ${service}-web-${to} `)).map((entry) => entry.command);
      assert.ok(webRun.some((command) => command.includes(`&& sh -c 'docker run `)), webRun.join('\n'));
      assert.equal(await hosts.proxyTargetContainer(first, `${service}-web`), `${service}-web-${to}`);
      assert.match((await hosts.docker(first, ['logs', `${service}-web-${to}`])).stdout, new RegExp(`^web ${to}$`, 'm'));
      assert.equal(await containerState(hosts, third, `${service}-jobs-${to}`), 'running');
      const argv = JSON.parse(await dockerOk(hosts, third, ['inspect', '--format', '{{json .Config.Cmd}}', `${service}-jobs-${to}`])) as string[];
      assert.deepEqual(argv, ['sh', '-c', "trap 'exit 0' TERM; echo worker $KAMAL_VERSION; while :; do sleep 1 & wait $!; done"]);
      const logs = await hosts.docker(third, ['logs', `${service}-jobs-${to}`]);
      assert.match(logs.stdout, new RegExp(`^worker ${to}$`, 'm'));
      // The trap ended the stopped worker at once with 0: docker stop did not have to kill it.
      assert.equal(await dockerOk(hosts, third, ['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', `${service}-jobs-${from}`]), 'exited 0');
    }
  });

  it('a secret rotated locally: after agreeing, the rollback writes the env file as Kamal does and boots the target with the new value', async () => {
    const service = 'chatenv';
    const [first] = appHosts;
    const seeded = 'RAILS_LOG_LEVEL=info\nSECRET_KEY_BASE=seeded-not-a-real-secret\nDB_PASSWORD=pa$$ "word"\n';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2', hosts: [first], envFileContent: seeded });
    const servers = ['  web:', '    hosts:', `      - ${first.address}`];
    const config = await writeConfig(root, hosts, service, [], [...servers, 'env:', '  clear:', '    RAILS_LOG_LEVEL: info', '  secret:', '    - SECRET_KEY_BASE', '    - DB_PASSWORD:DB_PASSWORD_PROD']);
    // Rotated here, not deployed: one value from a command (as password managers are read), one plain.
    await fs.mkdir(path.join(root, service, '.kamal'), { recursive: true });
    await fs.writeFile(path.join(root, service, '.kamal', 'secrets'), 'SECRET_KEY_BASE=$(printf \'rotated-%s\' "$ROTATION")\nDB_PASSWORD_PROD=\'pa$$ "word"\'\n');
    const { sessions, commands } = sessionsFor(pool, config);
    const asked: string[][] = [];
    const plan = await planKamalRollback({
      config,
      sessions,
      targetVersion: 'v1',
      performer: 'system-test',
      envFiles: { allowCommands: (files) => (asked.push(files), true), processEnv: { PATH: process.env.PATH, ROTATION: '2' } },
    });
    assert.deepEqual(asked, [['.kamal/secrets']]);
    assert.equal(commands.filter((entry) => entry.host === first.address).length, 1, 'the hashes came with the checks, in one exchange');
    // Kamal's env file holds secrets only: the clear RAILS_LOG_LEVEL goes on the docker run line.
    assert.deepEqual(plan.detail.envFiles?.differences.map((entry) => [entry.host, entry.keys]), [[first.address, ['SECRET_KEY_BASE', 'RAILS_LOG_LEVEL']]]);
    const shown = [...plan.lines, ...(plan.overview ?? []), JSON.stringify(plan.detail), ...commands.map((entry) => entry.command)].join('\n');
    assert.ok(!shown.includes('rotated-2') && !shown.includes('seeded-not-a-real-secret') && !shown.includes('"word"'), 'no value in the plan or on the wire');
    agreeToWriteEnvFiles(plan);
    // The pool's own sessions: the upload needs their SFTP channel.
    const result = await executeKamalRollback(plan, { sessions: (host) => pool.session(sshTargetFor(config, host)), reporter: silentReporter, runHooks: false });
    assert.equal(result.ok, true, result.message);
    const file = path.join(first.home, '.kamal', 'apps', service, 'env', 'roles', 'web.env');
    assert.equal(await fs.readFile(file, 'utf8'), 'SECRET_KEY_BASE=rotated-2\nDB_PASSWORD=pa$$ "word"\n');
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    const env = JSON.parse(await dockerOk(hosts, first, ['inspect', '--format', '{{json .Config.Env}}', `${service}-web-v1`])) as string[];
    assert.ok(env.includes('SECRET_KEY_BASE=rotated-2') && env.includes('DB_PASSWORD=pa$$ "word"') && env.includes('RAILS_LOG_LEVEL=info'), env.join(' '));
    // Planned again: the file on the host is what Kamal would write.
    const again = await planKamalRollback({ config, sessions, targetVersion: 'v2', performer: 'system-test', envFiles: { allowCommands: () => true, processEnv: { PATH: process.env.PATH, ROTATION: '2' } } });
    assert.deepEqual(again.detail.envFiles?.differences, []);
    // From a tree read (its env file digests included), that plan needs no exchange of its own.
    const read = await readKamalInventory(config, sessions);
    assert.ok(read.hosts[0]?.envDigests?.web, 'the tree read the env file digest');
    const readCommands = commands.length;
    const fromTree = await planKamalRollback({ config, sessions, targetVersion: 'v2', performer: 'system-test', recentRead: read, envFiles: { allowCommands: () => true, processEnv: { PATH: process.env.PATH, ROTATION: '2' } } });
    assert.equal(commands.length, readCommands, 'planning sent nothing to the hosts');
    assert.deepEqual(fromTree.detail.envFiles?.differences, []);
    // Edited on the host before the run took the lock: the run stops, nothing changed.
    await fs.appendFile(file, 'EDITED_BY_HAND=1\n');
    const stopped = await executeKamalRollback(fromTree, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(stopped.ok, false);
    assert.match(stopped.message, new RegExp(`Nothing was changed: the hosts no longer fit the confirmed plan: the env file of web on ${first.address.replace(/\./g, '\\.')} .* changed since it was compared`));
    assert.equal(await hosts.proxyTargetContainer(first, `${service}-web`), `${service}-web-v1`);
    assert.equal(await lockExists(first, service), false);
    await fs.writeFile(file, 'SECRET_KEY_BASE=rotated-2\nDB_PASSWORD=pa$$ "word"\n');
    // Rotated again: the digest no longer matches, so the hosts are read for the keys.
    const beforeRotated = commands.length;
    const rotated = await planKamalRollback({ config, sessions, targetVersion: 'v2', performer: 'system-test', recentRead: read, envFiles: { allowCommands: () => true, processEnv: { PATH: process.env.PATH, ROTATION: '3' } } });
    assert.equal(commands.length, beforeRotated + 1, 'one exchange: the per-key hashes with the checks');
    assert.deepEqual(rotated.detail.envFiles?.differences.map((entry) => entry.keys), [['SECRET_KEY_BASE']]);
  });

  it('reboots the running version like Kamal when it is the target', async () => {
    const service = 'chatreboot';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2', hosts: [appHosts[0]] });
    const servers = ['  web:', '    hosts:', `      - ${appHosts[0].address}`];
    const config = await writeConfig(root, hosts, service, [], servers);
    const { sessions } = sessionsFor(pool, config);
    const before = await dockerOk(hosts, appHosts[0], ['inspect', '--format', '{{.Id}}', 'chatreboot-web-v2']);
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v2', performer: 'system-test' });
    assert.equal(plan.detail.reboot, true);
    const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(result.ok, true, result.message);
    const after = await dockerOk(hosts, appHosts[0], ['inspect', '--format', '{{.Id}}', 'chatreboot-web-v2']);
    assert.notEqual(after, before, 'a fresh v2 container serves');
    assert.equal(await hosts.proxyTargetContainer(appHosts[0], 'chatreboot-web'), 'chatreboot-web-v2');
    const renamed = await dockerOk(hosts, appHosts[0], ['inspect', '--format', '{{.Name}} {{.State.Status}}', before]);
    assert.match(renamed, /^\/chatreboot-web-v2_replaced_[0-9a-f]{16} exited$/);
  });

  it('keeps v2 serving everywhere when v1 never becomes healthy, and releases the lock', async () => {
    const service = 'chatbad';
    await hosts.seedKamalState({ service, versions: ['v1bad', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const { sessions } = sessionsFor(pool, config);
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1bad', performer: 'system-test' });
    const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(result.ok, false);
    assert.match(result.message, /kamal-proxy did not switch to chatbad-web-v1bad/);
    for (const host of appHosts) {
      assert.equal(await hosts.proxyTargetContainer(host, 'chatbad-web'), 'chatbad-web-v2', `${host.name} still serves v2`);
      assert.equal(await containerState(hosts, host, 'chatbad-web-v2'), 'running');
      assert.equal(await containerState(hosts, host, 'chatbad-web-v1bad'), 'exited', `failed v1bad stopped on ${host.name}`);
      const latest = await dockerOk(hosts, host, ['image', 'inspect', '--format', '{{.Id}}', `${hosts.repository}:latest`]);
      const v2 = await dockerOk(hosts, host, ['image', 'inspect', '--format', '{{.Id}}', `${hosts.repository}:v2`]);
      assert.equal(latest, v2, 'latest left alone');
    }
    assert.equal(await lockExists(appHosts[0], service), false);
  });

  it('refuses when v1 was pruned on one host and changes nothing anywhere', async () => {
    const service = 'chatpruned';
    const third = appHosts[2];
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2', missing: { [third.name]: ['v1'] } });
    const config = await writeConfig(root, hosts, service);
    const before = await Promise.all(appHosts.map((host) => allContainers(hosts, host)));
    const { sessions, commands } = sessionsFor(pool, config);
    await assert.rejects(planKamalRollback({ config, sessions, targetVersion: 'v1' }), (error: unknown) => {
      assert.ok(error instanceof DeployRollbackError);
      assert.match(error.message, new RegExp(`version v1 has no container on ${third.address.replace(/\./g, '\\.')} \\(web\\)`));
      return true;
    });
    assert.equal(commands.length, appHosts.length, 'one read per host, nothing else');
    const after = await Promise.all(appHosts.map((host) => allContainers(hosts, host)));
    assert.deepEqual(after, before);
  });

  it("plans from the tree's reading without reading the hosts again; the run checks them with the lock and refuses once one changed", async () => {
    const service = 'chatrecent';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const { sessions, commands } = sessionsFor(pool, config);
    const read = await readKamalInventory(config, sessions);
    const readCommands = commands.length;
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'system-test', recentRead: read });
    assert.equal(commands.length, readCommands, 'planning sent nothing to the hosts');
    assert.deepEqual(plan.detail.hostPlans.map((host) => host.steps[0]?.from), ['v2', 'v2', 'v2']);

    // Someone removes v1 on the last host while the confirmation is open.
    const last = appHosts[appHosts.length - 1];
    await dockerOk(hosts, last, ['rm', `${service}-web-v1`]);
    const before = await Promise.all(appHosts.map((host) => allContainers(hosts, host)));
    const refused = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(refused.ok, false);
    assert.match(refused.message, new RegExp(`Nothing was changed: the hosts no longer fit the confirmed plan: version v1 has no container on ${last.address.replace(/\./g, '\\.')} \\(web\\) any more`));
    assert.deepEqual(await Promise.all(appHosts.map((host) => allContainers(hosts, host))), before, 'a refused run changed a host');
    assert.equal(await lockExists(appHosts[0], service), false, 'the lock taken with the checks was released');

    // Planned again from a fresh reading of the hosts as they are (v1 now only on two): refused before the confirmation.
    await assert.rejects(
      planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'system-test', recentRead: await readKamalInventory(config, sessions) }),
      /version v1 has no container on/,
    );
  });

  it('a roll forward with the lock taken in the pre-flight (--yes): the lock says so from the first boot exchange, with no exchange of its own', async () => {
    const service = 'chatforward';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v1' });
    const config = await writeConfig(root, hosts, service);
    const lockFile = path.join(appHosts[0].home, '.kamal', `lock-${service}`, 'details');
    let lockAtRun: string | undefined;
    const { sessions, commands } = sessionsFor(pool, config);
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v2', performer: 'system-test', takeLock: true });
    assert.equal(plan.detail.kind, 'roll-forward');
    assert.match(Buffer.from(await fs.readFile(lockFile, 'utf8'), 'base64').toString('utf8'), /Message: Automatic deploy lock: rollback to v2 by Deploy Rollback \(pid \d+ on [^)]+\)$/);
    const messages: string[] = [];
    const reporter = { ...silentReporter, step: (line: string) => messages.push(line) };
    const primaryBefore = commands.filter((entry) => entry.host === appHosts[0].address).length;
    const result = await executeKamalRollback(plan, {
      sessions: async (host) => {
        const session = await sessions(host);
        return {
          host: session.host,
          exec: async (command, options) => {
            const answer = await session.exec(command, options);
            // The lock as the primary host's first boot exchange (rename + run) left it.
            if (lockAtRun === undefined && host === appHosts[0].address && command.includes('docker run')) lockAtRun = Buffer.from(await fs.readFile(lockFile, 'utf8'), 'base64').toString('utf8');
            return answer;
          },
        };
      },
      reporter,
      runHooks: false,
    });
    assert.equal(result.ok, true, result.message);
    assert.match(lockAtRun ?? '', /^Locked by: system-test at \S+\nVersion: v2\nMessage: Automatic deploy lock: roll forward to v2 by Deploy Rollback \(pid \d+ on [^)]+\)$/);
    assert.ok(messages.some((line) => line.includes('the deploy lock now says: Automatic deploy lock: roll forward to v2 by Deploy Rollback')), messages.join('\n'));
    assert.equal(commands.filter((entry) => entry.host === appHosts[0].address).length - primaryBefore, 3, 'rewrite + rename + run, switch + stop, tag + unlock');
    assert.equal(await lockExists(appHosts[0], service), false);
    assert.deepEqual(await Promise.all(appHosts.map((host) => dockerOk(hosts, host, ['ps', '--filter', `label=service=${service}`, '--format', '{{.Names}}']))), appHosts.map(() => `${service}-web-v2`));
  });

  it('with the lock taken in the pre-flight (--yes), a refusal releases it and changes nothing', async () => {
    const service = 'chatprunedlock';
    const third = appHosts[2];
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2', missing: { [third.name]: ['v1'] } });
    const config = await writeConfig(root, hosts, service);
    const before = await Promise.all(appHosts.map((host) => allContainers(hosts, host)));
    const { sessions, commands } = sessionsFor(pool, config);
    await assert.rejects(planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'system-test', takeLock: true }), /version v1 has no container on/);
    assert.ok(commands[0]?.command.includes("echo '@@deploy-rollback prepare'") || commands.some((entry) => entry.command.includes('mkdir .kamal/lock-')), 'the lock went with the checks');
    assert.equal(await lockExists(appHosts[0], service), false, 'the lock taken with the checks was released');
    assert.deepEqual(await Promise.all(appHosts.map((host) => allContainers(hosts, host))), before);
  });

  it('cancel in the middle of the fused rename-and-run exchange: the rename is put back, the lock released, v2 serves everywhere', async () => {
    const service = 'chatcancel';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const { sessions } = sessionsFor(pool, config);
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'system-test', takeLock: true });
    const controller = new AbortController();
    const steps: string[] = [];
    // The 'run' marker streams in after the rename section answered, while docker run is in flight.
    const reporter = { ...silentReporter, step: (line: string) => (steps.push(line), /starting chatcancel-web-v1/.test(line) && controller.abort()) };
    const result = await executeKamalRollback(plan, { sessions, reporter, runHooks: false, signal: controller.signal });
    assert.equal(result.ok, false);
    assert.match(result.message, /cancelled/);
    const renamed = steps.findIndex((line) => /renaming chatcancel-web-v1/.test(line));
    const started = steps.findIndex((line) => /starting chatcancel-web-v1/.test(line));
    assert.ok(renamed >= 0 && started > renamed, steps.join('\n'));
    for (const host of appHosts) {
      assert.equal(await hosts.proxyTargetContainer(host, 'chatcancel-web'), 'chatcancel-web-v2', `${host.name} still serves v2`);
      assert.equal(await containerState(hosts, host, 'chatcancel-web-v2'), 'running');
    }
    for (const entry of result.hosts) assert.equal(entry.serving, 'v2', result.lines.join('\n'));
    assert.equal(await lockExists(appHosts[0], service), false);
    // A re-run finds v1 under its own name again and converges.
    const again = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'system-test', takeLock: true });
    const done = await executeKamalRollback(again, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(done.ok, true, `${done.message}\n${done.lines.join('\n')}`);
    for (const host of appHosts) assert.equal(await hosts.proxyTargetContainer(host, 'chatcancel-web'), 'chatcancel-web-v1');
    assert.equal(await lockExists(appHosts[0], service), false);
  });

  it('refuses while someone holds the deploy lock, naming them', async () => {
    const service = 'chatlocked';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    await holdDeployLock(hosts, appHosts[0], service, { holder: 'Jane Doe', at: '2026-11-23T07:30:00Z', version: 'v2', message: 'migrating' });
    const config = await writeConfig(root, hosts, service);
    const { sessions } = sessionsFor(pool, config);
    await assert.rejects(planKamalRollback({ config, sessions, targetVersion: 'v1' }), /held by Jane Doe since 2026-11-23T07:30:00Z for version v2: "migrating"/);
    assert.equal(await lockExists(appHosts[0], service), true, 'their lock is left alone');
  });

  it('reports a host whose link drops mid-rollback, releases the lock and offers a roll-forward', async () => {
    const service = 'chatlink';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const config = await writeConfig(root, hosts, service);
    const third = appHosts[2];
    let dropped = false;
    const { sessions } = sessionsFor(pool, config, async (host, command) => {
      if (host === third.address && !dropped && command.includes('docker exec kamal-proxy kamal-proxy deploy')) {
        dropped = true;
        await hosts.linkDown(third);
      }
    });
    try {
      const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'system-test' });
      const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
      assert.equal(dropped, true);
      assert.equal(result.ok, false);
      const lost = result.hosts.find((entry) => entry.host === third.address);
      assert.equal(lost?.result, 'unreachable', result.lines.join('\n'));
      assert.match(result.message, new RegExp(`${third.address.replace(/\./g, '\\.')} stopped answering`));
      assert.equal(await lockExists(appHosts[0], service), false);
      assert.deepEqual(result.rollForward?.detail.hosts, [appHosts[0].address, appHosts[1].address]);
      assert.equal(result.rollForward?.to, 'v2');
    } finally {
      await hosts.linkUp(third);
    }
  });

  it('passes hostile config values to docker as data, never to a shell', async () => {
    const service = 'chathostile';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const marker = `/root/pwned-${process.pid}`;
    const hostile = `$(touch ${marker}) \`touch ${marker}\` '; touch ${marker}; '`;
    const config = await writeConfig(root, hosts, service, ['env:', '  clear:', `    GREETING: ${JSON.stringify(hostile)}`, 'labels:', `  note: ${JSON.stringify(hostile)}`]);
    const { sessions } = sessionsFor(pool, config);
    const plan = await planKamalRollback({ config, sessions, targetVersion: 'v1', performer: 'system-test' });
    const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(result.ok, true, result.message);
    for (const host of appHosts) {
      const env = JSON.parse(await dockerOk(hosts, host, ['inspect', '--format', '{{json .Config.Env}}', 'chathostile-web-v1'])) as string[];
      assert.ok(env.includes(`GREETING=${hostile}`), env.join('\n'));
      const labels = JSON.parse(await dockerOk(hosts, host, ['inspect', '--format', '{{json .Config.Labels}}', 'chathostile-web-v1'])) as Record<string, string>;
      assert.equal(labels.note, hostile);
      const probe = await hosts.exec(host, `test -e ${marker} && echo present || echo absent`);
      assert.equal(probe.stdout.trim(), 'absent', `nothing ran on ${host.name}`);
    }

    const { sessions: counted, commands } = sessionsFor(pool, config);
    await assert.rejects(planKamalRollback({ config, sessions: counted, targetVersion: `v1;touch ${marker}` }), DeployRollbackError);
    await assert.rejects(planKamalRollback({ config: { ...config, service: `x$(touch ${marker})` }, sessions: counted }), DeployRollbackError);
    assert.equal(commands.length, 0, 'refused before any command reached a host');
  });
});
