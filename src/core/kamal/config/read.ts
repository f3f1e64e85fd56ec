/**
 * Reads a Kamal config the way Kamal 2.12 does (ERB, YAML, destination deep merge,
 * defaults) without running Ruby, and normalises it into `KamalConfig`. Every error or
 * doubtful value becomes a Problem with file, line and column; hostile values are dropped
 * from the usable fields so they can never reach a command.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { Problem } from '../../model';
import type { KamalConfig, KamalEnv, KamalProxy, KamalRole, KamalSsh } from './types';
import { containsUnresolvedMarker, lineCounter, renderErb } from './erb';
import { psychScalar } from './psych';
import {
  validateDestination,
  validateEnvName,
  validateHost,
  validateImage,
  validateLabelKey,
  validateProxyHost,
  validateRegistryServer,
  validateRole,
  validateService,
  validateSshUser,
} from './names';

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

const ROLE_KEYS = new Set(['hosts', 'cmd', 'options', 'labels', 'env', 'logging', 'proxy', 'asset_path', 'stop_timeout']);

const DEFAULT_LOG_REQUEST_HEADERS = ['Cache-Control', 'Last-Modified', 'User-Agent'];

/** A value fed by ERB we would not run: kept distinct from null through the merge. */
class UnknownValue {}
const UNKNOWN = new UnknownValue();

type Path = readonly string[];
interface Location {
  file: string;
  line: number;
  column: number;
}

interface ParsedFile {
  file: string;
  data?: Record<string, unknown>;
  values: Map<string, Location>;
  keys: Map<string, Location>;
}

const pathKey = (segments: Path) => segments.join('\u0000');
const dotted = (segments: Path) => segments.join('.');
// eslint-disable-next-line no-control-regex
const slashed = (segments: Path) => segments.map((segment) => (/[\u0000-\u001f\u007f/]/.test(segment) ? JSON.stringify(segment) : segment)).join('/');

type Hash = Record<string, unknown>;

function isHash(value: unknown): value is Hash {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof UnknownValue);
}

