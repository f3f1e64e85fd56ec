/**
 * The pre-flight: what every host holds for a rollback (containers per role, the version serving,
 * the env file, the image, TLS files, the deploy lock), read in one exchange per host, and what
 * that reading means for a target. Planning reads it before the confirmation; the run reads it
 * again with the lock and refuses if the plan no longer fits.
 */
import { DeployRollbackError, type LockInfo } from '../../model';
import { quoteArgv, shellLine } from '../../shell';
import type { ExecResult } from '../../ssh/types';
import { oneLine } from '../../text';
import { containerName, envFileExists, latestImageContainerName, listRoleContainers, makeRunDirectory, roleEnvFile, versionFromName } from '../commands/app';
import { acquireLock, decodeLockTransport, describeLock, lockDirectoryPresent, lockStatusEncoded, parseLockDetails, releaseAdvice, releaseLockCommand, staleLockAdvice, unreadableLock, type LockDetails } from '../commands/lock';
import { goneRunAdvice } from '../commands/lock-run';
import { customCertificate, tlsFiles } from '../commands/proxy';
import { envFileDigest, envFileHashes, parseEnvFileDigest, parseEnvFileHashes } from '../commands/env-file';
import type { KamalInventory } from '../hosts/inventory';
import { MARK, STATUS_ECHO, concurrent, parseSections, section } from './sections';
import { abortError, errorText, HostUnreachable } from './runner';
import type { RunState } from './run-state';
import { rolesOnHost } from './steps';
import type { KamalPlanDetail } from './types';
import type { KamalConfig } from '../config/types';

/** A container of one role on one host, as the pre-flight listed it. */
export interface ListedContainer {
  id: string;
  name: string;
  state: string;
  created: number;
}

export interface RoleFacts {
  role: string;
  containers: ListedContainer[];
  current?: string;
  envFile: boolean;
  /** With the env file check: each key's salted line hash as the host has it (undefined: not read, or unreadable). */
  envHashes?: Map<string, string>;
  /** From a tree read: the whole env file's salted digest (see `envFileDigest`), for comparing without a read of its own. */
  envDigest?: { nonce: string; digest: string };
  /** Custom TLS files the last deploy should have left on the host, missing now. */
  missingTls: string[];
  errors: string[];
}

export interface HostFacts {
  host: string;
  roles: RoleFacts[];
  lock?: LockInfo;
  /** Tags of REPO present on the host; undefined when docker could not say. */
  imageTags?: Set<string>;
  /** Exit status of the `prepare` section (lock / mkdir) when one was sent. */
  prepared?: number;
  prepareError?: string;
}

/** Env files in the pre-flight: with `keys`, each line's salted hash (which keys differ); always the whole file's digest. */
export interface EnvFileRead {
  nonce: string;
  keys: boolean;
}

/**
 * One line per host: the docker queries (every role's containers and current version, the image
 * tags) at the same time, then the env files, TLS files and (primary) the lock; `prepare` runs
 * last.
 */
export function preflightScript(config: KamalConfig, host: string, primary: boolean, prepare?: string, env?: EnvFileRead): string {
  const queries: [string, string][] = [];
  const parts: string[] = [];
  for (const role of rolesOnHost(config, host)) {
    // The list answers Kamal's exact-name check for the target and the second half of its current
    // version (the newest active container): one docker call each fewer per role.
    queries.push([`list ${role.name}`, quoteArgv(listRoleContainers(config, role.name))]);
    queries.push([`current ${role.name}`, latestImageContainerName(config, role.name)]);
    // With a nonce, the same answer (yes/no) followed by each line's salted hash, never a value.
    parts.push(section(`env ${role.name}`, env?.keys ? envFileHashes(config, role.name, env.nonce) : envFileExists(config, role.name)));
    // And the whole file's digest: what the run compares with its lock to see that the file did not change since.
    if (env) parts.push(section(`digest ${role.name}`, envFileDigest(config, role.name, env.nonce)));
    if (role.proxy && customCertificate(config, role.name)) {
      // Prints the certificate files the last deploy should have left, that are missing.
      parts.push(section(`tls ${role.name}`, tlsFiles(config, role.name).host.map((file) => `test -f ${file} || echo ${file}`).join(' ; ')));
    }
  }
  // The retained container is not enough: `docker run REPO:V` needs the image tag too (a prune or rmi removes it).
  queries.push(['images', quoteArgv(['docker', 'image', 'ls', '--format', '{{.Tag}}', config.repository])]);
  if (primary) {
    // Kamal's status prints nothing for a lock directory without details: ask for the directory too.
    parts.push(section('lockdir', lockDirectoryPresent(config)));
    parts.push(`${shellLine(['echo', `${MARK} lock`])}; ${lockStatusEncoded(config)}${prepare !== undefined ? `; ${STATUS_ECHO}` : ''}`);
  }
  // After the lock was read: `mkdir` of the lock directory fails if someone holds it, whatever was read.
  if (prepare !== undefined) parts.push(section('prepare', prepare));
  return [concurrent(queries), ...parts].join('; ');
}

