import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive, run, waitFor } from './exec';
import {
  TestHosts,
  cleanupLeftovers,
  kamalEnvFilePath,
  missingHostPrerequisites,
  requireHostsOrSkip,
  startHosts,
  tcpOpen,
} from './harness';
import { proxyHistory } from './seed';
import { mountsUnder } from './teardown';

const SERVICE = 'chat';

function namespaces(): Promise<string[]> {
  return run('ip', ['netns', 'list']).then((result) => result.stdout.split('\n').map((line) => line.split(' ')[0] ?? '').filter(Boolean));
}

describe('test hosts prerequisites', function () {
  const skipped = new Error('skipped');
  const fakeContext = { skip: (): never => { throw skipped; } };
  let savedCi: string | undefined;
  beforeEach(() => {
    savedCi = process.env.CI;
  });
  afterEach(() => {
    if (savedCi === undefined) delete process.env.CI;
    else process.env.CI = savedCi;
  });

  it('names what is missing and the packages to install in one sentence', function () {
    const sentence = missingHostPrerequisites({ isRoot: false, hasTool: (tool) => tool !== 'sshd' && tool !== 'busybox' });
    assert.equal(
      sentence,
      'Real test hosts need root privileges (run as root) and the tools sshd, busybox (apt-get install -y openssh-server busybox-static).',
    );
    assert.equal(missingHostPrerequisites({ isRoot: true, hasTool: () => true }), undefined);
  });

  it('skips outside CI but fails under CI=true', function () {
    const probe = { isRoot: true, hasTool: (tool: string) => tool !== 'dockerd' };
    delete process.env.CI;
    assert.throws(() => requireHostsOrSkip(fakeContext, probe), (error) => error === skipped);
    process.env.CI = 'true';
    assert.throws(() => requireHostsOrSkip(fakeContext, probe), /need the tools dockerd .*fails instead of skipping/);
    assert.doesNotThrow(() => requireHostsOrSkip(fakeContext, { isRoot: true, hasTool: () => true }));
  });
});