function setKey(target: Hash, key: string, value: unknown): void {
  // Defined, not assigned, so a "__proto__" key in YAML stays plain data.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Ruby's `to_s` on what YAML gives a scalar; undefined for hashes and arrays. */
function stringish(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return '';
  return undefined;
}

const STRING_TAGS = new Set(['tag:yaml.org,2002:str', '!str']);

/** Quoted and block scalars are strings, as in Psych; plain ones are typed by its ScalarScanner. */
function scalarValue(node: { value: unknown; type?: string; tag?: string; source?: string }): unknown {
  const text = typeof node.value === 'string' ? node.value : String(node.value ?? '');
  if (node.type !== 'PLAIN' || (node.tag !== undefined && STRING_TAGS.has(node.tag))) return text;
  return psychScalar(text);
}

/** Real configs hold a few hundred values; this stops an alias bomb early. */
const MAX_NODES = 20_000;

function parseFile(text: string, file: string, env: NodeJS.ProcessEnv, problems: Problem[]): ParsedFile {
  const parsed: ParsedFile = { file, values: new Map(), keys: new Map() };
  const erb = renderErb(text, env);
  for (const issue of erb.issues) problems.push({ file, ...issue });
  const sourcePosition = lineCounter(text);
  const locate = (renderedOffset: number): Location => ({ file, ...sourcePosition(erb.toSourceOffset(renderedOffset)) });
  const conditional = (node: YamlNode | null) => node?.range != null && erb.isConditional(erb.toSourceOffset(node.range[0]));

  // Every scalar is read as text, then typed by Psych's rules (yaml's own 1.1 schema differs: `N` is false there).
  const doc = parseDocument(erb.text, { version: '1.1', schema: 'failsafe', merge: false, prettyErrors: false, uniqueKeys: false });
  for (const error of doc.errors) {
    problems.push({ ...locate(error.pos[0]), message: `YAML syntax error: ${error.message}`, severity: 'error' });
  }
  if (doc.errors.length > 0) return parsed;
  for (const warning of doc.warnings) {
    problems.push({ ...locate(warning.pos[0]), message: `YAML: ${warning.message}`, severity: 'warning' });
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    problems.push({ file, line: 1, column: 1, message: `${displayPath(file)} is empty: Kamal needs a hash of settings here`, severity: 'error' });
    return parsed;
  }
  if (!isMap(doc.contents)) {
    problems.push({ ...locate(doc.contents.range?.[0] ?? 0), message: `${displayPath(file)} should be a hash of settings (key: value lines)`, severity: 'error' });
    return parsed;
  }
  let visited = 0;
  const aliasTargets = new Map<YamlNode, unknown>();
  const convert = (node: unknown, at: Path, depth: number): unknown => {
    if (++visited > MAX_NODES || depth > 200) throw new Error(`aliases expand to more than ${MAX_NODES} values; Kamal configs are far smaller, so an alias is probably nested into itself`);
    if (node === null || node === undefined) return null;
    const yamlNode = node as YamlNode;
    if (isAlias(yamlNode)) {
      // resolve() searches the whole document, so each alias is looked up once.
      if (!aliasTargets.has(yamlNode)) aliasTargets.set(yamlNode, yamlNode.resolve(doc as Document));
      return convert(aliasTargets.get(yamlNode), at, depth + 1);
    }
    if (yamlNode.range) parsed.values.set(pathKey(at), locate(yamlNode.range[0]));
    if (conditional(yamlNode)) return UNKNOWN;
    if (isScalar(yamlNode)) {
      const value = scalarValue(yamlNode);
      if (typeof value === 'string' && containsUnresolvedMarker(value)) return UNKNOWN;
      return value;
    }
    if (isSeq(yamlNode)) {
      return yamlNode.items.map((item, index) => convert(item, [...at, String(index)], depth + 1));
    }
    if (isMap(yamlNode)) {
      const result: Hash = {};
      for (const pair of yamlNode.items) {
        const key = pair.key as YamlNode | null;
        if (isScalar(key) && key.type === 'PLAIN' && key.value === '<<' && !key.tag) {
          // Psych merges `<<` in place: later keys win; in a list the earlier maps win.
          const sources = isSeq(pair.value) ? [...pair.value.items].reverse() : [pair.value];
          for (const source of sources) {
            const merged = convert(source, at, depth + 1);
            if (isHash(merged)) for (const [k, v] of Object.entries(merged)) setKey(result, k, v);
          }
          continue;
        }
        const keyValue = isScalar(key) ? scalarValue(key) : key === null ? null : String(key);
        const keyText = stringish(keyValue) ?? String(keyValue);
        const child = [...at, keyText];
        if (key?.range) {
          parsed.keys.set(pathKey(child), locate(key.range[0]));
          parsed.values.set(pathKey(child), locate(key.range[0]));
        }
        // A key written inside a Ruby block may or may not be rendered: its whole entry is unknown.
        if (containsUnresolvedMarker(keyText) || conditional(key)) {
          setKey(result, keyText, UNKNOWN);
          continue;
        }
        setKey(result, keyText, convert(pair.value, child, depth + 1));
      }
      return result;
    }
    return null;
  };
  try {
    parsed.data = convert(doc.contents, [], 0) as Hash;
  } catch (error) {
    problems.push({ file, line: 1, column: 1, message: `YAML: ${(error as Error).message}`, severity: 'error' });
  }
  return parsed;
}

/** The folder Kamal runs in: the parent of config/, else the file's own folder. */
export function projectDirOf(file: string): string {
  const folder = path.dirname(file);
  return path.basename(folder) === 'config' ? path.dirname(folder) : folder;
}

function displayPath(file: string): string {
  return path.join(path.basename(path.dirname(file)), path.basename(file));
}

/** ActiveSupport's deep_merge: hashes merge recursively, anything else from `over` replaces. */
export function deepMerge(base: Hash, over: Hash): Hash {
  const result: Hash = {};
  for (const [key, value] of Object.entries(base)) setKey(result, key, value);
  for (const [key, value] of Object.entries(over)) {
    const existing = result[key];
    setKey(result, key, isHash(existing) && isHash(value) && Object.prototype.hasOwnProperty.call(result, key) ? deepMerge(existing, value) : value);
  }
  return result;
}

/** Replaces unknown markers by null, returning the dotted paths where they were. */
function collectUnknown(value: unknown, at: string[], found: string[]): unknown {
  if (value === UNKNOWN) {
    found.push(dotted(at));
    return null;
  }
  if (Array.isArray(value)) return value.map((item, index) => collectUnknown(item, [...at, String(index)], found));
  if (isHash(value)) {
    const result: Hash = {};
    for (const [key, item] of Object.entries(value)) {
      if (containsUnresolvedMarker(key)) {
        found.push(dotted([...at, '*']));
        continue;
      }
      setKey(result, key, collectUnknown(item, [...at, key], found));
    }
    return result;
  }
  return value;
}

class Normaliser {
  readonly problems: Problem[];
  readonly unknown: Set<string>;
  readonly dropped: Path[] = [];

  constructor(
    private readonly files: ParsedFile[],
    private readonly fallbackFile: string,
    problems: Problem[],
    unknown: string[],
  ) {
    this.problems = problems;
    this.unknown = new Set(unknown);
  }

  /** Where a path's value was written: the destination file first, since its values win. */
  locate(at: Path, preferKey = false): Location {
    for (let end = at.length; end >= 0; end--) {
      const key = pathKey(at.slice(0, end));
      for (const file of [...this.files].reverse()) {
        const found = (preferKey ? file.keys.get(key) : undefined) ?? file.values.get(key);
        if (found) return found;
      }
    }
    return { file: this.fallbackFile, line: 1, column: 1 };
  }

  /** An error about a setting as a whole: nothing is removed. */
  report(at: Path, message: string, preferKey = false): void {
    this.problems.push({ ...this.locate(at, preferKey), message: at.length ? `${slashed(at)}: ${message}` : message, severity: 'error' });
  }

  /** An error for a refused value: it is also removed from `raw`, so nothing can use it. */
  reject(at: Path, message: string, preferKey = false): void {
    this.report(at, message, preferKey);
    this.dropped.push(at);
  }

  /** An error placed at `at` whose message names its own context. */
  errorAt(at: Path, message: string): void {
    this.problems.push({ ...this.locate(at, true), message, severity: 'error' });
  }

  warning(at: Path, message: string, preferKey = false): void {
    this.problems.push({ ...this.locate(at, preferKey), message: at.length ? `${slashed(at)}: ${message}` : message, severity: 'warning' });
  }

  isUnknown(at: Path): boolean {
    return this.unknown.has(dotted(at));
  }

  string(value: unknown, at: Path): string | undefined {
    if (value === undefined || (value === null && this.isUnknown(at))) return undefined;
    const text = stringish(value);
    if (text === undefined || value === null) {
      this.reject(at, 'should be a string');
      return undefined;
    }
    return text;
  }

  number(value: unknown, at: Path, fallback: number, check: (n: number) => boolean = (n) => n >= 0, expected = 'a number of 0 or more'): number {
    if (value === undefined || value === null) return fallback;
    const parsed = typeof value === 'string' && /^[0-9]+(\.[0-9]+)?$/.test(value) ? Number(value) : value;
    if (typeof parsed !== 'number' || !Number.isFinite(parsed) || !check(parsed)) {
      this.reject(at, `should be ${expected}, got ${JSON.stringify(value)}`);
      return fallback;
    }
    return parsed;
  }

  optionalNumber(value: unknown, at: Path): number | undefined {
    if (value === undefined || value === null) return undefined;
    const result = this.number(value, at, Number.NaN);
    return Number.isNaN(result) ? undefined : result;
  }

  boolean(value: unknown, at: Path, fallback: boolean): boolean {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') {
      this.reject(at, `should be a boolean (true or false), got ${JSON.stringify(value)}`);
      return fallback;
    }
    return value;
  }

  stringList(value: unknown, at: Path, check?: (text: string) => string | undefined): string[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.reject(at, 'should be an array');
      return [];
    }
    const result: string[] = [];
    value.forEach((item, index) => {
      const itemPath = [...at, String(index)];
      const text = this.string(item, itemPath);
      if (text === undefined) return;
      const reason = check?.(text);
      if (reason) this.reject(itemPath, reason);
      else result.push(text);
    });
    return result;
  }

  stringMap(value: unknown, at: Path, checkKey: (key: string) => string | undefined, checkValue?: (text: string) => string | undefined, allowNull = true): Record<string, string> {
    const result: Record<string, string> = {};
    if (value === undefined || value === null) return result;
    if (!isHash(value)) {
      this.reject(at, 'should be a hash');
      return result;
    }
    for (const [key, item] of Object.entries(value)) {
      const itemPath = [...at, key];
      const keyReason = checkKey(key);
      if (keyReason) {
        this.reject(itemPath, keyReason, true);
        continue;
      }
      if (item === null && !allowNull && !this.isUnknown(itemPath)) {
        this.reject(itemPath, 'should be a string (Kamal refuses an env value that is null)');
        continue;
      }
      const text = this.string(item === null && !this.isUnknown(itemPath) ? '' : item, itemPath);
      if (text === undefined) continue;
      const valueReason = checkValue?.(text);
      if (valueReason) {
        this.reject(itemPath, valueReason);
        continue;
      }
      setKey(result, key, text);
    }
    return result;
  }
}

