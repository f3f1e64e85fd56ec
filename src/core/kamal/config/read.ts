/**
 * Reads a Kamal config the way Kamal 2.12 does (ERB, YAML, destination deep merge,
 * defaults) without running Ruby, and normalises it into `KamalConfig`. Every error or
 * doubtful value becomes a Problem with file, line and column; hostile values are dropped
 * from the usable fields so they can never reach a command.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Problem } from '../../model';
import type { KamalConfig } from './types';
import { validateDestination, validateImage, validateLabelKey, validateRegistryServer, validateRole, validateService } from './names';
import { collectUnknown, deepMerge, displayPath, isHash, parseFile, pathKey, projectDirOf, setKey, type Hash, type ParsedFile, type Path } from './parse';
import { noControlCharacters, Normaliser } from './normaliser';
import { normaliseBoot, normaliseEnv, normaliseSsh } from './normalise';
import { normaliseRoles, warnUnusableAssetPaths } from './roles';
import { ConfigTooLarge, readConfigFile } from './size';

export interface KamalConfigInput {
  baseText: string;
  /** Absolute path of config/deploy.yml. */
  baseFile: string;
  destinationText?: string;
  destinationFile?: string;
  destination?: string;
  env?: NodeJS.ProcessEnv;
  /** Destinations that exist beside the base file, named in the require_destination problem. */
  availableDestinations?: string[];
}

/** Top-level keys Kamal 2.12 accepts (lib/kamal/configuration/docs/configuration.yml). */
const TOP_LEVEL_KEYS = new Set([
  'service', 'image', 'labels', 'volumes', 'registry', 'servers', 'env', 'asset_path', 'hooks_path',
  'secrets_path', 'error_pages_path', 'require_destination', 'primary_role', 'allow_empty_roles',
  'retain_containers', 'minimum_version', 'readiness_delay', 'deploy_timeout', 'drain_timeout',
  'run_directory', 'ssh', 'builder', 'accessories', 'proxy', 'sshkit', 'boot', 'logging', 'aliases',
  'output', 'otel', 'rollout', 'stop_timeout', 'hooks_output',
]);


/** Kamal's defaults with nothing deployable yet: what a config starts from (and test builders too). */
export function emptyConfig(file: string, problems: Problem[] = [], destination?: string): KamalConfig {
  return {
    file,
    ...(destination !== undefined ? { destination } : {}),
    requireDestination: false,
    service: '',
    image: '',
    repository: '',
    roles: [],
    primaryRole: 'web',
    hosts: [],
    ssh: { user: 'root', port: 22, keys: [], keysOnly: false, config: true, forwardAgent: false, keepaliveInterval: 30 },
    boot: {},
    retainContainers: 5,
    readinessDelay: 7,
    deployTimeout: 30,
    drainTimeout: 30,
    hooksPath: path.join(projectDirOf(file), '.kamal', 'hooks'),
    env: { clear: {}, secret: [] },
    labels: {},
    volumes: [],
    logging: { options: {} },
    raw: {},
    unknown: [],
    problems,
  };
}

