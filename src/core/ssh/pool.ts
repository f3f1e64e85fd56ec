/**
 * SSH connections with ssh2: one connection per (user, host, port, jump), reused by every
 * command for that host, with OpenSSH-compatible host key checks and key/agent auth.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import type { AnyAuthMethod, AuthHandlerMiddleware, Client as Ssh2Client, ParsedKey, utils as Ssh2Utils } from 'ssh2';
import { DeployRollbackError } from '../model';
import { quote } from '../shell';
import { Connection, MAX_TIMER_MS, seconds } from './connection';
import { connectError, firstKey, forwardThrough, openProxyCommand, readTextIfExists, safeLocalUser, tildePath } from './dial';
import { SshError } from './errors';
import { coalescingSocket } from './socket';
import { inlineIncludes } from './includes';
import { appendKnownHost, checkKnownHosts, fingerprintSha256, keyTypeOfBlob, knownHostsName } from './knownHosts';
import { describeTarget, resolveSshTarget, sshConfigFiles, type ResolvedSshTarget, type SshTargetHints } from './resolve';
import type { HostSession, SessionPool, SshPrompts, SshTarget } from './types';

export interface SessionPoolOptions {
  prompts: SshPrompts;
  /** Debug lines; commands pass through redactSecrets first. */
  log?: (line: string) => void;
  /** TCP connect + handshake + auth, not counting time spent in prompts. Default 10000. */
  connectTimeoutMs?: number;
  /** Close a connection after this long without a command. Default 300000. */
  idleCloseMs?: number;
  /** Deadline of one command (exec) unless the caller gives its own. Default 120000. */
  commandTimeoutMs?: number;
  /**
   * Keepalive period: the target's own (Kamal's ssh.keepalive_interval) when shorter. A host
   * that misses `keepaliveMisses` in a row is declared unreachable and its connection evicted.
   * Default 5000.
   */
  keepaliveIntervalMs?: number;
  /** Default 3. */
  keepaliveMisses?: number;
  /** Default os.homedir(). */
  homeDir?: string;
  /** Default <homeDir>/.ssh/known_hosts: read and appended to. */
  knownHostsFile?: string;
  /** Read only. Default /etc/ssh/ssh_known_hosts; null: none. */
  globalKnownHostsFile?: string | null;
  /** Read after ~/.ssh/config when the target's `config` is true. Default /etc/ssh/ssh_config; null: none. */
  systemSshConfigFile?: string | null;
  /** Default SSH_AUTH_SOCK; null: no agent. */
  agentSocket?: string | null;
  /** 'ask' (default): unknown host keys go to prompts.confirmUnknownHostKey. 'strict': refused. */
  hostKeyPolicy?: 'ask' | 'strict';
  /** Commands run at once on one connection; sshd's MaxSessions defaults to 10. Default 8. */
  maxChannelsPerConnection?: number;
  /** Default os.userInfo().username. */
  localUser?: string;
  /**
   * Keep a session channel opened ahead on each connection, so a command costs one round trip
   * instead of two (src/core/ssh/channels.ts). Default true.
   */
  openChannelAhead?: boolean;
}

export interface SessionPoolStats {
  /** SSH connections opened to targets (not counting jump hosts) since the pool was created. */
  connectionsOpened: number;
  /** Connections open now. */
  open: number;
}

export interface InspectableSessionPool extends SessionPool {
  session(target: SshTarget & SshTargetHints): Promise<HostSession>;
  stats(): SessionPoolStats;
  whenDialled(timeoutMs: number): Promise<void>;
}

// The client and key parser alone: ssh2's index also loads its server, key generator and HTTP
// agents (with node's http and https), which every CLI start would pay for and nothing here uses.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Client = require('ssh2/lib/client.js') as typeof Ssh2Client;
type Client = Ssh2Client;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parseKey } = require('ssh2/lib/protocol/keyParser.js') as { parseKey: typeof Ssh2Utils.parseKey };

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_CLOSE_MS = 300_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 120_000;
const DEFAULT_KEEPALIVE_INTERVAL_MS = 5_000;
const DEFAULT_KEEPALIVE_MISSES = 3;
export { MAX_TIMER_MS };
const PASSPHRASE_ATTEMPTS = 3;

