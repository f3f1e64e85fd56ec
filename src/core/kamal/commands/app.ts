/**
 * What Kamal 2 runs on an app host to boot, inspect and stop one role's container, as argv
 * (lib/kamal/commands/app.rb and app/*.rb). Every value from the config or the user is
 * validated here before it can reach an argv; src/core/shell.ts quotes the argv.
 */
import { DeployRollbackError } from '../../model';
import { quoteArgv, shellLine } from '../../shell';
import { quotedInput } from '../../text';
import type { KamalConfig, KamalRole } from '../config/types';
import { kamalHostName, readKamalHost } from '../config/host-string';
import { argumentize, optionize, ShellWord, type KamalValue, type Word } from './kamal-shell';

/** Kamal 2.12's ensure_valid_service_name: `/^[a-z0-9_-]+$/i`. */
export const SERVICE_PATTERN = /^[a-z0-9_-]+$/i;
/** Docker's tag rule. */
export const VERSION_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const ROLE_PATTERN = /^[A-Za-z0-9_-]+$/;
/** Destinations name files (`deploy.prod.eu.yml`), so dots are fine. */
export const DESTINATION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** `[registry[:port]/]path/to/image`, as Docker's reference grammar allows. */
export const REPOSITORY_PATTERN =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
/** Kamal writes env keys unquoted; these need no quoting (`A-B`, `a.b`, `1ABC`, `31`). */
const ENV_NAME_PATTERN = /^[A-Za-z0-9_@%+:,./-]+$/;
const LABEL_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;
const OPTION_KEY_PATTERN = /^[a-z0-9][a-z0-9-]*$/;
const LOG_OPTION_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function refuse(what: string, value: unknown, rule: string, where?: string): never {
  const shown = quotedInput(String(value));
  throw new DeployRollbackError(`Refusing ${what} ${shown}${where ? ` in ${where}` : ''}: ${rule}.`, 'validate');
}

export function validateService(service: string, where?: string): string {
  if (!SERVICE_PATTERN.test(service)) refuse('service', service, 'a service may contain only letters, digits, "_" and "-"', where);
  return service;
}

export function validateVersion(version: string, where?: string): string {
  if (!VERSION_PATTERN.test(version)) refuse('version', version, 'a version must be a Docker tag (A-Z a-z 0-9 _ . -, at most 128, not starting with "." or "-")', where);
  return version;
}

export function validateRole(role: string, where?: string): string {
  if (!ROLE_PATTERN.test(role)) refuse('role', role, 'a role may contain only letters, digits, "_" and "-"', where);
  return role;
}

export function validateDestination(destination: string, where?: string): string {
  if (!DESTINATION_PATTERN.test(destination)) refuse('destination', destination, 'a destination may contain only letters, digits, ".", "_" and "-", starting with a letter or digit', where);
  return destination;
}

/** A config host string as SSHKit reads it (see ../host-string.ts). */
export function validateHost(host: string, where?: string): string {
  const parts = readKamalHost(host);
  if (typeof parts === 'string') refuse('host', host, parts, where);
  return host;
}

export function validateRepository(repository: string, where?: string): string {
  if (repository.length > 255 || !REPOSITORY_PATTERN.test(repository)) {
    refuse('image', repository, 'an image must be a Docker repository name like "registry:5000/team/app"', where);
  }
  return repository;
}

export function validateEnvName(name: string, where?: string): string {
  if (!ENV_NAME_PATTERN.test(name)) refuse('env name', name, 'an env name may contain only letters, digits and _ @ % + : , . / -', where);
  return name;
}

export function validateLabelKey(key: string, where?: string): string {
  if (!LABEL_KEY_PATTERN.test(key)) refuse('label', key, 'a label key may contain only letters, digits, ".", "_", "/" and "-"', where);
  return key;
}

export function validateOptionKey(key: string, where?: string): string {
  if (!OPTION_KEY_PATTERN.test(key)) refuse('docker option', key, 'an option name may contain only a-z, 0-9 and "-"', where);
  return key;
}

export function validateLogOptionKey(key: string, where?: string): string {
  if (!LOG_OPTION_KEY_PATTERN.test(key)) refuse('log option', key, 'a log option name may contain only letters, digits, ".", "_" and "-"', where);
  return key;
}