const noControlCharacters = (text: string) =>
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f]/.test(text) ? `${JSON.stringify(text.slice(0, 60))} contains a newline or control character` : undefined;

// eslint-disable-next-line no-control-regex
const URL_PATH = /^\/[^\s\u0000-\u001f\u007f]*$/;

const noNul = (text: string) => (text.includes('\u0000') ? 'contains a NUL character' : undefined);

function normaliseEnv(n: Normaliser, value: unknown, at: Path): KamalEnv {
  if (value === undefined || value === null) return { clear: {}, secret: [] };
  if (!isHash(value)) {
    n.reject(at, 'should be a hash (clear/secret, or NAME: value)');
    return { clear: {}, secret: [] };
  }
  const structured = 'clear' in value || 'secret' in value || 'tags' in value;
  const clearPath = 'clear' in value ? [...at, 'clear'] : at;
  const clearValue = 'clear' in value ? value.clear : structured ? {} : value;
  const clear = n.stringMap(clearValue, clearPath, validateEnvName, noNul, false);
  const literalFalse = isHash(clearValue) ? Object.keys(clear).filter((key) => clearValue[key] === false) : [];
  const secret = n.stringList(value.secret, [...at, 'secret'], (entry) => {
    // "NAME:ALIAS" sets NAME from the secret ALIAS.
    for (const part of entry.split(':')) {
      const reason = validateEnvName(part);
      if (reason) return reason;
    }
    return undefined;
  }).map((entry) => entry.split(':')[0]);
  return { clear, secret: [...new Set(secret)], ...(literalFalse.length ? { literalFalse } : {}) };
}

