import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeployRollbackError, isHostError, type HostContainer } from '../../../src/core/model';
import type { HostSession, SessionPool, SshTarget } from '../../../src/core/ssh/types';
import { KamalSource } from '../../../src/core/kamal/source';
import { FakeSessions, fixtureId, inventoryOutput, configFixture, type HostBehaviour } from './inventory-fixtures.test';

const DEPLOY_YML = `service: chat
image: bars/app
registry:
  server: localhost:5555
servers:
  web:
    - web-1
    - web-2
ssh:
  user: deploy
  port: 2222
`;

class FakePool implements SessionPool {
  readonly targets: SshTarget[] = [];
  constructor(private readonly sessions: FakeSessions) {}
  session(target: SshTarget): Promise<HostSession> {
    this.targets.push(target);
    return this.sessions.sessionFor(target.host);
  }
  dispose(): void {}
}

/** What web-1/web-2 answer for the base config: v1 and v2 everywhere, v2 current. */
function hostsWithTwoVersions(lockDetails?: string): Record<string, HostBehaviour> {
  const config = configFixture({ roles: { web: ['web-1', 'web-2'] } });
  const out = (host: string, withLock: boolean) =>
    inventoryOutput(
      config,
      [
        { host, id: fixtureId(), role: 'web', version: 'v1', created: '2026-11-20T10:00:00Z', state: 'exited' },
        { host, id: fixtureId(), role: 'web', version: 'v2', created: '2026-11-21T10:00:00Z', state: 'running' },
      ],
      { latestVersion: 'v2', lockDetails: withLock ? lockDetails : undefined },
    );
  return { 'web-1': { stdout: out('web-1', true) }, 'web-2': { stdout: out('web-2', false) } };
}