/** Parses and normalises a Kamal config from text: no disk, no network, no Ruby. */
export function parseKamalConfig(input: KamalConfigInput): KamalConfig {
  const problems: Problem[] = [];
  const { baseFile } = input;
  let destination = input.destination;
  if (destination !== undefined) {
    const reason = validateDestination(destination);
    if (reason) {
      problems.push({ file: baseFile, message: `Destination ${reason}`, severity: 'error' });
      destination = undefined;
    }
  }
  const env: NodeJS.ProcessEnv = { ...(input.env ?? {}) };
  // Kamal sets KAMAL_DESTINATION before rendering either file (nil removes it).
  if (destination !== undefined) env.KAMAL_DESTINATION = destination;
  else delete env.KAMAL_DESTINATION;

  const files: ParsedFile[] = [parseFile(input.baseText, baseFile, env, problems)];
  const destinationFile = destination !== undefined ? (input.destinationFile ?? destinationFileFor(baseFile, destination)) : undefined;
  if (destination !== undefined && destinationFile !== undefined) {
    if (input.destinationText === undefined) {
      problems.push({ file: destinationFile, message: `Configuration file not found: ${displayPath(destinationFile)} (destination "${destination}")`, severity: 'error' });
    } else {
      files.push(parseFile(input.destinationText, destinationFile, env, problems));
    }
  }
  const base = files[0].data;
  const config = emptyConfig(baseFile, problems, destination);
  if (destinationFile !== undefined) config.destinationFile = destinationFile;
  if (!base) return config;

  let merged: Hash = base;
  if (files[1]?.data) merged = deepMerge(base, files[1].data);
  const unknown: string[] = [];
  merged = collectUnknown(merged, [], unknown) as Hash;
  const n = new Normaliser(files, baseFile, problems, unknown);

  const raw: Hash = {};
  for (const [key, value] of Object.entries(merged)) {
    if (key.startsWith('x-')) continue;
    if (!TOP_LEVEL_KEYS.has(key)) n.report([key], `unknown key: ${key} (Kamal 2.12 refuses it; prefix extensions with "x-")`, true);
    setKey(raw, key, value);
  }
  // A string password is the secret itself (often ENV-resolved); the array form names a secret and is kept.
  if (isHash(raw.registry) && typeof raw.registry.password === 'string') setKey(raw.registry, 'password', '[redacted]');
  config.raw = raw;
  config.unknown = unknown.filter((at) => !at.startsWith('x-'));

  config.requireDestination = n.boolean(raw.require_destination, ['require_destination'], false);
  if (config.requireDestination && destination === undefined && input.destination === undefined) {
    const choices = input.availableDestinations ?? [];
    n.errorAt(
      ['require_destination'],
      choices.length
        ? `${displayPath(baseFile)} requires a destination: pick one of ${choices.join(', ')}`
        : `${displayPath(baseFile)} requires a destination, but there is no ${path.basename(baseFile, '.yml')}.<destination>.yml beside it`,
    );
  }

  normaliseTopLevel(n, config, raw, baseFile);
  normaliseRoles(n, config, raw);
  warnUnusableAssetPaths(n, raw);
  scrub(raw, n.dropped);
  config.problems = orderedProblems(problems, files);
  return config;
}

/** Every top-level setting but `servers`, into `config`. */
function normaliseTopLevel(n: Normaliser, config: KamalConfig, raw: Hash, baseFile: string): void {
  config.service = requiredName(n, raw, 'service', validateService) ?? config.service;
  if (raw.registry != null && !isHash(raw.registry)) n.reject(['registry'], 'should be a hash');
  const registry = isHash(raw.registry) ? raw.registry : {};
  const registryServer = checkedString(n, registry.server, ['registry', 'server'], validateRegistryServer);
  if (registryServer !== undefined) config.registryServer = registryServer;
  // Kamal's Registry#local? (`localhost[:port]`): the image then defaults to the service name.
  const localRegistry = registryServer !== undefined && /^localhost(:|$)/.test(registryServer);
  if (localRegistry && raw.image == null && !n.isUnknown(['image'])) config.image = config.service;
  else config.image = requiredName(n, raw, 'image', validateImage) ?? config.image;
  // Kamal: [registry.server, image].compact.join("/"); Docker Hub means no server.
  if (config.image) config.repository = config.registryServer ? `${config.registryServer}/${config.image}` : config.image;

  config.env = normaliseEnv(n, raw.env, ['env']);
  // Tags add env per host at deploy time; read here only so bad names in them are reported.
  const tags = isHash(raw.env) ? raw.env.tags : undefined;
  if (isHash(tags)) for (const [tag, tagEnv] of Object.entries(tags)) normaliseEnv(n, tagEnv, ['env', 'tags', tag]);
  else if (tags != null) n.reject(['env', 'tags'], 'should be a hash of tag: env');
  config.labels = n.stringMap(raw.labels, ['labels'], validateLabelKey, noControlCharacters);
  config.volumes = n.stringList(raw.volumes, ['volumes'], noControlCharacters);
  if (raw.logging != null) {
    if (!isHash(raw.logging)) n.reject(['logging'], 'should be a hash');
    else {
      const driver = raw.logging.driver == null ? undefined : n.string(raw.logging.driver, ['logging', 'driver']);
      config.logging = { options: n.stringMap(raw.logging.options, ['logging', 'options'], (key) => (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(key) ? undefined : `${JSON.stringify(key)} is not a valid log option`), noControlCharacters) };
      if (driver !== undefined) {
        if (/^[A-Za-z0-9][A-Za-z0-9._/:-]*$/.test(driver)) config.logging.driver = driver;
        else n.reject(['logging', 'driver'], `${JSON.stringify(driver)} is not a valid log driver`);
      }
    }
  }
  config.ssh = normaliseSsh(n, raw.ssh);
  // Kamal runs from the project root, so relative key and ssh_config paths mean that folder;
  // the extension host's own working directory is elsewhere.
  const fromProject = (file: string) => (file.startsWith('~') || path.isAbsolute(file) ? file : path.resolve(projectDirOf(baseFile), file));
  config.ssh.keys = config.ssh.keys.map(fromProject);
  if (Array.isArray(config.ssh.config)) config.ssh.config = config.ssh.config.map(fromProject);
  config.boot = normaliseBoot(n, raw.boot);
  config.retainContainers = n.number(raw.retain_containers, ['retain_containers'], 5, Number.isInteger, 'a whole number');
  if (config.retainContainers < 1) {
    n.reject(['retain_containers'], 'Must retain at least 1 container');
    config.retainContainers = 5;
  }
  config.readinessDelay = n.number(raw.readiness_delay, ['readiness_delay'], 7);
  config.deployTimeout = n.number(raw.deploy_timeout, ['deploy_timeout'], 30);
  config.drainTimeout = n.number(raw.drain_timeout, ['drain_timeout'], 30);
  const hooksPath = checkedString(n, raw.hooks_path, ['hooks_path'], noControlCharacters);
  if (hooksPath !== undefined) config.hooksPath = path.resolve(projectDirOf(baseFile), hooksPath);
  config.primaryRole = checkedString(n, raw.primary_role, ['primary_role'], validateRole) ?? config.primaryRole;
  checkHooksOutput(n, raw.hooks_output);
  checkMinimumVersion(n, raw.minimum_version);
}

