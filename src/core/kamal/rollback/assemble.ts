/** A Kamal rollback plan as a value: the summary, the dry-run lines and the detail the executor runs. */
import { dirname } from 'node:path';
import type { RollbackPlan } from '../../model';
import { quoteArgv } from '../../shell';
import { redactSecrets } from '../../ssh/redact';
import { makeRunDirectory } from '../commands/app';
import { recordAudit } from '../commands/auditor';
import { AUTOMATIC_DEPLOY_LOCK_MESSAGE, acquireLock, lockDirectory, lockStatus, releaseLock, utcIso8601 } from '../commands/lock';
import { runMark, thisRun, type LockRun } from '../commands/lock-run';
import type { KamalEnvFileDifference, KamalHookPlan, KamalHostPlan, KamalPlanDetail } from './types';
import type { KamalConfig } from '../config/types';

/**
 * What the deploy lock says this run is doing; Kamal's message first, so `kamal deploy --lock-wait`
 * waits for it; the process and machine last, so a lock this run leaves if it dies can be released.
 */
export function lockMessageFor(kind: KamalPlanDetail['kind'], version: string, run: LockRun = thisRun()): string {
  return `${AUTOMATIC_DEPLOY_LOCK_MESSAGE}: ${kind === 'rollback' ? 'rollback' : 'roll forward'} to ${version} by Deploy Rollback ${runMark(run)}`;
}

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
  errorPages?: KamalPlanDetail['errorPages'];
  envFiles?: KamalPlanDetail['envFiles'];
}): RollbackPlan<KamalPlanDetail> {
  const { config, hostPlans } = args;
  const steps = hostPlans.flatMap((host) => host.steps);
  const targets = [...new Set(steps.map((step) => step.to))];
  const froms = [...new Set(steps.map((step) => step.from ?? 'nothing running'))];
  const reboot = steps.every((step) => step.from === step.to);
  const plannedAt = utcIso8601();
  const lockMessage = lockMessageFor(args.kind, args.lockVersion);
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
    ...(args.errorPages ? { errorPages: args.errorPages } : {}),
    ...(args.envFiles ? { envFiles: args.envFiles } : {}),
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
  return { source: 'kamal', environment: config.destination ?? 'default', app: config.service, from, to, direction, summary, lines: planLines(detail), overview: overviewLines(detail), detail };
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
  const assetRoles = [...new Set(detail.hostPlans.flatMap((host) => host.steps).filter((step) => step.commands.extractAssets).map((step) => step.role))];
  if (assetRoles.length > 0) lines.push(`Assets (${assetRoles.join(', ')}): both versions' files are served during the switch; other versions' asset folders are removed after.`);
  if (detail.errorPages) lines.push(`Error pages: ${detail.errorPages.files.length ? detail.errorPages.files.map((file) => file.name).join(', ') : 'none found'} uploaded to every host first.`);
  lines.push(...envFilesOverview(detail));
  const hooks = detail.hooks.filter((hook) => hook.present).map((hook) => hook.name);
  lines.push(`Deploy lock on ${detail.primaryHost}; hooks: ${hooks.length ? hooks.join(', ') : 'none'}.`);
  lines.push('The old containers keep serving until the new ones are healthy.');
  return lines;
}

/** Where a long shell line may break: spaces outside quotes. */
function breakPoints(command: string): number[] {
  const points: number[] = [];
  let quote: string | undefined;
  for (let index = 0; index < command.length; index++) {
    const char = command[index];
    if (quote) {
      if (char === quote) quote = undefined;
      else if (char === '\\' && quote === '"') index++;
    } else if (char === "'" || char === '"') quote = char;
    else if (char === '\\') index++;
    else if (char === ' ') points.push(index);
  }
  return points;
}

