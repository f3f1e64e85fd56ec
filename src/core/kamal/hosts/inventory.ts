import { randomBytes } from 'node:crypto';
import type { ContainerState, HostContainer, HostError, HostErrorKind, LockInfo, Reporter } from '../../model';
import { silentReporter } from '../../model';
import { oneLine } from '../../text';
import { hostErrorKind, looksLikeDockerDown } from '../../ssh/errors';
import type { ExecResult, HostSession } from '../../ssh/types';
import { AUDIT_BOOTED, INVENTORY_MARKER, INVENTORY_SECTIONS, containerPrefix, inventoryCommand } from '../commands/inventory';
import { parseEnvFileDigest } from '../commands/env-file';
import { decodeLockTransport } from '../commands/lock';
import type { KamalConfig } from '../config/types';

/**
 * What is on the hosts of one (config, destination): one exec per host, all hosts in
 * parallel; a host that cannot be read becomes an error and the others still count.
 *
 * `_replaced_` containers (left by a rollback that reused a version's name) are kept in
 * `containers` with `replaced: true` and their base version so the UI can show them, but they
 * never make a version present on a host: Kamal's rollback looks a version up by its exact
 * name `S-R[-D]-V`.
 */

export interface InventoryContainer extends HostContainer {
  /** Name ends in `_replaced_<hex>`: shown, never a rollback target. */
  replaced: boolean;
  /** Position in docker's newest-first listing on its host: breaks ties of equal `created`. */
  order: number;
}

/** One "Booted app version V" line of a host's audit log: who booted which version where, and when. */
export interface AuditBoot {
  host: string;
  /** As Kamal wrote it: UTC ISO 8601. */
  recordedAt: string;
  /** git user.email of whoever ran kamal, else their login. */
  performer: string;
  role?: string;
  version: string;
}

export interface HostInventory {
  host: string;
  /** The audit log's boot lines, oldest first (the last few hundred). */
  boots?: AuditBoot[];
  /** Roles this host has in the config. */
  roles: string[];
  containers: InventoryContainer[];
  /** Role → version running now, decided as Kamal decides it; absent when nothing runs. */
  currentVersions: Record<string, string>;
  /** Set when the host could not be read; then `containers` is empty. */
  error?: HostError;
  /** With `error`: what the last read that reached this host saw, and when (shown as stale, never as now). */
  lastSeen?: { containers: InventoryContainer[]; readAt: string };
  /** Role → its env file's digest with the read's `envNonce` (null: no file); a role is absent when unknown. */
  envDigests?: Record<string, string | null>;
}

export interface KamalInventory {
  service: string;
  destination?: string;
  primaryHost: string;
  primaryRole: string;
  /** In the config's host order. */
  hosts: HostInventory[];
  /** Absent when nobody holds the deploy lock (or the primary host could not be read). */
  lock?: LockInfo;
  /** ISO 8601. */
  readAt: string;
  /** The salt of this read's env file digests (one per read, kept in memory only). */
  envNonce?: string;
}

export interface ReadInventoryOptions {
  signal?: AbortSignal;
  reporter?: Reporter;
}

export type SessionFor = (host: string) => Promise<HostSession>;

const ACTIVE_STATES: ReadonlySet<ContainerState> = new Set(['running', 'restarting']);
const KNOWN_STATES: ReadonlySet<string> = new Set(['created', 'running', 'restarting', 'paused', 'exited', 'dead', 'removing']);
const REPLACED_SUFFIX = /_replaced_[0-9a-f]+$/;

export function primaryHostOf(config: Pick<KamalConfig, 'roles' | 'primaryRole' | 'hosts'>): string | undefined {
  const primary = config.roles.find((role) => role.name === config.primaryRole) ?? config.roles.find((role) => role.primary);
  return primary?.hosts[0] ?? config.hosts[0];
}

