import type { SshTarget } from '../ssh/types';
import type { KamalConfig } from './config/types';

/**
 * Where to SSH for one config host. Kamal hands hosts to SSHKit, which also accepts
 * `user@host`, `host:port` and `[v6]:port`; those override the `ssh` block for that host.
 */
export function sshTargetFor(config: Pick<KamalConfig, 'ssh'>, host: string): SshTarget {
  const { ssh } = config;
  const parsed = parseHost(host);
  return {
    host: parsed.host,
    user: parsed.user ?? ssh.user,
    port: parsed.port ?? ssh.port,
    ...(ssh.proxy ? { proxy: { ...ssh.proxy } } : {}),
    ...(ssh.proxyCommand ? { proxyCommand: ssh.proxyCommand } : {}),
    keys: [...ssh.keys],
    keysOnly: ssh.keysOnly,
    config: Array.isArray(ssh.config) ? [...ssh.config] : ssh.config,
    keepaliveInterval: ssh.keepaliveInterval,
  };
}

function parseHost(text: string): { host: string; user?: string; port?: number } {
  let rest = text.trim();
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at > 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (bracketed) return { host: bracketed[1], user, port: toPort(bracketed[2]) };
  // More than one colon is a bare IPv6 address, not host:port.
  const hostPort = /^([^:]+):(\d+)$/.exec(rest);
  if (hostPort) return { host: hostPort[1], user, port: toPort(hostPort[2]) };
  return { host: rest, user };
}

function toPort(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const port = Number(text);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}
