/** Turns a validated config plus per-host versions into the exact steps the executor runs. */
import { randomBytes } from 'node:crypto';
import { DeployRollbackError } from '../model';
import { quoteArgv } from '../shell';
import {
  containerHostname,
  containerLogs,
  containerName,
  containerStatus,
  currentRunningContainerName,
  renameContainer,
  runContainer,
  stopContainer,
  tagLatestImage,
} from './commands/app';
import { proxyDeployOptions, PROXY_CONTAINER_NAME } from './commands/proxy';
import { containerPrefix } from './commands/app';
import { TARGET_ARG_PLACEHOLDER, type KamalHostPlan, type KamalRoleStep } from './rollback-types';
import type { KamalConfig, KamalRole } from './types';

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

export function stopWaitTime(config: KamalConfig): number | undefined {
  const value = config.raw.stop_wait_time;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new DeployRollbackError(`Refusing stop_wait_time ${JSON.stringify(value)} in ${config.file}: expected whole seconds.`, 'validate');
  }
  return value;
}

/** Roles on a host in Kamal's order: the primary role first, then by name. */
export function rolesOnHost(config: KamalConfig, host: string): KamalRole[] {
  const roles = config.roles.filter((role) => role.hosts.includes(host));
  return [...roles.filter((role) => role.name === config.primaryRole), ...roles.filter((role) => role.name !== config.primaryRole)];
}

export function proxyDeployTemplate(config: KamalConfig, role: KamalRole): string[] | undefined {
  if (!role.proxy) return undefined;
  return [
    'docker', 'exec', PROXY_CONTAINER_NAME, 'kamal-proxy', 'deploy', containerPrefix(config, role.name),
    `--target=${TARGET_ARG_PLACEHOLDER}:${role.proxy.appPort}`,
    ...proxyDeployOptions(config, role, role.proxy),
  ];
}

/** Shows the template with `<cid12>` unquoted, so the dry run reads like the real line. */
export function showTemplate(argv: string[]): string {
  const marker = 'cid12placeholder';
  return quoteArgv(argv.map((word) => word.replace(TARGET_ARG_PLACEHOLDER, marker))).replace(marker, TARGET_ARG_PLACEHOLDER);
}

export function buildRoleStep(
  config: KamalConfig,
  role: KamalRole,
  host: string,
  versions: { to: string; from?: string; renameExisting: boolean },
): KamalRoleStep {
  const renamedVersion = `${versions.to}_replaced_${randomHex(8)}`;
  const hostname = containerHostname(host, randomHex(6));
  const proxyDeployArgv = proxyDeployTemplate(config, role);
  const wait = stopWaitTime(config);
  return {
    host,
    role: role.name,
    to: versions.to,
    from: versions.from,
    containerName: containerName(config, role.name, versions.to),
    renameExisting: versions.renameExisting,
    renamedVersion,
    containerHostname: hostname,
    proxied: proxyDeployArgv !== undefined,
    commands: {
      rename: versions.renameExisting ? quoteArgv(renameContainer(config, role.name, versions.to, renamedVersion)) : undefined,
      currentVersion: currentRunningContainerName(config, role.name),
      run: quoteArgv(runContainer(config, role, { host, version: versions.to, hostname })),
      proxyDeployArgv,
      proxyDeploy: proxyDeployArgv ? showTemplate(proxyDeployArgv) : undefined,
      healthStatus: proxyDeployArgv ? undefined : containerStatus(config, role.name, versions.to),
      stopNew: stopContainer(config, role.name, versions.to, wait),
      logs: containerLogs(config, role.name, versions.to),
      // When the target already serves, the clashing container is renamed first and that is what stops.
      stopOld:
        versions.from === undefined
          ? undefined
          : stopContainer(config, role.name, versions.from === versions.to && versions.renameExisting ? renamedVersion : versions.from, wait),
    },
  };
}

export function buildHostPlan(
  config: KamalConfig,
  host: string,
  primary: boolean,
  versionsFor: (role: KamalRole) => { to: string; from?: string; renameExisting: boolean },
): KamalHostPlan {
  const roles = rolesOnHost(config, host);
  const steps = roles.map((role) => buildRoleStep(config, role, host, versionsFor(role)));
  const tagVersion = steps[0]?.to;
  if (tagVersion === undefined) throw new DeployRollbackError(`Host ${host} runs no role of ${config.service}.`, 'plan');
  return { host, primary, steps, tagLatest: quoteArgv(tagLatestImage(config, tagVersion)), tagVersion };
}

/** Boot groups from `boot.limit` (a count or "N%" of the hosts, at least 1), in boot order. */
export function bootGroups(hosts: string[], limit: number | string | undefined, where: string): string[][] {
  if (hosts.length === 0) return [];
  let size = hosts.length;
  if (limit !== undefined) {
    const text = String(limit).trim();
    const percent = /^(\d+)%$/.exec(text);
    if (percent) size = Math.max(Math.floor((hosts.length * Number(percent[1])) / 100), 1);
    else if (/^\d+$/.test(text) && Number(text) > 0) size = Number(text);
    else throw new DeployRollbackError(`Refusing boot.limit ${JSON.stringify(limit)} in ${where}: expected a host count or a percentage like "25%".`, 'validate');
  }
  const groups: string[][] = [];
  for (let index = 0; index < hosts.length; index += size) groups.push(hosts.slice(index, index + size));
  return groups;
}

/** App hosts in boot order: the primary role's hosts first, then the rest as configured. */
export function hostsInBootOrder(config: KamalConfig): string[] {
  const primary = config.roles.find((role) => role.name === config.primaryRole)?.hosts ?? [];
  const all = [...primary, ...config.hosts, ...config.roles.flatMap((role) => role.hosts)];
  return [...new Set(all)].filter((host) => config.roles.some((role) => role.hosts.includes(host)));
}