/** A command wrapped at `width` with ` \` continuations, so it stays copyable into a shell. */
export function wrapCommand(command: string, indent: string, width = 100): string[] {
  // Audit lines carry a literal newline-free echo, but lock details are base64 with newlines.
  const flat = command.replace(/\n/g, '\\n');
  const lines: string[] = [];
  let rest = flat;
  let prefix = indent;
  while (prefix.length + rest.length > width) {
    const limit = width - prefix.length - 2;
    const points = breakPoints(rest).filter((point) => point > 0);
    const cut = [...points].reverse().find((point) => point <= limit) ?? points.find((point) => point > limit);
    if (cut === undefined) break;
    lines.push(`${prefix}${rest.slice(0, cut)} \\`);
    rest = rest.slice(cut + 1);
    prefix = `${indent}    `;
  }
  lines.push(`${prefix}${rest}`);
  return lines;
}

/** Prose wrapped at `width`, continuation lines indented under the first word. */
export function wrapText(text: string, width = 100): string[] {
  const lead = /^\s*/.exec(text)?.[0] ?? '';
  const hanging = ' '.repeat((/^\s*(?:\d+\.\s)?/.exec(text)?.[0] ?? '').length + 2);
  const lines: string[] = [];
  let line = lead;
  for (const word of text.slice(lead.length).split(' ')) {
    if (line.trim() !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `${hanging}${word}`;
    } else line = line.trim() === '' ? `${line}${word}` : `${line} ${word}`;
  }
  lines.push(line);
  return lines;
}

function whatHappens(detail: KamalPlanDetail): string[] {
  const { config } = detail;
  const lines: string[] = [];
  const present = detail.hooks.filter((hook) => hook.present).map((hook) => hook.name);
  lines.push(`Kamal's deploy lock is taken on ${detail.primaryHost} for the whole run; hooks that run: ${present.length ? present.join(', ') : 'none'}.`);
  const steps = detail.hostPlans.flatMap((host) => host.steps);
  const assetSteps = steps.filter((step) => step.commands.extractAssets);
  let number = 1;
  const pageSteps = steps.filter((step) => step.commands.errorPagesDirectory);
  if (detail.errorPages && pageSteps.length > 0) {
    const names = detail.errorPages.files.map((file) => file.name);
    lines.push(
      `${number++}. Before any switch, on ${[...new Set(pageSteps.map((step) => step.host))].join(', ')}: upload the error pages (${names.length ? names.join(', ') : 'none found'}) over SFTP to ${[...new Set(pageSteps.map((step) => step.commands.errorPagesDirectory))].join(', ')}; kamal-proxy serves them for ${pageSteps[0].to}.`,
    );
  }
  if (assetSteps.length > 0) {
    const hosts = [...new Set(assetSteps.map((step) => step.host))];
    const roles = [...new Set(assetSteps.map((step) => step.role))];
    lines.push(
      `${number++}. Before any switch, on ${hosts.join(', ')} (${roles.join(', ')}): copy the assets out of the ${assetSteps[0].to} image and merge them, without overwriting, with the running version's, both ways, so requests in flight during the switch find the files of either version.`,
    );
  }
  detail.groups.forEach((group, index) => {
    const wait = index > 0 && detail.bootWait > 0 ? ` after waiting ${detail.bootWait}s` : '';
    const hosts = group.length > 1 ? `${group.join(', ')} in parallel` : group[0];
    // "Then" only follows a step: a plan whose first step is the switch starts "1. On …".
    const lead = detail.groups.length > 1 ? `Group ${index + 1} of ${detail.groups.length}${wait}, on ${hosts}` : number === 1 ? `On ${hosts}` : `Then${wait}, on ${hosts}`;
    lines.push(`${number++}. ${lead}${detail.roles.length > 1 ? ', roles one after another' : ''}:`);
    for (const hostName of group) {
      const host = detail.hostPlans.find((candidate) => candidate.host === hostName);
      if (!host) continue;
      for (const step of host.steps) {
        const parts: string[] = [];
        if (step.renameExisting) parts.push(`keep the retained ${step.containerName} aside (renamed ${step.renamedVersion})`);
        parts.push(`start a fresh ${step.to} container from the same image${step.commands.extractAssets ? ' with the merged assets mounted' : ''}`);
        parts.push(step.proxied ? 'kamal-proxy switches traffic to it once its health check passes and drains the old one' : `wait until it is healthy (at most ${config.deployTimeout}s)`);
        let then = '';
        if (step.from !== undefined) {
          const stop = `stop ${step.from === step.to ? 'the renamed copy' : step.from}${step.stopTimeout !== undefined ? ` (docker stop -t ${step.stopTimeout})` : ''}`;
          const removed = [step.commands.cleanUpAssets ? "asset folders" : '', step.commands.cleanUpErrorPages ? 'error pages' : ''].filter(Boolean).join(' and ');
          then = `; then ${removed ? `${stop} and remove other versions' ${removed}` : stop}`;
        }
        lines.push(`   ${host.host} ${step.role} ${step.from ?? 'nothing running'} → ${step.to}: ${parts.join(', ')}${then}.`);
      }
    }
  });
  lines.push(`${number++}. Tag ${detail.repository}:${detail.hostPlans[0]?.tagVersion ?? ''} as ${detail.repository}:${config.destination ? `latest-${config.destination}` : 'latest'} on every host, so Kamal reads it as the current version, and release the lock.`);
  lines.push('If a new container fails its health check, its logs are shown, it is stopped, and the old version keeps serving there.');
  lines.push(...envFilesProse(detail));
  return lines;
}

