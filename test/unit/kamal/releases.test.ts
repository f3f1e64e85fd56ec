import { strict as assert } from 'node:assert';
import type { App, HostEntry, Release } from '../../../src/core/model';
import { isHostError } from '../../../src/core/model';
import { readKamalInventory, type KamalInventory } from '../../../src/core/kamal/hosts/inventory';
import { appCurrentVersion, kamalReleaseHistory, kamalReleaseHostEntries, kamalReleases, kamalReleasesJson, runningOnLabel } from '../../../src/core/kamal/hosts/releases';
import type { KamalConfig } from '../../../src/core/kamal/config/types';
import { FakeSessions, configFixture, fixtureId, inventoryOutput, type ContainerFixture, type HostBehaviour } from './inventory-fixtures.test';

const T1 = '2026-11-20T10:00:00Z';
const T2 = '2026-11-21T10:00:00Z';
const T3 = '2026-11-22T10:00:00Z';
const T4 = '2026-11-23T10:00:00Z';

function appFor(config: KamalConfig): App {
  const name = config.destination ?? 'default';
  const environment = { id: `kamal:${config.file}:${name}`, source: 'kamal' as const, name, location: config.file, problems: [] };
  return { id: `${environment.id}/${config.service}`, environment, name: config.service, problems: [] };
}

/** Containers per host (versions in `exited` state unless current), current = the latest tag. */
async function inventoryOf(
  config: KamalConfig,
  hosts: Record<string, { containers?: Omit<ContainerFixture, 'host'>[]; latest?: string; unreachable?: string }>,
): Promise<{ inventory: KamalInventory; sessions: FakeSessions }> {
  const behaviours: Record<string, HostBehaviour> = {};
  for (const [host, spec] of Object.entries(hosts)) {
    behaviours[host] = spec.unreachable
      ? { connectError: spec.unreachable }
      : { stdout: inventoryOutput(config, (spec.containers ?? []).map((c) => ({ ...c, host, id: c.id ?? fixtureId() })), { latestVersion: spec.latest }) };
  }
  const sessions = new FakeSessions(behaviours);
  return { inventory: await readKamalInventory(config, sessions.sessionFor), sessions };
}

/** v1..v3 retained, v3 running (the usual state after three deploys). */
function threeDeploys(role = 'web'): Omit<ContainerFixture, 'host'>[] {
  return [
    { role, version: 'v1', created: T1, state: 'exited' },
    { role, version: 'v2', created: T2, state: 'exited' },
    { role, version: 'v3', created: T3, state: 'running' },
  ];
}

function summary(releases: Release[]) {
  return releases.map((r) => ({ version: r.version, current: r.current, previous: r.previous === true, rollbackable: r.rollbackable, reason: r.reason, presence: r.presence }));
}

