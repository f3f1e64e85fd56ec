/**
 * The Kamal inventory against real hosts (network namespaces with sshd + dockerd, see
 * test/hosts/harness.ts), through the real SSH pool: releases and their flags, an unreachable
 * host, and one exec per host per refresh.
 * Run: npx mocha --require tsx/cjs --timeout 180000 test/system/kamal-inventory.test.ts
 */
import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isHostError, type App, type Release } from '../../src/core/model';
import { KamalSource } from '../../src/core/kamal/source';
import { requireHostsOrSkip, startHosts, type TestHosts } from '../hosts/harness';
import { CountingPool, holdDeployLock, realPool, writeDeployYml } from './kamal-hosts';

function summary(releases: Release[]) {
  return releases.map((r) => [r.version, r.current, r.previous === true, r.rollbackable, r.reason ?? '', r.presence ?? '']);
}

describe('kamal inventory on real hosts', function () {
  this.timeout(180_000);
  let hosts: TestHosts;
  let dir: string;
  let pool: CountingPool;
  let source: KamalSource;
  let app: App;
  const service = 'chat';

  before(async function () {
    requireHostsOrSkip(this);
    hosts = await startHosts({ count: 3, service });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kamal-inventory-'));
    const [h0, , h2] = hosts.hosts;
    // v1..v3 deployed in order, v3 live; v1 pruned on the third host; a staging destination
    // shares the hosts and must not show up.
    await hosts.seedKamalState({ service, versions: ['v1', 'v2', 'v3'], running: 'v3', missing: { [h2.name]: ['v1'] } });
    await hosts.seedKamalState({ service, destination: 'staging', versions: ['v2'], running: 'v2', proxy: false });
    // Kamal's lock, on the primary (first) host only.
    await holdDeployLock(hosts, h0, service, { holder: 'Jane Doe', at: '2026-11-23T07:30:00Z', version: 'v3', message: 'migrating' });
    const configFile = await writeDeployYml(dir, hosts, { service });
    pool = new CountingPool(realPool(hosts, 5000));
    source = new KamalSource(configFile, { pool, connectAllowed: () => true, env: {} });
    const environments = await source.environments();
    assert.deepEqual(environments.map((e) => [e.name, e.problems]), [['default', []]]);
    [app] = await source.apps(environments[0]);
  });

  after(async () => {
    pool?.dispose();
    await hosts?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('lists v3 current, v2 previous and v1 pruned on one host, with the lock holder', async () => {
    const [h0, , h2] = hosts.hosts;
    assert.equal(app.lock?.holder, 'Jane Doe');
    assert.equal(app.lock?.version, 'v3');
    const releases = await source.releases(app);
    assert.deepEqual(summary(releases), [
      ['v3', true, false, false, 'running now', '3 of 3 hosts'],
      ['v2', false, true, true, '', '3 of 3 hosts'],
      ['v1', false, false, false, `pruned on ${h2.address}`, '2 of 3 hosts'],
    ]);
    const v2 = await source.hostEntries(releases[1]);
    assert.deepEqual(
      v2.map((e) => (isHostError(e) ? e.message : [e.host, e.role, e.name, e.state])),
      hosts.hosts.map((h) => [h.address, 'web', 'chat-web-v2', 'exited']),
    );
    const v3 = await source.hostEntries(releases[0]);
    assert.ok(v3.every((e) => !isHostError(e) && e.state === 'running' && e.image === `${hosts.repository}:v3`));
    assert.equal((v3[0] as { host: string }).host, h0.address);
  });

  it('runs one command per host per refresh', async () => {
    source.refresh();
    pool.reset();
    const [environment] = await source.environments();
    const [freshApp] = await source.apps(environment);
    const releases = await source.releases(freshApp);
    await Promise.all(releases.map((release) => source.hostEntries(release)));
    assert.deepEqual(
      hosts.hosts.map((h) => pool.execs.get(h.address) ?? 0),
      [1, 1, 1],
    );
  });

  it('shows an unreachable host as an error entry and keeps the others', async () => {
    const [, h1] = hosts.hosts;
    await hosts.stopSshd(h1);
    // A fresh pool: stopping sshd leaves already open connections alive.
    const freshPool = realPool(hosts, 5000);
    try {
      const fresh = new KamalSource(source.location, { pool: freshPool, connectAllowed: () => true, env: {} });
      const releases = await fresh.releases(app);
      assert.deepEqual(
        releases.map((r) => [r.version, r.rollbackable, r.reason]),
        [
          ['v3', false, 'running now'],
          ['v2', false, `host ${h1.address} unreachable`],
          ['v1', false, `pruned on ${hosts.hosts[2].address}; host ${h1.address} unreachable`],
        ],
      );
      const all = await fresh.hostEntries(releases[1]);
      // What an earlier read saw on the silent host follows its error, marked stale.
      assert.ok(all.filter((e) => e.host === h1.address && !isHostError(e)).every((e) => !isHostError(e) && e.stale !== undefined));
      const entries = all.filter((e) => isHostError(e) || e.stale === undefined);
      assert.deepEqual(
        entries.map((e) => [e.host, isHostError(e)]),
        [
          [hosts.hosts[0].address, false],
          [h1.address, true],
          [hosts.hosts[2].address, false],
        ],
      );
      const error = entries[1];
      assert.ok(isHostError(error));
      assert.match(error.message, new RegExp(`Could not connect to ${h1.address.replace(/\./g, '\\.')}`));
    } finally {
      freshPool.dispose();
      await hosts.startSshd(h1);
    }
  });
});
