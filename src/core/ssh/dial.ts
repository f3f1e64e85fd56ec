/**
 * Helpers of the pool for opening a connection: reading keys and config files, reaching a
 * host through a ProxyCommand or a jump host, and explaining why a connect failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import type { Client, ParsedKey } from 'ssh2';
import { DeployRollbackError } from '../model';
import { quote } from '../shell';
import { seconds } from './connection';
import { SshError } from './errors';
import { redactSecrets } from './redact';
import type { ResolvedSshTarget } from './resolve';

export function tildePath(file: string, homeDir: string): string {
  return file.startsWith(homeDir + path.sep) ? `~${file.slice(homeDir.length)}` : file;
}

export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new DeployRollbackError(`Cannot read ${file}: ${(error as Error).message}`);
  }
}

export function firstKey(parsed: ParsedKey | ParsedKey[]): ParsedKey {
  return Array.isArray(parsed) ? parsed[0] : parsed;
}

export function openProxyCommand(target: ResolvedSshTarget, log: (line: string) => void): { sock: Duplex; child: ChildProcess; stderrTail: () => Promise<string> } {
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

export function forwardThrough(jump: Client, target: ResolvedSshTarget, where: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    jump.forwardOut('127.0.0.1', 0, target.hostName, target.port, (error, channel) => {
      if (error) reject(new SshError(`Cannot connect to ${where}: the jump host could not reach it (${error.message})`, 'unreachable'));
      else resolve(channel);
    });
  });
}

export function safeLocalUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? 'root';
  }
}

export function connectError(where: string, error: Error & { level?: string; code?: string }, timeoutMs: number): SshError {
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
