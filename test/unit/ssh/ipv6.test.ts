import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { sshTargetFor } from '../../../src/core/kamal/ssh-target';
import { createSessionPool, type InspectableSessionPool } from '../../../src/core/ssh/pool';
import { parseKamalConfig } from '../../../src/core/kamal/config/read';
import { generateKey, sshdUnavailable, startSshd, type TestSshd } from '../../fixtures/ssh/sshd';

/** Kamal hosts written as IPv6 (`::1` bare, `[::1]:PORT`), connected to for real: a test sshd also listening on [::1]. */
describe('IPv6 Kamal hosts against a real sshd on ::1', () => {
  let root: string;
  let sshd: TestSshd;
  let home: string;
  const pools: InspectableSessionPool[] = [];

  before(async function () {
    const missing = sshdUnavailable();
    if (missing) {
      if (process.env.CI === 'true') throw new Error(`CI must run the sshd tests: ${missing}`);
      this.skip();
    }
    root = mkdtempSync(path.join(tmpdir(), 'dr-ssh-ipv6-'));
    home = path.join(root, 'home');
    const client = generateKey(path.join(home, '.ssh', 'id_ed25519'));
    sshd = await startSshd(path.join(root, 'sshd'), [client.publicLine], ['ListenAddress ::1']);
  });

  afterEach(() => {
    for (const pool of pools.splice(0)) pool.dispose();
  });

  after(async () => {
    await sshd?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function pool(logs: string[], knownHostsFile: string): InspectableSessionPool {
    const made = createSessionPool({
      prompts: { confirmUnknownHostKey: async () => true, passphrase: async () => undefined },
      homeDir: home,
      knownHostsFile,
      globalKnownHostsFile: null,
      systemSshConfigFile: null,
      agentSocket: null,
      log: (line) => logs.push(line),
    });
    pools.push(made);
    return made;
  }

  it('connects to "[::1]:PORT" and to a bare "::1" with the port from the ssh block, names it in brackets, and records the key as OpenSSH does', async () => {
    const config = parseKamalConfig({
      baseText: ['service: chat', 'image: bars/app', 'servers:', `  - "[::1]:${sshd.port}"`, '  - "::1"', 'ssh:', `  port: ${sshd.port}`, '  config: false'].join('\n'),
      baseFile: path.join(root, 'config', 'deploy.yml'),
    });
    assert.deepEqual(config.hosts, [`[::1]:${sshd.port}`, '::1']);
    const knownHosts = path.join(root, 'known_hosts');
    writeFileSync(knownHosts, '');
    const logs: string[] = [];
    const sessions = pool(logs, knownHosts);
    for (const host of config.hosts) {
      const session = await sessions.session(sshTargetFor(config, host));
      const result = await session.exec('echo "$SSH_CONNECTION"');
      assert.equal(result.code, 0, result.stderr);
      // The server saw the client over IPv6 loopback.
      assert.match(result.stdout, new RegExp(`^::1 \\d+ ::1 ${sshd.port}\\n$`));
    }
    assert.ok(logs.some((line) => line.includes(`connected to root@[::1]:${sshd.port}`)), logs.join('\n'));
    const [type, base64] = sshd.hostKeyTypeAndBase64();
    assert.match(readFileSync(knownHosts, 'utf8'), new RegExp(`^\\[::1\\]:${sshd.port} ${type} ${base64.replace(/[+/]/g, '\\$&')}\\n$`));
  });
});