function mergeEnv(base: KamalEnv, over: KamalEnv): KamalEnv {
  const literalFalse = [...(base.literalFalse ?? []).filter((key) => !(key in over.clear)), ...(over.literalFalse ?? [])];
  return { clear: { ...base.clear, ...over.clear }, secret: [...new Set([...base.secret, ...over.secret])], ...(literalFalse.length ? { literalFalse } : {}) };
}

function normaliseProxy(n: Normaliser, config: Hash, rolePath: Path | undefined, roleProxy?: Hash): KamalProxy {
  // Role-level settings win, so their position is the one to report.
  const where = (...keys: string[]): Path => {
    if (!rolePath) return ['proxy', ...keys];
    let cursor: unknown = roleProxy;
    for (const key of keys) cursor = isHash(cursor) ? cursor[key] : undefined;
    return cursor !== undefined || keys.length === 0 ? [...rolePath, ...keys] : ['proxy', ...keys];
  };
  let hosts: string[] = [];
  if (config.host !== undefined && config.hosts !== undefined && config.host !== null && config.hosts !== null) {
    n.report(where(), "Specify one of 'host' or 'hosts', not both");
  }
  if (config.hosts !== undefined && config.hosts !== null) {
    hosts = n.stringList(config.hosts, where('hosts'), validateProxyHost);
  } else if (config.host !== undefined && config.host !== null) {
    const text = n.string(config.host, where('host'));
    if (text !== undefined) {
      for (const host of text.split(',')) {
        const reason = validateProxyHost(host);
        if (reason) n.reject(where('host'), reason);
        else hosts.push(host);
      }
    }
  }
  const ssl = config.ssl === undefined || config.ssl === null ? false : isHash(config.ssl) ? true : n.boolean(config.ssl, where('ssl'), false);
  if (ssl && hosts.length === 0 && config.host == null && config.hosts == null) {
    n.report(where('ssl'), 'Must set a host to enable automatic SSL');
  }
  const healthcheck = isHash(config.healthcheck) ? config.healthcheck : {};
  if (config.healthcheck != null && !isHash(config.healthcheck)) n.reject(where('healthcheck'), 'should be a hash');
  let healthPath = '/up';
  if (healthcheck.path != null) {
    const text = n.string(healthcheck.path, where('healthcheck', 'path'));
    if (text !== undefined) {
      if (!URL_PATH.test(text)) n.reject(where('healthcheck', 'path'), `${JSON.stringify(text)} is not a valid health check path: it must start with "/" and contain no spaces`);
      else healthPath = text;
    }
  }
  const buffering = isHash(config.buffering) ? config.buffering : {};
  if (config.buffering != null && !isHash(config.buffering)) n.reject(where('buffering'), 'should be a hash');
  const logging = isHash(config.logging) ? config.logging : {};
  const headerName = (text: string) => (/^[A-Za-z0-9-]+$/.test(text) ? undefined : `${JSON.stringify(text)} is not a valid header name`);
  const proxy: KamalProxy = {
    hosts,
    appPort: n.number(config.app_port, where('app_port'), 80, (port) => Number.isInteger(port) && port >= 1 && port <= 65535, 'a port number from 1 to 65535'),
    ssl,
    healthcheck: {
      path: healthPath,
      interval: n.number(healthcheck.interval, where('healthcheck', 'interval'), 1),
      timeout: n.number(healthcheck.timeout, where('healthcheck', 'timeout'), 5),
    },
    bufferRequests: n.boolean(buffering.requests, where('buffering', 'requests'), true),
    bufferResponses: n.boolean(buffering.responses, where('buffering', 'responses'), true),
    requestHeaders:
      logging.request_headers == null ? [...DEFAULT_LOG_REQUEST_HEADERS] : n.stringList(logging.request_headers, where('logging', 'request_headers'), headerName),
    responseHeaders: n.stringList(logging.response_headers, where('logging', 'response_headers'), headerName),
  };
  const responseTimeout = n.optionalNumber(config.response_timeout, where('response_timeout'));
  if (responseTimeout !== undefined) proxy.responseTimeout = responseTimeout;
  const maxRequestBody = n.optionalNumber(buffering.max_request_body, where('buffering', 'max_request_body'));
  if (maxRequestBody !== undefined) proxy.maxRequestBody = maxRequestBody;
  const maxResponseBody = n.optionalNumber(buffering.max_response_body, where('buffering', 'max_response_body'));
  if (maxResponseBody !== undefined) proxy.maxResponseBody = maxResponseBody;
  const memory = n.optionalNumber(buffering.memory, where('buffering', 'memory'));
  if (memory !== undefined) proxy.memory = memory;
  if (config.forward_headers != null) proxy.forwardHeaders = n.boolean(config.forward_headers, where('forward_headers'), false);
  if (config.path_prefix != null) {
    const text = n.string(config.path_prefix, where('path_prefix'));
    if (text !== undefined) {
      if (!URL_PATH.test(text)) n.reject(where('path_prefix'), `${JSON.stringify(text)} is not a valid path prefix: it must start with "/" and contain no spaces`);
      else proxy.pathPrefix = text;
    }
  }
  if (config.strip_path_prefix != null) proxy.stripPathPrefix = n.boolean(config.strip_path_prefix, where('strip_path_prefix'), true);
  return proxy;
}