/** `web: A, B on web-1, web-2; jobs: A on web-3`: hosts with the same differing keys of a role together. */
function differenceList(differences: KamalEnvFileDifference[]): string {
  const groups = new Map<string, { role: string; keys: string[]; hosts: string[] }>();
  for (const entry of differences) {
    const id = `${entry.role}\n${entry.keys.join('\n')}`;
    const group = groups.get(id) ?? { role: entry.role, keys: entry.keys, hosts: [] };
    group.hosts.push(entry.host);
    groups.set(id, group);
  }
  return [...groups.values()].map((group) => `${group.role}: ${group.keys.join(', ')} on ${group.hosts.join(', ')}`).join('; ');
}

/** What the plan says about the role env files: reused unread, as Kamal would write them, or which keys differ and what happens. */
function envFilesProse(detail: KamalPlanDetail): string[] {
  const env = detail.envFiles;
  if (!env) return ["The role env files already on the hosts are reused: no secret is read or sent (Kamal would re-write them from .kamal/secrets)."];
  const from = `the current config${env.secretsFiles.length ? ` and ${env.secretsFiles.join(', ')}` : ' (no secrets file)'}`;
  const lines: string[] = [];
  if (env.differences.length === 0) lines.push(`The role env files on the hosts hold what Kamal would write from ${from}${env.notCompared.length ? ' for every key compared' : ''}: kept as they are.`);
  else {
    const target = detail.hostPlans[0]?.tagVersion ?? 'the target';
    lines.push(`The role env files differ from what Kamal would write from ${from}, in the keys ${differenceList(env.differences)}.`);
    const unwritable = env.differences.filter((entry) => entry.content === undefined);
    if (env.write) {
      lines.push(`As Kamal's rollback does, they are written (mode 0600) before any switch, so ${target} boots with the current values${unwritable.length ? `; except on ${unwritable.map((entry) => `${entry.host} (${entry.role})`).join(', ')}, kept because not every value is known here` : ''}.`);
    } else {
      lines.push(`They are kept as the last deploy left them, so ${target} boots with those values where Kamal's rollback would write and boot with the current ones. Agree to write them as Kamal does (CLI: --write-env-files).`);
    }
  }
  for (const reason of env.notCompared) lines.push(`Env files not compared: ${reason}.`);
  return lines;
}

