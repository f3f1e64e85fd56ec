/** `servers`: the roles, each specialised from the top-level settings, and the checks across roles. */
import type { KamalConfig, KamalRole } from './types';
import { validateLabelKey, validateRole } from './names';
import { deepMerge, isHash, setKey, type Hash, type Path } from './parse';
import { noControlCharacters, type Normaliser } from './normaliser';
import { mergeEnv, normaliseEnv, normaliseHosts, normaliseProxy, reportUnknownProxyKeys, type HostList } from './normalise';

const ROLE_KEYS = new Set(['hosts', 'cmd', 'options', 'labels', 'env', 'logging', 'proxy', 'asset_path', 'stop_timeout']);

export function normaliseRoles(n: Normaliser, config: KamalConfig, raw: Hash): void {
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
  if (isHash(topProxy)) {
    reportUnknownProxyKeys(n, topProxy, ['proxy']);
    normaliseProxy(n, topProxyConfig, undefined);
  }
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
    reportUnknownProxyKeys(n, roleProxy, [...rolePath, 'proxy']);
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
  reportSharedSslHosts(n, raw, roles);
  const primary = roles.find((role) => role.name === config.primaryRole);
  if (!primary && !names.includes(config.primaryRole)) {
    n.report(raw.primary_role != null ? ['primary_role'] : ['servers'], `The primary_role ${config.primaryRole} isn't defined`, true);
  }
}

/**
 * Kamal writes asset_path into shell lines unquoted; one that would need quoting is valid for Kamal
 * but refused for rollback here, so the editor says so at its line.
 */
export function warnUnusableAssetPaths(n: Normaliser, raw: Hash): void {
  const check = (value: unknown, at: Path) => {
    if (value === undefined || value === null || value === '') return;
    if (typeof value !== 'string' || !/^\/[A-Za-z0-9._/@+-]*(:[a-z,]+)?$/.test(value) || value.includes('..')) {
      n.warning(at, `${JSON.stringify(value)} cannot be rolled back here: Deploy Rollback needs an absolute path of letters, digits, ".", "_", "-", "/" (optionally ":ro")`, false);
    }
  };
  check(raw.asset_path, ['asset_path']);
  if (isHash(raw.servers)) for (const [name, role] of Object.entries(raw.servers)) if (isHash(role)) check(role.asset_path, ['servers', name, 'asset_path']);
}

/** Kamal's ensure_unique_hosts_for_ssl_roles: one proxy host name may get its certificate for one role only. */
function reportSharedSslHosts(n: Normaliser, raw: Hash, roles: KamalRole[]): void {
  const seen = new Map<string, number>();
  let at: Path = ['proxy'];
  for (const role of roles) {
    if (!role.proxy?.ssl) continue;
    for (const host of role.proxy.hosts) {
      seen.set(host, (seen.get(host) ?? 0) + 1);
      const roleConfig = isHash(raw.servers) ? raw.servers[role.name] : undefined;
      if (seen.get(host) === 2) at = isHash(roleConfig) && roleConfig.proxy != null ? ['servers', role.name, 'proxy'] : ['proxy'];
    }
  }
  const duplicates = [...seen].filter(([, count]) => count > 1).map(([host]) => host);
  if (duplicates.length) n.errorAt(at, `Different roles can't share the same host for SSL: ${duplicates.join(', ')}`);
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
