/**
 * Turns a Kamal `ssh` target into what to actually connect to, applying ssh_config the way
 * Kamal's net-ssh does: options Kamal passes explicitly win, ssh_config fills in the rest.
 * Kamal always passes `user` (default root) and `port` (default 22), so ssh_config `User` and
 * `Port` only apply when the caller marks them as defaulted (e.g. a host typed by hand).
 */
import * as path from 'node:path';
import SSHConfig from 'ssh-config';
import { DeployRollbackError } from '../model';
import type { SshTarget } from './types';

export interface SshResolveEnv {
  homeDir: string;
  /** For `%u` and for ProxyJump hops that name no user and have no ssh_config `User`. */
  localUser: string;
}

/** Optional facts about a target that SshTarget cannot say: which values are defaults. */
export interface SshTargetHints {
  defaulted?: { user?: boolean; port?: boolean };
}

export interface ResolvedSshTarget {
  /** The host as named in the Kamal config (or in ProxyJump). */
  alias: string;
  /** What is dialled: ssh_config `HostName`, else the alias. */
  hostName: string;
  user: string;
  port: number;
  /** Absolute private key paths, tried in order. */
  identityFiles: string[];
  /** Kamal `keys_only` or ssh_config `IdentitiesOnly`: the agent is not used. */
  identitiesOnly: boolean;
  /** Connect through this host first. */
  jump?: ResolvedSshTarget;
  /** Raw command with `%h`/`%p`/`%r` still in it; the pool substitutes quoted values. */
  proxyCommand?: string;
  /** Seconds; 0 = off. */
  keepaliveInterval: number;
}

export const DEFAULT_IDENTITY_FILES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];
const MAX_JUMP_HOPS = 8;

type Computed = Record<string, string | string[]>;

/** ssh_config values for a host across files: the first file that sets a value wins, IdentityFile accumulates. */
function lookup(configs: readonly SSHConfig[], host: string): Computed {
  const merged: Computed = {};
  for (const config of configs) {
    // Match exec would run shell commands from the config; OpenSSH does, we do not.
    // OpenSSH lowercases the host name before matching Host patterns.
    const computed = config.compute(host.toLowerCase(), { ignoreCase: true, matchExec: false });
    for (const [key, value] of Object.entries(computed)) {
      if (key === 'identityfile') {
        merged[key] = [...((merged[key] as string[] | undefined) ?? []), ...([] as string[]).concat(value)];
      } else if (!(key in merged)) {
        merged[key] = value;
      }
    }
  }
  return merged;
}

function single(computed: Computed, key: string): string | undefined {
  const value = computed[key];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(' ') : value;
}

function expandTokens(value: string, tokens: Record<string, string>, what: string): string {
  return value.replace(/%(.)/g, (whole, letter: string) => {
    if (letter === '%') return '%';
    const replacement = tokens[letter];
    if (replacement === undefined) throw new DeployRollbackError(`Unsupported token ${whole} in ${what}`);
    return replacement;
  });
}

export function expandHome(file: string, homeDir: string): string {
  if (file === '~') return homeDir;
  if (file.startsWith('~/')) return path.join(homeDir, file.slice(2));
  return file;
}

function parsePort(value: string, what: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DeployRollbackError(`Invalid port "${value}" in ${what}`);
  return port;
}

interface Hop {
  host: string;
  user?: string;
  port?: number;
}

/** One ProxyJump entry: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export function parseJumpSpec(spec: string): Hop {
  let rest = spec.trim().replace(/^ssh:\/\//, '');
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  let host = rest;
  if (bracketed) {
    host = bracketed[1];
    if (bracketed[2]) port = parsePort(bracketed[2], `ProxyJump "${spec}"`);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon >= 0 && rest.indexOf(':') === colon) {
      host = rest.slice(0, colon);
      port = parsePort(rest.slice(colon + 1), `ProxyJump "${spec}"`);
    }
  }
  if (host === '') throw new DeployRollbackError(`ProxyJump "${spec}" names no host`);
  return { host, user, port };
}

interface HostRequest {
  alias: string;
  /** Explicit values (Kamal's, or from a ProxyJump spec) win over ssh_config. */
  user?: string;
  port?: number;
  keys: string[];
  keysOnly: boolean;
  keepaliveInterval: number;
  /** Kamal's jump host or proxy command: they win over ssh_config's. */
  proxy?: SshTarget['proxy'];
  proxyCommand?: string;
  useConfigProxy: boolean;
}