/** The confirmation's line: which keys differ, and whether they are written. */
function envFilesOverview(detail: KamalPlanDetail): string[] {
  const env = detail.envFiles;
  if (!env) return [];
  const lines: string[] = [];
  if (env.differences.length > 0) lines.push(`Env files differ from Kamal's (${differenceList(env.differences)}): ${env.write ? 'written as Kamal does first' : 'kept as they are'}.`);
  if (env.notCompared.length > 0) lines.push(`Env files not all compared: ${env.notCompared.join('; ')}.`);
  return lines;
}

/** The writes in the command list, where Kamal makes them (each boot; here all before the first switch). */
function envFilesCommands(detail: KamalPlanDetail, command: (where: string, text: string) => void, lines: string[]): void {
  const env = detail.envFiles;
  if (!env?.write) return;
  for (const entry of env.differences) {
    if (entry.content === undefined) continue;
    command(`[ssh ${entry.host}]`, env.makeDirectory);
    lines.push(`  [sftp ${entry.host}] write ${entry.path} (mode 0600) as Kamal renders it; keys that differ: ${entry.keys.join(', ')}`);
  }
}

/**
 * The user agreed to write the differing env files (the VS Code confirmation's choice): the plan
 * says so, and the executor writes them.
 */
export function agreeToWriteEnvFiles(plan: RollbackPlan<KamalPlanDetail>): void {
  const env = plan.detail.envFiles;
  if (!env || env.write || env.differences.length === 0) return;
  const replace = (lines: string[], before: string[], after: string[]): string[] => {
    const at = lines.findIndex((_, index) => before.every((line, offset) => lines[index + offset] === line));
    return at < 0 || before.length === 0 ? lines : [...lines.slice(0, at), ...after, ...lines.slice(at + before.length)];
  };
  const prose = () => envFilesProse(plan.detail).flatMap((line) => wrapText(line)).map(redactSecrets);
  const overview = () => envFilesOverview(plan.detail).map(redactSecrets);
  const before = { prose: prose(), overview: overview() };
  env.write = true;
  const commands: string[] = [];
  envFilesCommands(plan.detail, (where, text) => commands.push(...wrapCommand(`${where} ${text}`, '  ')), commands);
  plan.lines = replace(plan.lines, before.prose, prose());
  const hookLine = plan.lines.findIndex((line) => line.startsWith('  [local] hook pre-deploy:'));
  if (hookLine >= 0) plan.lines.splice(hookLine + 1, 0, ...commands.map(redactSecrets));
  if (plan.overview) plan.overview = replace(plan.overview, before.overview, overview());
}

