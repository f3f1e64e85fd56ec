/**
 * The role env file Kamal 2.12 writes at every boot, rollback included (cli/app/boot.rb:
 * `execute *app.ensure_env_directory; upload! role.secrets_io(host), role.secrets_path, mode:
 * "0600"`): the role's secret env for that host (configuration/role.rb `env(host)`: the root
 * env, the role's, then the host's tags'), rendered by lib/kamal/env_file.rb. Clear env is not in
 * it (it goes on the `docker run` line). The host's copy is compared by per-line hashes salted
 * with a nonce of this run, so no value, nor a reusable hash of one, ever leaves either side.
 */
import { createHash } from 'node:crypto';
import { quote, shellLine } from '../../shell';
import { escapeControl } from '../../text';
import type { KamalConfig, KamalRole } from '../config/types';
import { UNRESOLVED, type ResolvedSecrets, type SecretValue } from '../config/secrets';
import { isRecord, rawRoleConfig, roleEnvFile, serviceWithDestination } from './app';

/** Kamal uploads the env file with `mode: "0600"`. */
export const ENV_FILE_MODE = 0o600;

/** Kamal's `env_directory` + `roles`: `.kamal/apps/S[-D]/env/roles`. */
export function envRolesDirectory(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return `.kamal/apps/${serviceWithDestination(config)}/env/roles`;
}

/** Kamal's `ensure_env_directory`. */
export function makeEnvDirectory(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return shellLine(['mkdir', '-p', envRolesDirectory(config)]);
}

/** `secret:` entries of one env hash, as written (`NAME` or `NAME:ALIAS`). */
function secretEntries(env: unknown): string[] {
  if (!isRecord(env) || !Array.isArray(env.secret)) return [];
  return env.secret.filter((entry): entry is string => typeof entry === 'string');
}

/**
 * The secret keys of `role` on `host` as Kamal merges them (`secret_keys | other.secret_keys`, then
 * `to_h`): name → the secret it reads, in Kamal's order.
 */
export function secretKeysFor(config: Pick<KamalConfig, 'raw'>, role: Pick<KamalRole, 'name' | 'hostTags'>, host: string): Map<string, string> {
  const entries: string[] = [];
  const add = (list: string[]) => {
    for (const entry of list) if (!entries.includes(entry)) entries.push(entry);
  };
  add(secretEntries(config.raw.env));
  add(secretEntries(rawRoleConfig(config, role.name)?.env));
  const tags = isRecord(config.raw.env) && isRecord(config.raw.env.tags) ? config.raw.env.tags : {};
  const hostTags = role.hostTags[host] ?? [];
  for (const [tag, value] of Object.entries(tags)) if (hostTags.includes(tag)) add(secretEntries(value));
  const keys = new Map<string, string>();
  for (const entry of entries) {
    const [name, alias] = entry.split(':');
    keys.set(name, alias ?? name);
  }
  return keys;
}

const DUMP_NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\f': '\\f', '\v': '\\v', '\b': '\\b', '\x07': '\\a', '\x1b': '\\e', '\\': '\\\\', '"': '\\"' };

