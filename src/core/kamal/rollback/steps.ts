/** Turns a validated config plus per-host versions into the exact steps the executor runs. */
import { randomBytes } from 'node:crypto';
import { DeployRollbackError } from '../../model';
import { quoteArgv } from '../../shell';
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
} from '../commands/app';
import { proxyDeploy } from '../commands/proxy';
import { renderWords } from '../commands/kamal-shell';
import { cleanUpErrorPages, errorPagesVersionDirectory, hasErrorPages } from '../commands/error-pages';
import { assetVolumeArg, cleanUpAssets, extractAssets, roleHasAssets, syncAssetVolumes } from '../commands/assets';
import { TARGET_ARG_PLACEHOLDER, type KamalHostPlan, type KamalRoleStep } from './types';
import type { KamalConfig, KamalRole } from '../config/types';
import { kamalHostName } from '../config/host-string';

/** A cmd of plain words, which ends where the run line ends in any exchange. */
const PLAIN_CMD = /^[A-Za-z0-9_@%+=:,./ -]*$/;

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function wholeSeconds(config: KamalConfig, value: unknown, key: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new DeployRollbackError(`Refusing ${key} ${JSON.stringify(value)} in ${config.destinationFile ?? config.file}: expected whole seconds.`, 'validate');
  }
  return value;
}

/**
 * Kamal's `stop_args`: `-t` from the role's stop_timeout, else the top-level one, else (roles
 * without kamal-proxy, which drains on its own) drain_timeout.
 */
export function stopTimeout(config: KamalConfig, role: KamalRole): number | undefined {
  const roleRaw = config.raw.servers && typeof config.raw.servers === 'object' && !Array.isArray(config.raw.servers) ? (config.raw.servers as Record<string, unknown>)[role.name] : undefined;
  const roleValue = roleRaw && typeof roleRaw === 'object' && !Array.isArray(roleRaw) ? (roleRaw as Record<string, unknown>).stop_timeout : undefined;
  return (
    wholeSeconds(config, roleValue, `servers.${role.name}.stop_timeout`) ??
    wholeSeconds(config, config.raw.stop_timeout, 'stop_timeout') ??
    (role.proxy ? undefined : config.drainTimeout)
  );
}

/** Roles on a host in Kamal's order: the primary role first, then by name. */
export function rolesOnHost(config: KamalConfig, host: string): KamalRole[] {
  const roles = config.roles.filter((role) => role.hosts.includes(host));
  return [...roles.filter((role) => role.name === config.primaryRole), ...roles.filter((role) => role.name !== config.primaryRole)];
}

/** The proxy deploy line with `<cid12>` where the new container's id goes. */
export function proxyDeployTemplate(config: KamalConfig, role: KamalRole, version: string): string | undefined {
  return role.proxy ? proxyDeploy(config, role, TARGET_ARG_PLACEHOLDER, version) : undefined;
}

export function buildRoleStep(
  config: KamalConfig,
  role: KamalRole,
  host: string,
  versions: { to: string; from?: string; renameExisting: boolean },
): KamalRoleStep {
  const renamedVersion = `${versions.to}_replaced_${randomHex(8)}`;
  const hostname = containerHostname(kamalHostName(host), randomHex(6));
  const proxyDeployLine = proxyDeployTemplate(config, role, versions.to);
  const wait = stopTimeout(config, role);
  const run = renderWords(runContainer(config, role, { host, version: versions.to, hostname, assetVolume: assetVolumeArg(config, role, versions.to) }));
  return {
    host,
    role: role.name,
    to: versions.to,
    from: versions.from,
    containerName: containerName(config, role.name, versions.to),
    renameExisting: versions.renameExisting,
    renamedVersion,
    containerHostname: hostname,
    proxied: proxyDeployLine !== undefined,
    stopTimeout: wait,
    commands: {
      rename: versions.renameExisting ? quoteArgv(renameContainer(config, role.name, versions.to, renamedVersion)) : undefined,
      currentVersion: currentRunningContainerName(config, role.name),
      run,
      ...(role.cmd !== undefined && !PLAIN_CMD.test(role.cmd) ? { runInExchange: quoteArgv(['sh', '-c', run]) } : {}),
      ...(roleHasAssets(config, role)
        ? {
            extractAssets: extractAssets(config, role, versions.to),
            syncAssets: syncAssetVolumes(config, role.name, versions.to, versions.from),
            cleanUpAssets: cleanUpAssets(config, role.name, versions.to),
          }
        : {}),
      ...(hasErrorPages(config)
        ? { errorPagesDirectory: errorPagesVersionDirectory(config, versions.to), cleanUpErrorPages: cleanUpErrorPages(config, versions.to) }
        : {}),
      proxyDeploy: proxyDeployLine,
      healthStatus: proxyDeployLine ? undefined : containerStatus(config, role.name, versions.to),
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

/** Boot groups from `boot.limit` (a count or "N%" of `hostCount`, every host of the config, at least 1), in boot order. */
export function bootGroups(hosts: string[], limit: number | string | undefined, where: string, hostCount = hosts.length): string[][] {
  if (hosts.length === 0) return [];
  let size = hosts.length;
  if (limit !== undefined) {
    const text = String(limit).trim();
    const percent = /^(\d+)%$/.exec(text);
    if (percent) size = Math.max(Math.floor((hostCount * Number(percent[1])) / 100), 1);
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
