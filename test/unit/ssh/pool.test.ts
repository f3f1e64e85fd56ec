import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SshError } from '../../../src/core/ssh/errors';
import { createSessionPool, type InspectableSessionPool, type SessionPoolOptions } from '../../../src/core/ssh/pool';
import type { SshPrompts, SshTarget } from '../../../src/core/ssh/types';
import { generateKey, sshdUnavailable, sshKeygenFingerprint, startAgent, startSshd, waitFor, type KeyPair, type TestSshd } from '../../fixtures/ssh/sshd';

const PASSPHRASE = 'correct horse';

/**
 * A TCP relay to `port`, holding every chunk `oneWayMs` in each direction as a distant link does,
 * whose link can go silent: `drop()` stops forwarding both ways without closing anything, as a
 * pulled cable or a dropped route does (no RST, no FIN).
 */
async function startRelay(port: number, oneWayMs = 0): Promise<{ port: number; drop(): void; restore(): void; close(): Promise<void> }> {
  let dropped = false;
  const sockets = new Set<net.Socket>();
  const forward = (to: net.Socket) => (chunk: Buffer) => {
    if (dropped) return;
    if (oneWayMs > 0) setTimeout(() => to.write(chunk), oneWayMs);
    else to.write(chunk);
  };
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, '127.0.0.1');
    sockets.add(inbound).add(outbound);
    inbound.on('data', forward(outbound));
    outbound.on('data', forward(inbound));
    const end = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('close', end).on('error', end);
    outbound.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    drop: () => (dropped = true),
    restore: () => (dropped = false),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('SSH session pool against a real sshd on loopback', function () {
  // Decrypting a passphrase-protected key runs bcrypt in JavaScript: about a second per try.
  this.timeout(30_000);
  let root: string;
  let home: string;
  let trustedKnownHosts: string;
  let clientKey: KeyPair;
  let encryptedKey: KeyPair;
  let agentKey: KeyPair;
  let sshd: TestSshd;
  let jump: TestSshd;
  const pools: InspectableSessionPool[] = [];

  before(async function () {
    const missing = sshdUnavailable();
    if (missing) {
      if (process.env.CI === 'true') throw new Error(`CI must run the sshd tests: ${missing}`);
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    root = mkdtempSync(path.join(tmpdir(), 'dr-ssh-pool-'));
    home = path.join(root, 'home');
    // The default identity file: what a user with plain `ssh host` working would have.
    clientKey = generateKey(path.join(home, '.ssh', 'id_ed25519'));
    encryptedKey = generateKey(path.join(root, 'keys', 'encrypted'), { type: 'ecdsa', passphrase: PASSPHRASE });
    agentKey = generateKey(path.join(root, 'keys', 'agent_only'));
    const authorized = [clientKey.publicLine, encryptedKey.publicLine, agentKey.publicLine];
    sshd = await startSshd(path.join(root, 'sshd'), authorized);
    jump = await startSshd(path.join(root, 'jump'), authorized);
    trustedKnownHosts = path.join(root, 'trusted_known_hosts');
    writeFileSync(
      trustedKnownHosts,
      [sshd, jump].map((server) => `[127.0.0.1]:${server.port} ${server.hostKeyTypeAndBase64().join(' ')}\n`).join(''),
    );
  });

  afterEach(() => {
    for (const pool of pools.splice(0)) pool.dispose();
  });

  after(async () => {
    await sshd?.stop();
    await jump?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  interface PromptCalls {
    hostKeys: Array<[string, number, string, string]>;
    passphrases: string[];
  }

  function makePool(options: Partial<SessionPoolOptions> = {}, prompts: Partial<SshPrompts> = {}): { pool: InspectableSessionPool; calls: PromptCalls; logs: string[] } {
    const calls: PromptCalls = { hostKeys: [], passphrases: [] };
    const logs: string[] = [];
    const pool = createSessionPool({
      prompts: {
        async confirmUnknownHostKey(host, port, keyType, fingerprint) {
          calls.hostKeys.push([host, port, keyType, fingerprint]);
          return prompts.confirmUnknownHostKey ? prompts.confirmUnknownHostKey(host, port, keyType, fingerprint) : false;
        },
        async passphrase(file) {
          calls.passphrases.push(file);
          return prompts.passphrase ? prompts.passphrase(file) : undefined;
        },
      },
      homeDir: home,
      knownHostsFile: trustedKnownHosts,
      globalKnownHostsFile: null,
      systemSshConfigFile: null,
      agentSocket: null,
      log: (line) => logs.push(line),
      ...options,
    });
    pools.push(pool);
    return { pool, calls, logs };
  }

  function target(server: TestSshd, overrides: Partial<SshTarget> = {}): SshTarget {
    return { host: '127.0.0.1', user: 'root', port: server.port, keys: [], keysOnly: false, config: false, keepaliveInterval: 30, ...overrides };
  }

  it('runs a command and returns its exit code, stdout and stderr', async () => {
    const { pool } = makePool();
    const session = await pool.session(target(sshd));
    assert.equal(session.host, '127.0.0.1');
    const result = await session.exec("printf 'héllo\\n'; echo oops >&2; exit 3");
    assert.deepEqual(result, { code: 3, stdout: 'héllo\n', stderr: 'oops\n' });
  });

  it('writes stdin to the command and closes it', async () => {
    const { pool } = makePool();
    const session = await pool.session(target(sshd));
    assert.deepEqual(await session.exec('cat; echo end', { stdin: 'line 1\nline 2\n' }), { code: 0, stdout: 'line 1\nline 2\nend\n', stderr: '' });
    assert.equal((await session.exec('cat')).stdout, '', 'without stdin the command sees EOF at once');
  });

  it('reuses one connection for 20 commands and for concurrent session() calls', async () => {
    const before = sshd.acceptedConnections();
    const { pool } = makePool();
    const sessions = await Promise.all(Array.from({ length: 5 }, () => pool.session(target(sshd))));
    for (let index = 0; index < 20; index++) {
      const session = sessions[index % sessions.length];
      assert.equal((await session.exec(`echo ${index}`)).stdout, `${index}\n`);
    }
    assert.equal(pool.stats().connectionsOpened, 1);
    await waitFor(() => sshd.acceptedConnections() >= before + 1, 'the sshd log line');
    assert.equal(sshd.acceptedConnections() - before, 1);
  });

  it('runs more commands in parallel than sshd allows sessions, on one connection', async () => {
    const { pool } = makePool();
    const session = await pool.session(target(sshd));
    const results = await Promise.all(Array.from({ length: 25 }, (_, index) => session.exec(`echo start-${index}; cat /dev/null; echo end-${index}`)));
    results.forEach((result, index) => assert.deepEqual(result, { code: 0, stdout: `start-${index}\nend-${index}\n`, stderr: '' }));
    assert.equal(pool.stats().connectionsOpened, 1);
  });

  it('logs every command through the redaction and never logs the secret', async () => {
    const { pool, logs } = makePool();
    const session = await pool.session(target(sshd));
    await session.exec('true --env DB_PASSWORD=hunter2');
    assert.ok(logs.some((line) => line.includes('$ true --env DB_PASSWORD=[REDACTED]')), logs.join('\n'));
    assert.ok(!logs.some((line) => line.includes('hunter2')));
  });

  it('cancels a running command when its AbortSignal fires, and the connection stays usable', async () => {
    const { pool } = makePool();
    const session = await pool.session(target(sshd));
    const pidFile = path.join(root, 'sleeper.pid');
    const controller = new AbortController();
    const started = Date.now();
    const running = session.exec(`echo $$ > ${pidFile}; exec sleep 30`, { signal: controller.signal });
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 'the remote command to start');
    controller.abort();
    await assert.rejects(running, { name: 'AbortError' });
    assert.ok(Date.now() - started < 5000);
    // The remote sleep may outlive the channel: OpenSSH refuses signal requests for root sessions
    // ("session signalling requires privilege separation"), so only the client side is asserted.
    assert.equal((await session.exec('echo still usable')).stdout, 'still usable\n');
  });

  it('rejects at once when the signal is already aborted', async () => {
    const { pool, logs } = makePool();
    const session = await pool.session(target(sshd));
    await assert.rejects(session.exec('echo never', { signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.ok(!logs.some((line) => line.includes('$ echo never')));
  });

  it('asks about an unknown host key with its SHA256 fingerprint, records it like OpenSSH and does not ask again', async () => {
    const knownHostsFile = path.join(root, 'fresh-home', '.ssh', 'known_hosts');
    const first = makePool({ knownHostsFile }, { confirmUnknownHostKey: async () => true });
    const session = await first.pool.session(target(sshd));
    assert.equal((await session.exec('echo ok')).stdout, 'ok\n');
    const [type, base64] = sshd.hostKeyTypeAndBase64();
    assert.deepEqual(first.calls.hostKeys, [['127.0.0.1', sshd.port, type, sshKeygenFingerprint(`${sshd.hostKey.privateFile}.pub`)]]);
    assert.equal(readFileSync(knownHostsFile, 'utf8'), `[127.0.0.1]:${sshd.port} ${type} ${base64}\n`);

    const second = makePool({ knownHostsFile });
    await (await second.pool.session(target(sshd))).exec('true');
    assert.deepEqual(second.calls.hostKeys, []);
  });

  it('asks once when two connections to one new host start together', async () => {
    const knownHostsFile = path.join(root, 'together', 'known_hosts');
    const { pool, calls } = makePool({ knownHostsFile }, { confirmUnknownHostKey: async () => true });
    const [asRoot, asNobody] = await Promise.allSettled([pool.session(target(sshd)), pool.session(target(sshd, { user: 'nobody' }))]);
    assert.equal(asRoot.status, 'fulfilled');
    assert.equal(asNobody.status, 'rejected', 'nobody has no authorized key');
    assert.equal(calls.hostKeys.length, 1);
    assert.equal(readFileSync(knownHostsFile, 'utf8').split('\n').filter(Boolean).length, 1);
  });

  it('refuses an unknown host key without asking under the strict policy', async () => {
    const knownHostsFile = path.join(root, 'strict', 'known_hosts');
    const { pool, calls } = makePool({ knownHostsFile, hostKeyPolicy: 'strict' }, { confirmUnknownHostKey: async () => true });
    await assert.rejects(pool.session(target(sshd)), /is not in .*known_hosts, and unknown host keys are refused/);
    assert.deepEqual(calls.hostKeys, []);
  });

  it('refuses to connect when the user rejects an unknown host key, and records nothing', async () => {
    const knownHostsFile = path.join(root, 'rejecting', 'known_hosts');
    const { pool, calls } = makePool({ knownHostsFile }, { confirmUnknownHostKey: async () => false });
    await assert.rejects(pool.session(target(sshd)), /host key of \[127\.0\.0\.1\]:\d+ \(SHA256:[^)]+\) was not trusted/);
    assert.equal(calls.hostKeys.length, 1);
    assert.equal(existsSync(knownHostsFile), false);
  });

  it('refuses a changed host key with the OpenSSH warning naming the offending line, without asking', async () => {
    const knownHostsFile = path.join(root, 'changed_known_hosts');
    const other = generateKey(path.join(root, 'keys', 'other_host_key'));
    writeFileSync(knownHostsFile, `# old\n[127.0.0.1]:${sshd.port} ${other.publicLine}\n`);
    const { pool, calls } = makePool({ knownHostsFile }, { confirmUnknownHostKey: async () => true });
    await assert.rejects(pool.session(target(sshd)), (error: Error) => {
      assert.match(error.message, /^WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for \[127\.0\.0\.1\]:\d+/);
      assert.ok(error.message.includes(`Offending key in ${knownHostsFile}:2`), error.message);
      assert.match(error.message, /Refusing to connect/);
      return true;
    });
    assert.deepEqual(calls.hostKeys, []);
  });

  it('refuses a host key marked @revoked', async () => {
    const knownHostsFile = path.join(root, 'revoked_known_hosts');
    writeFileSync(knownHostsFile, `@revoked * ${sshd.hostKeyTypeAndBase64().join(' ')}\n`);
    const { pool } = makePool({ knownHostsFile }, { confirmUnknownHostKey: async () => true });
    await assert.rejects(pool.session(target(sshd)), /marked @revoked/);
  });

  it('asks for the passphrase of an encrypted key, again after a wrong one, and caches it for the pool', async () => {
    const answers = ['wrong', PASSPHRASE];
    const { pool, calls } = makePool({}, { confirmUnknownHostKey: async () => true, passphrase: async () => answers.shift() });
    const keyed = target(sshd, { keys: [encryptedKey.privateFile], keysOnly: true });
    assert.equal((await (await pool.session(keyed)).exec('echo in')).stdout, 'in\n');
    assert.deepEqual(calls.passphrases, [encryptedKey.privateFile, encryptedKey.privateFile]);
    // "localhost" is a second connection (another pool key) with the same key file.
    await (await pool.session({ ...keyed, host: 'localhost' })).exec('true');
    assert.equal(pool.stats().connectionsOpened, 2);
    assert.equal(calls.passphrases.length, 2, 'the passphrase is not asked again');
  });

  it('skips an encrypted key after three wrong passphrases and says which keys were tried', async () => {
    const { pool, calls } = makePool({}, { passphrase: async () => 'wrong' });
    const keyed = target(sshd, { keys: [encryptedKey.privateFile], keysOnly: true });
    await assert.rejects(pool.session(keyed), /Cannot connect to root@127\.0\.0\.1:\d+: authentication failed: no usable key/);
    assert.equal(calls.passphrases.length, 3);
  });

  it('tries keys one after another until the server accepts one', async () => {
    const refused = generateKey(path.join(root, 'keys', 'refused_first'));
    const { pool } = makePool();
    const session = await pool.session(target(sshd, { keys: [refused.privateFile, path.join(root, 'keys', 'missing'), clientKey.privateFile], keysOnly: true }));
    assert.equal((await session.exec('echo second')).stdout, 'second\n');
  });

  it('names the keys it tried when the server refuses them all', async () => {
    const stranger = generateKey(path.join(root, 'keys', 'stranger'));
    const { pool } = makePool();
    await assert.rejects(
      pool.session(target(sshd, { keys: [stranger.privateFile], keysOnly: true })),
      new RegExp(`authentication failed: tried keys ${stranger.privateFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
    );
  });

  it('authenticates with a key held only by ssh-agent, leaves the agent out under keys_only, and fails without it', async () => {
    const agent = startAgent(path.join(root, 'agent.sock'), [agentKey.privateFile]);
    try {
      const emptyHome = path.join(root, 'empty-home');
      mkdirSync(emptyHome, { recursive: true });
      const withAgent = makePool({ homeDir: emptyHome, agentSocket: agent.socket });
      assert.equal((await (await withAgent.pool.session(target(sshd))).exec('echo agent')).stdout, 'agent\n');
      const stranger = generateKey(path.join(root, 'keys', 'not_authorized'));
      const keysOnly = makePool({ homeDir: emptyHome, agentSocket: agent.socket });
      await assert.rejects(
        keysOnly.pool.session(target(sshd, { keys: [stranger.privateFile], keysOnly: true })),
        /authentication failed: tried keys \S+not_authorized$/,
        'keys_only leaves the agent out',
      );
      const withoutAgent = makePool({ homeDir: emptyHome, agentSocket: null });
      await assert.rejects(withoutAgent.pool.session(target(sshd)), /authentication failed: no usable key \(looked for ~\/\.ssh\/id_ed25519, ~\/\.ssh\/id_ecdsa, ~\/\.ssh\/id_rsa and no agent\)/);
    } finally {
      agent.stop();
    }
  });

  it("connects through Kamal's jump host (ssh.proxy)", async () => {
    const jumpBefore = jump.acceptedConnections();
    const { pool } = makePool();
    const session = await pool.session(target(sshd, { proxy: { user: 'root', host: '127.0.0.1', port: jump.port } }));
    assert.equal((await session.exec('echo through')).stdout, 'through\n');
    await waitFor(() => jump.acceptedConnections() > jumpBefore, 'the jump host to log the login');
    assert.equal(jump.acceptedConnections() - jumpBefore, 1);
  });

  it('follows ~/.ssh/config (and its Include): Host alias with HostName, Port, User, IdentityFile and ProxyJump', async () => {
    const aliasHome = path.join(root, 'alias-home');
    const key = generateKey(path.join(aliasHome, '.ssh', 'custom_key'));
    writeFileSync(path.join(sshd.dir, 'authorized_keys'), `${key.publicLine}\n`, { flag: 'a' });
    writeFileSync(path.join(jump.dir, 'authorized_keys'), `${key.publicLine}\n`, { flag: 'a' });
    mkdirSync(path.join(aliasHome, '.ssh', 'config.d'));
    writeFileSync(
      path.join(aliasHome, '.ssh', 'config.d', 'prod-web'),
      ['Host prod-web', '  HostName 127.0.0.1', `  Port ${sshd.port}`, '  User root', '  IdentityFile ~/.ssh/custom_key', '  IdentitiesOnly yes', ''].join('\n'),
    );
    writeFileSync(
      path.join(aliasHome, '.ssh', 'config'),
      [
        'Include config.d/*',
        'Host prod-web-via-bastion',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '  IdentityFile ~/.ssh/custom_key',
        '  ProxyJump bastion',
        'Host bastion',
        '  HostName 127.0.0.1',
        `  Port ${jump.port}`,
        '  User root',
        '  IdentityFile ~/.ssh/custom_key',
        '',
      ].join('\n'),
    );
    const jumpBefore = jump.acceptedConnections();
    const { pool } = makePool({ homeDir: aliasHome });
    // A host typed by hand: user and port are defaults that ssh_config may override.
    const direct = await pool.session({ ...target(sshd, { host: 'prod-web', config: true, port: 22, user: 'nobody' }), defaulted: { user: true, port: true } });
    assert.equal((await direct.exec('whoami')).stdout, 'root\n');
    const viaBastion = await pool.session({ ...target(sshd, { host: 'prod-web-via-bastion', config: true }), defaulted: { port: true } });
    assert.equal((await viaBastion.exec('echo ok')).stdout, 'ok\n');
    await waitFor(() => jump.acceptedConnections() > jumpBefore, 'the bastion to log the login');

    const withoutConfig = makePool({ homeDir: aliasHome, connectTimeoutMs: 3000 });
    await assert.rejects(withoutConfig.pool.session(target(sshd, { host: 'prod-web', config: false })), /Cannot connect to root@prod-web:\d+/);
  });

  it('connects through a ProxyCommand with %h and %p substituted', async () => {
    const { pool, logs } = makePool();
    const session = await pool.session(target(sshd, { proxyCommand: 'busybox nc %h %p' }));
    assert.equal((await session.exec('echo proxied')).stdout, 'proxied\n');
    assert.ok(logs.some((line) => line.includes(`ProxyCommand: busybox nc 127.0.0.1 ${sshd.port}`)), logs.join('\n'));
  });

  it('reports what a failing ProxyCommand printed', async () => {
    const { pool } = makePool({ connectTimeoutMs: 3000 });
    await assert.rejects(pool.session(target(sshd, { proxyCommand: 'echo "no route to %h" >&2; exit 1' })), /Cannot connect to root@127\.0\.0\.1:\d+ via ProxyCommand: .*\(ProxyCommand said: no route to 127\.0\.0\.1\)/);
  });

  it('gives up with a clear error when the port accepts TCP but never speaks SSH', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const { pool } = makePool({ connectTimeoutMs: 500 });
      const started = Date.now();
      await assert.rejects(pool.session({ ...target(sshd), port }), new RegExp(`Cannot connect to root@127\\.0\\.0\\.1:${port}: connection timed out after 0\\.5 s`));
      assert.ok(Date.now() - started < 2500, `took ${Date.now() - started} ms`);
    } finally {
      silent.close();
    }
  });

  it('says the connection was refused when nothing listens', async () => {
    const silent = net.createServer();
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    await new Promise((resolve) => silent.close(resolve));
    const { pool } = makePool();
    await assert.rejects(pool.session({ ...target(sshd), port }), new RegExp(`root@127\\.0\\.0\\.1:${port}: connection refused`));
  });

  it('closes an idle connection and reconnects on the next command', async () => {
    const { pool } = makePool({ idleCloseMs: 200 });
    const session = await pool.session(target(sshd));
    await session.exec('true');
    await waitFor(() => pool.stats().open === 0, 'the idle connection to close');
    assert.equal((await session.exec('echo again')).stdout, 'again\n');
    assert.equal(pool.stats().connectionsOpened, 2);
  });

  it('drops a connection the server closed and reconnects on the next command', async () => {
    const { pool } = makePool();
    const session = await pool.session(target(sshd));
    // Kills this connection's sshd session process, as a network drop or server restart would.
    await assert.rejects(session.exec('kill -9 $PPID; sleep 5'), /lost|closed/);
    await waitFor(() => pool.stats().open === 0, 'the pool to notice the drop');
    assert.equal((await session.exec('echo back')).stdout, 'back\n');
    assert.equal(pool.stats().connectionsOpened, 2);
  });

  function relayKnownHosts(port: number): string {
    const file = path.join(root, `known_hosts_relay_${port}`);
    writeFileSync(file, `[127.0.0.1]:${port} ${sshd.hostKeyTypeAndBase64().join(' ')}\n`);
    return file;
  }

  it('declares a host whose link went silent unreachable within the keepalive bound, names it, evicts it, and reconnects once it answers', async () => {
    const relay = await startRelay(sshd.port);
    try {
      const { pool, logs } = makePool({ keepaliveIntervalMs: 200, keepaliveMisses: 3, commandTimeoutMs: 60_000, knownHostsFile: relayKnownHosts(relay.port) });
      const session = await pool.session({ ...target(sshd), port: relay.port });
      assert.equal((await session.exec('echo up')).stdout, 'up\n');
      relay.drop();
      const started = Date.now();
      const error = await session.exec('echo never').then(
        () => assert.fail('a silent host answered'),
        (caught: unknown) => caught,
      );
      const took = Date.now() - started;
      assert.ok(error instanceof SshError, String(error));
      assert.equal(error.kind, 'unreachable');
      assert.match(error.message, new RegExp(`root@127\\.0\\.0\\.1:${relay.port} stopped answering \\(no answer for 0\\.6 s\\): declared unreachable`));
      // Three missed keepalives of 200 ms (0.6 s of silence, counted from the last answer, up to one
      // interval before `started`), not the command timeout of 60 s; +1 s margin for a loaded 2-core machine.
      assert.ok(took >= 400 && took < 1600, `took ${took} ms`);
      await waitFor(() => pool.stats().open === 0, 'the silent connection to be evicted');
      assert.ok(logs.some((line) => line.includes('connection closed (no answer for 0.6 s)')), logs.join('\n'));
      relay.restore();
      assert.equal((await session.exec('echo back')).stdout, 'back\n');
      assert.equal(pool.stats().connectionsOpened, 2);
    } finally {
      await relay.close();
    }
  });

  it('runs a command on an open connection in one round trip (its channel opened ahead), where exec() alone takes two', async () => {
    const oneWayMs = 150;
    const relay = await startRelay(sshd.port, oneWayMs);
    try {
      const timeCommands = async (openChannelAhead: boolean): Promise<number[]> => {
        const { pool } = makePool({ openChannelAhead, knownHostsFile: relayKnownHosts(relay.port) });
        const session = await pool.session({ ...target(sshd), port: relay.port });
        await session.exec('true');
        const took: number[] = [];
        for (let run = 0; run < 3; run++) {
          const started = Date.now();
          assert.equal((await session.exec(`echo out-${run}`)).stdout, `out-${run}\n`);
          took.push(Date.now() - started);
        }
        pool.dispose();
        return took;
      };
      const rtt = 2 * oneWayMs;
      const ahead = await timeCommands(true);
      const plain = await timeCommands(false);
      // The control shows the relay really costs a round trip per exchange.
      assert.ok(plain.every((ms) => ms >= 2 * rtt), `exec() alone: ${plain.join(', ')} ms for a ${rtt} ms round trip`);
      assert.ok(ahead.every((ms) => ms < 1.5 * rtt), `with a channel opened ahead: ${ahead.join(', ')} ms for a ${rtt} ms round trip (exec() alone: ${plain.join(', ')} ms)`);
    } finally {
      await relay.close();
    }
  });

  it('says when the connections being opened have their links up: before their handshakes end, and at once when none is', async () => {
    const { pool } = makePool();
    const settledFirst = (promise: Promise<unknown>, other: Promise<unknown>) => Promise.race([promise.then(() => 'first'), other.then(() => 'other')]);
    const never = new Promise<void>(() => undefined);
    assert.equal(await settledFirst(pool.whenDialled(60_000), new Promise((resolve) => setImmediate(resolve))), 'first', 'nothing being dialled: no wait');
    // Every chunk held 100 ms each way: the handshake takes several round trips, the local TCP connect none.
    const relay = await startRelay(sshd.port, 100);
    try {
      const { pool: slow } = makePool({ knownHostsFile: relayKnownHosts(relay.port) });
      const opening = slow.session({ ...target(sshd), port: relay.port });
      assert.equal(await settledFirst(slow.whenDialled(60_000), opening), 'first', 'the link was up before the handshake ended');
      const session = await opening;
      assert.equal((await session.exec('echo ok')).stdout, 'ok\n');
      assert.equal(await settledFirst(slow.whenDialled(60_000), never), 'first', 'nothing left being dialled');
    } finally {
      await relay.close();
    }
  });

  it("uses the target's keepalive_interval when it is shorter than the pool's", async () => {
    const relay = await startRelay(sshd.port);
    try {
      const { pool } = makePool({ keepaliveIntervalMs: 60_000, knownHostsFile: relayKnownHosts(relay.port) });
      const session = await pool.session({ ...target(sshd, { keepaliveInterval: 1 }), port: relay.port });
      await session.exec('true');
      relay.drop();
      const started = Date.now();
      await assert.rejects(session.exec('true'), { name: 'DeployRollbackError', kind: 'unreachable' });
      assert.ok(Date.now() - started < 8000, `took ${Date.now() - started} ms`);
    } finally {
      await relay.close();
    }
  });

  it('stops a command that runs past its deadline with a timeout error; the connection stays usable', async () => {
    const { pool } = makePool({ commandTimeoutMs: 400 });
    const session = await pool.session(target(sshd));
    const started = Date.now();
    await assert.rejects(session.exec('sleep 20'), (error: unknown) => {
      assert.ok(error instanceof SshError);
      assert.equal(error.kind, 'timeout');
      assert.match(error.message, /sleep 20 on root@127\.0\.0\.1:\d+ gave no result within 0\.4 s/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.equal((await session.exec('echo ok', { timeoutMs: 10_000 })).stdout, 'ok\n');
    assert.equal(pool.stats().connectionsOpened, 1);
  });

  it('refuses timeouts a timer cannot hold instead of firing at once', () => {
    assert.throws(() => makePool({ connectTimeoutMs: 2 ** 31 }), /connectTimeoutMs must be between 1 and 2147483647 ms/);
    assert.throws(() => makePool({ commandTimeoutMs: 0 }), /commandTimeoutMs/);
    assert.throws(() => makePool({ keepaliveIntervalMs: Number.NaN }), /keepaliveIntervalMs/);
  });

  it('tells an authentication failure apart from an unreachable host', async () => {
    const stranger = generateKey(path.join(root, 'keys', 'stranger-kind'));
    const { pool } = makePool({ connectTimeoutMs: 3000 });
    await assert.rejects(pool.session(target(sshd, { keys: [stranger.privateFile], keysOnly: true })), { kind: 'auth' });
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(pool.session({ ...target(sshd), port }), { kind: 'unreachable' });
  });

  it('refuses new sessions after dispose', async () => {
    const { pool } = makePool();
    await pool.session(target(sshd));
    pool.dispose();
    await assert.rejects(pool.session(target(sshd)), /disposed/);
  });
});