/** `S-R[-D]`: what kamal-proxy and container names are keyed by. */
export function containerPrefix(config: Pick<KamalConfig, 'service' | 'destination'>, role: string): string {
  return [config.service, role, config.destination].filter((part): part is string => part !== undefined).join('-');
}

/** `S-R[-D]-V`. */
export function containerName(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, version: string): string {
  return `${containerPrefix(config, role)}-${version}`;
}

export function serviceWithDestination(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return [config.service, config.destination].filter((part): part is string => part !== undefined).join('-');
}

export function image(config: Pick<KamalConfig, 'repository'>, version: string): string {
  return `${config.repository}:${version}`;
}

/** `REPO:latest[-D]`: how Kamal finds the current version when several containers run. */
export function latestImage(config: Pick<KamalConfig, 'repository' | 'destination'>): string {
  return `${config.repository}:${['latest', config.destination].filter((part): part is string => part !== undefined).join('-')}`;
}

/** `.kamal/apps/S[-D]/env/roles/R.env`: written by `kamal deploy`/`kamal env push`, reused as is. */
export function roleEnvFile(config: Pick<KamalConfig, 'service' | 'destination'>, role: string): string {
  return `.kamal/apps/${serviceWithDestination(config)}/env/roles/${role}.env`;
}

/** `docker container ls --all --filter 'name=^S-R-D-V$' --quiet` */
export function containerIdForVersion(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, version: string): string[] {
  return ['docker', 'container', 'ls', '--all', '--filter', `name=^${containerName(config, role, version)}$`, '--quiet'];
}

/** Kamal's `rename_container`: the clashing container keeps its data under `V_replaced_<16 hex>`. */
export function renameContainer(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, version: string, newVersion: string): string[] {
  return ['docker', 'rename', containerName(config, role, version), containerName(config, role, newVersion)];
}

/**
 * Kamal's `container_filters`: the destination label always, with an empty value when there is no
 * destination, so a destination's containers on the same host never count as the default one's.
 */
function labelFilters(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, statuses: string[] = []): string[] {
  const filters = [`label=service=${config.service}`, `label=destination=${config.destination ?? ''}`, `label=role=${role}`];
  for (const status of statuses) filters.push(`status=${status}`);
  return filters.flatMap((filter) => ['--filter', filter]);
}

const ACTIVE_STATUSES = ['running', 'restarting'];

/**
 * Kamal's `current_running_version`: the active container of `REPO:latest[-D]`, else the newest
 * active one. Prints the container name; {@link versionFromName} strips the prefix.
 */
export function currentRunningContainerName(config: Pick<KamalConfig, 'service' | 'destination' | 'repository'>, role: string): string {
  const inner = `${latestImageContainerName(config, role)} ; ${quoteArgv(activeContainerName(config, role))}`;
  return shellLine(['sh', '-c', inner], '|', ['head', '-1']);
}

/**
 * The first half of {@link currentRunningContainerName}: the newest active container of the image
 * `REPO:latest[-D]` names, by id as Kamal's `latest_image_container` asks (`$(...)` is for the host's shell).
 */
export function latestImageContainerName(config: Pick<KamalConfig, 'service' | 'destination' | 'repository'>, role: string): string {
  const latestImageId = quoteArgv(['docker', 'image', 'ls', '--filter', `reference=${latestImage(config)}`, '--format', '{{.ID}}']);
  return `${quoteArgv(activeContainerName(config, role))} --filter ancestor=$(${latestImageId})`;
}

function activeContainerName(config: Pick<KamalConfig, 'service' | 'destination'>, role: string): string[] {
  return ['docker', 'ps', '--latest', '--format', '{{.Names}}', ...labelFilters(config, role, ACTIVE_STATUSES)];
}

/** Every container of this role, for picking the default target: `ID\tNames\tState\tCreatedAt`. */
export function listRoleContainers(config: Pick<KamalConfig, 'service' | 'destination'>, role: string): string[] {
  return ['docker', 'container', 'ls', '--all', ...labelFilters(config, role), '--format', '{{.ID}}\t{{.Names}}\t{{.State}}\t{{.CreatedAt}}'];
}

export function versionFromName(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, name: string): string | undefined {
  const prefix = `${containerPrefix(config, role)}-`;
  return name.startsWith(prefix) && name.length > prefix.length ? name.slice(prefix.length) : undefined;
}

