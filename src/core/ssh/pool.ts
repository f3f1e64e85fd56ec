/**
 * SSH connections with ssh2: one connection per (user, host, port, jump), reused by every
 * command for that host, with OpenSSH-compatible host key checks and key/agent auth.
 */
import { StringDecoder } from 'node:string_decoder';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import { openSftp, type SftpChannel } from './sftp';
import { canOpenAhead, execOnChannel, isUnused, openSessionChannel } from './channels';
import { Client, utils, type AnyAuthMethod, type AuthHandlerMiddleware, type ClientChannel, type ParsedKey } from 'ssh2';
import { DeployRollbackError } from '../model';
import { quote } from '../shell';
import { SshError } from './errors';
import { inlineIncludes } from './includes';
import { appendKnownHost, checkKnownHosts, fingerprintSha256, keyTypeOfBlob, knownHostsName } from './knownHosts';
import { redactSecrets } from './redact';
import { describeTarget, resolveSshTarget, sshConfigFiles, type ResolvedSshTarget, type SshTargetHints } from './resolve';
import type { ExecOptions, ExecResult, HostSession, SessionPool, SshPrompts, SshTarget } from './types';

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
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_CLOSE_MS = 300_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 120_000;
const DEFAULT_KEEPALIVE_INTERVAL_MS = 5_000;
const DEFAULT_KEEPALIVE_MISSES = 3;
/** setTimeout's ceiling: a longer delay fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const PASSPHRASE_ATTEMPTS = 3;
const MAX_CHANNEL_OPEN_ATTEMPTS = 20;
/** How long a command waits for the channel opened ahead before opening its own. */
const AHEAD_WAIT_MS = 3_000;

function abortError(what: string): Error {
  const error = new Error(`Cancelled: ${what}`);
  error.name = 'AbortError';
  return error;
}

function seconds(ms: number): string {
  const value = ms / 1000;
  return `${Number.isInteger(value) ? value : value.toFixed(1)} s`;
}

function tildePath(file: string, homeDir: string): string {
  return file.startsWith(homeDir + path.sep) ? `~${file.slice(homeDir.length)}` : file;
}

async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new DeployRollbackError(`Cannot read ${file}: ${(error as Error).message}`);
  }
}

function firstKey(parsed: ParsedKey | ParsedKey[]): ParsedKey {
  return Array.isArray(parsed) ? parsed[0] : parsed;
}

class ChannelOpenFailure extends DeployRollbackError {}

/** Queue of runners for one connection, so bursts of commands stay under sshd's MaxSessions. */
class ChannelLimiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private limit: number) {}

  async acquire(signal: AbortSignal | undefined, what: string): Promise<void> {
    if (this.running < this.limit) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const start = () => {
        signal?.removeEventListener('abort', onAbort);
        this.running++;
        resolve();
      };
      const onAbort = () => {
        const index = this.waiting.indexOf(start);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(abortError(what));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(start);
    });
  }

  release(): void {
    this.running--;
    while (this.running < this.limit && this.waiting.length > 0) this.waiting.shift()!();
  }

  /** The server refused a channel while `running` were open: it allows fewer than we thought. */
  shrinkBelow(running: number): void {
    this.limit = Math.max(1, running - 1);
  }

  get inUse(): number {
    return this.running;
  }
}

class Connection {
  private closed = false;
  private active = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly closeListeners: Array<() => void> = [];
  private readonly inFlight = new Set<(error: Error) => void>();
  private readonly limiter: ChannelLimiter;
  /** The channel opened ahead for the next command (undefined while none is, or once the server refused one). */
  private ahead: Promise<ClientChannel | undefined> | undefined;
  private openAhead: boolean;

