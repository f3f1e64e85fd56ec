/**
 * One SSH connection of the pool (src/core/ssh/pool.ts): runs commands on channels, at most
 * `maxChannels` at a time, and reports its loss to every command in flight.
 */
import { StringDecoder } from 'node:string_decoder';
import { openSftp, type SftpChannel } from './sftp';
import { canOpenAhead, execOnChannel, isUnused, openSessionChannel } from './channels';
import type { Client, ClientChannel } from 'ssh2';
import { DeployRollbackError } from '../model';
import { SshError } from './errors';
import { redactSecrets } from './redact';
import type { ExecOptions, ExecResult } from './types';

/** setTimeout's ceiling: a longer delay fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_CHANNEL_OPEN_ATTEMPTS = 20;
/** How long a command waits for the channel opened ahead before opening its own. */
const AHEAD_WAIT_MS = 3_000;

function abortError(what: string): Error {
  const error = new Error(`Cancelled: ${what}`);
  error.name = 'AbortError';
  return error;
}

export function seconds(ms: number): string {
  const value = ms / 1000;
  return `${Number.isInteger(value) ? value : value.toFixed(1)} s`;
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

export class Connection {
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
