/**
 * Kamal's scoping options (`-r/--roles`, `-h/--hosts`, `-p/--primary`) resolved against a config
 * exactly as Kamal 2.12 does it (lib/kamal/commander.rb, commander/specifics.rb, utils.rb): which
 * hosts and roles a narrowed run touches, which host is its primary (where the deploy lock lives),
 * and which hosts and roles it leaves as they are.
 */
import { DeployRollbackError } from '../../model';
import type { KamalConfig, KamalRole } from '../config/types';

/** What the user asked for, as typed (each list already split at commas). */
export interface KamalScopeRequest {
  roles?: string[];
  hosts?: string[];
  primary?: boolean;
}

export interface KamalScope {
  request: KamalScopeRequest;
  /** False when the request narrows nothing (every host and role is in scope). */
  narrowed: boolean;
  /** Kamal's `specific_roles`: the roles the filters matched, in match order (KAMAL_ROLES of the hooks). */
  specificRoles?: string[];
  /** Kamal's `specific_hosts`, in match order. */
  specificHosts?: string[];
  /** Roles the run boots, the scope's primary role first. */
  roles: string[];
  /** Hosts the run touches, those running the scope's primary role first. */
  hosts: string[];
  /** Where the deploy lock lives for this run (Kamal's `KAMAL.primary_host`). */
  primaryHost: string;
  primaryRole: string;
  /** Hosts of the app the run does not touch at all. */
  leftHosts: string[];
  /** Roles the run boots nowhere. */
  leftRoles: string[];
  /** Every role on a host that the run leaves as it is (also those on hosts it touches for another role). */
  left: { host: string; role: string }[];
  /** The whole app, narrowed or not: every host and every role with its hosts, in config order (what a scope is picked from). */
  app: { hosts: string[]; roles: { name: string; hosts: string[] }[] };
}

/** Ruby's `File.fnmatch(pattern, text, File::FNM_EXTGLOB)`: `*`, `?`, `[...]`, `{a,b}` and `\` escapes, case-sensitive. */
export function kamalFnmatch(pattern: string, text: string): boolean {
  return expandBraces(pattern).some((alternative) => globRegExp(alternative).test(text));
}

function expandBraces(pattern: string): string[] {
  let depth = 0;
  let open = -1;
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index];
    if (char === '\\') index++;
    else if (char === '{') {
      if (depth++ === 0) open = index;
    } else if (char === '}' && depth > 0 && --depth === 0) {
      const parts: string[] = [];
      let level = 0;
      let start = open + 1;
      for (let inner = open + 1; inner < index; inner++) {
        const c = pattern[inner];
        if (c === '\\') inner++;
        else if (c === '{') level++;
        else if (c === '}') level--;
        else if (c === ',' && level === 0) {
          parts.push(pattern.slice(start, inner));
          start = inner + 1;
        }
      }
      parts.push(pattern.slice(start, index));
      const head = pattern.slice(0, open);
      const tails = expandBraces(pattern.slice(index + 1));
      return parts.flatMap((part) => expandBraces(head + part).flatMap((left) => tails.map((tail) => left + tail)));
    }
  }
  return [pattern];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function globRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index];
    if (char === '\\' && index + 1 < pattern.length) source += escapeRegExp(pattern[++index]);
    else if (char === '*') source += '[^]*';
    else if (char === '?') source += '[^]';
    else if (char === '[') {
      const close = pattern.indexOf(']', index + 2);
      if (close === -1) {
        source += '\\[';
        continue;
      }
      let body = pattern.slice(index + 1, close);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      source += `[${negated ? '^' : ''}${body.replace(/[\]\\^]/g, '\\$&')}]`;
      index = close;
    } else source += escapeRegExp(char);
  }
  // Without FNM_DOTMATCH a leading dot is matched only by a literal dot.
  const dot = pattern.startsWith('.') ? '' : '(?!\\.)';
  return new RegExp(`^${dot}${source}$`);
}