function parseJump(n: Normaliser, text: string, at: Path): KamalSsh['proxy'] {
  // Net::SSH::Proxy::Jump reads "user@host:port"; Kamal prefixes a bare host with root@.
  const withUser = text.includes('@') ? text : `root@${text}`;
  const match = /^([^@]+)@(.+?)(?::([0-9]{1,5}))?$/.exec(withUser);
  const user = match?.[1];
  const host = match?.[2];
  if (!match || !user || !host || validateSshUser(user) || validateHost(host)) {
    n.reject(at, `${JSON.stringify(text.slice(0, 60))} is not a valid jump host: use host or user@host[:port]`);
    return undefined;
  }
  const port = match[3] === undefined ? 22 : Number(match[3]);
  if (port < 1 || port > 65535) {
    n.reject(at, `port ${port} is out of range`);
    return undefined;
  }
  return { user, host, port };
}

function normaliseSsh(n: Normaliser, value: unknown): KamalSsh {
  const config = isHash(value) ? value : {};
  if (value != null && !isHash(value)) n.reject(['ssh'], 'should be a hash');
  let user = 'root';
  if (config.user != null) {
    const text = n.string(config.user, ['ssh', 'user']);
    const reason = text === undefined ? undefined : validateSshUser(text);
    if (reason) n.reject(['ssh', 'user'], reason);
    else if (text !== undefined) user = text;
  }
  const ssh: KamalSsh = {
    user,
    port: n.number(config.port, ['ssh', 'port'], 22, (port) => Number.isInteger(port) && port >= 1 && port <= 65535, 'a port number from 1 to 65535'),
    keys: n.stringList(config.keys, ['ssh', 'keys'], noControlCharacters),
    keysOnly: n.boolean(config.keys_only, ['ssh', 'keys_only'], false),
    config: true,
    forwardAgent: n.boolean(config.forward_agent, ['ssh', 'forward_agent'], false),
    keepaliveInterval: n.number(config.keepalive_interval, ['ssh', 'keepalive_interval'], 30),
  };
  if (config.proxy != null) {
    const text = n.string(config.proxy, ['ssh', 'proxy']);
    if (text !== undefined) ssh.proxy = parseJump(n, text, ['ssh', 'proxy']);
  } else if (config.proxy_command != null) {
    const text = n.string(config.proxy_command, ['ssh', 'proxy_command']);
    const reason = text === undefined ? undefined : noControlCharacters(text);
    if (reason) n.reject(['ssh', 'proxy_command'], reason);
    else if (text !== undefined) ssh.proxyCommand = text;
  }
  if (typeof config.config === 'boolean') ssh.config = config.config;
  else if (typeof config.config === 'string') ssh.config = n.stringList([config.config], ['ssh', 'config'], noControlCharacters);
  else if (config.config != null) ssh.config = n.stringList(config.config, ['ssh', 'config'], noControlCharacters);
  return ssh;
}

