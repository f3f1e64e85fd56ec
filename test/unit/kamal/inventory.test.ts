import { strict as assert } from 'node:assert';
import {
  containerLogsCommand,
  inventoryCommand,
  listContainersArgv,
  lockDirectory,
  latestImage,
} from '../../../src/core/kamal/commands/inventory';
import { envFileDigest, textDigest } from '../../../src/core/kamal/commands/env-file';
import {
  currentVersionsByRole,
  dockerTimeToIso,
  parseDockerLabels,
  parseInventoryOutput,
  parseLockDetails,
  readKamalInventory,
  versionFromContainerName,
  type InventoryContainer,
  type ParsedHostOutput,
} from '../../../src/core/kamal/hosts/inventory';
import { quoteArgv } from '../../../src/core/shell';
import { DeployRollbackError } from '../../../src/core/model';
import { FakeSessions, REAL_DOCKER_OUTPUT, configFixture, fixtureId, inventoryOutput } from './inventory-fixtures.test';

function parsed(output: ReturnType<typeof parseInventoryOutput>): ParsedHostOutput {
  if ('error' in output) assert.fail(`expected a parsed host, got error: ${output.error}`);
  return output;
}

describe('kamal inventory command', () => {
  it('lists containers with Kamal filters for a destination, the latest-image containers when several run, and the lock, in one line', () => {
    const config = configFixture({ destination: 'prod' });
    assert.equal(
      inventoryCommand(config, { withLock: true }),
      'echo @@deploy-rollback:containers ; ' +
        "c=$(docker container ls --all --filter label=service=chat --filter label=destination=prod --format '{{json .}}') ; s=$? ; " +
        `printf '%s\\n' "$c" ; echo @@deploy-rollback:containers-exit:$s ; ` +
        `case "$c" in *'"State":"running"'*'"State":"running"'*|*'"State":"running"'*'"State":"restarting"'*|*'"State":"restarting"'*'"State":"running"'*|*'"State":"restarting"'*'"State":"restarting"'*) ` +
        'echo @@deploy-rollback:latest ; ' +
        'docker container ls --all --quiet --filter label=service=chat --filter label=destination=prod --filter ancestor=localhost:5555/bars/app:latest-prod ; ' +
        'echo @@deploy-rollback:latest-exit:$? ;; esac ; echo @@deploy-rollback:lock ; ' +
        'test -e .kamal/lock-chat-prod && echo @@deploy-rollback:locked && cat .kamal/lock-chat-prod/details | base64 -d | base64 ; echo ; ' +
        "echo @@deploy-rollback:audit ; grep -s -F -e 'Booted app version ' .kamal/chat-prod-audit.log | tail -n 300 ; " +
        'echo @@deploy-rollback:end',
    );
  });

  it('filters on an empty destination label and the plain latest tag without a destination, and skips the lock off the primary host', () => {
    const config = configFixture();
    assert.equal(
      inventoryCommand(config, { withLock: false }),
      'echo @@deploy-rollback:containers ; ' +
        "c=$(docker container ls --all --filter label=service=chat --filter label=destination= --format '{{json .}}') ; s=$? ; " +
        `printf '%s\\n' "$c" ; echo @@deploy-rollback:containers-exit:$s ; ` +
        `case "$c" in *'"State":"running"'*'"State":"running"'*|*'"State":"running"'*'"State":"restarting"'*|*'"State":"restarting"'*'"State":"running"'*|*'"State":"restarting"'*'"State":"restarting"'*) ` +
        'echo @@deploy-rollback:latest ; ' +
        'docker container ls --all --quiet --filter label=service=chat --filter label=destination= --filter ancestor=localhost:5555/bars/app:latest ; ' +
        'echo @@deploy-rollback:latest-exit:$? ;; esac ; ' +
        "echo @@deploy-rollback:audit ; grep -s -F -e 'Booted app version ' .kamal/chat-audit.log | tail -n 300 ; " +
        'echo @@deploy-rollback:end',
    );
  });

  it('prints the sections the parser reads when run by a real shell', async () => {
    const { execFile } = await import('node:child_process');
    // A stand-in `docker` on PATH answering like docker 20: two running containers, so the latest-tag listing runs too.
    const { promises: fs } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const bin = await fs.mkdtemp(path.join(os.tmpdir(), 'fake-docker-'));
    try {
      const config = configFixture({ destination: 'prod', roles: { web: ['web-1'], job: ['web-1'] } });
      const psLines = REAL_DOCKER_OUTPUT.split('\n').filter((line) => line.startsWith('{'));
      await fs.writeFile(path.join(bin, 'ps.out'), `${psLines.join('\n')}\n`);
      await fs.writeFile(
        path.join(bin, 'docker'),
        `#!/bin/sh\ncase "$*" in *ancestor=localhost:5555/bars/app:latest-prod*) printf 'd9e1218f6498\\n56ddc0e2d939\\n' ;; *) cat "${bin}/ps.out" ;; esac\n`,
        { mode: 0o755 },
      );
      // The web role's env file is there, the job's is not: their digests, for planning without an exchange.
      const envText = 'RAILS_LOG_LEVEL=info\nSECRET_KEY_BASE=s3cr3t\n';
      await fs.mkdir(path.join(bin, '.kamal/apps/chat-prod/env/roles'), { recursive: true });
      await fs.writeFile(path.join(bin, '.kamal/apps/chat-prod/env/roles/web.env'), envText);
      const command = inventoryCommand(config, { withLock: false, envDigests: { roles: ['job', 'web'], nonce: 'n1' } });
      assert.ok(command.endsWith(`echo @@deploy-rollback:env-digest:job ; ${envFileDigest(config, 'job', 'n1')} ; echo @@deploy-rollback:env-digest:web ; ${envFileDigest(config, 'web', 'n1')} ; echo @@deploy-rollback:end`), command);
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile('sh', ['-c', command], { cwd: bin, env: { PATH: `${bin}:/usr/bin:/bin` } }, (error, out) => (error ? reject(error) : resolve(out))),
      );
      const host = parsed(parseInventoryOutput(config, 'web-1', { code: 0, stdout, stderr: '' }));
      assert.equal(host.containers.length, 5);
      assert.deepEqual(host.currentVersions, { web: 'v2', job: 'v2' });
      assert.deepEqual(host.envDigests, { job: null, web: textDigest('n1', envText) });
    } finally {
      await fs.rm(bin, { recursive: true, force: true });
    }
  });

  it('names the lock directory and latest tag as Kamal does', () => {
    assert.equal(lockDirectory('chat'), '.kamal/lock-chat');
    assert.equal(lockDirectory('chat', 'staging'), '.kamal/lock-chat-staging');
    assert.equal(latestImage('r/app'), 'r/app:latest');
    assert.equal(latestImage('r/app', 'staging'), 'r/app:latest-staging');
    assert.deepEqual(listContainersArgv({ service: 'chat', destination: 'staging' }), [
      'docker', 'container', 'ls', '--all', '--filter', 'label=service=chat', '--filter', 'label=destination=staging', '--format', '{{json .}}',
    ]);
  });

  it('refuses a service name that could break out of the command', () => {
    assert.throws(() => inventoryCommand({ ...configFixture(), service: 'chat;rm -rf ~' }, { withLock: true }), DeployRollbackError);
    assert.throws(() => inventoryCommand({ ...configFixture(), destination: '$(id)' }, { withLock: true }), DeployRollbackError);
  });

  it('reads container logs with timestamps and a tail, quoting the name', () => {
    assert.equal(containerLogsCommand('chat-web-v2', 200), 'docker logs --timestamps --tail 200 chat-web-v2 2>&1');
    assert.equal(containerLogsCommand("x'y", 5), `${quoteArgv(['docker', 'logs', '--timestamps', '--tail', '5', "x'y"])} 2>&1`);
    assert.throws(() => containerLogsCommand('c', 0), RangeError);
  });
});