export function rolesOfHost(config: Pick<KamalConfig, 'roles'>, host: string): string[] {
  return config.roles.filter((role) => role.hosts.includes(host)).map((role) => role.name);
}

export function hostErrorId(service: string, destination: string | undefined, host: string): string {
  return `kamal-host-error:${[service, destination].filter(Boolean).join('-')}:${host}`;
}

export async function readKamalInventory(config: KamalConfig, sessionFor: SessionFor, options: ReadInventoryOptions = {}): Promise<KamalInventory> {
  const reporter = options.reporter ?? silentReporter;
  const primaryHost = primaryHostOf(config) ?? '';
  const envNonce = randomBytes(16).toString('hex');
  const hosts = await Promise.all(
    config.hosts.map((host) => readHost(config, host, { withLock: host === primaryHost, envNonce }, sessionFor, options.signal, reporter)),
  );
  return {
    service: config.service,
    destination: config.destination,
    primaryHost,
    primaryRole: config.primaryRole,
    hosts: hosts.map((entry) => entry.inventory),
    lock: hosts.find((entry) => entry.inventory.host === primaryHost)?.lock,
    readAt: new Date().toISOString(),
    envNonce,
  };
}

async function readHost(
  config: KamalConfig,
  host: string,
  { withLock, envNonce }: { withLock: boolean; envNonce: string },
  sessionFor: SessionFor,
  signal: AbortSignal | undefined,
  reporter: Reporter,
): Promise<{ inventory: HostInventory; lock?: LockInfo }> {
  const roles = rolesOfHost(config, host);
  const failed = (message: string, kind: HostErrorKind) => {
    reporter.warn(`[kamal ${host}] ${message}`);
    return {
      inventory: { host, roles, containers: [], currentVersions: {}, error: { id: hostErrorId(config.service, config.destination, host), host, message, kind } },
    };
  };
  let session: HostSession;
  try {
    session = await sessionFor(host);
  } catch (error) {
    if (signal?.aborted) throw error;
    return failed(`Could not connect to ${host}: ${errorText(error)}`, hostErrorKind(error));
  }
  let result: ExecResult;
  try {
    reporter.debug(`[kamal ${host}] reading containers of ${config.service}${config.destination ? ` (${config.destination})` : ''}`);
    result = await session.exec(inventoryCommand(config, { withLock, envDigests: { roles, nonce: envNonce } }), { signal });
  } catch (error) {
    if (signal?.aborted) throw error;
    return failed(`Could not list containers on ${host}: ${errorText(error)}`, hostErrorKind(error));
  }
  const parsed = parseInventoryOutput(config, host, result);
  if ('error' in parsed) return failed(parsed.error, looksLikeDockerDown(result.stderr) || parsed.error.startsWith('docker') ? 'docker' : 'unreachable');
  for (const warning of parsed.warnings) reporter.warn(`[kamal ${host}] ${warning}`);
  return {
    inventory: { host, roles, containers: parsed.containers, currentVersions: parsed.currentVersions, boots: parsed.boots, ...(parsed.envDigests ? { envDigests: parsed.envDigests } : {}) },
    lock: parsed.lock,
  };
}

export interface ParsedHostOutput {
  containers: InventoryContainer[];
  currentVersions: Record<string, string>;
  lock?: LockInfo;
  boots: AuditBoot[];
  /** Role → env file digest (null: no file), for the roles whose digest was printed. */
  envDigests?: Record<string, string | null>;
  /** Lines that could not be read; the rest of the host still counts. */
  warnings: string[];
}

/** Splits the exec's stdout into its marked sections. */
function sections(stdout: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const rawLine of stdout.split('\n')) {
    const line = rawLine.replace(/\r$/, '');
    if (line.startsWith(`${INVENTORY_MARKER}:`)) {
      const exit = /^(.*):(\d+)$/.exec(line);
      if (exit && (exit[1] === INVENTORY_SECTIONS.containersExit || exit[1] === INVENTORY_SECTIONS.latestExit)) {
        found.set(exit[1], [exit[2]]);
        current = undefined;
        continue;
      }
      current = [];
      found.set(line, current);
      continue;
    }
    current?.push(line);
  }
  return found;
}

