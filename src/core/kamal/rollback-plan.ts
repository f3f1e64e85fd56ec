/** A Kamal rollback plan as a value: the summary, the dry-run lines and the detail the executor runs. */
import { dirname } from 'node:path';
import type { RollbackPlan } from '../model';
import { quoteArgv } from '../shell';
import { makeRunDirectory } from './commands/app';
import { recordAudit } from './commands/auditor';
import { acquireLock, lockDirectory, lockStatus, releaseLock, utcIso8601 } from './commands/lock';
import { stopWaitTime } from './rollback-steps';
import type { KamalHookPlan, KamalHostPlan, KamalPlanDetail } from './rollback-types';
import type { KamalConfig } from './types';

/** The project root: Kamal runs from the folder holding config/deploy.yml. */
export function projectRoot(config: KamalConfig): string {
  return dirname(dirname(config.file));
}

export function label(config: KamalConfig): string {
  return config.destination !== undefined ? `${config.service} (${config.destination})` : config.service;
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

export function assemblePlan(args: {
  config: KamalConfig;
  kind: KamalPlanDetail['kind'];
  hosts: string[];
  groups: string[][];
  primaryHost: string;
  hostPlans: KamalHostPlan[];
  identity: { lockHolder: string; performer: string };
  hooks: KamalHookPlan[];
  lockVersion: string;
}): RollbackPlan<KamalPlanDetail> {
  const { config, hostPlans } = args;
  const steps = hostPlans.flatMap((host) => host.steps);
  const targets = [...new Set(steps.map((step) => step.to))];
  const froms = [...new Set(steps.map((step) => step.from ?? 'nothing running'))];
  const reboot = steps.every((step) => step.from === step.to);
  const plannedAt = utcIso8601();
  const lockMessage = `${args.kind === 'rollback' ? 'Rollback' : 'Roll forward'} to ${args.lockVersion} by Deploy Rollback`;
  const detail: KamalPlanDetail = {
    kind: args.kind,
    config,
    service: config.service,
    destination: config.destination,
    repository: config.repository,
    primaryHost: args.primaryHost,
    hosts: args.hosts,
    groups: args.groups,
    bootWait: config.boot.wait ?? 0,
    roles: [...new Set(steps.map((step) => step.role))],
    hostPlans,
    reboot,
    lockHolder: args.identity.lockHolder,
    performer: args.identity.performer,
    lockMessage,
    lockDirectory: lockDirectory(config),
    commands: {
      makeRunDirectory: quoteArgv(makeRunDirectory()),
      acquireLock: acquireLock(config, { holder: args.identity.lockHolder, lockedAt: plannedAt, version: args.lockVersion, message: lockMessage }),
      releaseLock: releaseLock(config),
      lockStatus: lockStatus(config),
    },
    hooks: args.hooks,
    hooksCwd: projectRoot(config),
    stopWaitTime: stopWaitTime(config),
    plannedAt,
  };
  const to = targets.join(', ');
  const from = froms.join(', ');
  const where = `on ${plural(args.hosts.length, 'host')} in ${plural(args.groups.length, 'group')}`;
  const summary =
    args.kind === 'rollback'
      ? reboot
        ? `Reboot ${label(config)} on ${to} (already running) ${where}`
        : `Roll ${label(config)} back from ${from} to ${to} ${where}`
      : `Roll ${label(config)} forward from ${from} to ${to} ${where}`;
  const direction = args.kind === 'roll-forward' ? 'forward' : 'back';
  return { source: 'kamal', environment: config.destination ?? 'default', app: config.service, from, to, direction, summary, lines: planLines(detail, summary), overview: overviewLines(detail), detail };
}

/** Per host and role from → to, in boot order, then the lock and hooks: what the confirmation shows. */
function overviewLines(detail: KamalPlanDetail): string[] {
  const lines: string[] = [];
  detail.groups.forEach((group, index) => {
    const prefix = detail.groups.length > 1 ? `Group ${index + 1}: ` : '';
    for (const host of detail.hostPlans.filter((plan) => group.includes(plan.host))) {
      for (const step of host.steps) lines.push(`${prefix}${host.host} (${step.role}): ${step.from ?? 'nothing running'} → ${step.to}`);
    }
  });
  const hooks = detail.hooks.filter((hook) => hook.present).map((hook) => hook.name);
  lines.push(`Deploy lock on ${detail.primaryHost}; hooks: ${hooks.length ? hooks.join(', ') : 'none'}.`);
  lines.push('The old containers keep serving until the new ones are healthy.');
  return lines;
}

function planLines(detail: KamalPlanDetail, summary: string): string[] {
  const { config } = detail;
  const lines = [summary];
  const firstStep = detail.hostPlans[0]?.steps[0];
  if (detail.reboot && firstStep) lines.push(`${firstStep.to} already serves everywhere: like Kamal, this is a reboot (rename, fresh container, stop the renamed one).`);
  for (const host of detail.hostPlans) {
    for (const step of host.steps) if (step.from === undefined) lines.push(`[ssh ${host.host}] ${step.role}: no container of ${detail.service} is running now.`);
  }
  const hook = (name: KamalHookPlan['name']): string => {
    const entry = detail.hooks.find((candidate) => candidate.name === name);
    return entry?.present ? `[local] hook ${name}: ${entry.file}` : `[local] hook ${name}: none`;
  };
  // Audit lines carry the time they are written; the plan shows its own time in their place.
  const audit = (message: string, role?: string): string => recordAudit(config, { recordedAt: detail.plannedAt, performer: detail.performer, role }, message);
  lines.push(hook('pre-connect'));
  const others = detail.hosts.filter((host) => host !== detail.primaryHost);
  lines.push(`[ssh ${detail.primaryHost}] ${detail.commands.makeRunDirectory} && ${detail.commands.acquireLock.replace(/\n/g, '\\n')}`);
  if (others.length > 0) lines.push(`[ssh ${others.join(', ')}] ${detail.commands.makeRunDirectory}`);
  lines.push(hook('pre-deploy'));
  detail.groups.forEach((group, index) => {
    lines.push(`Group ${index + 1} of ${detail.groups.length}: ${group.join(', ')}${index > 0 && detail.bootWait > 0 ? ` (after waiting ${detail.bootWait}s)` : ''}`);
    lines.push(hook('pre-app-boot'));
    for (const hostName of group) {
      const host = detail.hostPlans.find((candidate) => candidate.host === hostName);
      if (!host) continue;
      for (const step of host.steps) {
        const prefix = `[ssh ${host.host}] ${step.role}:`;
        lines.push(`${prefix} ${step.from ?? 'nothing'} -> ${step.to}`);
        lines.push(
          step.commands.rename
            ? `${prefix} ${audit(`Renaming container ${step.to} to ${step.renamedVersion}`, step.role)} && ${step.commands.rename} && ${step.commands.currentVersion}`
            : `${prefix} ${step.commands.currentVersion}`,
        );
        lines.push(`${prefix} ${step.commands.run}`);
        if (step.commands.proxyDeploy) lines.push(`${prefix} ${step.commands.proxyDeploy}`);
        if (step.commands.healthStatus) lines.push(`${prefix} ${step.commands.healthStatus} (until healthy, within ${config.deployTimeout}s)`);
        const booted = audit(`Booted app version ${step.to}`, step.role);
        lines.push(`${prefix} ${step.commands.stopOld ? `${booted} && ${step.commands.stopOld}` : booted}`);
        lines.push(`${prefix} on failure: ${step.commands.logs}; ${step.commands.stopNew}`);
      }
    }
    lines.push(hook('post-app-boot'));
  });
  for (const host of detail.hostPlans) lines.push(`[ssh ${host.host}] ${audit(`Tagging ${detail.repository}:${host.tagVersion} as the latest image`)} && ${host.tagLatest}`);
  lines.push(`[ssh ${detail.primaryHost}] ${detail.commands.releaseLock}`);
  lines.push(hook('post-deploy'));
  return lines;
}