function planLines(detail: KamalPlanDetail): string[] {
  const { config } = detail;
  const lines = whatHappens(detail).flatMap((line) => wrapText(line));
  const firstStep = detail.hostPlans[0]?.steps[0];
  if (detail.reboot && firstStep) lines.push(`${firstStep.to} already serves everywhere: like Kamal, this is a reboot (rename, fresh container, stop the renamed one).`);
  for (const host of detail.hostPlans) {
    for (const step of host.steps) if (step.from === undefined) lines.push(`${host.host} ${step.role}: no container of ${detail.service} is running now.`);
  }
  lines.push('');
  lines.push('Commands, in order:');
  const hook = (name: KamalHookPlan['name']): string => {
    const entry = detail.hooks.find((candidate) => candidate.name === name);
    return entry?.present ? `[local] hook ${name}: ${entry.file}` : `[local] hook ${name}: none`;
  };
  const command = (where: string, text: string) => lines.push(...wrapCommand(`${where} ${text}`, '  '));
  // Audit lines carry the time they are written; the plan shows its own time in their place.
  const audit = (message: string, role?: string): string => recordAudit(config, { recordedAt: detail.plannedAt, performer: detail.performer, role }, message);
  lines.push(`  ${hook('pre-connect')}`);
  const others = detail.hosts.filter((host) => host !== detail.primaryHost);
  command(`[ssh ${detail.primaryHost}]`, `${detail.commands.makeRunDirectory} && ${detail.commands.acquireLock}`);
  if (others.length > 0) command(`[ssh ${others.join(', ')}]`, detail.commands.makeRunDirectory);
  lines.push(`  ${hook('pre-deploy')}`);
  envFilesCommands(detail, command, lines);
  if (detail.errorPages) {
    for (const host of detail.hostPlans) {
      for (const directory of new Set(host.steps.map((step) => step.commands.errorPagesDirectory).filter((entry): entry is string => entry !== undefined))) {
        command(`[ssh ${host.host}]`, detail.errorPages.makeDirectory);
        lines.push(`  [sftp ${host.host}] upload ${detail.errorPages.files.map((file) => file.name).join(' ') || '(no 4??.html/5??.html found)'} to ${directory}/ (folder 0755, files 0644)`);
      }
    }
  }
  for (const host of detail.hostPlans) {
    for (const step of host.steps) {
      if (!step.commands.extractAssets || !step.commands.syncAssets) continue;
      command(`[ssh ${host.host}] ${step.role}:`, step.commands.extractAssets);
      command(`[ssh ${host.host}] ${step.role}:`, step.commands.currentVersion);
      command(`[ssh ${host.host}] ${step.role}:`, step.commands.syncAssets);
    }
  }
  detail.groups.forEach((group, index) => {
    lines.push(`  Group ${index + 1} of ${detail.groups.length}: ${group.join(', ')}${index > 0 && detail.bootWait > 0 ? ` (after waiting ${detail.bootWait}s)` : ''}`);
    lines.push(`  ${hook('pre-app-boot')}`);
    for (const hostName of group) {
      const host = detail.hostPlans.find((candidate) => candidate.host === hostName);
      if (!host) continue;
      for (const step of host.steps) {
        const where = `[ssh ${host.host}] ${step.role}:`;
        command(where, step.commands.rename ? `${audit(`Renaming container ${step.to} to ${step.renamedVersion}`, step.role)} && ${step.commands.rename} && ${step.commands.currentVersion}` : step.commands.currentVersion);
        command(where, step.commands.run);
        if (step.commands.proxyDeploy) command(where, step.commands.proxyDeploy);
        if (step.commands.healthStatus) command(where, `${step.commands.healthStatus}  # until healthy, within ${config.deployTimeout}s`);
        const booted = audit(`Booted app version ${step.to}`, step.role);
        command(where, step.commands.stopOld ? `${booted} && ${step.commands.stopOld}` : booted);
        if (step.commands.stopOld && step.commands.cleanUpAssets) command(where, step.commands.cleanUpAssets);
        if (step.commands.stopOld && step.commands.cleanUpErrorPages) command(where, step.commands.cleanUpErrorPages);
      }
    }
    lines.push(`  ${hook('post-app-boot')}`);
  });
  for (const host of detail.hostPlans) command(`[ssh ${host.host}]`, `${audit(`Tagging ${detail.repository}:${host.tagVersion} as the latest image`)} && ${host.tagLatest}`);
  command(`[ssh ${detail.primaryHost}]`, detail.commands.releaseLock);
  lines.push(`  ${hook('post-deploy')}`);
  const sample = detail.hostPlans[0]?.steps[0];
  if (sample) {
    lines.push(`  On a failed health check (shown for ${sample.host} ${sample.role}):`);
    command(`[ssh ${sample.host}] ${sample.role}:`, `${sample.commands.logs}; ${sample.commands.stopNew}`);
  }
  return lines;
}

/** The plan shows (and the dry run prints) every command: secret-looking env values are masked there as in the log. */
export function redactPlanLines<T extends RollbackPlan<KamalPlanDetail>>(plan: T): T {
  plan.lines = plan.lines.map(redactSecrets);
  if (plan.overview) plan.overview = plan.overview.map(redactSecrets);
  return plan;
}