function normaliseBoot(n: Normaliser, value: unknown): KamalConfig['boot'] {
  const boot: KamalConfig['boot'] = {};
  if (value == null) return boot;
  if (!isHash(value)) {
    n.reject(['boot'], 'should be a hash');
    return boot;
  }
  if (value.limit != null) {
    if (typeof value.limit === 'number' && Number.isInteger(value.limit) && value.limit >= 1) boot.limit = value.limit;
    else if (typeof value.limit === 'string' && /^[0-9]+%$/.test(value.limit)) boot.limit = value.limit;
    else n.reject(['boot', 'limit'], `should be a number of hosts or a percentage like "25%", got ${JSON.stringify(value.limit)}`);
  }
  if (value.wait != null) {
    const wait = n.optionalNumber(value.wait, ['boot', 'wait']);
    if (wait !== undefined) boot.wait = wait;
  }
  return boot;
}

interface HostList {
  hosts: string[];
  hostTags: Record<string, string[]>;
  given: number;
}

function normaliseHosts(n: Normaliser, value: unknown, at: Path): HostList {
  const result: HostList = { hosts: [], hostTags: {}, given: 0 };
  if (value == null) return result;
  if (!Array.isArray(value)) {
    n.reject(at, 'should be an array');
    // Counted as given so the role is not also reported as empty.
    result.given = 1;
    return result;
  }
  value.forEach((entry, index) => {
    const entryPath = [...at, String(index)];
    result.given++;
    let host: string;
    let tags: string[] = [];
    if (entry === null && n.isUnknown(entryPath)) return;
    if (typeof entry === 'string') {
      host = entry;
    } else if (isHash(entry)) {
      const pairs = Object.entries(entry);
      if (pairs.length !== 1) {
        n.reject(entryPath, 'multiple hosts found');
        return;
      }
      const [tagged, tagValue] = pairs[0];
      host = tagged;
      const tagPath = [...entryPath, tagged];
      if (typeof tagValue === 'string') tags = [tagValue];
      else if (Array.isArray(tagValue)) tags = n.stringList(tagValue, tagPath);
      else if (!(tagValue === null && n.isUnknown(tagPath))) n.reject(tagPath, 'should be a string or an array');
      const reason = validateHost(host);
      if (reason) {
        n.reject(entryPath, reason, true);
        return;
      }
    } else {
      n.reject(entryPath, 'should be a string or a hash');
      return;
    }
    const reason = validateHost(host);
    if (reason) {
      n.reject(entryPath, reason);
      return;
    }
    if (!result.hosts.includes(host)) result.hosts.push(host);
    result.hostTags[host] = tags;
  });
  return result;
}

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

  if (raw.service == null) {
    if (!n.isUnknown(['service'])) n.report([], 'Missing required configuration for service');
  } else {
    const text = n.string(raw.service, ['service']);
    const reason = text === undefined ? undefined : validateService(text);
    if (reason) n.reject(['service'], reason);
    else if (text !== undefined) config.service = text;
  }
  if (raw.image == null) {
    if (!n.isUnknown(['image'])) n.report([], 'Missing required configuration for image');
  } else {
    const text = n.string(raw.image, ['image']);
    const reason = text === undefined ? undefined : validateImage(text);
    if (reason) n.reject(['image'], reason);
    else if (text !== undefined) config.image = text;
  }
  if (raw.registry != null && !isHash(raw.registry)) n.reject(['registry'], 'should be a hash');
  const registry = isHash(raw.registry) ? raw.registry : {};
  if (registry.server != null) {
    const text = n.string(registry.server, ['registry', 'server']);
    const reason = text === undefined ? undefined : validateRegistryServer(text);
    if (reason) n.reject(['registry', 'server'], reason);
    else if (text !== undefined) config.registryServer = text;
  }
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
  if (raw.hooks_path != null) {
    const text = n.string(raw.hooks_path, ['hooks_path']);
    const reason = text === undefined ? undefined : noControlCharacters(text);
    if (reason) n.reject(['hooks_path'], reason);
    else if (text !== undefined) config.hooksPath = path.resolve(projectDirOf(baseFile), text);
  }

  if (raw.primary_role != null) {
    const text = n.string(raw.primary_role, ['primary_role']);
    const reason = text === undefined ? undefined : validateRole(text);
    if (reason) n.reject(['primary_role'], reason);
    else if (text !== undefined) config.primaryRole = text;
  }
  normaliseRoles(n, config, raw);
  warnUnusableAssetPaths(n, raw);
  scrub(raw, n.dropped);
  const seen = new Set<string>();
  config.problems = problems.filter((problem) => {
    const key = `${problem.file}\u0000${problem.line}\u0000${problem.column}\u0000${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  config.problems.sort((a, b) => files.findIndex((f) => f.file === a.file) - files.findIndex((f) => f.file === b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  return config;
}

function normaliseRoles(n: Normaliser, config: KamalConfig, raw: Hash): void {
  const servers = raw.servers;
  if (servers == null) {
    if (!n.isUnknown(['servers']) && !isHash(raw.accessories)) n.report([], 'No servers or accessories specified');
    return;
  }
  if (!Array.isArray(servers) && !isHash(servers)) {
    n.reject(['servers'], 'should be an array or a hash');
    return;
  }
  const topProxy = raw.proxy;
  if (topProxy != null && !isHash(topProxy)) n.reject(['proxy'], 'should be a hash');
  const topProxyConfig = isHash(topProxy) ? topProxy : {};
  // Kamal validates the top-level proxy even when no role runs it.
  if (isHash(topProxy)) normaliseProxy(n, topProxyConfig, undefined);
  const names = Array.isArray(servers) ? ['web'] : Object.keys(servers).sort();
  const allowEmpty = raw.allow_empty_roles === true;
  const roles: KamalRole[] = [];
  for (const name of names) {
    const rolePath = Array.isArray(servers) ? ['servers'] : ['servers', name];
    const roleReason = validateRole(name);
    if (roleReason) {
      n.reject(rolePath, roleReason, true);
      continue;
    }
    const roleConfig = Array.isArray(servers) ? servers : (servers as Hash)[name];
    let specialised: Hash = {};
    let hostList: HostList;
    if (Array.isArray(roleConfig)) {
      hostList = normaliseHosts(n, roleConfig, rolePath);
    } else if (isHash(roleConfig)) {
      specialised = roleConfig;
      for (const key of Object.keys(roleConfig)) {
        if (!ROLE_KEYS.has(key)) n.report([...rolePath, key], `unknown key: ${key} (Kamal 2.12 refuses it)`, true);
      }
      hostList = normaliseHosts(n, roleConfig.hosts, [...rolePath, 'hosts']);
    } else {
      if (!(roleConfig === null && n.isUnknown(rolePath))) n.reject(rolePath, 'should be an array or a hash');
      continue;
    }
    if (hostList.given === 0 && !allowEmpty) {
      n.report(rolePath, `No servers specified for the ${name} role. You can ignore this with allow_empty_roles: true`, true);
    }
    const role: KamalRole = {
      name,
      hosts: hostList.hosts,
      hostTags: hostList.hostTags,
      primary: name === config.primaryRole,
      options: {},
      labels: { ...config.labels },
      env: config.env,
    };
    if (specialised.cmd != null) {
      const cmd = n.string(specialised.cmd, [...rolePath, 'cmd']);
      if (cmd !== undefined) role.cmd = cmd;
    }
    if (specialised.options != null) {
      if (!isHash(specialised.options)) n.reject([...rolePath, 'options'], 'should be a hash');
      else {
        for (const [key, value] of Object.entries(specialised.options)) {
          if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(key)) n.reject([...rolePath, 'options', key], `${JSON.stringify(key)} is not a valid docker option name`, true);
          else if (key === 'restart') n.reject([...rolePath, 'options', key], 'Cannot set restart policy in docker options, unless-stopped is required', true);
          else setKey(role.options, key, value);
        }
      }
    }
    role.labels = { ...config.labels, ...n.stringMap(specialised.labels, [...rolePath, 'labels'], validateLabelKey, noControlCharacters) };
    if (specialised.env != null) {
      role.env = mergeEnv(config.env, normaliseEnv(n, specialised.env, [...rolePath, 'env']));
    }
    const roleProxy = specialised.proxy;
    const runsProxy = role.primary ? roleProxy !== false : roleProxy != null && roleProxy !== false;
    if (runsProxy) {
      if (roleProxy != null && typeof roleProxy !== 'boolean' && !isHash(roleProxy)) {
        n.reject([...rolePath, 'proxy'], 'should be a boolean or a hash');
      } else {
        const merged = isHash(roleProxy) ? deepMerge(topProxyConfig, roleProxy) : topProxyConfig;
        role.proxy = isHash(roleProxy) ? normaliseProxy(n, merged, [...rolePath, 'proxy'], roleProxy) : normaliseProxy(n, merged, undefined);
        const customCertificate = isHash(merged.ssl) && merged.ssl.certificate_pem != null && merged.ssl.private_key_pem != null;
        if (role.proxy.ssl && role.hosts.length > 1 && !customCertificate) {
          n.report(rolePath, `SSL is only supported on a single server unless you provide custom certificates, found ${role.hosts.length} servers for role ${name}`, true);
        }
      }
    }
    roles.push(role);
  }
  config.roles = roles;
  config.hosts = [...new Set(roles.flatMap((role) => role.hosts))];
  reportConflictingProxyRuns(n, raw, roles);
  const primary = roles.find((role) => role.name === config.primaryRole);
  if (!primary && !names.includes(config.primaryRole)) {
    n.report(raw.primary_role != null ? ['primary_role'] : ['servers'], `The primary_role ${config.primaryRole} isn't defined`, true);
  }
}

