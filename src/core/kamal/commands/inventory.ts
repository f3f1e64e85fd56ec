import { quoteArgv, shellLine } from '../../shell';
import { assertValidName } from '../config/names';
import type { KamalConfig } from '../config/types';
import { auditLogFile } from './auditor';
import { envFileDigest } from './env-file';

/**
 * What the inventory runs on a host: ONE shell line per host per refresh, printing sections
 * separated by marker lines so a single round trip answers "which containers, which is
 * current, who holds the lock, who deployed what when".
 */

/** Starts every marker line; nothing docker or base64 prints starts with it. */
export const INVENTORY_MARKER = '@@deploy-rollback';

export const INVENTORY_SECTIONS = {
  containers: `${INVENTORY_MARKER}:containers`,
  /** Followed by `:<exit status>` of the `docker container ls` above it. */
  containersExit: `${INVENTORY_MARKER}:containers-exit`,
  latest: `${INVENTORY_MARKER}:latest`,
  latestExit: `${INVENTORY_MARKER}:latest-exit`,
  lock: `${INVENTORY_MARKER}:lock`,
  /** Printed only when the lock directory exists, before its decoded details. */
  locked: `${INVENTORY_MARKER}:locked`,
  /** The audit log's last "Booted app version" lines: who deployed what, when. */
  audit: `${INVENTORY_MARKER}:audit`,
  /** Followed by `:<role>`, then that role's env file digest (see env-file.ts) or `no`. */
  envDigest: `${INVENTORY_MARKER}:env-digest`,
  end: `${INVENTORY_MARKER}:end`,
} as const;

/** `S-R[-D]`: what every container name of a role starts with, before `-V`. */
export function containerPrefix(service: string, role: string, destination?: string): string {
  return [service, role, destination].filter((part): part is string => !!part).join('-');
}

/** `REPO:latest[-D]`: the tag Kamal moves to the deployed version. */
export function latestImage(repository: string, destination?: string): string {
  return `${repository}:${destination ? `latest-${destination}` : 'latest'}`;
}

/** `.kamal/lock-S[-D]`, relative to the SSH user's home (spec: deploy lock). */
export function lockDirectory(service: string, destination?: string): string {
  return `.kamal/lock-${[service, destination].filter((part): part is string => !!part).join('-')}`;
}

/** Kamal's container filters: without a destination the label is present with an empty value. */
export function containerFilterArgs(config: Pick<KamalConfig, 'service' | 'destination'>): string[] {
  return ['--filter', `label=service=${config.service}`, '--filter', `label=destination=${config.destination ?? ''}`];
}

/** `kamal app containers`, with one JSON object a line for parsing. */
export function listContainersArgv(config: Pick<KamalConfig, 'service' | 'destination'>): string[] {
  return ['docker', 'container', 'ls', '--all', ...containerFilterArgs(config), '--format', '{{json .}}'];
}

/**
 * Ids of the service's containers running `REPO:latest[-D]` (or an image built on it), the
 * same `ancestor` test Kamal's `current_running_container` uses. A missing tag lists nothing.
 */
export function listLatestImageContainersArgv(config: Pick<KamalConfig, 'service' | 'destination' | 'repository'>): string[] {
  return [
    'docker',
    'container',
    'ls',
    '--all',
    '--quiet',
    ...containerFilterArgs(config),
    '--filter',
    `ancestor=${latestImage(config.repository, config.destination)}`,
  ];
}

/** Kamal's lock status, split so "no lock" and "lock without readable details" differ. */
export function lockStatusLine(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  const directory = lockDirectory(config.service, config.destination);
  // `test -e` is what Kamal's `stat` asks, as a shell builtin: no process per host per refresh.
  return shellLine(
    ['test', '-e', directory],
    '&&',
    ['echo', INVENTORY_SECTIONS.locked],
    '&&',
    ['cat', `${directory}/details`],
    '|',
    ['base64', '-d'],
    // Encoded again for the way back: no line of a lock can read as a section marker (see lock.ts).
    '|',
    ['base64'],
  );
}