/** Docker's `CreatedAt`: `2026-11-23 00:17:41 +0000 UTC`. */
function parseDockerTime(text: string): number {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})/.exec(text.trim());
  if (!match) return Number.NaN;
  return Date.parse(`${match[1]}T${match[2]}${match[3]}:${match[4]}`);
}

const running = (container: ListedContainer): boolean => container.state === 'running' || container.state === 'restarting';

export function parseHostFacts(config: KamalConfig, host: string, primary: boolean, stdout: string, stderr: string, env?: EnvFileRead): HostFacts {
  const sections = parseSections(stdout);
  const facts: HostFacts = { host, roles: [] };
  const failure = (name: string): string | undefined => {
    const entry = sections.get(name);
    if (!entry) return `no answer to the ${name.split(' ')[0]} query${stderr.trim() ? ` (${oneLine(stderr.trim().split('\n').slice(-1)[0] ?? '')})` : ''}`;
    if (entry.rc !== 0) return `the ${name.split(' ')[0]} query failed (exit ${entry.rc ?? 'unknown'}${stderr.trim() ? `: ${oneLine(stderr.trim().split('\n').slice(-1)[0] ?? '')}` : ''})`;
    return undefined;
  };
  for (const role of rolesOnHost(config, host)) {
    const errors: string[] = [];
    const listName = `list ${role.name}`;
    const listError = failure(listName);
    if (listError) errors.push(listError);
    const listed = sections.get(listName)?.lines ?? [];
    // CreatedAt has whole seconds; docker lists newest first, so the position breaks ties.
    const containers = listed.flatMap((line, index): ListedContainer[] => {
      const [id, name, state, created] = line.split('\t');
      return id && name ? [{ id, name, state: state ?? 'unknown', created: parseDockerTime(created ?? '') + (listed.length - index) / 1000 }] : [];
    });
    const currentError = failure(`current ${role.name}`);
    if (currentError) errors.push(currentError);
    // Kamal's current version: the newest active container of the latest image, else the newest active one.
    const currentName = sections.get(`current ${role.name}`)?.lines[0]?.trim() || containers.find(running)?.name;
    const envLines = sections.get(`env ${role.name}`)?.lines ?? [];
    const digest = env && parseEnvFileDigest(sections.get(`digest ${role.name}`)?.lines[0]);
    let missingTls: string[] = [];
    if (role.proxy && customCertificate(config, role.name)) {
      const tlsError = failure(`tls ${role.name}`);
      if (tlsError) errors.push(tlsError);
      missingTls = (sections.get(`tls ${role.name}`)?.lines ?? []).map((line) => line.trim()).filter((line) => line !== '');
    }
    facts.roles.push({
      role: role.name,
      containers,
      current: currentName ? versionFromName(config, role.name, currentName) : undefined,
      envFile: envLines.includes('yes'),
      ...(env?.keys && envLines.includes('yes') && sections.get(`env ${role.name}`)?.rc === 0 ? { envHashes: parseEnvFileHashes(envLines) } : {}),
      ...(env && digest ? { envDigest: { nonce: env.nonce, digest } } : {}),
      missingTls,
      errors,
    });
  }
  const images = sections.get('images');
  if (images && images.rc === 0) facts.imageTags = new Set(images.lines.map((line) => line.trim()).filter(Boolean));
  const prepare = sections.get('prepare');
  if (prepare) {
    facts.prepared = prepare.rc;
    if (prepare.rc !== 0 && stderr.trim()) facts.prepareError = oneLine(stderr.trim().split('\n').slice(-1)[0] ?? '');
  }
  if (primary) {
    const lock = sections.get('lock');
    const details = lock ? decodeLockTransport(lock.lines) : '';
    if (details.trim() !== '') facts.lock = parseLockDetails(details);
    else if (sections.get('lockdir')?.lines.includes('present')) facts.lock = unreadableLock();
  }
  return facts;
}