describe('test hosts harness (real sshd + dockerd per network namespace)', function () {
  this.timeout(120_000);
  let testHosts: TestHosts;
  let startMs = 0;

  before(async function () {
    requireHostsOrSkip(this);
    const started = Date.now();
    testHosts = await startHosts({
      count: 3,
      jumpOnly: 1,
      images: [{ version: 'v1' }, { version: 'v2' }, { version: 'v3', unhealthy: true }, { version: 'v4', exitsImmediately: true }],
    });
    startMs = Date.now() - started;
    console.log(`      (started ${testHosts.hosts.length} hosts in ${startMs} ms)`);
  });

  after(async function () {
    if (testHosts) await testHosts.stop();
  });

  it('starts four hosts (one of them jump-only) in under 30 s', function () {
    assert.equal(testHosts.hosts.length, 4);
    assert.ok(startMs < 30_000, `took ${startMs} ms`);
  });

  it('gives every host its own ssh host key, checked strictly against known_hosts', async function () {
    const fingerprints = testHosts.hosts.map((host) => host.hostKeyFingerprint);
    assert.equal(new Set(fingerprints).size, fingerprints.length);
    for (const host of testHosts.hosts.filter((candidate) => !candidate.jumpOnly)) {
      const scan = await run('ssh-keyscan', ['-t', 'ed25519', host.address]);
      const line = scan.stdout.split('\n').find((candidate) => candidate.startsWith(host.address)) ?? '';
      const scannedKeyFile = join(testHosts.runDir, `scanned-${host.name}.pub`);
      writeFileSync(scannedKeyFile, `${line.split(' ').slice(1).join(' ')}\n`);
      const printed = await run('ssh-keygen', ['-lf', scannedKeyFile]);
      assert.equal(printed.stdout.split(' ')[1], host.hostKeyFingerprint, `${host.name} presents another key`);
    }
    // A known_hosts that pins host1's address to host0's key must make ssh refuse.
    const [host0, host1] = testHosts.hosts;
    assert.ok(host0 && host1);
    const wrongKnownHosts = join(testHosts.runDir, 'wrong_known_hosts');
    writeFileSync(wrongKnownHosts, `${host1.address} ${host0.hostPublicKeyLine}\n`);
    const refused = await run('ssh', [
      '-F', '/dev/null', '-i', testHosts.clientKeyPath, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
      '-o', `UserKnownHostsFile=${wrongKnownHosts}`, '-o', 'StrictHostKeyChecking=yes', `root@${host1.address}`, 'true',
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
    const accepted = await run('ssh', [
      '-F', '/dev/null', '-i', testHosts.clientKeyPath, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
      '-o', `UserKnownHostsFile=${testHosts.knownHostsPath}`, '-o', 'StrictHostKeyChecking=yes', `root@${host1.address}`, 'echo ok',
    ]);
    assert.equal(accepted.stdout.trim(), 'ok', accepted.stderr);
  });

  it('refuses password-less logins without the client key', async function () {
    const [host0] = testHosts.hosts;
    assert.ok(host0);
    const result = await run('ssh', [
      '-F', '/dev/null', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityFile=/dev/null', '-o', 'BatchMode=yes',
      '-o', `UserKnownHostsFile=${testHosts.knownHostsPath}`, `root@${host0.address}`, 'true',
    ]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Permission denied/);
  });

  it("keeps each host's docker daemon and ~/.kamal to itself", async function () {
    const [host0, host1] = testHosts.hosts;
    assert.ok(host0 && host1);
    const started = await testHosts.docker(host0, ['run', '-d', '--name', 'only-on-host0', '--network', 'kamal', 'user/app:v1']);
    assert.equal(started.code, 0, started.stderr);
    const [onHost0, onHost1] = await Promise.all([
      testHosts.exec(host0, 'docker ps -a --format "{{.Names}}"; mkdir -p ~/.kamal && echo host0 > ~/.kamal/marker'),
      testHosts.exec(host1, 'docker ps -a --format "{{.Names}}"'),
    ]);
    assert.ok(onHost0.stdout.split('\n').includes('only-on-host0'));
    assert.ok(!onHost1.stdout.split('\n').includes('only-on-host0'), onHost1.stdout);

    assert.equal(readFileSync(join(host0.home, '.kamal/marker'), 'utf8'), 'host0\n');
    const onOther = await testHosts.exec(host1, 'cat ~/.kamal/marker');
    assert.notEqual(onOther.code, 0);
    assert.ok(!existsSync('/root/.kamal/marker'), 'the marker leaked into this machine\'s /root');
    await testHosts.docker(host0, ['rm', '-f', 'only-on-host0']);
  });

  it('reaches the jump-only host only through host 0', async function () {
    const jump = testHosts.hosts.find((host) => host.jumpOnly);
    const [host0] = testHosts.hosts;
    assert.ok(jump && host0);
    assert.equal(jump.jumpVia, 'host0');
    assert.equal(await tcpOpen(jump.address, 22, 1500), false, 'this machine reached the jump-only host directly');
    const direct = await run('ssh', [
      '-F', '/dev/null', '-i', testHosts.clientKeyPath, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=2',
      '-o', `UserKnownHostsFile=${testHosts.knownHostsPath}`, `root@${jump.address}`, 'true',
    ]);
    assert.notEqual(direct.code, 0);
    const jumped = await run('ssh', ['-F', testHosts.sshConfigPath, '-J', `root@${host0.address}`, `root@${jump.address}`, 'docker ps --format "{{.Names}}"']);
    assert.equal(jumped.code, 0, jumped.stderr);
    assert.equal(jumped.stdout.trim(), 'kamal-proxy');
    const viaConfig = await testHosts.exec(jump, 'echo $DOCKER_HOST');
    assert.equal(viaConfig.stdout.trim(), `unix://${jump.dockerSocket}`);
  });

  it('seeds Kamal containers, labels, env file, latest tag and proxy exactly as kamal deploy leaves them (Kamal\'s own run and deploy lines)', async function () {
    const [host0, host1, host2] = testHosts.hosts;
    assert.ok(host0 && host1 && host2);
    const seeded = await testHosts.seedKamalState({
      service: SERVICE, versions: ['v1', 'v2'], running: 'v2', missing: { host2: ['v1'] }, hosts: [host0, host1, host2], envFileContent: 'SECRET_KEY_BASE=seeded-not-a-real-secret\n',
    });
    assert.deepEqual(seeded.map((entry) => Object.keys(entry.containers)), [['v1', 'v2'], ['v1', 'v2'], ['v2']]);

    const listing = await testHosts.exec(
      host0,
      `docker container ls --all --filter label=service=${SERVICE} --filter label=destination= --format '{{.Names}} {{.State}} {{.Image}} {{.Label "role"}}'`,
    );
    assert.deepEqual(listing.stdout.trim().split('\n').sort(), ['chat-web-v1 exited user/app:v1 web', 'chat-web-v2 running user/app:v2 web']);
    const onPrunedHost = await testHosts.exec(host2, `docker container ls --all --filter 'name=^chat-web-v1$' --quiet`);
    assert.equal(onPrunedHost.stdout.trim(), '');

    const latest = await testHosts.exec(host1, 'docker image inspect --format "{{.Id}}" user/app:latest user/app:v2');
    const [latestId, v2Id] = latest.stdout.trim().split('\n');
    assert.ok(latestId && latestId === v2Id, latest.stdout);

    const envFile = await testHosts.exec(host0, `cat ${kamalEnvFilePath(SERVICE, 'web')}`);
    assert.match(envFile.stdout, /SECRET_KEY_BASE=/);
    // What nobody here wrote: Kamal 2.12's test/commands/app_test.rb "run with hostname" (service app, image
    // dhh/app, version 999), read as the container docker made of it, for chat, user/app and v2; KAMAL_HOST as
    // lib/kamal/commands/app.rb adds it.
    const kamalRun =
      'docker run --detach --restart unless-stopped --name app-web-999 --network kamal --hostname myhost -e KAMAL_CONTAINER_NAME="app-web-999" -e KAMAL_VERSION="999"' +
      ' --env-file .kamal/apps/app/env/roles/web.env --log-opt max-size="10m" --label service="app" --label role="web" --label destination dhh/app:999';
    const ours = (word: string) => word.replace(/"/g, '').replace(/\bapp-web-999\b/g, 'chat-web-v2').replace(/\b999\b/g, 'v2').replace('dhh/app', testHosts.repository).replace(/^service=app$/, `service=${SERVICE}`).replace('apps/app/', `apps/${SERVICE}/`);
    const words = kamalRun.split(' ').map(ours);
    const after = (flag: string) => words.flatMap((word, index) => (words[index - 1] === flag ? [word] : []));
    const inspected = JSON.parse((await testHosts.docker(host0, ['inspect', 'chat-web-v2'])).stdout)[0] as {
      Name: string; Config: { Env: string[]; Labels: Record<string, string>; Image: string; Hostname: string }; HostConfig: { RestartPolicy: { Name: string }; NetworkMode: string; LogConfig: { Config: Record<string, string> } };
    };
    assert.equal(inspected.Name, `/${after('--name')[0]}`);
    assert.equal(inspected.HostConfig.RestartPolicy.Name, after('--restart')[0]);
    assert.equal(inspected.HostConfig.NetworkMode, after('--network')[0]);
    assert.deepEqual(inspected.HostConfig.LogConfig.Config, Object.fromEntries(after('--log-opt').map((option) => option.split('='))));
    assert.deepEqual(inspected.Config.Labels, Object.fromEntries(after('--label').map((label) => [label.split('=')[0], label.split('=')[1] ?? ''])));
    assert.equal(inspected.Config.Image, words.at(-1));
    assert.match(inspected.Config.Hostname, new RegExp(`^${host0.name}-[0-9a-f]{12}$`), 'Kamal\'s <host>-<12 hex>');
    for (const env of [...after('-e'), `KAMAL_HOST=${host0.address}`]) assert.ok(inspected.Config.Env.includes(env), `${env} in ${inspected.Config.Env.join(' ')}`);
    assert.equal(after('--env-file')[0], kamalEnvFilePath(SERVICE, 'web'));
    for (const line of envFile.stdout.trim().split('\n')) assert.ok(inspected.Config.Env.includes(line), `${line} from the env file`);

    // Kamal 2.12's test/commands/app_test.rb "deploy": the flags kamal deploy leaves with kamal-proxy.
    const kamalDeploy =
      'docker exec kamal-proxy kamal-proxy deploy app-web --target="172.1.0.2:80" --deploy-timeout="30s" --drain-timeout="30s" --buffer-requests --buffer-responses' +
      ' --log-request-header="Cache-Control" --log-request-header="Last-Modified" --log-request-header="User-Agent"';
    for (const host of [host0, host1, host2]) {
      assert.equal(await testHosts.proxyTargetContainer(host, 'chat-web'), 'chat-web-v2');
      const state = await testHosts.proxyState(host, 'chat-web');
      const target = `${seeded[testHosts.hosts.indexOf(host)]?.containerIds.v2?.slice(0, 12)}:80`;
      assert.equal(state?.target, target);
      assert.deepEqual(state?.flags, kamalDeploy.split(' ').slice(6).map((flag) => flag.replace(/"/g, '').replace('172.1.0.2:80', target)));
    }
  });

  it('seeds destinations with their own names, labels and latest-D tag', async function () {
    const [host0] = testHosts.hosts;
    assert.ok(host0);
    await testHosts.seedKamalState({ service: SERVICE, destination: 'staging', versions: ['v1', 'v2'], running: 'v1', hosts: [host0], proxy: false });
    const listing = await testHosts.exec(host0, `docker container ls --all --filter label=service=${SERVICE} --filter label=destination=staging --format '{{.Names}} {{.State}}'`);
    assert.deepEqual(listing.stdout.trim().split('\n').sort(), ['chat-web-staging-v1 running', 'chat-web-staging-v2 exited']);
    const tag = await testHosts.exec(host0, 'docker image inspect --format "{{.Id}}" user/app:latest-staging user/app:v1');
    const [latestId, v1Id] = tag.stdout.trim().split('\n');
    assert.equal(latestId, v1Id);
    assert.ok(existsSync(join(host0.home, '.kamal/apps/chat-staging/env/roles/web.env')));
  });

  it('switches the proxy stand-in only to a healthy target and keeps the old one otherwise; lists and refuses flags as kamal-proxy v0.9 does', async function () {
    const [, host1] = testHosts.hosts;
    assert.ok(host1);
    const before = await testHosts.proxyState(host1, 'chat-web');
    assert.ok(before);
    const unhealthy = await testHosts.docker(host1, ['run', '-d', '--name', 'chat-web-v3', '--network', 'kamal', 'user/app:v3']);
    assert.equal(unhealthy.code, 0, unhealthy.stderr);
    const unhealthyId = unhealthy.stdout.trim().slice(0, 12);
    const refused = await testHosts.exec(
      host1,
      `docker exec kamal-proxy kamal-proxy deploy chat-web --target="${unhealthyId}:80" --deploy-timeout="2s" --health-check-path="/up"`,
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /failed to become healthy/);
    assert.deepEqual(await testHosts.proxyState(host1, 'chat-web'), before);

    const healthy = await testHosts.docker(host1, ['inspect', '--format', '{{.Id}}', 'chat-web-v1']);
    await testHosts.docker(host1, ['start', 'chat-web-v1']);
    const healthyId = healthy.stdout.trim().slice(0, 12);
    const switched = await testHosts.exec(
      host1,
      `docker exec kamal-proxy kamal-proxy deploy chat-web --target="${healthyId}:80" --deploy-timeout "10s" --drain-timeout=30s --buffer-requests --log-request-header="Cache-Control" --log-request-header="User-Agent"`,
    );
    assert.equal(switched.code, 0, switched.stderr);
    assert.deepEqual(await testHosts.proxyState(host1, 'chat-web'), {
      target: `${healthyId}:80`,
      flags: [`--target=${healthyId}:80`, '--deploy-timeout=10s', '--drain-timeout=30s', '--buffer-requests', '--log-request-header=Cache-Control', '--log-request-header=User-Agent'],
    });
    assert.equal(await testHosts.proxyTargetContainer(host1, 'chat-web'), 'chat-web-v1');
    // kamal-proxy v0.9's list: every cell styled, padded, two spaces apart.
    const listed = await testHosts.docker(host1, ['exec', 'kamal-proxy', 'kamal-proxy', 'list']);
    const rows = listed.stdout.split('\n').filter(Boolean);
    // eslint-disable-next-line no-control-regex
    assert.match(rows[0] ?? '', /^\x1b\[3;94mService\x1b\[0m +\x1b\[3;94mHost\x1b\[0m +\x1b\[3;94mPath\x1b\[0m +\x1b\[3;94mTarget\x1b\[0m +\x1b\[3;94mState\x1b\[0m +\x1b\[3;94mTLS\x1b\[0m {2}$/);
    assert.ok(rows.some((row) => new RegExp(`^\x1b\\[1;34mchat-web\x1b\\[0m +\x1b\\[m\x1b\\[0m +\x1b\\[m/\x1b\\[0m +\x1b\\[m${healthyId}:80\x1b\\[0m +\x1b\\[mrunning\x1b\\[0m +\x1b\\[mno\x1b\\[0m +$`).test(row)), JSON.stringify(rows));

    // Flags kamal-proxy v0.9 does not know, or values it cannot parse, are refused as cobra refuses them, changing nothing.
    for (const [flags, error] of [
      ['--bogus-flag', /^Error: unknown flag: --bogus-flag$/m],
      ['--deploy-timeout=10', /^Error: invalid argument "10" for "--deploy-timeout" flag: time: invalid duration "10"$/m],
      ['--tls', /^Error: host must be set when using TLS$/m],
      ['--buffer-requests=maybe', /^Error: invalid argument "maybe" for "--buffer-requests" flag/m],
      ['--max-request-body=5', /^Error: max-request-body can only be set when request buffering is enabled$/m],
    ] as const) {
      const refused = await testHosts.docker(host1, ['exec', 'kamal-proxy', 'kamal-proxy', 'deploy', 'chat-web', `--target=${healthyId}:80`, flags]);
      assert.equal(refused.code, 1, `${flags}: ${refused.stderr}`);
      assert.match(refused.stderr, error);
      assert.equal(await testHosts.proxyTargetContainer(host1, 'chat-web'), 'chat-web-v1');
    }

    await testHosts.makeUnhealthy(host1, 'chat-web-v2');
    const v2Id = (await testHosts.docker(host1, ['inspect', '--format', '{{.Id}}', 'chat-web-v2'])).stdout.trim().slice(0, 12);
    const backToSick = await testHosts.exec(host1, `docker exec kamal-proxy kamal-proxy deploy chat-web --target=${v2Id}:80 --deploy-timeout=1s`);
    assert.equal(backToSick.code, 1);
    assert.equal(await testHosts.proxyTargetContainer(host1, 'chat-web'), 'chat-web-v1');
    const history = await proxyHistory(testHosts, host1);
    assert.deepEqual(history.slice(-3).map((entry) => entry.outcome), ['failed', 'deployed', 'failed']);
    await testHosts.makeHealthy(host1, 'chat-web-v2');
  });

  it('builds images that exit at once or serve their version', async function () {
    const [host0] = testHosts.hosts;
    assert.ok(host0);
    await testHosts.docker(host0, ['run', '-d', '--name', 'dies', 'user/app:v4']);
    await waitFor('the v4 container to exit', async () => {
      const state = await testHosts.docker(host0, ['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'dies']);
      return state.stdout.trim() === 'exited 1';
    }, 10_000);
    const version = await testHosts.exec(
      host0,
      `docker exec kamal-proxy sh -c 'printf "GET /version HTTP/1.0\\r\\n\\r\\n" | nc -w 2 $(nslookup chat-web-v2 127.0.0.11 | awk "/^Name:/ {n=1; next} n && /^Address/ {print \\$2; exit}") 80 | tail -1'`,
    );
    assert.equal(version.stdout.trim(), 'v2', version.stderr);
    const stopStarted = Date.now();
    await testHosts.docker(host0, ['stop', 'chat-web-v2']);
    assert.ok(Date.now() - stopStarted < 5_000, 'docker stop waited for the grace period: PID 1 ignores SIGTERM');
    await testHosts.docker(host0, ['start', 'chat-web-v2']);
  });

  it('stops and restarts sshd, and takes the link down and up', async function () {
    const [, , host2] = testHosts.hosts;
    assert.ok(host2);
    await testHosts.stopSshd(host2);
    assert.notEqual((await testHosts.exec(host2, 'true')).code, 0);
    await testHosts.startSshd(host2);
    assert.equal((await testHosts.exec(host2, 'echo up')).stdout.trim(), 'up');

    await testHosts.linkDown(host2);
    assert.equal(await tcpOpen(host2.address, 22, 1000), false);
    await testHosts.linkUp(host2);
    assert.equal((await testHosts.exec(host2, 'echo back')).stdout.trim(), 'back');
  });

  it('slows a link by the asked round-trip delay, throttles it with tbf, and clears both', async function () {
    const [, , host2] = testHosts.hosts;
    assert.ok(host2);
    const timeEcho = async (): Promise<number> => {
      const started = Date.now();
      const result = await testHosts.exec(host2, 'echo hi');
      assert.equal(result.stdout.trim(), 'hi', result.stderr);
      return Date.now() - started;
    };
    const baseline = Math.min(await timeEcho(), await timeEcho());
    const mode = await testHosts.slowLink(host2, 300);
    assert.ok(mode === 'netem' || mode === 'ssh-relay');
    const slowed = await timeEcho();
    // An ssh login takes several round trips, each now 300 ms longer.
    assert.ok(slowed - baseline >= 900, `baseline ${baseline} ms, slowed ${slowed} ms (${mode})`);
    await testHosts.clearLink(host2);
    assert.ok((await timeEcho()) < slowed, 'clearLink did not remove the delay');

    await testHosts.throttleLink(host2, 256);
    const shaped = await run('tc', ['qdisc', 'show', 'dev', `${testHosts.runId}h2o`]);
    assert.match(shaped.stdout, /tbf .*rate 256Kbit/);
    assert.equal((await testHosts.exec(host2, 'echo slow')).stdout.trim(), 'slow');
    await testHosts.clearLink(host2);
    assert.doesNotMatch((await run('tc', ['qdisc', 'show', 'dev', `${testHosts.runId}h2o`])).stdout, /tbf/);
  });

  it('tears down without leaving a namespace, process, mount, link or directory behind', async function () {
    const pids = testHosts.livePids();
    assert.ok(pids.length >= 4 * 4, `expected sshd, dockerd, containerd, shims and containers on 4 hosts, saw ${pids.length}`);
    assert.ok(mountsUnder(testHosts.runDir).length > 0, 'running containers should have mounts');
    await testHosts.stop();
    assert.deepEqual(pids.filter(processAlive), []);
    assert.deepEqual((await namespaces()).filter((name) => name.startsWith(testHosts.runId)), []);
    assert.deepEqual(mountsUnder(testHosts.runDir), []);
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(testHosts.runDir), false);
    assert.equal(existsSync(testHosts.runDir), false);
    assert.equal((await run('ip', ['-o', 'link', 'show'])).stdout.includes(testHosts.runId), false);
    assert.equal((await run('ip', ['route', 'show'])).stdout.includes(`via ${testHosts.hosts[0]?.address} `), false);
  });
});

describe('test hosts clean-up of crashed runs', function () {
  this.timeout(120_000);

  before(function () {
    requireHostsOrSkip(this);
  });

  it('cleans up after a run whose process was killed', async function () {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', '-e', `
      require(${JSON.stringify(join(__dirname, 'harness.ts'))}).startHosts({ count: 1, images: [{ version: 'v1' }] })
        .then((hosts) => { console.log(JSON.stringify({ runId: hosts.runId, runDir: hosts.runDir, pids: hosts.livePids() })); });
      // Stay alive until killed: a natural exit would run the harness's own clean-up.
      setInterval(() => undefined, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    await waitFor('the child run to start its host', () => output.includes('\n'), 60_000, 100);
    const crashed = JSON.parse(output) as { runId: string; runDir: string; pids: number[] };
    child.kill('SIGKILL');
    await waitFor('the child to die', () => child.exitCode !== null || child.signalCode !== null, 10_000);
    assert.ok((await namespaces()).some((name) => name.startsWith(crashed.runId)), 'the killed run should have left its namespace');

    const problems = cleanupLeftovers();
    assert.deepEqual(problems, []);
    assert.deepEqual((await namespaces()).filter((name) => name.startsWith(crashed.runId)), []);
    assert.deepEqual(crashed.pids.filter(processAlive), []);
    assert.equal(existsSync(crashed.runDir), false);
    assert.deepEqual(mountsUnder(crashed.runDir), []);
  });
});