/** Creates the pool; the VS Code layer and the CLI each hold one and dispose it on exit. */
export function createSessionPool(options: SessionPoolOptions): InspectableSessionPool {
  const log = options.log ?? (() => {});
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const idleCloseMs = options.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS;
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const keepaliveIntervalMs = options.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS;
  const keepaliveMisses = Math.max(1, options.keepaliveMisses ?? DEFAULT_KEEPALIVE_MISSES);
  const keepaliveMs = (target: ResolvedSshTarget): number =>
    Math.max(100, Math.min(keepaliveIntervalMs, target.keepaliveInterval > 0 ? target.keepaliveInterval * 1000 : keepaliveIntervalMs));
  for (const [name, value] of [['connectTimeoutMs', connectTimeoutMs], ['commandTimeoutMs', commandTimeoutMs], ['keepaliveIntervalMs', keepaliveIntervalMs]] as const) {
    if (!Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) throw new DeployRollbackError(`SSH ${name} must be between 1 and ${MAX_TIMER_MS} ms, not ${value}`);
  }
  const homeDir = options.homeDir ?? os.homedir();
  const knownHostsFile = options.knownHostsFile ?? path.join(homeDir, '.ssh', 'known_hosts');
  const globalKnownHostsFile = options.globalKnownHostsFile === undefined ? '/etc/ssh/ssh_known_hosts' : options.globalKnownHostsFile;
  const systemSshConfigFile = options.systemSshConfigFile === undefined ? '/etc/ssh/ssh_config' : options.systemSshConfigFile;
  const agentSocket = options.agentSocket === undefined ? process.env.SSH_AUTH_SOCK || null : options.agentSocket;
  const hostKeyPolicy = options.hostKeyPolicy ?? 'ask';
  const maxChannels = options.maxChannelsPerConnection ?? 8;
  const localUser = options.localUser ?? safeLocalUser();
  const openChannelAhead = options.openChannelAhead ?? true;

  const connections = new Map<string, Promise<Connection>>();
  const dials = new Set<Promise<void>>();
  const decryptedKeys = new Map<string, { data: Buffer; key: ParsedKey }>();
  const keyLocks = new Map<string, Promise<unknown>>();
  const hostKeyPrompts = new Map<string, Promise<boolean>>();
  const openConnections = new Set<Connection>();
  let connectionsOpened = 0;
  let disposed = false;

  /** One decryption (and prompt) per key file at a time, so parallel connects ask once. */
  function withKeyLock<T>(file: string, work: () => Promise<T>): Promise<T> {
    const previous = keyLocks.get(file) ?? Promise.resolve();
    const next = previous.then(work, work);
    keyLocks.set(file, next.catch(() => undefined));
    return next;
  }

  async function loadKey(file: string, pausingTimeout: <T>(work: () => Promise<T>) => Promise<T>): Promise<ParsedKey | undefined> {
    let data: Buffer;
    try {
      data = await fs.readFile(file);
    } catch (error) {
      log(`[ssh] skipping key ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      return undefined;
    }
    const plain = parseKey(data);
    if (!(plain instanceof Error)) return firstKey(plain);
    if (!/encrypted/i.test(plain.message) || !/no passphrase/i.test(plain.message)) {
      log(`[ssh] skipping key ${file}: ${plain.message}`);
      return undefined;
    }
    return withKeyLock(file, async () => {
      const cached = decryptedKeys.get(file);
      // The file may have been replaced since; the cached key is only good for the same bytes.
      if (cached && cached.data.equals(data)) return cached.key;
      for (let attempt = 1; attempt <= PASSPHRASE_ATTEMPTS; attempt++) {
        const passphrase = await pausingTimeout(() => options.prompts.passphrase(file));
        if (passphrase === undefined) {
          log(`[ssh] skipping key ${file}: no passphrase given`);
          return undefined;
        }
        const parsed = parseKey(data, passphrase);
        if (!(parsed instanceof Error)) {
          // Decrypting runs bcrypt in JavaScript (about a second): do it once per pool.
          decryptedKeys.set(file, { data, key: firstKey(parsed) });
          return firstKey(parsed);
        }
        log(`[ssh] wrong passphrase for ${file} (attempt ${attempt} of ${PASSPHRASE_ATTEMPTS})`);
      }
      log(`[ssh] skipping key ${file}: wrong passphrase ${PASSPHRASE_ATTEMPTS} times`);
      return undefined;
    });
  }

  async function verifyHostKey(target: ResolvedSshTarget, keyBlob: Buffer, pausingTimeout: <T>(work: () => Promise<T>) => Promise<T>): Promise<void> {
    const keyType = keyTypeOfBlob(keyBlob);
    const keyBase64 = keyBlob.toString('base64');
    const fingerprint = fingerprintSha256(keyBlob);
    const name = knownHostsName(target.hostName, target.port);
    const files = [knownHostsFile, ...(globalKnownHostsFile ? [globalKnownHostsFile] : [])];
    for (const file of files) {
      const text = await readTextIfExists(file);
      if (text === undefined) continue;
      const verdict = checkKnownHosts(text, target.hostName, target.port, keyType, keyBase64);
      if (verdict === 'match') return;
      if (verdict === 'revoked') {
        throw new SshError(`The ${keyType} host key of ${name} (${fingerprint}) is marked @revoked in ${file}: refusing to connect.`, 'host-key');
      }
      if (verdict !== 'unknown') {
        throw new SshError(
          `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for ${name}: the ${keyType} host key it sent (${fingerprint}) ` +
            `is not the one in known_hosts. Someone could be eavesdropping on you right now (man-in-the-middle attack), ` +
            `or the host key has just been changed. Offending key in ${file}:${verdict.changed}. Refusing to connect. ` +
            `If the change is expected, remove the old key with: ssh-keygen -f ${quote(file)} -R ${quote(name)}`,
          'host-key',
        );
      }
    }
    if (hostKeyPolicy === 'strict') {
      throw new SshError(`The ${keyType} host key of ${name} (${fingerprint}) is not in ${knownHostsFile}, and unknown host keys are refused.`, 'host-key');
    }
    // Parallel connects to one new host ask once.
    const promptKey = `${name} ${keyType} ${keyBase64}`;
    let shared = hostKeyPrompts.get(promptKey);
    if (!shared) {
      shared = options.prompts.confirmUnknownHostKey(target.hostName, target.port, keyType, fingerprint).then(async (accepted) => {
        if (accepted) {
          await appendKnownHost(knownHostsFile, target.hostName, target.port, keyType, keyBase64);
          log(`[ssh] added ${name} (${keyType} ${fingerprint}) to ${knownHostsFile}`);
        }
        return accepted;
      });
      hostKeyPrompts.set(promptKey, shared);
      const forget = () => hostKeyPrompts.delete(promptKey);
      shared.then(forget, forget);
    }
    const answer = shared;
    if (!(await pausingTimeout(() => answer))) {
      throw new SshError(`The ${keyType} host key of ${name} (${fingerprint}) was not trusted: not connecting.`, 'host-key');
    }
  }

  /**
   * Opens a connection (through its jumps) and returns the client plus what to tear down with it.
   * `onSocket` is called once the link to the target is up (its TCP connection, or its jump or proxy), before the handshake.
   */
  async function dial(target: ResolvedSshTarget, onSocket?: () => void): Promise<{ client: Client; cleanup: () => void }> {
    const where = describeTarget(target);
    const cleanups: Array<() => void> = [];
    const cleanup = () => cleanups.splice(0).forEach((step) => step());
    try {
      let sock: Duplex | undefined;
      let proxyStderr = async () => '';
      if (target.jump) {
        const jump = await dial(target.jump);
        cleanups.push(() => jump.client.end(), jump.cleanup);
        sock = await forwardThrough(jump.client, target, where);
      } else if (target.proxyCommand) {
        const proxy = openProxyCommand(target, log);
        cleanups.push(() => proxy.child.kill());
        sock = proxy.sock;
        proxyStderr = proxy.stderrTail;
      } else {
        sock = coalescingSocket(target.hostName, target.port);
      }
      try {
        const client = await handshake(target, where, sock, onSocket);
        return { client, cleanup };
      } catch (error) {
        const said = await proxyStderr();
        if (said && error instanceof DeployRollbackError) throw new SshError(`${error.message} (ProxyCommand said: ${said})`, error instanceof SshError ? error.kind : 'unreachable');
        throw error;
      }
    } catch (error) {
      cleanup();
      throw error;
    }
  }

  function handshake(target: ResolvedSshTarget, where: string, sock: Duplex | undefined, onSocket?: () => void): Promise<Client> {
    return new Promise<Client>((resolve, reject) => {
      const client = new Client();
      // After ssh2's own 'connect' work: its identification line goes out first.
      if (onSocket) client.once('connect', () => setImmediate(onSocket));
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let prompting = 0;
      let ownError: Error | undefined;
      const triedKeys: string[] = [];
      let triedAgent = false;
      let serverMethods: string[] | undefined;

      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.destroy();
        reject(error);
      };
      const arm = () => {
        clearTimeout(timer);
        if (prompting > 0 || settled) return;
        timer = setTimeout(() => fail(new SshError(`Cannot connect to ${where}: connection timed out after ${seconds(connectTimeoutMs)}`, 'unreachable')), connectTimeoutMs);
      };
      const pausingTimeout = async <T>(work: () => Promise<T>): Promise<T> => {
        prompting++;
        clearTimeout(timer);
        try {
          return await work();
        } finally {
          prompting--;
          arm();
        }
      };

      const steps: Array<() => Promise<AnyAuthMethod | undefined>> = [];
      if (agentSocket && !target.identitiesOnly) {
        steps.push(async () => {
          triedAgent = true;
          return { type: 'agent', username: target.user, agent: agentSocket };
        });
      }
      for (const file of target.identityFiles) {
        steps.push(async () => {
          const key = await loadKey(file, pausingTimeout);
          if (!key) return undefined;
          triedKeys.push(tildePath(file, homeDir));
          return { type: 'publickey', username: target.user, key };
        });
      }
      const authHandler: AuthHandlerMiddleware = (methodsLeft, _partialSuccess, next) => {
        if (methodsLeft) serverMethods = methodsLeft;
        void (async () => {
          if (methodsLeft && !methodsLeft.includes('publickey')) return undefined;
          while (steps.length > 0 && !settled) {
            const method = await steps.shift()!();
            if (method) return method;
          }
          return undefined;
        })().then(
          (method) => (next as (method: AnyAuthMethod | false) => void)(method ?? false),
          (error: Error) => fail(error),
        );
      };

      const authFailure = (): DeployRollbackError => {
        const tried = [...(triedKeys.length > 0 ? [`keys ${triedKeys.join(', ')}`] : []), ...(triedAgent ? ['the agent'] : [])];
        const cause =
          serverMethods && !serverMethods.includes('publickey')
            ? `the server only allows ${serverMethods.join(', ')}`
            : tried.length > 0
              ? `tried ${tried.join(' and ')}`
              : `no usable key (looked for ${target.identityFiles.map((file) => tildePath(file, homeDir)).join(', ')}${agentSocket && !target.identitiesOnly ? '' : ' and no agent'})`;
        return new SshError(`Cannot connect to ${where}: authentication failed: ${cause}`, 'auth');
      };

      client.on('ready', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(client);
      });
      client.on('error', (error: Error & { level?: string; code?: string }) => {
        if (error.level === 'agent') {
          log(`[ssh ${where}] agent: ${error.message}`);
          return;
        }
        if (error.level === 'client-authentication') {
          if (/All configured authentication methods failed/.test(error.message)) fail(authFailure());
          else log(`[ssh ${where}] ${error.message}`);
          return;
        }
        fail(ownError ?? connectError(where, error, connectTimeoutMs));
      });
      client.on('close', () => fail(ownError ?? new SshError(`Cannot connect to ${where}: the connection closed during the SSH handshake`, 'unreachable')));

      arm();
      client.connect({
        host: target.hostName,
        port: target.port,
        username: target.user,
        sock,
        readyTimeout: 0,
        keepaliveInterval: keepaliveMs(target),
        // ssh2 gives up when a tick finds more than this many pings unanswered: the Nth silent period.
        keepaliveCountMax: keepaliveMisses - 1,
        hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
          verifyHostKey(target, key, pausingTimeout).then(
            () => verify(true),
            (error: Error) => {
              ownError = error;
              verify(false);
            },
          );
        },
        authHandler,
      });
      // ssh2 writes a packet in parts (length, payload, MAC): with Nagle on, the parts after the first
      // wait for the host's delayed ACK (40 ms on Linux) on every exchange, handshake steps included.
      client.setNoDelay(true);
    });
  }

  async function connect(target: ResolvedSshTarget, onSocket: () => void): Promise<Connection> {
    const where = describeTarget(target);
    log(`[ssh ${target.alias}] connecting to ${where}`);
    const { client, cleanup } = await dial(target, onSocket);
    connectionsOpened++;
    log(`[ssh ${target.alias}] connected to ${where}`);
    const opened = new Connection(client, where, cleanup, { idleCloseMs, maxChannels, commandTimeoutMs, silentAfterMs: keepaliveMs(target) * keepaliveMisses, openChannelAhead, log });
    openConnections.add(opened);
    opened.onClose(() => openConnections.delete(opened));
    return opened;
  }

  function connection(target: ResolvedSshTarget): Promise<Connection> {
    if (disposed) return Promise.reject(new DeployRollbackError('The SSH session pool has been disposed'));
    const key = describeTarget(target);
    let pending = connections.get(key);
    if (!pending) {
      const socketUp = dialling();
      const created = connect(target, socketUp);
      created.then(socketUp, socketUp);
      pending = created;
      connections.set(key, created);
      created.then(
        (opened) => {
          if (disposed) opened.close();
          opened.onClose(() => {
            if (connections.get(key) === created) connections.delete(key);
          });
        },
        () => {
          if (connections.get(key) === created) connections.delete(key);
        },
      );
    }
    return pending;
  }

  /**
   * Connections being dialled: each until its link is up (or it failed), so that local work can
   * wait for the handshakes' first bytes to be out before it takes the CPU. Returns the "up" call.
   */
  function dialling(): () => void {
    let up!: () => void;
    const waiting = new Promise<void>((resolve) => (up = resolve));
    dials.add(waiting);
    void waiting.then(() => dials.delete(waiting));
    return up;
  }

  async function resolve(target: SshTarget & SshTargetHints): Promise<ResolvedSshTarget> {
    const files = sshConfigFiles(target.config, homeDir, systemSshConfigFile);
    const texts: string[] = [];
    // Read at once, used in order: every connect waits for these before it dials.
    const reads = files.map((file) => readTextIfExists(file));
    for (const read of reads) read.catch(() => undefined);
    for (const [index, file] of files.entries()) {
      const text = await reads[index];
      const includeBase = file === systemSshConfigFile ? path.dirname(file) : path.join(homeDir, '.ssh');
      if (text !== undefined) texts.push(await inlineIncludes(text, includeBase, homeDir));
      else if (target.config !== true) throw new DeployRollbackError(`The SSH config file ${file} (from Kamal's ssh.config) does not exist`);
    }
    return resolveSshTarget(target, texts, { homeDir, localUser });
  }

  return {
    async session(target) {
      // Until it dials, a session still reading the ssh config counts as being dialled.
      const resolving = dialling();
      let resolved: ResolvedSshTarget;
      try {
        resolved = await resolve(target);
      } finally {
        resolving();
      }
      let current = await connection(resolved);
      return {
        host: target.host,
        async exec(command, execOptions = {}) {
          if (current.isClosed) current = await connection(resolved);
          return current.exec(command, execOptions);
        },
        async sftp() {
          if (current.isClosed) current = await connection(resolved);
          return current.sftp();
        },
      };
    },
    stats() {
      return { connectionsOpened, open: openConnections.size };
    },
    async whenDialled(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      // A session that finished resolving hands over to its connection's dial, so look again until none is left.
      while (dials.size > 0 && Date.now() < deadline) {
        let timer: NodeJS.Timeout | undefined;
        const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline - Date.now())));
        await Promise.race([...dials, bound]);
        clearTimeout(timer);
      }
    },
    dispose() {
      disposed = true;
      for (const pending of connections.values()) pending.then((opened) => opened.close(), () => undefined);
      connections.clear();
    },
  };
}