describe('kamal inventory parsing', () => {
  const config = configFixture({ destination: 'prod', roles: { web: ['web-1'], job: ['web-1'] } });

  it('parses real docker output: containers, roles from labels, versions from names, replaced copies marked', () => {
    const host = parsed(parseInventoryOutput(config, 'web-1', { code: 0, stdout: REAL_DOCKER_OUTPUT, stderr: '' }));
    assert.deepEqual(
      host.containers.map((c) => [c.name, c.role, c.version, c.state, c.replaced]),
      [
        ['chat-web-prod-v2', 'web', 'v2', 'running', false],
        ['chat-job-prod-v2', 'job', 'v2', 'running', false],
        ['chat-web-prod-v3', 'web', 'v3', 'running', false],
        ['chat-web-prod-v2_replaced_4817762cd88b9b78', 'web', 'v2', 'exited', true],
        ['chat-web-prod-v1', 'web', 'v1', 'exited', false],
      ],
    );
    const first = host.containers[0];
    assert.equal(first.id, 'd9e1218f6498');
    assert.equal(first.host, 'web-1');
    assert.equal(first.image, 'localhost:5555/bars/app:v2');
    assert.equal(first.created, '2026-11-23T07:31:28Z');
    assert.equal(first.status, 'Up Less than a second');
    assert.deepEqual(host.warnings, []);
  });

  it('takes the current version from the container on the latest tag even when a newer one runs', () => {
    const host = parsed(parseInventoryOutput(config, 'web-1', { code: 0, stdout: REAL_DOCKER_OUTPUT, stderr: '' }));
    assert.deepEqual(host.currentVersions, { web: 'v2', job: 'v2' });
    // Point REPO:latest-prod at v3's container: v2's (created later) still runs but is not current.
    const v3OnLatest = REAL_DOCKER_OUTPUT.replace('d9e1218f6498\n56ddc0e2d939\na74c7c901ad0\n', '9cc4cc96ef17\n');
    const moved = parsed(parseInventoryOutput(config, 'web-1', { code: 0, stdout: v3OnLatest, stderr: '' }));
    assert.deepEqual(moved.currentVersions, { web: 'v3', job: 'v2' });
  });

  it('falls back to the newest running container when no container runs the latest tag', () => {
    const containers: InventoryContainer[] = [
      container({ version: 'v1', created: '2026-01-01T00:00:00Z', order: 2 }),
      container({ version: 'v3', created: '2026-01-03T00:00:00Z', order: 0 }),
      container({ version: 'v4', created: '2026-01-04T00:00:00Z', order: 0, state: 'exited' }),
      container({ version: 'v2', created: '2026-01-02T00:00:00Z', order: 1, state: 'restarting' }),
    ];
    assert.deepEqual(currentVersionsByRole(containers, new Set()), { web: 'v3' });
    assert.deepEqual(currentVersionsByRole(containers, new Set([containers[3].id])), { web: 'v2' });
    // A stopped container on the latest tag does not count: Kamal looks at running/restarting only.
    assert.deepEqual(currentVersionsByRole(containers, new Set([containers[2].id])), { web: 'v3' });
  });

  it('has no current version for a role with nothing running', () => {
    assert.deepEqual(currentVersionsByRole([container({ version: 'v1', created: '2026-01-01T00:00:00Z', order: 0, state: 'exited' })], new Set()), {});
  });

  it('drops containers of another destination or service even if docker listed them', () => {
    const stdout = inventoryOutput(config, [
      { host: 'web-1', id: fixtureId(), role: 'web', version: 'v1', created: '2026-01-01T00:00:00Z' },
      { host: 'web-1', id: fixtureId(), role: 'web', version: 'v9', created: '2026-01-02T00:00:00Z', destinationLabel: 'staging' },
    ]);
    const host = parsed(parseInventoryOutput(config, 'web-1', { code: 0, stdout, stderr: '' }));
    assert.deepEqual(host.containers.map((c) => c.version), ['v1']);
  });

  it('keeps reading a host when one docker line is garbage, with a warning', () => {
    const stdout = inventoryOutput(config, [{ host: 'web-1', id: fixtureId(), role: 'web', version: 'v1', created: '2026-01-01T00:00:00Z' }]).replace(
      '@@deploy-rollback:containers\n',
      '@@deploy-rollback:containers\nWARNING: something odd\n',
    );
    const host = parsed(parseInventoryOutput(config, 'web-1', { code: 0, stdout, stderr: '' }));
    assert.equal(host.containers.length, 1);
    assert.equal(host.warnings.length, 1);
    assert.match(host.warnings[0], /not JSON: WARNING: something odd/);
  });

  it('reports a docker failure with its message', () => {
    const stdout = '@@deploy-rollback:containers\n@@deploy-rollback:containers-exit:1\n@@deploy-rollback:latest\n@@deploy-rollback:latest-exit:1\n@@deploy-rollback:end\n';
    const stderr = 'permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock\n';
    const result = parseInventoryOutput(config, 'web-1', { code: 0, stdout, stderr });
    assert.deepEqual(result, { error: `docker container ls failed on web-1: ${stderr.trim()}` });
  });

  it('reports output without the markers (e.g. a non-POSIX login shell) as unexpected', () => {
    const result = parseInventoryOutput(config, 'web-1', { code: 127, stdout: '', stderr: 'fish: Unknown command: echo\n' });
    assert.deepEqual(result, { error: 'Unexpected answer from web-1 while listing containers: fish: Unknown command: echo' });
  });

  it('splits docker labels whose values contain commas', () => {
    const labels = parseDockerLabels('destination=,role=web,traefik.rule=Host(`a`,`b`),service=chat');
    assert.equal(labels.get('role'), 'web');
    assert.equal(labels.get('destination'), '');
    assert.equal(labels.get('traefik.rule'), 'Host(`a`,`b`)');
    assert.equal(labels.get('service'), 'chat');
  });

  it('extracts versions from names and refuses names of other roles', () => {
    assert.deepEqual(versionFromContainerName('chat-web-prod-abc123', 'chat', 'web', 'prod'), { version: 'abc123', replaced: false });
    assert.deepEqual(versionFromContainerName('chat-web-v1.2-rc', 'chat', 'web'), { version: 'v1.2-rc', replaced: false });
    assert.deepEqual(versionFromContainerName('chat-web-v2_replaced_4817762cd88b9b78', 'chat', 'web'), { version: 'v2', replaced: true });
    assert.equal(versionFromContainerName('chat-job-v2', 'chat', 'web'), undefined);
    assert.equal(versionFromContainerName('chat-web-', 'chat', 'web'), undefined);
  });

  it('converts docker times to ISO 8601', () => {
    assert.equal(dockerTimeToIso('2026-11-23 07:31:28 +0000 UTC'), '2026-11-23T07:31:28Z');
    assert.equal(dockerTimeToIso('2026-11-23 09:31:28 +0200 CEST'), '2026-11-23T07:31:28Z');
    assert.equal(dockerTimeToIso('yesterday'), 'yesterday');
  });
});