export const REPLACED = /_replaced_[0-9a-f]+$/;

/**
 * An interrupted rollback can leave the target only as `S-R-V_replaced_<hex>` (renamed, then the
 * host went silent before the new container ran): the newest such copy, when `S-R-V` is absent.
 */
export function leftoverCopy(config: KamalConfig, role: RoleFacts, target: string): ListedContainer | undefined {
  if (role.containers.some((container) => container.name === containerName(config, role.role, target))) return undefined;
  const prefix = `${containerName(config, role.role, target)}_replaced_`;
  return role.containers.filter((container) => container.name.startsWith(prefix) && REPLACED.test(container.name)).sort((a, b) => b.created - a.created)[0];
}

/**
 * Something beside the version serving runs for this role (another version, `_replaced_` copies, or
 * the target itself), left by an interrupted run of ours or Kamal's: stopped once the target serves.
 */
export function needsOthersStopped(config: KamalConfig, role: RoleFacts, target: string): boolean {
  const targetRunsBeside = role.current !== target && role.containers.some((container) => container.name === containerName(config, role.role, target) && running(container));
  const current = role.current !== undefined ? containerName(config, role.role, role.current) : undefined;
  return targetRunsBeside || role.containers.some((container) => running(container) && container.name !== current && container.name !== containerName(config, role.role, target));
}

/** What keeps `target` from booting on the hosts as read, each entry naming host and role. */
export interface TargetProblems {
  /** No container of the target (nor a renamed copy of it). */
  missing: string[];
  missingEnv: string[];
  missingTls: string[];
  /** Hosts without the image tag `docker run` needs. */
  missingImage: string[];
}

export function targetProblems(config: KamalConfig, facts: HostFacts[], target: string): TargetProblems {
  const problems: TargetProblems = { missing: [], missingEnv: [], missingTls: [], missingImage: [] };
  for (const host of facts) {
    if (host.imageTags !== undefined && !host.imageTags.has(target)) problems.missingImage.push(host.host);
    for (const role of host.roles) {
      const present = role.containers.some((container) => container.name === containerName(config, role.role, target));
      if (!present && !leftoverCopy(config, role, target)) problems.missing.push(`${host.host} (${role.role})`);
      if (!role.envFile) problems.missingEnv.push(`${host.host} (${role.role}: ${roleEnvFile(config, role.role)})`);
      problems.missingTls.push(...role.missingTls.map((file) => `${host.host} (${role.role}): ${file}`));
    }
  }
  return problems;
}

/** The tree's reading (created in ISO 8601), its listing position breaking ties as the pre-flight's does. */
function listedFromInventory(containers: KamalInventory['hosts'][number]['containers']): ListedContainer[] {
  return containers.map((container) => ({ id: container.id, name: container.name, state: container.state, created: Date.parse(container.created) + (containers.length - container.order) / 1000 }));
}

/**
 * The pre-flight's facts as a recent inventory (the tree's reading) gives them: containers, the
 * version serving and the lock. The env files, image tags and TLS files it does not read are
 * taken as present here, and checked when the run takes the lock (see changesSince). Undefined
 * when a host could not be read.
 */
export function factsFromInventory(config: KamalConfig, inventory: KamalInventory): HostFacts[] | undefined {
  if (inventory.hosts.some((host) => host.error)) return undefined;
  const facts: HostFacts[] = [];
  for (const host of rolesByHost(config)) {
    const read = inventory.hosts.find((entry) => entry.host === host.host);
    if (!read) return undefined;
    facts.push({
      host: host.host,
      roles: host.roles.map((role): RoleFacts => {
        const digest = read.envDigests?.[role];
        return {
          role,
          containers: listedFromInventory(read.containers.filter((container) => container.role === role)),
          current: read.currentVersions[role],
          // Unknown (an older read, no sha256sum) counts as present: the run's relock checks it again.
          envFile: digest !== null,
          ...(digest && inventory.envNonce ? { envDigest: { nonce: inventory.envNonce, digest } } : {}),
          missingTls: [],
          errors: [],
        };
      }),
      ...(host.host === inventory.primaryHost && inventory.lock ? { lock: inventory.lock } : {}),
    });
  }
  return facts;
}

function rolesByHost(config: KamalConfig): { host: string; roles: string[] }[] {
  const hosts = [...new Set(config.roles.flatMap((role) => role.hosts))];
  return hosts.map((host) => ({ host, roles: rolesOnHost(config, host).map((role) => role.name) }));
}