/** `test -f <env file>`, printing yes/no so the pre-flight can read it among other output. */
export function envFileExists(config: Pick<KamalConfig, 'service' | 'destination'>, role: string): string {
  return shellLine(['test', '-f', roleEnvFile(config, role)], '&&', ['echo', 'yes'], '||', ['echo', 'no']);
}

export interface RunOptions {
  host: string;
  version: string;
  /** `<host>-<12 hex>`; random per boot in Kamal, fixed in the plan so the dry run shows it. */
  hostname: string;
  /** `$PWD/.kamal/apps/S[-D]/assets/volumes/R-V:ASSET_PATH` for roles with assets. */
  assetVolume?: ShellWord;
}

function roleLogging(config: KamalConfig, role: KamalRole): { driver?: string; options: Record<string, string> } {
  const rawRole = rawRoleConfig(config, role.name);
  const rawLogging = rawRole && isRecord(rawRole.logging) ? rawRole.logging : undefined;
  if (!rawLogging) return config.logging;
  const options = isRecord(rawLogging.options) ? stringRecord(rawLogging.options) : {};
  return {
    driver: typeof rawLogging.driver === 'string' ? rawLogging.driver : config.logging.driver,
    options: { ...config.logging.options, ...options },
  };
}

export function rawRoleConfig(config: Pick<KamalConfig, 'raw'>, role: string): Record<string, unknown> | undefined {
  const servers = config.raw.servers;
  if (!isRecord(servers)) return undefined;
  const entry = servers[role];
  return isRecord(entry) ? entry : undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringRecord(value: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, String(entry)]));
}

/** Kamal's logging args: `--log-opt max-size="10m"` unless a driver or options are configured. */
export function loggingArgs(logging: { driver?: string; options: Record<string, string> }): Word[] {
  const options = Object.entries(logging.options);
  if (logging.driver === undefined && options.length === 0) return argumentize('--log-opt', [['max-size', '10m']]);
  for (const [key] of options) validateLogOptionKey(key, 'logging.options');
  return [...optionize(logging.driver !== undefined ? [['log-driver', logging.driver]] : []), ...argumentize('--log-opt', options)];
}

/** Kamal's `optionize` without `with`: `--key "value"`, `--key` for true, repeated for arrays. */
export function optionArgs(options: Record<string, unknown>, where: string): Word[] {
  return Object.entries(options).flatMap(([key, value]) => {
    validateOptionKey(key, where);
    const values = Array.isArray(value) ? value : [value];
    for (const entry of values) {
      if (entry === null || entry === undefined || typeof entry === 'object') refuse('docker option value', JSON.stringify(entry), `option "${key}" needs a string, number or boolean`, where);
    }
    return optionize([[key, values as KamalValue[]]]);
  });
}

/**
 * Clear env of the host's tags (`servers: [{host: tag}]` with `env.tags.<tag>`), merged over the
 * role's as Kamal merges them; tag secrets are already in the env file on the host.
 */
export function hostTagClearEnv(config: Pick<KamalConfig, 'raw'>, role: KamalRole, host: string): Record<string, KamalValue> {
  const envRaw = config.raw.env;
  const tagsRaw = isRecord(envRaw) && isRecord(envRaw.tags) ? envRaw.tags : undefined;
  if (!tagsRaw) return {};
  const clear: Record<string, KamalValue> = {};
  for (const tag of role.hostTags[host] ?? []) {
    const value = tagsRaw[tag];
    if (!isRecord(value)) continue;
    const structured = 'clear' in value || 'secret' in value;
    const entries = structured ? (isRecord(value.clear) ? value.clear : {}) : value;
    for (const [key, entry] of Object.entries(entries)) {
      if (entry === null || typeof entry === 'object') continue;
      clear[validateEnvName(key, `env.tags.${tag}`)] = entry === false ? false : String(entry);
    }
  }
  return clear;
}

/** Default labels first (service, role, destination), custom ones merged over them in place. */
export function labelArgs(config: KamalConfig, role: KamalRole): Word[] {
  const labels = new Map<string, string | undefined>([
    ['service', config.service],
    ['role', role.name],
    ['destination', config.destination],
  ]);
  for (const [key, value] of Object.entries(role.labels)) labels.set(validateLabelKey(key, `labels of role ${role.name}`), value);
  return argumentize('--label', [...labels]);
}