describe('kamal deploy lock parsing', () => {
  it('reads holder, time, version and message', () => {
    assert.deepEqual(parseLockDetails('Locked by: Jane Doe at 2026-11-23T07:30:00Z\nVersion: v3\nMessage: fixing db'), {
      holder: 'Jane Doe',
      lockedAt: '2026-11-23T07:30:00Z',
      version: 'v3',
      message: 'fixing db',
    });
  });

  it('keeps " at " inside the holder name and a multi-line message', () => {
    assert.deepEqual(parseLockDetails('Locked by: Ann at Ops at 2026-11-23T07:30:00Z\nVersion: v3\nMessage: line one\nline two\n'), {
      holder: 'Ann at Ops',
      lockedAt: '2026-11-23T07:30:00Z',
      version: 'v3',
      message: 'line one\nline two',
    });
  });

  it('returns undefined for text that is not lock details', () => {
    assert.equal(parseLockDetails('garbage'), undefined);
  });

  it('reports a lock directory without readable details as such, with the release advice, naming nobody', () => {
    const config = configFixture();
    const stdout = inventoryOutput(config, []).replace('@@deploy-rollback:end', '@@deploy-rollback:lock\n@@deploy-rollback:locked\n\n@@deploy-rollback:end');
    const host = parsed(parseInventoryOutput(config, 'web-1', { code: 0, stdout, stderr: '' }));
    assert.deepEqual(host.lock, {
      holder: 'nobody recorded',
      unreadable: true,
      message: 'The lock directory exists but its details are empty or unreadable: if no deploy is running, release it with `kamal lock release`.',
    });
  });

  it('reports no lock when the lock directory is absent', () => {
    const config = configFixture();
    const host = parsed(parseInventoryOutput(config, 'web-1', { code: 0, stdout: inventoryOutput(config, [], { withLock: true }), stderr: '' }));
    assert.equal(host.lock, undefined);
  });
});