/** Ruby's `String#dump` of ASCII text, quotes removed, then Kamal's `gsub(/\\"/, '"').gsub(/\\#/, "#")`. */
function dumpAscii(text: string): string {
  let out = '';
  for (let index = 0; index < text.length; index += 1) {
    const character = text[index];
    const code = character.charCodeAt(0);
    if (DUMP_NAMED[character] !== undefined) out += DUMP_NAMED[character];
    else if (character === '#' && /[{$@]/.test(text[index + 1] ?? '')) out += '\\#';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).toUpperCase().padStart(2, '0')}`;
    else out += character;
  }
  return out.replace(/\\"/g, '"').replace(/\\#/g, '#');
}

/** Kamal's `escape_docker_env_file_value`: ASCII runs dumped, other runs kept as they are. */
export function escapeEnvFileValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  return (value.match(/[\x00-\x7F]+|[^\x00-\x7F]+/gu) ?? []).map((part) => (/^[\x00-\x7F]+$/.test(part) ? dumpAscii(part) : part)).join('');
}

/** One `KEY=value` line as Kamal writes it. */
export function envFileLine(key: string, value: string): string {
  return `${key}=${escapeEnvFileValue(value)}`;
}

/** `Kamal::EnvFile#to_s`: a line per key; `"\n"` when empty (SSHKit warns about empty files). */
export function renderEnvFile(entries: [string, string][]): string {
  const text = entries.map(([key, value]) => `${envFileLine(key, value)}\n`).join('');
  return text === '' ? '\n' : text;
}

/** What Kamal would write for one role on one host: its lines, or why it cannot be known. */
export interface ExpectedEnvFile {
  /** Key → value, in Kamal's order; UNRESOLVED where a command was not run. */
  values: Map<string, SecretValue>;
  /** Secrets no file defines: Kamal stops with "Secret 'X' not found". */
  missing: string[];
  /** The keys those secrets were for: not comparable. */
  missingKeys: string[];
}

export function expectedEnvFile(config: Pick<KamalConfig, 'raw'>, role: Pick<KamalRole, 'name' | 'hostTags'>, host: string, secrets: ResolvedSecrets): ExpectedEnvFile {
  const values = new Map<string, SecretValue>();
  const missing: string[] = [];
  const missingKeys: string[] = [];
  for (const [name, secret] of secretKeysFor(config, role, host)) {
    const value = secrets.lookup(secret);
    if (value === undefined) {
      missing.push(secret);
      missingKeys.push(name);
    } else values.set(name, value);
  }
  return { values, missing, missingKeys };
}

/** The file's text when every value is known. */
export function expectedText(expected: ExpectedEnvFile): string | undefined {
  const entries: [string, string][] = [];
  for (const [key, value] of expected.values) {
    if (value === UNRESOLVED) return undefined;
    entries.push([key, value.reveal()]);
  }
  return expected.missing.length > 0 ? undefined : renderEnvFile(entries);
}

/** What the host prints instead of a key that does not look like one. */
const NOT_A_VARIABLE = '?';

/** sha-256 of `NONCE\nLINE`, as the host computes it. */
export function lineHash(nonce: string, line: string): string {
  return createHash('sha256').update(`${nonce}\n${line}`).digest('hex');
}

/**
 * Prints `yes` and then `KEY<TAB>hash` for each line of the env file, or `no` without it. The
 * nonce makes the hashes useless outside this comparison; values never leave the host.
 */
export function envFileHashes(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, nonce: string): string {
  const file = quote(roleEnvFile(config, role));
  // Only a name-like text before `=` is printed as the key: a line that is not KEY=value (a hand-edited file) may be part of a value.
  const key = `case "$l" in ''|'#'*) continue;; *=*) k=\${l%%=*}; case "$k" in ''|*[!A-Za-z0-9_.-]*) k='${NOT_A_VARIABLE}';; esac;; *) k='${NOT_A_VARIABLE}';; esac`;
  const hashLine = `${key}; printf '%s\\t' "$k"; printf '%s\\n%s' ${quote(nonce)} "$l" | sha256sum | cut -c1-64`;
  return `if test -f ${file}; then echo yes; while IFS= read -r l || [ -n "$l" ]; do ${hashLine}; done < ${file}; else echo no; fi`;
}

/**
 * The whole env file's sha-256 with the nonce before it (`NONCE\n` + the file), or `no` without
 * the file: one process per role, cheap enough for every tree refresh. Equal to the digest of what
 * Kamal would write, nothing differs and no per-key read is needed.
 */
export function envFileDigest(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, nonce: string): string {
  const file = quote(roleEnvFile(config, role));
  return `if test -f ${file}; then { printf '%s\\n' ${quote(nonce)}; cat ${file}; } | sha256sum | cut -c1-64; else echo no; fi`;
}

/** `envFileDigest`'s answer: the digest, null without the file, undefined when unknown (no sha256sum prints nothing). */
export function parseEnvFileDigest(line: string | undefined): string | null | undefined {
  const answer = line?.trim();
  if (answer === 'no') return null;
  return answer !== undefined && /^[0-9a-f]{64}$/.test(answer) ? answer : undefined;
}

/** What `envFileDigest` prints for `text` on the host. */
export function textDigest(nonce: string, text: string): string {
  return createHash('sha256').update(`${nonce}\n${text}`).digest('hex');
}

/** The host's answer: key → hash of its last line (docker keeps the last one). Blank and `#` lines are not variables to docker. */
export function parseEnvFileHashes(lines: string[]): Map<string, string> | undefined {
  const hashes = new Map<string, string>();
  for (const line of lines) {
    if (line === 'yes' || line === 'no') continue;
    const tab = line.lastIndexOf('\t');
    if (tab < 0) continue;
    const printed = line.slice(0, tab);
    const key = printed === NOT_A_VARIABLE ? '(a line that is not KEY=value)' : escapeControl(printed);
    const hash = line.slice(tab + 1).trim();
    if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
    hashes.set(key, hash);
  }
  return hashes;
}

/** The keys whose line differs: changed, missing on the host, or on the host only. Unresolved keys are left out (not comparable). */
export function differingKeys(expected: ExpectedEnvFile, hostHashes: Map<string, string>, nonce: string): { differ: string[]; notCompared: string[] } {
  const differ: string[] = [];
  const notCompared: string[] = [];
  for (const [key, value] of expected.values) {
    if (value === UNRESOLVED) notCompared.push(key);
    else if (hostHashes.get(key) !== lineHash(nonce, envFileLine(key, value.reveal()))) differ.push(key);
  }
  for (const key of hostHashes.keys()) if (!expected.values.has(key) && !expected.missingKeys.includes(key)) differ.push(key);
  return { differ, notCompared };
}