/**
 * Why a confirmed plan no longer fits the hosts, read again when the run takes the lock: another
 * version serving, the target gone, a renamed copy to restore that the plan did not hold (or the
 * other way round), or anything the pre-flight refuses (env file, image, TLS files). Empty: it
 * runs as confirmed. `_replaced_` copies left running are not a change: the plan stops them if it
 * saw them, and leaving them running is what a run without that step did.
 */
export function changesSince(detail: KamalPlanDetail, facts: HostFacts[]): string[] {
  const { config } = detail;
  const changes: string[] = [];
  const target = detail.hostPlans[0]?.tagVersion;
  if (target === undefined) return changes;
  for (const step of detail.hostPlans.flatMap((host) => host.steps)) {
    const role = facts.find((host) => host.host === step.host)?.roles.find((entry) => entry.role === step.role);
    if (!role) continue;
    const where = `${step.host} (${step.role})`;
    changes.push(...role.errors.map((error) => `${where}: ${error}`));
    if (role.current !== step.from) changes.push(`${where} runs ${role.current ?? 'nothing'} now, not ${step.from ?? 'nothing'} as planned`);
    const copy = leftoverCopy(config, role, target)?.name;
    if (copy !== step.restoresCopy) changes.push(copy ? `${where} holds ${target} only as ${copy} now` : `${where}: ${step.restoresCopy} is gone`);
  }
  changes.push(...envFilesChanged(detail, facts));
  const problems = targetProblems(config, facts, target);
  if (problems.missing.length > 0) changes.push(`version ${target} has no container on ${problems.missing.join(', ')} any more`);
  if (problems.missingEnv.length > 0) changes.push(`the role env file is missing on ${problems.missingEnv.join(', ')} (\`kamal env push\` or a deploy writes it)`);
  if (problems.missingTls.length > 0) changes.push(`the custom certificate files kamal-proxy needs are missing on ${problems.missingTls.join(', ')} (\`kamal deploy\` uploads them)`);
  if (problems.missingImage.length > 0) changes.push(`the image ${config.repository}:${target} is missing on ${problems.missingImage.join(', ')}`);
  return changes;
}

/** Env files compared for the plan that are not as they were then (a file the run writes is left out: it is replaced anyway). */
function envFilesChanged(detail: KamalPlanDetail, facts: HostFacts[]): string[] {
  const env = detail.envFiles;
  if (!env?.compared) return [];
  const written = (host: string, role: string) => env.write && env.differences.some((entry) => entry.host === host && entry.role === role && entry.content !== undefined);
  return env.compared.files
    .filter((file) => !written(file.host, file.role))
    .filter((file) => facts.find((host) => host.host === file.host)?.roles.find((entry) => entry.role === file.role)?.envDigest?.digest !== file.digest)
    .map((file) => `the env file of ${file.role} on ${file.host} (${roleEnvFile(detail.config, file.role)}) changed since it was compared`);
}

/** Runs the pre-flight's script on one host and returns what it printed (a lost host rejects). */
export type ReadHost = (host: string, script: string) => Promise<ExecResult>;

/** Every host's facts, read in parallel, one exchange each; `prepareOn` a host's line runs last there. */
export function readHosts(config: KamalConfig, hosts: string[], primaryHost: string, read: ReadHost, prepareOn?: (host: string) => string, env?: EnvFileRead): Promise<PromiseSettledResult<HostFacts>[]> {
  return Promise.allSettled(
    hosts.map(async (host) => {
      const result = await read(host, preflightScript(config, host, host === primaryHost, prepareOn?.(host), env));
      return parseHostFacts(config, host, host === primaryHost, result.stdout, result.stderr, env);
    }),
  );
}

/** What taking the deploy lock with the checks came to. */
export interface LockedRead {
  /** Each host's facts, in the order of the hosts. */
  settled: PromiseSettledResult<HostFacts>[];
  /** Taken; not taken; or undefined when the primary host's exchange did not finish (it may have run). */
  held: boolean | undefined;
  /** Why the primary host did not take it, when it answered: someone's lock, or the failed write. */
  refusal?: string;
  /** The other hosts where `.kamal` was not made, each with why. */
  unprepared: string[];
}

/**
 * The deploy lock on the primary host and `mkdir -p .kamal` on the others, each in the same
 * exchange as the pre-flight's checks (after them: `mkdir` of the lock directory fails if someone
 * holds it, whatever was read). Planning takes it so when the run follows at once; the run, when
 * planning did not.
 */
