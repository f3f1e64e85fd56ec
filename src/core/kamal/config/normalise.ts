/** The sections of a Kamal config other than servers: env, proxy, ssh, boot, and a role's host list. */
import type { KamalConfig, KamalEnv, KamalProxy, KamalSsh } from './types';
import { validateEnvName, validateHost, validateProxyHost, validateSshUser } from './names';
import { isHash, slashed, type Hash, type Path } from './parse';
import { noControlCharacters, noNul, URL_PATH, type Normaliser } from './normaliser';

const DEFAULT_LOG_REQUEST_HEADERS = ['Cache-Control', 'Last-Modified', 'User-Agent'];

export function normaliseEnv(n: Normaliser, value: unknown, at: Path): KamalEnv {
  if (value === undefined || value === null) return { clear: {}, secret: [] };
  if (!isHash(value)) {
    n.reject(at, 'should be a hash (clear/secret, or NAME: value)');
    return { clear: {}, secret: [] };
  }
  const structured = 'clear' in value || 'secret' in value || 'tags' in value;
  // Kamal's Validator::Env: tags only in the root env, and nothing beside clear/secret/tags there.
  if (structured) {
    const unknown = Object.keys(value).filter((key) => !['clear', 'secret', 'tags'].includes(key));
    if (unknown.length) reportUnknownKeys(n, at, unknown);
    if ('tags' in value && !(at.length === 1 && at[0] === 'env')) n.errorAt([...at, 'tags'], `${slashed(at)}: tags are only allowed in the root env`);
  }
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

export function mergeEnv(base: KamalEnv, over: KamalEnv): KamalEnv {
  const literalFalse = [...(base.literalFalse ?? []).filter((key) => !(key in over.clear)), ...(over.literalFalse ?? [])];
  return { clear: { ...base.clear, ...over.clear }, secret: [...new Set([...base.secret, ...over.secret])], ...(literalFalse.length ? { literalFalse } : {}) };
}

/** The keys of Kamal 2.12's docs/proxy.yml: its validator refuses any other under `proxy`. */
const PROXY_KEYS = new Set([
  'host', 'hosts', 'app_port', 'ssl', 'ssl_redirect', 'forward_headers', 'response_timeout', 'path_prefix',
  'strip_path_prefix', 'healthcheck', 'buffering', 'logging', 'run',
]);
const PROXY_SUBKEYS: Record<string, Set<string>> = {
  healthcheck: new Set(['interval', 'path', 'timeout']),
  buffering: new Set(['requests', 'responses', 'max_request_body', 'max_response_body', 'memory']),
  logging: new Set(['request_headers', 'response_headers']),
  ssl: new Set(['certificate_pem', 'private_key_pem']),
};

/** Kamal's unknown_keys_error, placed at the first unknown key's line. */
function reportUnknownKeys(n: Normaliser, at: Path, keys: string[]): void {
  n.errorAt([...at, keys[0]], `${slashed(at)}: unknown ${keys.length > 1 ? 'keys' : 'key'}: ${keys.join(', ')}`);
}

/** Unknown keys in a `proxy` hash as written (top level or a role's), reported as Kamal's validator words it. */
export function reportUnknownProxyKeys(n: Normaliser, proxy: unknown, at: Path): void {
  if (!isHash(proxy)) return;
  const unknown = Object.keys(proxy).filter((key) => !PROXY_KEYS.has(key));
  if (unknown.length) reportUnknownKeys(n, at, unknown);
  for (const [key, allowed] of Object.entries(PROXY_SUBKEYS)) {
    const section = proxy[key];
    if (!isHash(section)) continue;
    const extra = Object.keys(section).filter((entry) => !allowed.has(entry));
    if (extra.length) reportUnknownKeys(n, [...at, key], extra);
  }
}

export function normaliseProxy(n: Normaliser, config: Hash, rolePath: Path | undefined, roleProxy?: Hash): KamalProxy {
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

export function normaliseSsh(n: Normaliser, value: unknown): KamalSsh {
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
    port: n.numberFromString(config.port, ['ssh', 'port'], 22, (port) => Number.isInteger(port) && port >= 1 && port <= 65535, 'a port number from 1 to 65535'),
    keys: n.stringList(config.keys, ['ssh', 'keys'], noControlCharacters),
    keysOnly: n.boolean(config.keys_only, ['ssh', 'keys_only'], false),
    config: true,
    forwardAgent: n.boolean(config.forward_agent, ['ssh', 'forward_agent'], false),
    keepaliveInterval: n.numberFromString(config.keepalive_interval, ['ssh', 'keepalive_interval'], 30),
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

export function normaliseBoot(n: Normaliser, value: unknown): KamalConfig['boot'] {
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

export interface HostList {
  hosts: string[];
  hostTags: Record<string, string[]>;
  given: number;
}

export function normaliseHosts(n: Normaliser, value: unknown, at: Path): HostList {
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