describe('kamal releases', () => {
  const config = configFixture({ roles: { web: ['web-1', 'web-2', 'web-3'] } });

  it('lists every version newest first, the running one current and the one before it previous, when all hosts have all', async () => {
    const { inventory } = await inventoryOf(config, {
      'web-1': { containers: threeDeploys(), latest: 'v3' },
      'web-2': { containers: threeDeploys(), latest: 'v3' },
      'web-3': { containers: threeDeploys(), latest: 'v3' },
    });
    const releases = kamalReleases(appFor(config), inventory);
    assert.deepEqual(summary(releases), [
      { version: 'v3', current: true, previous: false, rollbackable: false, reason: 'running now', presence: '3 of 3 hosts' },
      { version: 'v2', current: false, previous: true, rollbackable: true, reason: undefined, presence: '3 of 3 hosts' },
      { version: 'v1', current: false, previous: false, rollbackable: true, reason: undefined, presence: '3 of 3 hosts' },
    ]);
    assert.equal(releases[1].id, 'kamal:/project/config/deploy.yml:default/chat@v2');
    assert.equal(releases[1].created, T2);
    assert.equal(releases[1].title, undefined);
  });

  it('marks a version pruned on one host as not rollbackable and picks the previous present everywhere', async () => {
    const pruned = threeDeploys().filter((c) => c.version !== 'v2');
    const { inventory } = await inventoryOf(config, {
      'web-1': { containers: threeDeploys(), latest: 'v3' },
      'web-2': { containers: pruned, latest: 'v3' },
      'web-3': { containers: threeDeploys(), latest: 'v3' },
    });
    const releases = kamalReleases(appFor(config), inventory);
    assert.deepEqual(summary(releases)[1], { version: 'v2', current: false, previous: false, rollbackable: false, reason: 'pruned on web-2', presence: '2 of 3 hosts' });
    // Kamal #1677: the default target is the newest version present on every host.
    assert.deepEqual(summary(releases)[2], { version: 'v1', current: false, previous: true, rollbackable: true, reason: undefined, presence: '3 of 3 hosts' });
  });

  it('names every host a version is missing on', async () => {
    const onlyV3 = threeDeploys().filter((c) => c.version === 'v3');
    const { inventory } = await inventoryOf(config, {
      'web-1': { containers: threeDeploys(), latest: 'v3' },
      'web-2': { containers: onlyV3, latest: 'v3' },
      'web-3': { containers: onlyV3, latest: 'v3' },
    });
    const v1 = kamalReleases(appFor(config), inventory).find((r) => r.version === 'v1')!;
    assert.equal(v1.reason, 'missing on 2 hosts: web-2, web-3');
    assert.equal(v1.presence, '1 of 3 hosts');
    assert.equal(kamalReleases(appFor(config), inventory).some((r) => r.previous), false);
  });

  it('keeps deploy order after a rollback: the re-created target stays below the version rolled back from', async () => {
    // Rolled back from v3 to v2: the v2 container was re-created, its renamed copy keeps T2.
    const afterRollback: Omit<ContainerFixture, 'host'>[] = [
      { role: 'web', version: 'v1', created: T1, state: 'exited' },
      { role: 'web', version: 'v2', created: T2, state: 'exited', replacedSuffix: '_replaced_4817762cd88b9b78' },
      { role: 'web', version: 'v3', created: T3, state: 'exited' },
      { role: 'web', version: 'v2', created: T4, state: 'running' },
    ];
    const { inventory } = await inventoryOf(config, {
      'web-1': { containers: afterRollback, latest: 'v2' },
      'web-2': { containers: afterRollback, latest: 'v2' },
      'web-3': { containers: afterRollback, latest: 'v2' },
    });
    const releases = kamalReleases(appFor(config), inventory);
    assert.deepEqual(
      releases.map((r) => [r.version, r.current, r.reason ?? '']),
      [
        ['v3', false, ''],
        ['v2', true, 'running now'],
        ['v1', false, ''],
      ],
    );
    assert.equal(releases.find((r) => r.previous)?.version, 'v1');
    // No audit log: when it was last booted is its newest container, not the renamed copy.
    assert.equal(releases[1].created, T4);
    assert.equal(releases[1].triggeredBy, undefined);
    assert.deepEqual(releases.map((r) => r.direction), ['forward', undefined, 'back']);
    // The renamed copy is shown under its version but is not what makes it present.
    const entries = kamalReleaseHostEntries(releases[1], inventory).filter((e) => !isHostError(e) && e.host === 'web-1');
    assert.deepEqual(entries.map((e) => (isHostError(e) ? '' : e.name)), ['chat-web-v2', 'chat-web-v2_replaced_4817762cd88b9b78']);
  });

  it('keeps the latest-tag version current even when a newer container is also running', async () => {
    const bothRunning: Omit<ContainerFixture, 'host'>[] = [
      { role: 'web', version: 'v2', created: T2, state: 'running' },
      { role: 'web', version: 'v3', created: T3, state: 'running' },
    ];
    const { inventory } = await inventoryOf(config, {
      'web-1': { containers: bothRunning, latest: 'v2' },
      'web-2': { containers: bothRunning, latest: 'v2' },
      'web-3': { containers: bothRunning, latest: 'v2' },
    });
    assert.equal(appCurrentVersion(inventory), 'v2');
    const releases = kamalReleases(appFor(config), inventory);
    // v3 is rollbackable, but it is not "previous": it was deployed after the current version.
    assert.deepEqual(releases.map((r) => [r.version, r.current, r.rollbackable, r.previous === true]), [['v3', false, true, false], ['v2', true, false, false]]);
    // Going to it is a roll forward, and everything names it so.
    assert.deepEqual(releases.map((r) => r.direction), ['forward', undefined]);
  });

  it('shows an unreachable host as an error entry and makes no version rollbackable', async () => {
    const { inventory } = await inventoryOf(config, {
      'web-1': { containers: threeDeploys(), latest: 'v3' },
      'web-2': { containers: threeDeploys(), latest: 'v3' },
      'web-3': { unreachable: 'connect ECONNREFUSED 10.250.3.2:22' },
    });
    const releases = kamalReleases(appFor(config), inventory);
    assert.deepEqual(summary(releases).slice(1), [
      { version: 'v2', current: false, previous: false, rollbackable: false, reason: 'host web-3 unreachable', presence: '2 of 3 hosts' },
      { version: 'v1', current: false, previous: false, rollbackable: false, reason: 'host web-3 unreachable', presence: '2 of 3 hosts' },
    ]);
    const entries = kamalReleaseHostEntries(releases[1], inventory);
    assert.deepEqual(entries.map((e) => [e.host, isHostError(e) ? e.message : e.name]), [
      ['web-1', 'chat-web-v2'],
      ['web-2', 'chat-web-v2'],
      ['web-3', 'Could not connect to web-3: connect ECONNREFUSED 10.250.3.2:22'],
    ]);
    assert.equal(entries[2].id, `${releases[1].id}!web-3`);
  });

  it('shows what an earlier read saw on a host that stopped answering as stale rows, never as its state now', async () => {
    const { inventory } = await inventoryOf(config, {
      'web-1': { containers: threeDeploys(), latest: 'v3' },
      'web-2': { containers: threeDeploys(), latest: 'v3' },
      'web-3': { unreachable: 'web-3 stopped answering' },
    });
    const seen = (await inventoryOf(config, { 'web-3': { containers: threeDeploys(), latest: 'v3' } })).inventory.hosts.find((host) => host.host === 'web-3')!;
    inventory.hosts[2]!.lastSeen = { containers: seen.containers, readAt: '2026-11-23T10:00:00.000Z' };
    const releases = kamalReleases(appFor(config), inventory);
    const current = releases.find((release) => release.current)!;
    const entries = kamalReleaseHostEntries(current, inventory).filter((entry) => entry.host === 'web-3');
    assert.deepEqual(entries.map((entry) => (isHostError(entry) ? 'error' : [entry.name, entry.state, entry.stale?.seenAt])), ['error', ['chat-web-v3', 'running', '2026-11-23T10:00:00.000Z']]);
    assert.equal(summary(releases).find((release) => release.version === 'v2')?.reason, 'host web-3 unreachable', 'stale rows never make a version present');
    // Show History on Hosts: the host not read is never under "Containers now:".
    const history = kamalReleaseHistory(current, inventory, '.kamal/chat-audit.log');
    const now = history.slice(history.indexOf('Containers now:') + 1, history.indexOf('', history.indexOf('Containers now:')));
    assert.deepEqual(now.map((line) => line.trim().split(/\s+/)[0]), ['web-1', 'web-2'], history.join('\n'));
    assert.ok(history.includes('Last seen on the hosts not read:'), history.join('\n'));
    assert.ok(history.includes('  web-3 (web)  chat-web-v3  was running at 2026-11-23T10:00:00.000Z'), history.join('\n'));
  });

  it('requires a version on every role of every host when roles live on different hosts', async () => {
    const roles = configFixture({ roles: { web: ['web-1', 'web-2'], job: ['job-1'] } });
    const { inventory } = await inventoryOf(roles, {
      'web-1': { containers: threeDeploys('web'), latest: 'v3' },
      'web-2': { containers: threeDeploys('web'), latest: 'v3' },
      'job-1': { containers: threeDeploys('job').filter((c) => c.version !== 'v1'), latest: 'v3' },
    });
    const releases = kamalReleases(appFor(roles), inventory);
    assert.deepEqual(
      releases.map((r) => [r.version, r.rollbackable, r.reason ?? '', r.presence]),
      [
        ['v3', false, 'running now', '3 of 3 hosts'],
        ['v2', true, '', '3 of 3 hosts'],
        ['v1', false, 'pruned on job-1', '2 of 3 hosts'],
      ],
    );
    const v2Entries = kamalReleaseHostEntries(releases[1], inventory);
    assert.deepEqual(v2Entries.map((e) => (isHostError(e) ? e.message : `${e.host}/${e.role}/${e.name}`)), ['job-1/job/chat-job-v2', 'web-1/web/chat-web-v2', 'web-2/web/chat-web-v2']);
  });

  it('names the missing role when a host runs two roles and lacks one', async () => {
    const shared = configFixture({ roles: { web: ['app-1'], job: ['app-1'] } });
    const { inventory } = await inventoryOf(shared, {
      'app-1': { containers: [...threeDeploys('web'), ...threeDeploys('job').filter((c) => c.version !== 'v2')], latest: 'v3' },
    });
    const v2 = kamalReleases(appFor(shared), inventory).find((r) => r.version === 'v2')!;
    assert.equal(v2.reason, 'pruned on app-1 (role job)');
    assert.equal(v2.presence, '0 of 1 host');
  });

  describe('a version running on some hosts and not others (a canary, a narrowed run)', () => {
    /** v1..v3 retained, `version` running (a host rolled back alone runs an older one). */
    const running = (version: string, role = 'web') => threeDeploys(role).map((c) => ({ ...c, state: c.version === version ? ('running' as const) : ('exited' as const) }));

    it('says where each runs: the canary on 1/3 hosts, the rest on 2/3, naming the hosts to bring', async () => {
      const { inventory } = await inventoryOf(config, {
        'web-1': { containers: threeDeploys(), latest: 'v3' },
        'web-2': { containers: running('v2'), latest: 'v2' },
        'web-3': { containers: threeDeploys(), latest: 'v3' },
      });
      const releases = kamalReleases(appFor(config), inventory);
      const [v3, v2, v1] = releases;
      // The primary host (web-1) still runs v3: that stays the app's current release.
      assert.equal(v3.current, true);
      assert.deepEqual(v3.runningOn, { hosts: ['web-1', 'web-3'], otherHosts: ['web-2'], total: 3 });
      assert.equal(runningOnLabel(v3), 'current on 2/3 hosts');
      assert.deepEqual(v2.runningOn, { hosts: ['web-2'], otherHosts: ['web-1', 'web-3'], total: 3 });
      assert.equal(runningOnLabel(v2), 'current on 1/3 hosts');
      assert.equal(v2.rollbackable, true, 'the whole app can still be rolled back to it');
      assert.equal(v1.runningOn, undefined);
      assert.equal(runningOnLabel(v1), undefined);
      assert.deepEqual(kamalReleasesJson(releases, new Map())[1].runningOn, { hosts: ['web-2'], otherHosts: ['web-1', 'web-3'], total: 3 });
    });

    it('says nothing when every host runs it, and leaves an unreadable host out of both lists', async () => {
      const all = await inventoryOf(config, {
        'web-1': { containers: threeDeploys(), latest: 'v3' },
        'web-2': { containers: threeDeploys(), latest: 'v3' },
        'web-3': { containers: threeDeploys(), latest: 'v3' },
      });
      assert.ok(kamalReleases(appFor(config), all.inventory).every((release) => release.runningOn === undefined));
      const { inventory } = await inventoryOf(config, {
        'web-1': { containers: running('v2'), latest: 'v2' },
        'web-2': { containers: threeDeploys(), latest: 'v3' },
        'web-3': { unreachable: 'connect ETIMEDOUT' },
      });
      const releases = kamalReleases(appFor(config), inventory);
      assert.deepEqual(releases.find((r) => r.version === 'v2')!.runningOn, { hosts: ['web-1'], otherHosts: ['web-2'], total: 3 });
      assert.deepEqual(releases.find((r) => r.version === 'v3')!.runningOn, { hosts: ['web-2'], otherHosts: ['web-1'], total: 3 });
    });

    it('counts a host only when every one of its roles runs the version (-r web left the job on v3)', async () => {
      const shared = configFixture({ roles: { web: ['app-1', 'app-2'], job: ['app-1', 'app-2'] } });
      const { inventory } = await inventoryOf(shared, {
        'app-1': { containers: [...running('v2', 'web'), ...threeDeploys('job')], latest: 'v2' },
        'app-2': { containers: [...threeDeploys('web'), ...threeDeploys('job')], latest: 'v3' },
      });
      const releases = kamalReleases(appFor(shared), inventory);
      assert.equal(releases.find((r) => r.version === 'v2')!.runningOn, undefined, 'no host runs v2 on all its roles');
      assert.deepEqual(releases.find((r) => r.version === 'v3')!.runningOn, { hosts: ['app-2'], otherHosts: ['app-1'], total: 2 });
    });
  });

  it('lists only the configured destination and ids releases per destination', async () => {
    const staging = configFixture({ destination: 'staging', roles: { web: ['web-1'] } });
    const { inventory, sessions } = await inventoryOf(staging, {
      'web-1': {
        containers: [
          { role: 'web', version: 's1', created: T1, state: 'running' },
          // docker would not list these; the parser drops them anyway.
          { role: 'web', version: 'p9', created: T2, state: 'running', destinationLabel: 'production' },
          { role: 'web', version: 'd9', created: T3, state: 'running', destinationLabel: '' },
        ],
        latest: 's1',
      },
    });
    assert.match(sessions.execs.get('web-1')![0], /--filter label=destination=staging /);
    assert.match(sessions.execs.get('web-1')![0], /ancestor=localhost:5555\/bars\/app:latest-staging/);
    const releases = kamalReleases(appFor(staging), inventory);
    assert.deepEqual(releases.map((r) => r.version), ['s1']);
    assert.equal(releases[0].id, 'kamal:/project/config/deploy.yml:staging/chat@s1');
  });

  it('prints JSON for the CLI, newest first, with containers per host', async () => {
    const small = configFixture({ roles: { web: ['web-1', 'web-2'] } });
    const { inventory } = await inventoryOf(small, {
      'web-1': { containers: threeDeploys().slice(1), latest: 'v3' },
      'web-2': { unreachable: 'timed out' },
    });
    const releases = kamalReleases(appFor(small), inventory);
    const entries = new Map<string, HostEntry[]>(releases.map((r) => [r.id, kamalReleaseHostEntries(r, inventory)]));
    assert.deepEqual(kamalReleasesJson(releases, entries), [
      {
        version: 'v3',
        current: true,
        previous: false,
        rollbackable: false,
        direction: null,
        reason: 'running now',
        deployedBy: null,
        runningOn: null,
        containers: [{ host: 'web-1', role: 'web', name: 'chat-web-v3', state: 'running', status: 'Up 2 hours', image: 'localhost:5555/bars/app:v3', created: T3 }],
      },
      {
        version: 'v2',
        current: false,
        previous: false,
        rollbackable: false,
        direction: 'back',
        reason: 'host web-2 unreachable',
        deployedBy: null,
        runningOn: null,
        containers: [{ host: 'web-1', role: 'web', name: 'chat-web-v2', state: 'exited', status: 'Exited (0) 2 hours ago', image: 'localhost:5555/bars/app:v2', created: T2 }],
      },
    ]);
  });
});