/** Parses what `inventoryCommand` printed on one host. */
export function parseInventoryOutput(
  config: Pick<KamalConfig, 'service' | 'destination' | 'roles'>,
  host: string,
  result: ExecResult,
): ParsedHostOutput | { error: string } {
  const found = sections(result.stdout);
  const exitLine = found.get(INVENTORY_SECTIONS.containersExit)?.[0];
  if (!found.has(INVENTORY_SECTIONS.containers) || exitLine === undefined || !found.has(INVENTORY_SECTIONS.end)) {
    const detail = firstLine(result.stderr) || firstLine(result.stdout) || `exit status ${result.code ?? 'none'}`;
    return { error: `Unexpected answer from ${host} while listing containers: ${detail}` };
  }
  if (exitLine !== '0') {
    const detail = firstLine(result.stderr) || `exit status ${exitLine}`;
    return { error: `docker container ls failed on ${host}: ${detail}` };
  }

  const warnings: string[] = [];
  const containers: InventoryContainer[] = [];
  for (const line of found.get(INVENTORY_SECTIONS.containers) ?? []) {
    if (line.trim() === '') continue;
    const container = parseContainerLine(config, host, line, containers.length);
    if (typeof container === 'string') warnings.push(container);
    else if (container) containers.push(container);
  }

  const latestOk = found.get(INVENTORY_SECTIONS.latestExit)?.[0] === '0';
  const latestIds = new Set(latestOk ? (found.get(INVENTORY_SECTIONS.latest) ?? []).map((line) => line.trim()).filter(Boolean) : []);
  const lockLines = found.get(INVENTORY_SECTIONS.locked);
  const envDigests: Record<string, string | null> = {};
  for (const role of config.roles) {
    // Unknown (no sha256sum): left out, so a rollback reads the hosts as before.
    const digest = parseEnvFileDigest(found.get(`${INVENTORY_SECTIONS.envDigest}:${role.name}`)?.[0]);
    if (digest !== undefined) envDigests[role.name] = digest;
  }
  return {
    ...(Object.keys(envDigests).length > 0 ? { envDigests } : {}),
    containers,
    currentVersions: currentVersionsByRole(containers, latestIds),
    lock: lockLines ? parseLockDetails(decodeLockTransport(lockLines)) ?? { holder: 'nobody recorded', unreadable: true, message: 'The lock directory exists but its details are empty or unreadable: if no deploy is running, release it with `kamal lock release`.' } : undefined,
    boots: (found.get(INVENTORY_SECTIONS.audit) ?? []).flatMap((line) => parseAuditBoot(config, host, line) ?? []),
    warnings,
  };
}

interface DockerPsJson {
  ID?: unknown;
  Names?: unknown;
  Image?: unknown;
  Labels?: unknown;
  State?: unknown;
  Status?: unknown;
  CreatedAt?: unknown;
}