/** What Kamal's `app boot` (deploy, rollback) writes to the host's audit log for each role it boots. */
export const AUDIT_BOOTED = 'Booted app version ';

/** How many boot lines a host reports: the audit log is never rotated, so this bounds the answer. */
export const AUDIT_BOOT_LINES = 300;

/** The host's last boot lines; `-s`: a host never deployed to has no audit log, which is not an error. */
export function auditBootLinesLine(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return shellLine(['grep', '-s', '-F', '-e', AUDIT_BOOTED, auditLogFile(config)], '|', ['tail', '-n', String(AUDIT_BOOT_LINES)]);
}

/** `echo MARKER:$?` — constant text; `$?` must reach the shell unquoted. */
function echoExitStatus(marker: string): string {
  return `echo ${marker}:$?`;
}

/**
 * The one exec per host. The latest-tag listing only matters when a host runs more than one
 * container of the service (two roles, or a deploy in flight): otherwise the single running
 * container is current either way, so that second docker call is skipped. `withLock` on the
 * primary host only: Kamal takes the deploy lock there and nowhere else.
 * The shell glue (`c=$(...)`, `$?`, the `if`) is constant text; every value is quoted argv.
 */
export function inventoryCommand(
  config: Pick<KamalConfig, 'service' | 'destination' | 'repository'>,
  options: { withLock: boolean; envDigests?: { roles: string[]; nonce: string } },
): string {
  assertValidName('service', config.service);
  if (config.destination !== undefined) assertValidName('destination', config.destination);
  assertValidName('image', config.repository);
  // Two or more running/restarting containers, matched with `case` (a builtin) rather than grep.
  const active = ['running', 'restarting'].map((state) => quoteArgv([`"State":"${state}"`]));
  const twoActive = active.flatMap((first) => active.map((second) => `*${first}*${second}*`)).join('|');
  const parts = [
    quoteArgv(['echo', INVENTORY_SECTIONS.containers]),
    `c=$(${quoteArgv(listContainersArgv(config))})`,
    's=$?',
    `printf '%s\\n' "$c"`,
    `echo ${INVENTORY_SECTIONS.containersExit}:$s`,
    `case "$c" in ${twoActive}) ${quoteArgv(['echo', INVENTORY_SECTIONS.latest])}`,
    quoteArgv(listLatestImageContainersArgv(config)),
    `${echoExitStatus(INVENTORY_SECTIONS.latestExit)} ;; esac`,
  ];
  if (options.withLock) {
    parts.push(
      quoteArgv(['echo', INVENTORY_SECTIONS.lock]),
      lockStatusLine(config),
      // base64 output may lack a final newline; keep the end marker on its own line.
      quoteArgv(['echo']),
    );
  }
  parts.push(quoteArgv(['echo', INVENTORY_SECTIONS.audit]), auditBootLinesLine(config));
  // A rollback planned from this read needs no exchange of its own when the env files are as Kamal would write them.
  for (const role of options.envDigests?.roles ?? []) {
    assertValidName('role', role);
    parts.push(quoteArgv(['echo', `${INVENTORY_SECTIONS.envDigest}:${role}`]), envFileDigest(config, role, options.envDigests!.nonce));
  }
  parts.push(quoteArgv(['echo', INVENTORY_SECTIONS.end]));
  return parts.join(' ; ');
}

/** For "Show Container Logs": the last `tail` lines with timestamps, stdout and stderr together. */
export function containerLogsCommand(container: string, tail = 200): string {
  if (!Number.isInteger(tail) || tail <= 0) throw new RangeError(`tail must be a positive integer, got ${tail}`);
  // The app's stderr is half its log; `2>&1` is constant text.
  return `${quoteArgv(['docker', 'logs', '--timestamps', '--tail', String(tail), container])} 2>&1`;
}
