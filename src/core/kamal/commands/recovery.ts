/**
 * After a failed or cancelled rollback: read back what each host really runs and serves, and
 * put a half-done step back so that a plain re-run finds the target container under its name.
 * Not Kamal commands: Kamal leaves these states behind; we do not.
 */
import { quoteArgv, shellLine } from '../../shell';
import { oneLine } from '../../text';
import type { KamalConfig } from '../config/types';
import { containerName, containerPrefix, listRoleContainers } from './app';
import { PROXY_CONTAINER_NAME } from './proxy';

const MARK = '@@dr-readback';

export interface ReadBackContainer {
  id: string;
  name: string;
  state: string;
}

export interface RoleReadBack {
  containers: ReadBackContainer[];
  /** Container the proxy sends this role's traffic to; undefined when unknown or none. */
  proxyTarget?: ReadBackContainer;
  /** The proxy could not be asked (exit status): its answer is not known. */
  proxyError?: string;
  /** The container listing failed (e.g. Docker is down). */
  listError?: string;
}

/** One line per host: each role's containers, and (if any role is proxied) kamal-proxy's list. */
export function readBackCommand(config: Pick<KamalConfig, 'service' | 'destination'>, roles: string[], proxied: boolean): string {
  const parts = roles.map((role) => `echo ${MARK}-list-${role}; ${quoteArgv(listRoleContainers(config, role))}; echo "${MARK}-rc $?"`);
  if (proxied) parts.push(`echo ${MARK}-proxy; ${quoteArgv(['docker', 'exec', PROXY_CONTAINER_NAME, 'kamal-proxy', 'list'])}; echo "${MARK}-rc $?"`);
  return parts.join('; ');
}

/** Parses what {@link readBackCommand} printed. */
export function parseReadBack(config: Pick<KamalConfig, 'service' | 'destination'>, roles: string[], stdout: string, stderr = ''): Map<string, RoleReadBack> {
  const sections = new Map<string, { lines: string[]; rc?: number }>();
  let current: { lines: string[]; rc?: number } | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${MARK}-rc `)) {
      if (current) current.rc = Number(line.slice(`${MARK}-rc `.length));
      current = undefined;
    } else if (line.startsWith(`${MARK}-`)) {
      current = { lines: [] };
      sections.set(line.slice(MARK.length + 1), current);
    } else if (current && line.trim() !== '') current.lines.push(line);
  }
  const why = oneLine(stderr.trim().split('\n').slice(-1)[0] ?? '');
  const proxy = sections.get('proxy');
  const result = new Map<string, RoleReadBack>();
  for (const role of roles) {
    const listed = sections.get(`list-${role}`);
    const containers = (listed?.lines ?? []).flatMap((line): ReadBackContainer[] => {
      const [id, name, state] = line.split('\t');
      return id && name ? [{ id, name, state: state ?? 'unknown' }] : [];
    });
    const entry: RoleReadBack = { containers };
    if (!listed || listed.rc !== 0) entry.listError = `docker container ls ${listed ? `exited ${listed.rc}` : 'gave no answer'}${why ? `: ${why}` : ''}`;
    if (proxy && proxy.rc === 0) {
      const service = containerPrefix(config, role);
      // kamal-proxy styles every cell of its table with ANSI escapes, on a terminal or not.
      // eslint-disable-next-line no-control-regex
      const cells = (line: string) => line.replace(/\x1b\[[0-9;]*m/g, '').trim().split(/\s+/);
      const row = proxy.lines.map(cells).find((words) => words[0] === service);
      const target = row?.find((word) => /^[0-9a-f]{12,64}:\d+$/.test(word))?.split(':')[0];
      if (target) entry.proxyTarget = containers.find((container) => container.id.startsWith(target) || target.startsWith(container.id)) ?? { id: target, name: `container ${target}`, state: 'unknown' };
    } else if (proxy) entry.proxyError = `kamal-proxy list exited ${proxy.rc ?? 'without status'}${why ? `: ${why}` : ''}`;
    result.set(role, entry);
  }
  return result;
}

/**
 * Puts the retained container of version V back under its name after a boot that did not take:
 * removes the new `S-R-V` only when the renamed copy is there, then renames the copy back.
 */
export function undoRename(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, version: string, renamedVersion: string): string {
  const name = containerName(config, role, version);
  const renamed = containerName(config, role, renamedVersion);
  return `if ${shellLine(['docker', 'container', 'inspect', renamed], '>', ['/dev/null'])} 2>&1; then ${shellLine(['docker', 'rm', '-f', name], '>', ['/dev/null'])} 2>&1; ${quoteArgv(['docker', 'rename', renamed, name])}; fi`;
}

/**
 * Every container of this role still running beside the target once it serves (another version, or
 * `_replaced_` copies, left by an interrupted run of ours or Kamal's), stopped as Kamal stops the old
 * version (`docker stop [-t T]` by id): after a rollback to V only V runs for the role on the host.
 */
export function stopOtherRunningContainers(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, target: string, stopWaitTime?: number): string {
  const filters = [`label=service=${config.service}`, `label=destination=${config.destination ?? ''}`, `label=role=${role}`, 'status=running'];
  const list = ['docker', 'ps', '--quiet', ...filters.flatMap((filter) => ['--filter', filter])];
  const keep = ['docker', 'container', 'ls', '--all', '--quiet', '--filter', `name=^${containerName(config, role, target)}$`];
  const stop = ['xargs', '-r', 'docker', 'stop', ...(stopWaitTime !== undefined ? ['-t', String(stopWaitTime)] : [])];
  // `grep -v` ends 1 when nothing else runs: that is success here, so its status is not the line's.
  return `${quoteArgv(list)} | { ${shellLine(['grep', '-vxF', '-e'])} "$(${quoteArgv(keep)})" || true; } | ${quoteArgv(stop)}`;
}
