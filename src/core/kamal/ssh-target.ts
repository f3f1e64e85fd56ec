import type { SshTarget } from '../ssh/types';
import type { KamalConfig } from './config/types';
import { readKamalHost } from './config/host-string';

/**
 * Where to SSH for one config host. Kamal hands hosts to SSHKit, which also accepts
 * `user@host`, `host:port`, bare IPv6 (`::1`) and `[v6]`/`[v6]:port`; those override the `ssh` block for that host.
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
  const parts = readKamalHost(text.trim());
  // Config validation refuses an unreadable host before any connect; whole is the safe reading.
  if (typeof parts === 'string') return { host: text.trim() };
  return { host: parts.hostname, user: parts.user, port: parts.port };
}