/** Kamal's `filter_specific_items`: for each filter in turn, the items it matches; no duplicates. */
export function filterSpecificItems<T>(filters: string[], items: T[], name: (item: T) => string = String): T[] {
  const matches: T[] = [];
  for (const filter of filters) for (const item of items) if (kamalFnmatch(filter, name(item)) && !matches.includes(item)) matches.push(item);
  return matches;
}

/** A filter that matches exactly `name` (its `*`, `?`, `[`, `{` and `\\` escaped), for a scope picked from a list. */
export function literalPattern(name: string): string {
  return name.replace(/[*?[\]{}\\]/g, '\\$&');
}

/** Kamal's `present?` on the split option: an empty list (or `--roles ""`) narrows nothing. */
function present(list: string[] | undefined): list is string[] {
  return list !== undefined && list.length > 0;
}

/** `-r a,b` as Kamal splits it (`split(",")`, which drops trailing empty fields). */
export function splitScopeList(value: string): string[] {
  const parts = value.split(',');
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

function stableSort<T>(items: T[], key: (item: T) => number): T[] {
  return items.map((item, index) => ({ item, index })).sort((a, b) => key(a.item) - key(b.item) || a.index - b.index).map((entry) => entry.item);
}

/**
 * Resolves `request` as Kamal's `initialize_commander` does: hosts, then roles, then `--primary`
 * (which replaces the hosts with the first matched role's first host, or the config's primary
 * host). Refuses, with Kamal's words, a filter list that matches nothing.
 */
export function resolveKamalScope(config: KamalConfig, request: KamalScopeRequest = {}): KamalScope {
  const where = config.destinationFile ?? config.file;
  const allHosts = config.hosts;
  let specificHosts: string[] | undefined;
  if (present(request.hosts)) {
    specificHosts = filterSpecificItems(request.hosts, allHosts);
    if (specificHosts.length === 0) throw new DeployRollbackError(`No --hosts match for ${request.hosts.join(',')} (hosts of ${config.service} in ${where}: ${allHosts.join(', ')})`, 'scope');
  }
  let specificRoles: KamalRole[] | undefined;
  if (present(request.roles)) {
    specificRoles = filterSpecificItems(request.roles, config.roles, (role) => role.name);
    if (specificRoles.length === 0) throw new DeployRollbackError(`No --roles match for ${request.roles.join(',')} (roles of ${config.service} in ${where}: ${config.roles.map((role) => role.name).join(', ')})`, 'scope');
  }
  const configPrimaryRole = config.roles.find((role) => role.name === config.primaryRole);
  const configPrimaryHost = configPrimaryRole?.hosts[0];
  if (request.primary) {
    const host = specificRoles ? specificRoles[0].hosts[0] : configPrimaryHost;
    if (host === undefined) throw new DeployRollbackError(`--primary: the primary role ${config.primaryRole} of ${config.service} has no hosts in ${where}`, 'scope');
    specificHosts = [host];
  }

  const hostPool = specificHosts ?? allHosts;
  const rolePool = specificRoles ?? config.roles;
  let roles = rolePool.filter((role) => role.hosts.some((host) => hostPool.includes(host)));
  let hosts = hostPool.filter((host) => rolePool.some((role) => role.hosts.includes(host)));
  if (hosts.length === 0 || roles.length === 0) {
    throw new DeployRollbackError(
      `The scope ${describeScopeRequest(request)} leaves nothing to roll back: no role${specificRoles ? ` among ${specificRoles.map((role) => role.name).join(', ')}` : ''} of ${config.service} runs on ${hostPool.join(', ')} (${where}).`,
      'scope',
    );
  }
  const primaryOrFirst = (candidates: KamalRole[]): KamalRole | undefined => candidates.find((role) => role.name === config.primaryRole) ?? candidates[0];
  const primaryHost = specificHosts?.[0] ?? (specificRoles ? primaryOrFirst(specificRoles)?.hosts[0] : undefined) ?? configPrimaryHost ?? hosts[0];
  const rolesOn = (host: string) => roles.filter((role) => role.hosts.includes(host));
  const primaryRole = primaryOrFirst(rolesOn(primaryHost)) ?? roles[0];
  roles = stableSort(roles, (role) => (role === primaryRole ? 0 : 1));
  hosts = stableSort(hosts, (host) => (rolesOn(host).includes(primaryRole) ? 0 : 1));

  const inScope = (host: string, role: KamalRole) => hosts.includes(host) && roles.includes(role);
  const left = config.hosts.flatMap((host) => config.roles.filter((role) => role.hosts.includes(host) && !inScope(host, role)).map((role) => ({ host, role: role.name })));
  return {
    request,
    narrowed: left.length > 0,
    specificRoles: specificRoles?.map((role) => role.name),
    specificHosts,
    roles: roles.map((role) => role.name),
    hosts,
    primaryHost,
    primaryRole: primaryRole.name,
    leftHosts: config.hosts.filter((host) => !hosts.includes(host)),
    leftRoles: config.roles.filter((role) => !roles.includes(role)).map((role) => role.name),
    left,
    app: { hosts: [...config.hosts], roles: config.roles.map((role) => ({ name: role.name, hosts: [...role.hosts] })) },
  };
}

/**
 * The request for what was picked from a list (`--roles`/`--hosts` of literal names): a list
 * that picks everything narrows nothing and is left out. Undefined when a list picks nothing.
 */
export function scopeRequestFromPicks(app: KamalScope['app'], roles: string[], hosts: string[]): KamalScopeRequest | undefined {
  if (roles.length === 0 || hosts.length === 0) return undefined;
  const request: KamalScopeRequest = {};
  if (app.roles.some((role) => !roles.includes(role.name))) request.roles = roles.map(literalPattern);
  if (app.hosts.some((host) => !hosts.includes(host))) request.hosts = hosts.map(literalPattern);
  return request;
}

/** The config as the narrowed run sees it: only the roles in scope, each on its hosts in scope. */
export function scopedConfig(config: KamalConfig, scope: KamalScope): KamalConfig {
  const roles = scope.roles
    .map((name) => config.roles.find((role) => role.name === name)!)
    .map((role) => ({ ...role, hosts: role.hosts.filter((host) => scope.hosts.includes(host)), primary: role.name === scope.primaryRole }));
  return { ...config, roles, hosts: scope.hosts, primaryRole: scope.primaryRole };
}

/** Whether the request narrows by name at all (Kamal's `present?` on each list, or `--primary`). */
export function scopeRequested(request: KamalScopeRequest | undefined): boolean {
  return request !== undefined && (present(request.roles) || present(request.hosts) || request.primary === true);
}

/** The options as typed, for messages: `-r web -h 10.0.0.1`. */
export function describeScopeRequest(request: KamalScopeRequest): string {
  const parts: string[] = [];
  if (present(request.roles)) parts.push(`--roles ${request.roles.join(',')}`);
  if (present(request.hosts)) parts.push(`--hosts ${request.hosts.join(',')}`);
  if (request.primary) parts.push('--primary');
  return parts.join(' ') || '(all hosts and roles)';
}

/** What a narrowed run leaves, short enough for a summary: past a few, only how many. */
export function leftSummary(scope: KamalScope): string {
  return scope.left.length <= 4 ? scope.left.map((entry) => `${entry.host} ${entry.role}`).join(', ') : `${scope.left.length} roles on hosts`;
}

/** Lines saying what a narrowed run touches and what it leaves as it is; none for a whole-app run. */
export function scopeLines(scope: KamalScope): string[] {
  if (!scope.narrowed) return [];
  const lines = [`Scope ${describeScopeRequest(scope.request)}: hosts ${scope.hosts.join(', ')}; roles ${scope.roles.join(', ')}; deploy lock on ${scope.primaryHost}.`];
  const byHost = new Map<string, string[]>();
  for (const entry of scope.left) byHost.set(entry.host, [...(byHost.get(entry.host) ?? []), entry.role]);
  lines.push(`Left as they are: ${[...byHost].map(([host, roles]) => `${host} (${roles.join(', ')})`).join(', ')}.`);
  return lines;
}