/** The Kamal whose behaviour this reproduces: a config asking for a newer one is refused as Kamal 2.12 refuses it. */
export const KAMAL_VERSION = '2.12.0';

/** `hooks_output: quiet|verbose`, or a hash of hook name to one of them. */
function checkHooksOutput(n: Normaliser, value: unknown): void {
  if (value == null) return;
  const check = (level: unknown, at: Path) => {
    if (typeof level !== 'string') n.report(at, 'should be a string');
    else if (level !== 'quiet' && level !== 'verbose') n.report(at, `should be quiet or verbose, got ${JSON.stringify(level)}`);
  };
  if (isHash(value)) for (const [hook, level] of Object.entries(value)) check(level, ['hooks_output', hook]);
  else check(value, ['hooks_output']);
}

/** Gem::Version's order, enough for release numbers: numeric segments, a letter segment marks a prerelease. */
function compareGemVersions(a: string, b: string): number {
  const segments = (text: string) => text.split(/\.|(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)/i).map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  const left = segments(a);
  const right = segments(b);
  for (let index = 0; index < Math.max(left.length, right.length); index++) {
    const x = left[index] ?? 0;
    const y = right[index] ?? 0;
    if (x === y) continue;
    if (typeof x === 'string' && typeof y === 'string') return x < y ? -1 : 1;
    if (typeof x === 'string') return -1;
    if (typeof y === 'string') return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

function checkMinimumVersion(n: Normaliser, value: unknown): void {
  if (value == null) return;
  const text = n.string(value, ['minimum_version']);
  if (text === undefined) return;
  if (!/^[0-9]+(\.[0-9A-Za-z]+)*$/.test(text.trim())) n.report(['minimum_version'], `Malformed version number string ${text}`);
  else if (compareGemVersions(text.trim(), KAMAL_VERSION) > 0) n.errorAt(['minimum_version'], `Current version is ${KAMAL_VERSION}, minimum required is ${text}`);
}

/** Each problem once, in file order (base file, then destination), then by line and column. */
function orderedProblems(problems: Problem[], files: ParsedFile[]): Problem[] {
  const seen = new Set<string>();
  const unique = problems.filter((problem) => {
    const key = `${problem.file}\u0000${problem.line}\u0000${problem.column}\u0000${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique.sort((a, b) => files.findIndex((f) => f.file === a.file) - files.findIndex((f) => f.file === b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}


/** A required top-level name: missing is reported (unless ERB we would not run feeds it), a refused one dropped. */
function requiredName(n: Normaliser, raw: Hash, key: 'service' | 'image', check: (text: string) => string | undefined): string | undefined {
  if (raw[key] == null && !n.isUnknown([key])) n.report([], `Missing required configuration for ${key}`);
  return checkedString(n, raw[key], [key], check);
}

/** An optional string setting: undefined when absent, or refused (reported at its line and dropped). */
function checkedString(n: Normaliser, value: unknown, at: Path, check: (text: string) => string | undefined): string | undefined {
  if (value == null) return undefined;
  const text = n.string(value, at);
  const reason = text === undefined ? undefined : check(text);
  if (reason) n.reject(at, reason);
  return reason ? undefined : text;
}

/** Removes refused values from the raw document; array items by descending index so the rest stay put. */
function scrub(raw: Hash, dropped: Path[]): void {
  // The same value can be refused twice (the top-level proxy is read for each role).
  const unique = [...new Map(dropped.map((at) => [pathKey(at), at])).values()];
  const ordered = unique.sort((a, b) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i] !== b[i]) return /^[0-9]+$/.test(a[i]) && /^[0-9]+$/.test(b[i]) ? Number(b[i]) - Number(a[i]) : a[i] < b[i] ? -1 : 1;
    }
    return b.length - a.length;
  });
  for (const at of ordered) {
    let parent: unknown = raw;
    for (const key of at.slice(0, -1)) parent = Array.isArray(parent) ? parent[Number(key)] : isHash(parent) ? parent[key] : undefined;
    const last = at[at.length - 1];
    if (Array.isArray(parent) && /^[0-9]+$/.test(last)) parent.splice(Number(last), 1);
    else if (isHash(parent)) delete parent[last];
  }
}

/** `config/deploy.yml` + `staging` → `config/deploy.staging.yml`, as Ruby's sub_ext does. */
export function destinationFileFor(baseFile: string, destination: string): string {
  const extension = path.extname(baseFile);
  return path.join(path.dirname(baseFile), `${path.basename(baseFile, extension)}.${destination}${extension || '.yml'}`);
}

/** Destinations beside a base file: `deploy.staging.yml` → `staging`, sorted. */
export async function listDestinations(baseFile: string): Promise<string[]> {
  const extension = path.extname(baseFile) || '.yml';
  const stem = path.basename(baseFile, path.extname(baseFile));
  let entries: string[];
  try {
    entries = await fs.readdir(path.dirname(baseFile));
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const entry of entries) {
    if (!entry.startsWith(`${stem}.`) || !entry.endsWith(extension)) continue;
    const name = entry.slice(stem.length + 1, entry.length - extension.length);
    if (name && !validateDestination(name)) found.push(name);
  }
  return found.sort();
}

/** Reads config/deploy.yml (and deploy.<destination>.yml) from disk and parses them. */
export async function loadKamalConfig(file: string, destination: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<KamalConfig> {
  const baseFile = path.resolve(file);
  let baseText: string;
  try {
    baseText = await readConfigFile(baseFile);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    return emptyConfig(baseFile, [{ file: baseFile, message: `Cannot read Kamal config ${baseFile}: ${reason}`, severity: 'error' }], destination);
  }
  let destinationText: string | undefined;
  let destinationFile: string | undefined;
  if (destination !== undefined && !validateDestination(destination)) {
    destinationFile = destinationFileFor(baseFile, destination);
    try {
      destinationText = await readConfigFile(destinationFile);
    } catch (error) {
      if (error instanceof ConfigTooLarge) return emptyConfig(baseFile, [{ file: destinationFile, message: `Cannot read Kamal config ${destinationFile}: ${error.message}`, severity: 'error' }], destination);
      destinationText = undefined;
    }
  }
  const availableDestinations = await listDestinations(baseFile);
  return parseKamalConfig({ baseText, baseFile, destinationText, destinationFile, destination, env, availableDestinations });
}

export interface KamalEnvironmentJson {
  source: 'kamal';
  path: string;
  environment: string;
  service: string;
  image: string;
  primaryRole: string;
  roles: { name: string; hosts: string[]; proxy: boolean }[];
  ssh: { user: string; port: number; proxy?: string };
  /** `line` is null for problems not tied to a position (a missing file). */
  problems: { file: string; line: number | null; message: string }[];
}

/** What `deploy-rollback environments --json` prints for Kamal configs. */
export function kamalEnvironmentsJson(configs: readonly KamalConfig[]): KamalEnvironmentJson[] {
  return configs.map((config) => ({
    source: 'kamal',
    path: config.file,
    environment: config.destination ?? 'default',
    service: config.service,
    image: config.image,
    primaryRole: config.primaryRole,
    roles: config.roles.map((role) => ({ name: role.name, hosts: [...role.hosts], proxy: role.proxy !== undefined })),
    ssh: {
      user: config.ssh.user,
      port: config.ssh.port,
      ...(config.ssh.proxy ? { proxy: `${config.ssh.proxy.user}@${config.ssh.proxy.host}:${config.ssh.proxy.port}` } : {}),
    },
    problems: config.problems.map((problem) => ({ file: problem.file, line: problem.line ?? null, message: problem.message })),
  }));
}