describe('kamal inventory across hosts', () => {
  const config = configFixture({ roles: { web: ['web-1', 'web-2', 'web-3'] } });

  it('runs exactly one exec per host, the lock only on the primary host', async () => {
    const out = (host: string) => inventoryOutput(config, [{ host, id: fixtureId(), role: 'web', version: 'v1', created: '2026-01-01T00:00:00Z' }], { latestVersion: 'v1' });
    const sessions = new FakeSessions({ 'web-1': { stdout: out('web-1') }, 'web-2': { stdout: out('web-2') }, 'web-3': { stdout: out('web-3') } });
    const inventory = await readKamalInventory(config, sessions.sessionFor);
    assert.deepEqual(['web-1', 'web-2', 'web-3'].map((host) => sessions.execCount(host)), [1, 1, 1]);
    assert.match(sessions.execs.get('web-1')![0], /lock-chat/);
    assert.doesNotMatch(sessions.execs.get('web-2')![0], /lock-chat/);
    assert.equal(inventory.primaryHost, 'web-1');
    assert.deepEqual(inventory.hosts.map((host) => host.currentVersions), [{ web: 'v1' }, { web: 'v1' }, { web: 'v1' }]);
  });

  it('turns a host that cannot connect or whose exec fails into an error entry and still reads the others', async () => {
    const sessions = new FakeSessions({
      'web-1': { stdout: inventoryOutput(config, [{ host: 'web-1', id: fixtureId(), role: 'web', version: 'v1', created: '2026-01-01T00:00:00Z' }], { lockDetails: 'Locked by: Jane at 2026-01-01T00:00:00Z\nVersion: v1\nMessage: hold' }) },
      'web-2': { connectError: 'connect ETIMEDOUT 10.250.2.2:22' },
      'web-3': { execError: 'channel closed' },
    });
    const inventory = await readKamalInventory(config, sessions.sessionFor);
    assert.equal(inventory.hosts[0].error, undefined);
    assert.equal(inventory.hosts[0].containers.length, 1);
    assert.equal(inventory.hosts[1].error?.message, 'Could not connect to web-2: connect ETIMEDOUT 10.250.2.2:22');
    assert.equal(inventory.hosts[2].error?.message, 'Could not list containers on web-3: channel closed');
    assert.equal(inventory.lock?.holder, 'Jane');
  });

  it('fails as a whole when aborted instead of reporting every host unreachable', async () => {
    const controller = new AbortController();
    controller.abort();
    const sessions = new FakeSessions({ 'web-1': { connectError: 'aborted' }, 'web-2': { connectError: 'aborted' }, 'web-3': { connectError: 'aborted' } });
    await assert.rejects(readKamalInventory(config, sessions.sessionFor, { signal: controller.signal }), /aborted/);
  });
});

function container(fields: Partial<InventoryContainer> & Pick<InventoryContainer, 'version' | 'created' | 'order'>): InventoryContainer {
  return {
    id: fixtureId(),
    host: 'web-1',
    role: 'web',
    name: `chat-web-${fields.version}`,
    state: 'running',
    status: 'Up',
    image: `r/app:${fields.version}`,
    replaced: false,
    ...fields,
  };
}