function resolveHost(request: HostRequest, configs: readonly SSHConfig[], env: SshResolveEnv, depth: number): ResolvedSshTarget {
  if (depth > MAX_JUMP_HOPS) throw new DeployRollbackError(`Too many jump hosts (more than ${MAX_JUMP_HOPS}) for ${request.alias}: is ProxyJump looping?`);
  const computed = lookup(configs, request.alias);
  const what = `ssh_config for ${request.alias}`;
  const hostName = expandTokens(single(computed, 'hostname') ?? request.alias, { h: request.alias }, `HostName (${what})`);
  const configPort = single(computed, 'port');
  const port = request.port ?? (configPort !== undefined ? parsePort(configPort, what) : 22);
  const user = request.user ?? single(computed, 'user') ?? env.localUser;
  const tokens = { d: env.homeDir, u: env.localUser, h: hostName, r: user, p: String(port), n: request.alias, l: hostName };

  const configIdentityFiles = ((computed['identityfile'] as string[] | undefined) ?? []).map((file) =>
    expandTokens(file, tokens, `IdentityFile (${what})`),
  );
  const identitySource = request.keys.length > 0 ? request.keys : configIdentityFiles.length > 0 ? configIdentityFiles : DEFAULT_IDENTITY_FILES;
  const identityFiles = [...new Set(identitySource.map((file) => path.resolve(expandHome(file, env.homeDir))))];
  const identitiesOnly = request.keysOnly || single(computed, 'identitiesonly')?.toLowerCase() === 'yes';

  const resolved: ResolvedSshTarget = { alias: request.alias, hostName, user, port, identityFiles, identitiesOnly, keepaliveInterval: request.keepaliveInterval };

  // A hop's own ssh_config proxy applies too, as with `ssh -J`, which runs ssh for the hop.
  const hop = (spec: Hop, hopDepth: number, keys: string[], useConfigProxy: boolean): ResolvedSshTarget =>
    resolveHost(
      { alias: spec.host, user: spec.user, port: spec.port, keys, keysOnly: false, keepaliveInterval: request.keepaliveInterval, useConfigProxy },
      configs,
      env,
      hopDepth,
    );
  // `ProxyJump a,b`: a is dialled first, so it is the innermost jump.
  const chain = (hops: Hop[]): ResolvedSshTarget | undefined => {
    let jump: ResolvedSshTarget | undefined;
    hops.forEach((spec, index) => {
      const hopTarget = hop(spec, depth + 1 + index, [], index === 0);
      if (jump) hopTarget.jump = jump;
      jump = hopTarget;
    });
    return jump;
  };

  if (request.proxy) {
    // Kamal: bare proxy host means root@host; Kamal's keys are what the user set up for this deploy.
    resolved.jump = hop({ host: request.proxy.host, user: request.proxy.user, port: request.proxy.port }, depth + 1, request.keys, true);
  } else if (request.proxyCommand) {
    resolved.proxyCommand = request.proxyCommand;
  } else if (request.useConfigProxy) {
    const proxyJump = single(computed, 'proxyjump');
    const proxyCommand = single(computed, 'proxycommand');
    // `Host * / ProxyJump bastion` also matches bastion itself: a host never jumps through itself.
    const hops = proxyJump && proxyJump.toLowerCase() !== 'none' ? proxyJump.split(',').map(parseJumpSpec).filter((spec) => spec.host !== request.alias) : [];
    if (hops.length > 0) {
      resolved.jump = chain(hops);
    } else if (proxyCommand && proxyCommand.toLowerCase() !== 'none') {
      resolved.proxyCommand = proxyCommand;
    }
  }
  return resolved;
}

/**
 * Applies ssh_config (given as the texts of the files, highest priority first) to a Kamal target.
 * Pure: no file or network access.
 */
export function resolveSshTarget(target: SshTarget & SshTargetHints, sshConfigTexts: string | readonly string[], env: SshResolveEnv): ResolvedSshTarget {
  const texts = typeof sshConfigTexts === 'string' ? [sshConfigTexts] : sshConfigTexts;
  const configs = texts.map((text) => SSHConfig.parse(text));
  return resolveHost(
    {
      alias: target.host,
      user: target.defaulted?.user ? undefined : target.user,
      port: target.defaulted?.port ? undefined : target.port,
      keys: target.keys,
      keysOnly: target.keysOnly,
      keepaliveInterval: target.keepaliveInterval,
      proxy: target.proxy,
      proxyCommand: target.proxyCommand,
      useConfigProxy: true,
    },
    configs,
    env,
    0,
  );
}

/** Which ssh_config files a target reads, highest priority first. */
export function sshConfigFiles(config: SshTarget['config'], homeDir: string, systemFile: string | null = '/etc/ssh/ssh_config'): string[] {
  if (config === false) return [];
  if (config === true) return [path.join(homeDir, '.ssh', 'config'), ...(systemFile ? [systemFile] : [])];
  return config.map((file) => path.resolve(expandHome(file, homeDir)));
}

/** `user@host:port` (via jumps) for messages and pool keys. */
export function describeTarget(target: ResolvedSshTarget): string {
  // An IPv6 address in brackets, so its last group does not read as the port.
  const host = target.hostName.includes(':') ? `[${target.hostName}]` : target.hostName;
  const here = `${target.user}@${host}:${target.port}`;
  if (target.jump) return `${here} via ${describeTarget(target.jump)}`;
  if (target.proxyCommand) return `${here} via ProxyCommand`;
  return here;
}