/** A container, undefined for one not of this service/destination, or a warning. */
function parseContainerLine(
  config: Pick<KamalConfig, 'service' | 'destination' | 'roles'>,
  host: string,
  line: string,
  order: number,
): InventoryContainer | string | undefined {
  let json: DockerPsJson;
  try {
    json = JSON.parse(line) as DockerPsJson;
  } catch {
    return `Skipped a line docker printed that is not JSON: ${line.slice(0, 120)}`;
  }
  if (typeof json !== 'object' || json === null) return `Skipped a line docker printed that is not a container: ${line.slice(0, 120)}`;
  const id = asString(json.ID);
  // docker prints several names comma-separated only for legacy links; the first is the name.
  const name = asString(json.Names).split(',')[0];
  if (!id || !name) return `Skipped a container without id or name: ${line.slice(0, 120)}`;
  const labels = parseDockerLabels(asString(json.Labels));
  // docker already filtered; this guards against a filter the daemon ignored.
  if (labels.get('service') !== config.service || (labels.get('destination') ?? '') !== (config.destination ?? '')) return undefined;
  const role = labels.get('role') ?? roleFromName(config, name);
  if (!role) return `Skipped container ${name}: no role label and its name matches no role`;
  const parsedName = versionFromContainerName(name, config.service, role, config.destination);
  if (!parsedName) return `Skipped container ${name}: its name is not ${containerPrefix(config.service, role, config.destination)}-<version>`;
  return {
    id,
    host,
    role,
    name,
    state: parseState(asString(json.State), asString(json.Status)),
    status: asString(json.Status),
    image: asString(json.Image),
    created: dockerTimeToIso(asString(json.CreatedAt)),
    version: parsedName.version,
    replaced: parsedName.replaced,
    order,
  };
}

function asString(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * docker's `.Labels` is `k=v` pairs joined by commas, and values may hold commas
 * (`Host(\`a\`,\`b\`)`): a piece without `=` or whose key is not label-like continues the value.
 */
export function parseDockerLabels(text: string): Map<string, string> {
  const labels = new Map<string, string>();
  let lastKey: string | undefined;
  for (const piece of text === '' ? [] : text.split(',')) {
    const equals = piece.indexOf('=');
    const key = equals > 0 ? piece.slice(0, equals) : '';
    if (key && /^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(key)) {
      labels.set(key, piece.slice(equals + 1));
      lastKey = key;
    } else if (lastKey !== undefined) {
      labels.set(lastKey, `${labels.get(lastKey)},${piece}`);
    }
  }
  return labels;
}

function roleFromName(config: Pick<KamalConfig, 'service' | 'destination' | 'roles'>, name: string): string | undefined {
  // Longest prefix first: role "web" must not claim "web-admin"'s containers.
  const candidates = config.roles
    .map((role) => role.name)
    .sort((a, b) => b.length - a.length)
    .filter((role) => name.startsWith(`${containerPrefix(config.service, role, config.destination)}-`));
  return candidates[0];
}

/** `S-R[-D]-V[_replaced_<hex>]` → V; undefined when the name does not have the prefix. */
export function versionFromContainerName(
  name: string,
  service: string,
  role: string,
  destination?: string,
): { version: string; replaced: boolean } | undefined {
  const prefix = `${containerPrefix(service, role, destination)}-`;
  if (!name.startsWith(prefix) || name.length === prefix.length) return undefined;
  const rest = name.slice(prefix.length);
  const replaced = REPLACED_SUFFIX.test(rest);
  const version = rest.replace(REPLACED_SUFFIX, '');
  return version ? { version, replaced } : undefined;
}

function parseState(state: string, status: string): ContainerState {
  const lower = state.toLowerCase();
  if (KNOWN_STATES.has(lower)) return lower as ContainerState;
  // Old daemons leave State empty; the status line still says it.
  if (/^Up /.test(status)) return /\(Paused\)/.test(status) ? 'paused' : 'running';
  if (/^Restarting/.test(status)) return 'restarting';
  if (/^Exited/.test(status)) return 'exited';
  if (/^Created/.test(status)) return 'created';
  if (/^Dead/.test(status)) return 'dead';
  if (/^Removal/.test(status)) return 'removing';
  return 'unknown';
}

/** `2026-11-23 07:30:02 +0000 UTC` → `2026-11-23T07:30:02Z`; unparseable text is kept as is. */
export function dockerTimeToIso(text: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)? ([+-])(\d{2})(\d{2})/.exec(text);
  if (!match) return text;
  const date = new Date(`${match[1]}T${match[2]}${match[3] ?? ''}${match[4]}${match[5]}:${match[6]}`);
  if (Number.isNaN(date.getTime())) return text;
  return date.toISOString().replace(/\.000Z$/, 'Z');
}