  constructor(
    private readonly client: Client,
    readonly where: string,
    private readonly cleanup: () => void,
    private readonly options: { idleCloseMs: number; maxChannels: number; commandTimeoutMs: number; silentAfterMs: number; openChannelAhead: boolean; log: (line: string) => void },
  ) {
    this.limiter = new ChannelLimiter(options.maxChannels);
    this.openAhead = options.openChannelAhead && canOpenAhead(client);
    const onGone = (reason: string, silent = false) => {
      if (this.closed) return;
      this.closed = true;
      clearTimeout(this.idleTimer);
      options.log(`[ssh ${where}] connection closed (${reason})`);
      const lost = silent
        ? new SshError(`${where} stopped answering (${reason}): declared unreachable`, 'unreachable')
        : new SshError(`The SSH connection to ${where} was lost (${reason})`, 'unreachable');
      for (const reject of this.inFlight) reject(lost);
      this.inFlight.clear();
      this.cleanup();
      for (const listener of this.closeListeners.splice(0)) listener();
    };
    client.on('close', () => onGone('closed by the remote side or the network'));
    client.on('end', () => onGone('ended'));
    client.on('error', (error: Error & { level?: string }) => {
      // ssh2's keepalive gave up: the link is silent (dropped, not reset), so no TCP error would come for minutes.
      if (error.level === 'client-timeout') {
        onGone(`no answer for ${seconds(options.silentAfterMs)}`, true);
        client.destroy();
      } else onGone(error.message);
    });
    this.armIdle();
    this.openNextAhead();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  close(): void {
    if (this.closed) return;
    this.client.end();
    // end() is graceful; make sure the socket and any jump/proxy go away even if the peer stalls.
    setTimeout(() => this.client.destroy(), 2000).unref();
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.active > 0 || this.closed) return;
    this.idleTimer = setTimeout(() => {
      this.options.log(`[ssh ${this.where}] closing after ${seconds(this.options.idleCloseMs)} idle`);
      this.close();
    }, this.options.idleCloseMs);
    this.idleTimer.unref();
  }

  private openNextAhead(): void {
    if (!this.openAhead || this.closed || this.ahead) return;
    this.ahead = openSessionChannel(this.client).catch((error: Error) => {
      // sshd's MaxSessions (or an old server): the spare would only compete with real commands.
      this.openAhead = false;
      this.options.log(`[ssh ${this.where}] not opening channels ahead: ${error.message}`);
      return undefined;
    });
  }