/** The role's clear env for this host as Kamal merges it: top level, role, then host tags; false stays typed. */
export function clearEnvFor(config: KamalConfig, role: KamalRole, host: string): [string, KamalValue][] {
  const falses = new Set(role.env.literalFalse ?? []);
  const merged: Record<string, KamalValue> = {};
  for (const [key, value] of Object.entries(role.env.clear)) merged[key] = falses.has(key) && value === 'false' ? false : value;
  Object.assign(merged, hostTagClearEnv(config, role, host));
  return Object.entries(merged).map(([key, value]) => [validateEnvName(key, `env of role ${role.name}`), value]);
}

/**
 * `docker run` exactly as Kamal 2's `app.run` renders it (spec step 4c): the env file already on
 * the host is reused, never re-resolved.
 */
export function runContainer(config: KamalConfig, role: KamalRole, options: RunOptions): Word[] {
  const name = containerName(config, role.name, options.version);
  // Names, versions and hosts are validated: quoting them as Kamal does changes nothing they mean.
  const kamalEnv = (key: string, value: string) => ['--env', new ShellWord(`${key}="${value}"`)];
  return [
    'docker', 'run',
    '--detach',
    '--restart', 'unless-stopped',
    '--name', name,
    '--network', 'kamal',
    '--hostname', options.hostname,
    ...kamalEnv('KAMAL_CONTAINER_NAME', validateContainerWord(name)),
    ...kamalEnv('KAMAL_VERSION', validateVersion(options.version)),
    // Kamal writes SSHKit's Host#to_s: the address alone, without user, port or brackets.
    ...kamalEnv('KAMAL_HOST', kamalHostName(validateHost(options.host))),
    ...(config.destination !== undefined ? kamalEnv('KAMAL_DESTINATION', validateDestination(config.destination)) : []),
    ...argumentize('--env', clearEnvFor(config, role, options.host)),
    '--env-file', roleEnvFile(config, role.name),
    ...loggingArgs(roleLogging(config, role)),
    ...config.volumes.flatMap((volume) => ['--volume', volume]),
    ...(options.assetVolume ? ['--volume', options.assetVolume] : []),
    ...labelArgs(config, role),
    ...optionArgs(role.options, `options of role ${role.name}`),
    image(config, options.version),
    // Kamal appends the cmd as written: the host's shell evaluates it (`${PORT:-3000}`, `"$QUEUE"`, globs).
    ...(role.cmd !== undefined && role.cmd !== '' ? [new ShellWord(role.cmd)] : []),
  ];
}

function validateContainerWord(name: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) refuse('container name', name, 'a container name may contain only letters, digits, ".", "_" and "-"');
  return name;
}

/** Kamal truncates the host to 51 characters so `<host>-<12 hex>` stays a valid hostname. */
export function containerHostname(host: string, hex12: string): string {
  return `${host.slice(0, 51).replace(/\.$/, '')}-${hex12}`;
}

export const DOCKER_HEALTH_STATUS_FORMAT = '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}';

/** Kamal's `app.status`: the health (or plain state) of version V's container. */
export function containerStatus(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, version: string): string {
  return shellLine(containerIdForVersion(config, role, version), '|', ['xargs', 'docker', 'inspect', '--format', DOCKER_HEALTH_STATUS_FORMAT]);
}

/** Kamal's `app.stop(version:)`: `... --quiet | xargs docker stop [-t N]`. */
export function stopContainer(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, version: string, stopWaitTime?: number): string {
  const stop = stopWaitTime !== undefined ? ['xargs', 'docker', 'stop', '-t', String(stopWaitTime)] : ['xargs', 'docker', 'stop'];
  return shellLine(containerIdForVersion(config, role, version), '|', stop);
}

/** The failed container's last lines, shown to the user when its boot fails. */
export function containerLogs(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, version: string, lines = 50): string {
  return shellLine(containerIdForVersion(config, role, version), '|', ['xargs', 'docker', 'logs', '--timestamps', '--tail', String(lines)]) + ' 2>&1';
}

/** Kamal's `tag_latest_image`. */
export function tagLatestImage(config: Pick<KamalConfig, 'repository' | 'destination'>, version: string): string[] {
  return ['docker', 'tag', image(config, version), latestImage(config)];
}

/** `mkdir -p .kamal`: Kamal's run directory, made on every host before anything else. */
export function makeRunDirectory(): string[] {
  return ['mkdir', '-p', '.kamal'];
}
