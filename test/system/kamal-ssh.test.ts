/**
 * How the Kamal source reaches real hosts over SSH: through Kamal's jump host (`ssh.proxy`) to a
 * host this machine cannot reach directly, and the host-key rules (unknown: asked, never assumed;
 * changed: refused like OpenSSH).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KamalSource } from '../../src/core/kamal/source';
import type { App } from '../../src/core/model';
import { createSessionPool } from '../../src/core/ssh/pool';
import type { SessionPool, SshPrompts } from '../../src/core/ssh/types';
import { requireHostsOrSkip, startHosts, type TestHosts } from '../hosts/harness';
import { realPool, writeDeployYml } from './kamal-hosts';

const SERVICE = 'sshsvc';

/** A pool that knows only `knownHosts` and asks `prompts`: no agent, no ssh_config, no global known_hosts. */
function isolatedPool(home: string, knownHosts: string, prompts: SshPrompts): SessionPool {
  return createSessionPool({ prompts, homeDir: home, knownHostsFile: knownHosts, globalKnownHostsFile: null, systemSshConfigFile: null, agentSocket: null });
}

async function releaseVersions(configFile: string, pool: SessionPool): Promise<string[]> {
  const source = new KamalSource(configFile, { pool, connectAllowed: () => true });
  const [environment] = await source.environments();
  const [app] = (await source.apps(environment!)) as App[];
  return (await source.releases(app!)).map((release) => release.version);
}

describe('Kamal over SSH on real hosts', function () {
  this.timeout(240_000);
  let hosts: TestHosts;
  let dir: string;

  before(async function () {
    requireHostsOrSkip(this);
    hosts = await startHosts({ count: 1, jumpOnly: 1, service: SERVICE, images: [{ version: 'v1' }, { version: 'v2' }] });
    await hosts.seedKamalState({ service: SERVICE, versions: ['v1', 'v2'], running: 'v2' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-kamal-ssh-'));
  });

  after(async () => {
    await hosts?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reaches a jump-only host through Kamal\'s ssh.proxy', async () => {
    const [jump, hidden] = [hosts.hosts.find((host) => !host.jumpOnly)!, hosts.hosts.find((host) => host.jumpOnly)!];
    const configFile = await writeDeployYml(path.join(dir, 'jump'), hosts, { service: SERVICE, web: [hidden], after: [`  proxy: root@${jump.address}`] });
    const pool = realPool(hosts, 5000);
    try {
      assert.deepEqual(await releaseVersions(configFile, pool), ['v2', 'v1']);
    } finally {
      pool.dispose();
    }
  });

  it('asks about an unknown host key with its SHA256 fingerprint and records it when trusted', async () => {
    const host = hosts.hosts.find((candidate) => !candidate.jumpOnly)!;
    const home = fs.mkdtempSync(path.join(dir, 'home-'));
    const knownHosts = path.join(home, '.ssh', 'known_hosts');
    const asked: string[] = [];
    const configFile = await writeDeployYml(path.join(dir, 'unknown'), hosts, { service: SERVICE, web: [host] });
    const pool = isolatedPool(home, knownHosts, {
      confirmUnknownHostKey: async (_host, _port, _type, fingerprint) => {
        asked.push(fingerprint);
        return true;
      },
      passphrase: async () => undefined,
    });
    try {
      assert.deepEqual(await releaseVersions(configFile, pool), ['v2', 'v1']);
    } finally {
      pool.dispose();
    }
    assert.deepEqual(asked, [host.hostKeyFingerprint]);
    assert.match(fs.readFileSync(knownHosts, 'utf8'), new RegExp(`^${host.address.replace(/\./g, '\\.')} ssh-ed25519 `, 'm'));
  });

  it('refuses a changed host key, naming the offending known_hosts line', async () => {
    const host = hosts.hosts.find((candidate) => !candidate.jumpOnly)!;
    const home = fs.mkdtempSync(path.join(dir, 'home-'));
    const knownHosts = path.join(home, 'known_hosts');
    // Another host's ed25519 key recorded for this address: what a reinstalled or spoofed host looks like.
    const otherKey = hosts.hosts.find((candidate) => candidate.jumpOnly)!.hostPublicKeyLine;
    fs.writeFileSync(knownHosts, `${host.address} ${otherKey}\n`);
    const configFile = await writeDeployYml(path.join(dir, 'changed'), hosts, { service: SERVICE, web: [host] });
    const pool = isolatedPool(home, knownHosts, {
      confirmUnknownHostKey: async () => assert.fail('a changed key must not be asked about'),
      passphrase: async () => undefined,
    });
    try {
      await assert.rejects(releaseVersions(configFile, pool), /REMOTE HOST IDENTIFICATION HAS CHANGED[\s\S]*known_hosts:1/);
    } finally {
      pool.dispose();
    }
  });
});