  /** Starts `command` on the channel opened ahead when there is one, else as ssh2's exec() does. */
  private startCommand(command: string, wanted: () => boolean, started: (error: Error | undefined, channel?: ClientChannel) => void): void {
    const ahead = this.ahead;
    this.ahead = undefined;
    if (!ahead) {
      this.client.exec(command, (error, channel) => started(error, channel));
      this.openNextAhead();
      return;
    }
    // A server slow to confirm the spare must not hold the command: past the bound it goes as exec() would.
    let bound: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (bound = setTimeout(() => resolve('late'), AHEAD_WAIT_MS)));
    void Promise.race([ahead, late]).then((first) => {
      clearTimeout(bound);
      if (first === 'late') {
        this.options.log(`[ssh ${this.where}] the channel opened ahead was not confirmed within ${seconds(AHEAD_WAIT_MS)}: opening another`);
        void ahead.then((channel) => channel?.close());
      }
      const channel = first === 'late' ? undefined : first;
      if (!wanted()) {
        // Cancelled or timed out while the channel was on its way: the command never ran.
        channel?.close();
      } else if (!channel || !isUnused(channel) || this.closed) {
        if (this.closed) started(new Error('the connection closed'));
        else this.client.exec(command, (error, opened) => started(error, opened));
      } else {
        execOnChannel(channel, command, (error) => {
          if (error) {
            channel.close();
            started(error);
          }
        });
        started(undefined, channel);
      }
      this.openNextAhead();
    });
  }

  /** An SFTP channel on this connection, for uploads (src/core/ssh/sftp.ts). */
  sftp(): Promise<SftpChannel> {
    return openSftp(this.client);
  }

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    const shown = redactSecrets(command);
    const what = `${shown.length > 120 ? `${shown.slice(0, 117)}...` : shown} on ${this.where}`;
    if (options.signal?.aborted) throw abortError(what);
    this.active++;
    clearTimeout(this.idleTimer);
    try {
      this.options.log(`[ssh ${this.where}] $ ${shown}`);
      for (let attempt = 1; ; attempt++) {
        await this.limiter.acquire(options.signal, what);
        const othersOpen = this.limiter.inUse - 1;
        try {
          const result = await this.runChannel(command, options, what);
          this.options.log(`[ssh ${this.where}] exit ${result.code ?? 'without status'}`);
          return result;
        } catch (error) {
          // sshd refuses channels beyond MaxSessions (and counts closing ones): wait for one to finish.
          if (!(error instanceof ChannelOpenFailure) || othersOpen === 0 || attempt >= MAX_CHANNEL_OPEN_ATTEMPTS) throw error;
          this.limiter.shrinkBelow(othersOpen + 1);
          this.options.log(`[ssh ${this.where}] the server refused a channel with ${othersOpen} others open; waiting for one to finish`);
        } finally {
          this.limiter.release();
        }
      }
    } finally {
      this.active--;
      this.armIdle();
    }
  }

  private runChannel(command: string, options: ExecOptions, what: string): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      if (this.closed) {
        reject(new SshError(`The SSH connection to ${this.where} is closed`, 'unreachable'));
        return;
      }
      let settled = false;
      let openChannel: ClientChannel | undefined;
      const timer: { deadline?: NodeJS.Timeout } = {};
      const finish = (error: Error | undefined, result?: ExecResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer.deadline);
        this.inFlight.delete(fail);
        options.signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(result!);
      };
      const fail = (error: Error) => finish(error);
      const stopRemote = () => {
        if (!openChannel) return;
        signalChannel(openChannel, 'TERM');
        openChannel.close();
      };
      // Reject at once: sshd may keep the channel until the remote process exits.
      const onAbort = () => {
        stopRemote();
        fail(abortError(what));
      };
      this.inFlight.add(fail);
      if (options.signal?.aborted) {
        onAbort();
        return;
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const timeoutMs = Math.min(options.timeoutMs ?? this.options.commandTimeoutMs, MAX_TIMER_MS);
      timer.deadline = setTimeout(() => {
        stopRemote();
        this.options.log(`[ssh ${this.where}] no result within ${seconds(timeoutMs)}: stopped`);
        fail(new SshError(`${what} gave no result within ${seconds(timeoutMs)}`, 'timeout'));
      }, timeoutMs);

      this.startCommand(command, () => !settled, (error, channel) => {
        if (error || !channel) {
          fail(new ChannelOpenFailure(`Cannot run a command on ${this.where}: ${error?.message ?? 'no channel'}`));
          return;
        }
        if (settled) {
          channel.close();
          return;
        }
        openChannel = channel;
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code: number | null = null;
        const decoder = options.onStdout ? new StringDecoder('utf8') : undefined;
        channel.on('data', (chunk: Buffer) => {
          stdout.push(chunk);
          if (decoder) options.onStdout?.(decoder.write(chunk));
        });
        channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        channel.on('exit', (exitCode: number | null) => {
          code = typeof exitCode === 'number' ? exitCode : null;
        });
        channel.on('close', () => {
          finish(undefined, { code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
        });
        if (options.stdin !== undefined) channel.end(options.stdin);
        else channel.end();
      });
    });
  }
}

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
    const plain = utils.parseKey(data);
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
        const parsed = utils.parseKey(data, passphrase);
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

  function openProxyCommand(target: ResolvedSshTarget): { sock: Duplex; child: ChildProcess; stderrTail: () => Promise<string> } {
    const command = target.proxyCommand!.replace(/%(.)/g, (whole, letter: string) => {
      switch (letter) {
        case '%':
          return '%';
        case 'h':
          return quote(target.hostName);
        case 'p':
          return quote(String(target.port));
        case 'r':
          return quote(target.user);
        case 'n':
          return quote(target.alias);
        default:
          throw new DeployRollbackError(`Unsupported token ${whole} in ProxyCommand for ${target.alias}`);
      }
    });
    log(`[ssh ${target.alias}] ProxyCommand: ${redactSecrets(command)}`);
    const child = spawn('/bin/sh', ['-c', `exec ${command}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = redactSecrets(chunk.toString('utf8').trimEnd());
      stderr = `${stderr}\n${text}`.slice(-500);
      log(`[ssh ${target.alias}] ProxyCommand: ${text}`);
    });
    const sock = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
    child.on('exit', () => sock.destroy());
    const stderrClosed = new Promise<void>((resolve) => child.stderr!.once('close', () => resolve()));
    // A failing proxy's last words explain the failure; give it a moment to finish saying them.
    const stderrTail = async () => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stderrClosed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))]);
      clearTimeout(timer);
      return stderr.trim();
    };
    return { sock, child, stderrTail };
  }

  function forwardThrough(jump: Client, target: ResolvedSshTarget, where: string): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      jump.forwardOut('127.0.0.1', 0, target.hostName, target.port, (error, channel) => {
        if (error) reject(new SshError(`Cannot connect to ${where}: the jump host could not reach it (${error.message})`, 'unreachable'));
        else resolve(channel);
      });
    });
  }

  /** Opens a connection (through its jumps) and returns the client plus what to tear down with it. */
  async function dial(target: ResolvedSshTarget): Promise<{ client: Client; cleanup: () => void }> {
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
        const proxy = openProxyCommand(target);
        cleanups.push(() => proxy.child.kill());
        sock = proxy.sock;
        proxyStderr = proxy.stderrTail;
      }
      try {
        const client = await handshake(target, where, sock);
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

  function handshake(target: ResolvedSshTarget, where: string, sock: Duplex | undefined): Promise<Client> {
    return new Promise<Client>((resolve, reject) => {
      const client = new Client();
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
    });
  }

  async function connect(target: ResolvedSshTarget): Promise<Connection> {
    const where = describeTarget(target);
    log(`[ssh ${target.alias}] connecting to ${where}`);
    const { client, cleanup } = await dial(target);
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
      const created = connect(target);
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

  async function resolve(target: SshTarget & SshTargetHints): Promise<ResolvedSshTarget> {
    const files = sshConfigFiles(target.config, homeDir, systemSshConfigFile);
    const texts: string[] = [];
    for (const file of files) {
      const text = await readTextIfExists(file);
      const includeBase = file === systemSshConfigFile ? path.dirname(file) : path.join(homeDir, '.ssh');
      if (text !== undefined) texts.push(await inlineIncludes(text, includeBase, homeDir));
      else if (target.config !== true) throw new DeployRollbackError(`The SSH config file ${file} (from Kamal's ssh.config) does not exist`);
    }
    return resolveSshTarget(target, texts, { homeDir, localUser });
  }

  return {
    async session(target) {
      const resolved = await resolve(target);
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
    dispose() {
      disposed = true;
      for (const pending of connections.values()) pending.then((opened) => opened.close(), () => undefined);
      connections.clear();
    },
  };
}

/**
 * Asks sshd to signal the remote command (OpenSSH killpg()s the session). ssh2's
 * `channel.signal()` sends nothing once stdin is closed, which ours always is, so this goes
 * to the protocol object the same way that method does.
 */
function signalChannel(channel: ClientChannel, signal: string): void {
  const internals = channel as unknown as {
    outgoing?: { id: number; state: string };
    _client?: { _protocol?: { signal(id: number, name: string): void } };
  };
  try {
    if (internals.outgoing && (internals.outgoing.state === 'open' || internals.outgoing.state === 'eof')) internals._client?._protocol?.signal(internals.outgoing.id, signal);
  } catch {
    // Old servers reject signals; closing the channel is the fallback.
  }
}

function safeLocalUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? 'root';
  }
}

function connectError(where: string, error: Error & { level?: string; code?: string }, timeoutMs: number): SshError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new SshError(`Cannot connect to ${where}: connection refused (is sshd listening on that port?)`, 'unreachable');
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new SshError(`Cannot connect to ${where}: host unreachable`, 'unreachable');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new SshError(`Cannot connect to ${where}: host name not found`, 'unreachable');
    case 'ETIMEDOUT':
      return new SshError(`Cannot connect to ${where}: connection timed out after ${seconds(timeoutMs)}`, 'unreachable');
    case 'ECONNRESET':
      return new SshError(`Cannot connect to ${where}: connection reset by the server`, 'unreachable');
  }
  return new SshError(`Cannot connect to ${where}: ${error.message}`, 'unreachable');
}
