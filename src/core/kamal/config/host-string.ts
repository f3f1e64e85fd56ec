/**
 * A host string as Kamal hands it to SSHKit (1.24, lib/sshkit/host.rb): the first parser that
 * fits, in SSHKit's order, decides what is user, host name and port. Forms SSHKit misreads
 * (a user before an IPv6 address: it splits at every ":") are refused instead of guessed.
 */
import { isIPv6 } from 'node:net';

export interface KamalHostParts {
  /** What SSHKit's Host#to_s gives: what Kamal puts in KAMAL_HOST and the container hostname. */
  hostname: string;
  user?: string;
  port?: number;
}

const HOSTNAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
const SSH_USER = /^[A-Za-z_][A-Za-z0-9._-]*\$?$/;
const BRACKETED = /^\[([0-9A-Fa-f:.]+(?:%[0-9A-Za-z._~-]+)?)\](?::([0-9]{1,5}))?$/;

function port(text: string): number | undefined {
  const value = Number(text);
  return /^[0-9]{1,5}$/.test(text) && value >= 1 && value <= 65535 ? value : undefined;
}

function hostName(text: string): boolean {
  return (HOSTNAME.test(text) && text.length <= 253) || isIPv6(text);
}

/** The parts of a host string, or why SSHKit could not read it as written. */
export function readKamalHost(text: string): KamalHostParts | string {
  const usage = 'use a host name or IP address, optionally user@ before and :port after; an IPv6 address bare (::1) or in brackets ([fe80::1], [fe80::1]:2222)';
  // SimpleHostParser, then IPv6HostParser (Resolv::IPv6::Regex, whole string): no port.
  if (!/[:@]/.test(text)) return HOSTNAME.test(text) && text.length <= 253 ? { hostname: text } : usage;
  if (isIPv6(text)) return { hostname: text };
  // HostWithPortParser: no "@" and no brackets; "host:port".
  if (!/[@[\]]/.test(text)) {
    const parts = text.split(':');
    const at = parts.length === 2 ? port(parts[1]) : undefined;
    return at !== undefined && hostName(parts[0]) && !parts[0].includes(':') ? { hostname: parts[0], port: at } : usage;
  }
  const at = text.indexOf('@');
  if (at >= 0) {
    const user = text.slice(0, at);
    const rest = text.slice(at + 1);
    if (!SSH_USER.test(user)) return usage;
    if (rest.includes('[') || isIPv6(rest)) return 'SSHKit cannot read a user before an IPv6 address (it splits at every ":"): set ssh/user instead and write the address alone';
    // HostWithUsernameAndPortParser, then HostWithUsernameParser.
    const hostPort = /^([^:@]+):([0-9]{1,5})$/.exec(rest);
    if (hostPort) {
      const number = port(hostPort[2]);
      return number !== undefined && hostName(hostPort[1]) ? { hostname: hostPort[1], user, port: number } : usage;
    }
    return !rest.includes(':') && hostName(rest) ? { hostname: rest, user } : usage;
  }
  // IPv6HostWithPortParser: "[v6]" or "[v6]:port".
  const bracketed = BRACKETED.exec(text);
  if (!bracketed || !isIPv6(bracketed[1])) return usage;
  if (bracketed[2] === undefined) return { hostname: bracketed[1] };
  const number = port(bracketed[2]);
  return number !== undefined ? { hostname: bracketed[1], port: number } : usage;
}

/** SSHKit's Host#to_s for a host string Kamal was given (the string itself when unreadable). */
export function kamalHostName(text: string): string {
  const parts = readKamalHost(text);
  return typeof parts === 'string' ? text : parts.hostname;
}

/** `host:port` for messages, with an IPv6 address in brackets so the port reads as a port. */
export function hostWithPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