describe('kamal release source', () => {
  let dir: string;
  let configFile: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kamal-source-'));
    await fs.mkdir(path.join(dir, 'config'));
    configFile = path.join(dir, 'config', 'deploy.yml');
    await fs.writeFile(configFile, DEPLOY_YML);
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('has one "default" environment without destinations, with the service as its app and the lock from the primary host', async () => {
    const sessions = new FakeSessions(hostsWithTwoVersions('Locked by: Jane at 2026-11-23T07:30:00Z\nVersion: v2\nMessage: db migration'));
    const source = new KamalSource(configFile, { pool: new FakePool(sessions), connectAllowed: () => true, env: {} });
    const environments = await source.environments();
    assert.deepEqual(environments.map((e) => [e.id, e.name, e.problems.length]), [[`kamal:${configFile}:default`, 'default', 0]]);
    const apps = await source.apps(environments[0]);
    assert.deepEqual(apps.map((a) => [a.id, a.name]), [[`kamal:${configFile}:default/chat`, 'chat']]);
    assert.deepEqual(apps[0].lock, { holder: 'Jane', lockedAt: '2026-11-23T07:30:00Z', version: 'v2', message: 'db migration' });
  });

  it('lists destinations, the base file too unless it requires a destination, and a broken destination with its problem', async () => {
    await fs.writeFile(path.join(dir, 'config', 'deploy.staging.yml'), 'servers:\n  web:\n    - stage-1\n');
    await fs.writeFile(path.join(dir, 'config', 'deploy.broken.yml'), 'servers: [oops\n');
    const source = new KamalSource(configFile, { pool: new FakePool(new FakeSessions({})), connectAllowed: () => false, env: {} });
    const environments = await source.environments();
    assert.deepEqual(environments.map((e) => e.name), ['default', 'broken', 'staging']);
    const broken = environments[1];
    assert.equal(broken.problems.length, 1);
    assert.equal(broken.problems[0].file, path.join(dir, 'config', 'deploy.broken.yml'));
    assert.match(broken.problems[0].message, /YAML/);
    assert.deepEqual(await source.apps(broken), []);
    assert.equal(environments[2].problems.length, 0);

    await fs.writeFile(configFile, `${DEPLOY_YML}require_destination: true\n`);
    source.refresh();
    assert.deepEqual((await source.environments()).map((e) => e.name), ['broken', 'staging']);
  });

  it('lists environments and apps but refuses releases in Restricted Mode, without connecting', async () => {
    const sessions = new FakeSessions(hostsWithTwoVersions());
    const source = new KamalSource(configFile, { pool: new FakePool(sessions), connectAllowed: () => false, env: {} });
    const [environment] = await source.environments();
    const [app] = await source.apps(environment);
    assert.equal(app.name, 'chat');
    assert.equal(app.lock, undefined);
    await assert.rejects(source.releases(app), (error: unknown) => error instanceof DeployRollbackError && /Restricted Mode/.test(error.message) && error.message.includes(configFile));
    assert.equal(sessions.connects.size, 0);
  });

  it('reads the hosts once per refresh: apps, releases and host entries share one exec per host', async () => {
    const sessions = new FakeSessions(hostsWithTwoVersions());
    const pool = new FakePool(sessions);
    const source = new KamalSource(configFile, { pool, connectAllowed: () => true, env: {} });
    const [environment] = await source.environments();
    const [app] = await source.apps(environment);
    const [releases] = await Promise.all([source.releases(app), source.releases(app, { limit: 1 })]);
    assert.deepEqual(releases.map((r) => [r.version, r.current, r.previous === true, r.rollbackable]), [['v2', true, false, false], ['v1', false, true, true]]);
    assert.deepEqual((await source.releases(app, { limit: 1 })).map((r) => r.version), ['v2']);
    const entries = await source.hostEntries(releases[1]);
    assert.deepEqual(entries.map((e) => (isHostError(e) ? e.message : `${e.host} ${e.name}`)), ['web-1 chat-web-v1', 'web-2 chat-web-v1']);
    assert.deepEqual([sessions.execCount('web-1'), sessions.execCount('web-2')], [1, 1]);
    // The ssh block of the config decides where to connect.
    assert.deepEqual(pool.targets.map((t) => `${t.user}@${t.host}:${t.port}`).sort(), ['deploy@web-1:2222', 'deploy@web-2:2222']);

    source.refresh();
    await source.releases(app);
    assert.deepEqual([sessions.execCount('web-1'), sessions.execCount('web-2')], [2, 2]);
  });

  it('leaves the lock status out when asked (no host read), and reads it otherwise', async () => {
    const sessions = new FakeSessions(hostsWithTwoVersions('Locked by: Jane at 2026-11-23T07:30:00Z\nVersion: v2\nMessage: db migration'));
    const source = new KamalSource(configFile, { pool: new FakePool(sessions), connectAllowed: () => true, env: {} });
    const [environment] = await source.environments();
    const [app] = await source.apps(environment, { readLock: false });
    assert.equal(app.name, 'chat');
    assert.equal(app.lock, undefined);
    assert.deepEqual([sessions.execCount('web-1'), sessions.execCount('web-2'), sessions.connects.size], [0, 0, 0]);
    const [withLock] = await source.apps(environment);
    assert.equal(withLock.lock?.holder, 'Jane');
  });

  it('connects ahead to every host once: the first use of each takes that connection, or its failure', async () => {
    const sessions = new FakeSessions({ ...hostsWithTwoVersions(), 'web-2': { connectError: 'Connection refused' } });
    const pool = new FakePool(sessions);
    const source = new KamalSource(configFile, { pool, connectAllowed: () => true, env: {} });
    const [environment] = await source.environments();
    await source.connectAhead(environment);
    await source.connectAhead(environment);
    assert.deepEqual([...sessions.connects].sort(), [['web-1', 1], ['web-2', 1]]);
    assert.deepEqual(pool.targets.map((t) => `${t.user}@${t.host}:${t.port}`).sort(), ['deploy@web-1:2222', 'deploy@web-2:2222']);
    const [app] = await source.apps(environment);
    const releases = await source.releases(app);
    // web-2's failed connect is what the read reports: it was not dialled again for it.
    assert.equal(releases[1].reason, 'host web-2 unreachable');
    assert.deepEqual([...sessions.connects].sort(), [['web-1', 1], ['web-2', 1]]);
    // Afterwards each use goes to the pool, as without connecting ahead.
    source.refresh();
    await source.releases(app).catch(() => undefined);
    assert.deepEqual([...sessions.connects].sort(), [['web-1', 2], ['web-2', 2]]);
  });

  it('does not connect ahead in Restricted Mode', async () => {
    const sessions = new FakeSessions(hostsWithTwoVersions());
    const source = new KamalSource(configFile, { pool: new FakePool(sessions), connectAllowed: () => false, env: {} });
    const [environment] = await source.environments();
    await source.connectAhead(environment);
    assert.equal(sessions.connects.size, 0);
  });

  it('shows an unreachable host as an error entry under each release', async () => {
    const sessions = new FakeSessions({ ...hostsWithTwoVersions(), 'web-2': { connectError: 'All configured authentication methods failed' } });
    const source = new KamalSource(configFile, { pool: new FakePool(sessions), connectAllowed: () => true, env: {} });
    const [environment] = await source.environments();
    const [app] = await source.apps(environment);
    const releases = await source.releases(app);
    assert.equal(releases[1].reason, 'host web-2 unreachable');
    const entries = await source.hostEntries(releases[1]);
    assert.deepEqual(entries.map((e) => (isHostError(e) ? `error ${e.host}: ${e.message}` : e.name)), [
      'chat-web-v1',
      'error web-2: Could not connect to web-2: All configured authentication methods failed',
    ]);
  });

  it('fails with every host\'s reason when no host can be read, and reads again after the hosts are back', async () => {
    const behaviours: Record<string, HostBehaviour> = {
      'web-1': { connectError: 'connect ECONNREFUSED 10.0.0.1:2222' },
      'web-2': { connectError: 'connect ETIMEDOUT 10.0.0.2:2222' },
    };
    const sessions = new FakeSessions(behaviours);
    const source = new KamalSource(configFile, { pool: new FakePool(sessions), connectAllowed: () => true, env: {} });
    const [environment] = await source.environments();
    const [app] = await source.apps(environment);
    await assert.rejects(source.releases(app), {
      name: 'DeployRollbackError',
      message: 'Could not read any host of chat: Could not connect to web-1: connect ECONNREFUSED 10.0.0.1:2222; Could not connect to web-2: connect ETIMEDOUT 10.0.0.2:2222',
    });
    Object.assign(behaviours, hostsWithTwoVersions());
    source.refresh();
    assert.deepEqual((await source.releases(app)).map((r) => r.version), ['v2', 'v1']);
  });

  it('reads container logs on the container host with timestamps', async () => {
    const sessions = new FakeSessions({ 'web-2': { stdout: '2026-11-23T07:30:00.000000000Z booted\n' } });
    const source = new KamalSource(configFile, { pool: new FakePool(sessions), connectAllowed: () => true, env: {} });
    const container: HostContainer = { id: 'abc', host: 'web-2', role: 'web', name: 'chat-web-v1', state: 'exited', status: 'Exited (0)', image: 'x', created: '', version: 'v1' };
    assert.equal(await source.containerLogs(container, 50), '2026-11-23T07:30:00.000000000Z booted\n');
    assert.deepEqual(sessions.execs.get('web-2'), ['docker logs --timestamps --tail 50 chat-web-v1 2>&1']);
  });

  it('watches the deploy config and its destinations', () => {
    const source = new KamalSource(configFile, { pool: new FakePool(new FakeSessions({})), connectAllowed: () => true });
    assert.deepEqual(source.watchPatterns(), ['config/deploy*.yml']);
    assert.equal(source.kind, 'kamal');
    assert.equal(source.location, configFile);
  });
});