export async function readHostsTakingLock(config: KamalConfig, hosts: string[], primaryHost: string, lock: LockDetails, read: ReadHost, env?: EnvFileRead): Promise<LockedRead> {
  const made = quoteArgv(makeRunDirectory());
  const settled = await readHosts(config, hosts, primaryHost, read, (host) => (host === primaryHost ? `${made} && ${acquireLock(config, lock)}` : made), env);
  const primary = settled[hosts.indexOf(primaryHost)];
  const answered = primary?.status === 'fulfilled' ? primary.value : undefined;
  const unprepared = settled.flatMap((entry, index) => {
    if (hosts[index] === primaryHost) return [];
    if (entry.status === 'rejected') return [`${hosts[index]}: ${errorText(entry.reason)}`];
    return entry.value.prepared !== 0 ? [`${hosts[index]}: mkdir -p .kamal failed (${exitText(entry.value)})`] : [];
  });
  return { settled, held: answered ? answered.prepared === 0 : undefined, refusal: answered && answered.prepared !== 0 ? lockRefusal(config, primaryHost, answered) : undefined, unprepared };
}

function exitText(facts: HostFacts): string {
  return `exit ${facts.prepared ?? 'unknown'}${facts.prepareError ? `: ${facts.prepareError}` : ''}`;
}

function lockRefusal(config: KamalConfig, primaryHost: string, facts: HostFacts): string {
  const lock = facts.lock;
  if (lock?.unreadable) return `the deploy lock on ${primaryHost} is ${describeLock(lock)}. ${staleLockAdvice(config, primaryHost)}`;
  if (lock) return `the deploy lock on ${primaryHost} is ${describeLock(lock)}.${goneRunAdvice(lock, releaseLockCommand(config))}`.replace(/\.$/, '');
  return `could not take the deploy lock on ${primaryHost} (${exitText(facts)})`;
}

/**
 * The run's first exchange when planning did not take the lock: the lock and `.kamal` with the
 * pre-flight's checks read again. The plan was confirmed on an earlier reading (maybe the
 * tree's), so it runs only if it still fits the hosts.
 */
export async function relockWithChecks(run: RunState): Promise<void> {
  const { detail, runner } = run;
  const primary = detail.primaryHost;
  run.reporter.step(`[ssh ${detail.hosts.join(', ')}] ${detail.commands.makeRunDirectory}, the deploy lock on ${primary}, and the checks again`);
  run.lock.sent = true;
  const locked = await readHostsTakingLock(
    detail.config,
    detail.hosts,
    primary,
    run.lock.details,
    (host, script) => runner.exec(host, script, host === primary ? 'take the deploy lock with the checks' : 'mkdir -p .kamal with the checks'),
    // Only the digests: which keys differ was said in the plan; whether a file changed is all the run asks.
    detail.envFiles?.compared ? { nonce: detail.envFiles.compared.nonce, keys: false } : undefined,
  );
  if (locked.held) run.lock.held = true;
  if (run.deps.signal?.aborted) throw abortError();
  const primaryRead = locked.settled[detail.hosts.indexOf(primary)];
  if (!primaryRead || primaryRead.status === 'rejected') {
    const reason: unknown = primaryRead?.status === 'rejected' ? primaryRead.reason : new Error(`${primary} is not among the hosts`);
    if (reason instanceof HostUnreachable && reason.neverSent) throw new DeployRollbackError(`Nothing was changed: ${errorText(reason)}.`, 'lock');
    // The lock line may have reached the host before it went silent: say how to check.
    if (reason instanceof HostUnreachable) {
      throw new DeployRollbackError(`${errorText(reason)}. The deploy lock may have been taken there: once it answers, \`kamal lock status\` tells, and ${releaseAdvice(detail.config)} releases it if it names this run.`, 'lock');
    }
    throw reason;
  }
  if (locked.refusal) throw new DeployRollbackError(`Nothing was changed: ${locked.refusal}.`, 'lock');
  if (locked.unprepared.length > 0) throw new DeployRollbackError(`Nothing was changed: could not prepare ${locked.unprepared.join('; ')}.`, 'prepare');
  const changes = changesSince(detail, locked.settled.flatMap((entry) => (entry.status === 'fulfilled' ? [entry.value] : [])));
  if (changes.length > 0) {
    throw new DeployRollbackError(`Nothing was changed: the hosts no longer fit the confirmed plan: ${changes.join('; ')}. Refresh and plan again.`, 'preflight');
  }
}