/**
 * Kamal writes asset_path into shell lines unquoted; one that would need quoting is valid for Kamal
 * but refused for rollback here, so the editor says so at its line.
 */
function warnUnusableAssetPaths(n: Normaliser, raw: Hash): void {
  const check = (value: unknown, at: Path) => {
    if (value === undefined || value === null || value === '') return;
    if (typeof value !== 'string' || !/^\/[A-Za-z0-9._/@+-]*(:[a-z,]+)?$/.test(value) || value.includes('..')) {
      n.warning(at, `${JSON.stringify(value)} cannot be rolled back here: Deploy Rollback needs an absolute path of letters, digits, ".", "_", "-", "/" (optionally ":ro")`, false);
    }
  };
  check(raw.asset_path, ['asset_path']);
  if (isHash(raw.servers)) for (const [name, role] of Object.entries(raw.servers)) if (isHash(role)) check(role.asset_path, ['servers', name, 'asset_path']);
}

/**
 * Kamal's ensure_no_conflicting_proxy_runs: every role and accessory on a host that runs the proxy
 * with a `proxy.run` must carry the same settings, since one kamal-proxy serves them all.
 */
function reportConflictingProxyRuns(n: Normaliser, raw: Hash, roles: KamalRole[]): void {
  const runs = new Map<string, { value: string; at: Path }[]>();
  const add = (host: string, run: unknown, at: Path) => {
    if (run === undefined || run === null) return;
    runs.set(host, [...(runs.get(host) ?? []), { value: JSON.stringify(run), at }]);
  };
  const topRun = isHash(raw.proxy) ? raw.proxy.run : undefined;
  const servers = raw.servers;
  for (const role of roles) {
    if (!role.proxy) continue;
    const roleConfig = isHash(servers) ? servers[role.name] : undefined;
    const roleProxy = isHash(roleConfig) && isHash(roleConfig.proxy) ? roleConfig.proxy : undefined;
    const run = roleProxy && roleProxy.run !== undefined ? (isHash(topRun) && isHash(roleProxy.run) ? deepMerge(topRun, roleProxy.run) : roleProxy.run) : topRun;
    for (const host of role.hosts) add(host, run, roleProxy?.run !== undefined ? ['servers', role.name, 'proxy', 'run'] : ['proxy', 'run']);
  }
  if (isHash(raw.accessories)) {
    for (const [name, accessory] of Object.entries(raw.accessories)) {
      if (!isHash(accessory) || !isHash(accessory.proxy) || accessory.proxy.run === undefined) continue;
      const hosts = [accessory.host, ...(Array.isArray(accessory.hosts) ? accessory.hosts : [])].filter((host): host is string => typeof host === 'string');
      for (const host of hosts) add(host, accessory.proxy.run, ['accessories', name, 'proxy', 'run']);
    }
  }
  for (const [host, entries] of runs) {
    if (new Set(entries.map((entry) => entry.value)).size <= 1) continue;
    // Point at a role's or accessory's own run settings: those are what differ from the shared ones.
    const own = entries.find((entry) => entry.at[0] !== 'proxy') ?? entries[entries.length - 1];
    n.errorAt(own.at, `Conflicting proxy run configurations for host ${host}`);
  }
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
    baseText = await fs.readFile(baseFile, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    return emptyConfig(baseFile, [{ file: baseFile, message: `Cannot read Kamal config ${baseFile}: ${reason}`, severity: 'error' }], destination);
  }
  let destinationText: string | undefined;
  let destinationFile: string | undefined;
  if (destination !== undefined && !validateDestination(destination)) {
    destinationFile = destinationFileFor(baseFile, destination);
    try {
      destinationText = await fs.readFile(destinationFile, 'utf8');
    } catch {
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
