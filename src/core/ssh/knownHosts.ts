/**
 * OpenSSH known_hosts: checking a server's host key and recording a newly trusted one.
 * The checks are pure functions over the file text; only `appendKnownHost` touches disk.
 */
import { createHash, createHmac } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export type KnownHostsVerdict = 'match' | 'unknown' | 'revoked' | { changed: number };

/** How OpenSSH names a host in known_hosts: bare for port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** `SHA256:<base64 without padding>` of the raw public key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH wire-format public key blob (its first string). */
export function keyTypeOfBlob(keyBlob: Buffer): string {
  if (keyBlob.length < 4) throw new Error('host key blob is too short');
  const length = keyBlob.readUInt32BE(0);
  if (length > keyBlob.length - 4) throw new Error('host key blob is malformed');
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

interface KnownHostsLine {
  lineNumber: number;
  marker?: 'revoked' | 'cert-authority';
  hosts: string;
  keyType: string;
  keyBase64: string;
}

function parseLines(text: string): KnownHostsLine[] {
  const lines: KnownHostsLine[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    let marker: KnownHostsLine['marker'];
    if (fields[0].startsWith('@')) {
      const name = fields.shift()!.slice(1);
      if (name !== 'revoked' && name !== 'cert-authority') return;
      marker = name;
    }
    if (fields.length < 3) return;
    lines.push({ lineNumber: index + 1, marker, hosts: fields[0], keyType: fields[1], keyBase64: fields[2] });
  });
  return lines;
}

function hashedEntryMatches(entry: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const parts = entry.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2], 'base64');
  const expected = Buffer.from(parts[3], 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && expected.equals(actual);
}

/** OpenSSH's match_pattern: `*` any run, `?` exactly one character (ssh-config's glob lets `?` match none). */
function patternMatches(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 'i').test(name);
}

/** A comma-separated pattern list; a matching `!pattern` excludes the line whatever else matches. */
function hostsFieldMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|')) return hashedEntryMatches(hosts, name);
  let matched = false;
  for (const pattern of hosts.split(',')) {
    if (pattern.startsWith('!')) {
      if (patternMatches(pattern.slice(1), name)) return false;
    } else if (patternMatches(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/**
 * What known_hosts says about `keyType keyBase64` offered by host:port. A key of the same
 * type that differs means the host key changed ({changed: 1-based line of the offending key}).
 * `@cert-authority` lines are ignored: host certificates are not supported.
 */
export function checkKnownHosts(knownHostsText: string, host: string, port: number, keyType: string, keyBase64: string): KnownHostsVerdict {
  const name = knownHostsName(host, port);
  let changed: number | undefined;
  let matched = false;
  for (const line of parseLines(knownHostsText)) {
    if (line.marker === 'cert-authority') continue;
    if (!hostsFieldMatches(line.hosts, name)) continue;
    if (line.marker === 'revoked') {
      if (line.keyBase64 === keyBase64) return 'revoked';
      continue;
    }
    if (line.keyType !== keyType) continue;
    if (line.keyBase64 === keyBase64) matched = true;
    else changed ??= line.lineNumber;
  }
  if (matched) return 'match';
  if (changed !== undefined) return { changed };
  return 'unknown';
}

/** The line OpenSSH appends when the user accepts a new host key. */
export function knownHostsLine(host: string, port: number, keyType: string, keyBase64: string): string {
  return `${knownHostsName(host, port)} ${keyType} ${keyBase64}\n`;
}

/** Appends a trusted key, creating the folder (0700) and the file (0600) the way ssh does. */
export async function appendKnownHost(file: string, host: string, port: number, keyType: string, keyBase64: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  let existing = '';
  try {
    existing = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const separator = existing !== '' && !existing.endsWith('\n') ? '\n' : '';
  await fs.appendFile(file, separator + knownHostsLine(host, port, keyType, keyBase64), { mode: 0o600 });
}