/**
 * Kamal's current version of a role on a host: the newest running/restarting container whose
 * image is `REPO:latest[-D]`; else the newest running/restarting one.
 */
export function currentVersionsByRole(containers: readonly InventoryContainer[], latestImageContainerIds: ReadonlySet<string>): Record<string, string> {
  const current: Record<string, string> = {};
  const byRole = new Map<string, InventoryContainer[]>();
  for (const container of containers) {
    if (!ACTIVE_STATES.has(container.state)) continue;
    const list = byRole.get(container.role) ?? [];
    list.push(container);
    byRole.set(container.role, list);
  }
  for (const [role, active] of byRole) {
    const newestFirst = [...active].sort(newestFirstOrder);
    const onLatest = newestFirst.find((container) => matchesId(container.id, latestImageContainerIds));
    current[role] = (onLatest ?? newestFirst[0]).version;
  }
  return current;
}

function matchesId(id: string, ids: ReadonlySet<string>): boolean {
  if (ids.has(id)) return true;
  for (const other of ids) if (other.startsWith(id) || id.startsWith(other)) return true;
  return false;
}

/** Newest created first; docker's own listing order breaks ties (it lists newest first). */
export function newestFirstOrder(a: InventoryContainer, b: InventoryContainer): number {
  const byTime = timeOf(b.created) - timeOf(a.created);
  return byTime !== 0 ? byTime : a.order - b.order;
}

function timeOf(iso: string): number {
  const time = Date.parse(iso);
  return Number.isNaN(time) ? 0 : time;
}

/**
 * `[time] [performer] [destination] [role] Booted app version V` (Kamal's auditor tags; no
 * destination, no role: no brackets). Undefined for any other line.
 */
export function parseAuditBoot(config: Pick<KamalConfig, 'destination'>, host: string, line: string): AuditBoot | undefined {
  const tags: string[] = [];
  let rest = line.replace(/\r$/, '');
  for (let match = /^\[([^\]]*)\] /.exec(rest); match; match = /^\[([^\]]*)\] /.exec(rest)) {
    tags.push(match[1]);
    rest = rest.slice(match[0].length);
  }
  if (!rest.startsWith(AUDIT_BOOTED) || tags.length < 2) return undefined;
  const version = rest.slice(AUDIT_BOOTED.length).trim();
  if (!version || /\s/.test(version)) return undefined;
  const [recordedAt, performer, ...others] = tags;
  if (config.destination !== undefined && others[0] === config.destination) others.shift();
  const boot: AuditBoot = { host, recordedAt, performer, version };
  if (others.length > 0) boot.role = others[others.length - 1];
  return boot;
}

/** `Locked by: <name> at <time>\nVersion: <v>\nMessage: <msg>` (message may span lines). */
export function parseLockDetails(text: string): LockInfo | undefined {
  const lines = text.replace(/\r/g, '').replace(/^\n+/, '').split('\n');
  const lockedBy = /^Locked by: (.*?)(?: at (\S+))?\s*$/.exec(lines[0] ?? '');
  if (!lockedBy) return undefined;
  const info: LockInfo = { holder: lockedBy[1].trim() || 'Unknown' };
  if (lockedBy[2]) info.lockedAt = lockedBy[2];
  for (let index = 1; index < lines.length; index++) {
    const version = /^Version: ?(.*)$/.exec(lines[index]);
    if (version && info.version === undefined) {
      if (version[1].trim()) info.version = version[1].trim();
      continue;
    }
    const message = /^Message: ?(.*)$/.exec(lines[index]);
    if (message) {
      const full = [message[1], ...lines.slice(index + 1)].join('\n').trim();
      if (full) info.message = full;
      break;
    }
  }
  return info;
}

function firstLine(text: string): string {
  return oneLine(text.split('\n').map((line) => line.trim()).find(Boolean) ?? '');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
