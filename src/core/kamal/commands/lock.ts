/**
 * Kamal 2's deploy lock on the primary host (lib/kamal/commands/lock.rb): a directory
 * `.kamal/lock-S[-D]` whose `details` file holds base64 text naming the holder.
 */
import type { LockInfo } from '../../model';
import { shellLine } from '../../shell';
import { oneLine } from '../../text';
import type { KamalConfig } from '../config/types';
import { serviceWithDestination } from './app';

/**
 * Kamal's AUTOMATIC_DEPLOY_LOCK_MESSAGE (cli/base.rb): `--lock-wait` waits only for a lock whose
 * status includes it, and fails at once on any other ("held manually"). Kamal's own commands write it.
 */
export const AUTOMATIC_DEPLOY_LOCK_MESSAGE = 'Automatic deploy lock';

export function lockDirectory(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return `.kamal/lock-${serviceWithDestination(config)}`;
}

export function lockDetailsFile(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return `${lockDirectory(config)}/details`;
}

/** Ruby's `Base64.encode64`: a newline after every 60 characters and at the end. */
export function rubyBase64(text: string): string {
  const encoded = Buffer.from(text, 'utf8').toString('base64');
  let wrapped = '';
  for (let index = 0; index < encoded.length; index += 60) wrapped += `${encoded.slice(index, index + 60)}\n`;
  return wrapped;
}

export interface LockDetails {
  holder: string;
  /** UTC ISO 8601 without fractions, as Ruby's `Time#iso8601` prints it. */
  lockedAt: string;
  version: string;
  message: string;
}

export function lockDetailsText(details: LockDetails): string {
  return `Locked by: ${details.holder} at ${details.lockedAt}\nVersion: ${details.version}\nMessage: ${details.message}`;
}

/**
 * Kamal's `mkdir .kamal/lock-S && echo "<base64>" > .kamal/lock-S/details` (mkdir fails if someone
 * holds it), except that a failed write (disk full) removes the directory this line just made:
 * Kamal leaves it empty, and every later run then fails "File exists" naming nobody.
 */
export function acquireLock(config: Pick<KamalConfig, 'service' | 'destination'>, details: LockDetails): string {
  const write = shellLine(['echo', rubyBase64(lockDetailsText(details))], '>', [lockDetailsFile(config)]);
  return `${shellLine(['mkdir', lockDirectory(config)])} && { ${write} || { ${shellLine(['rm', '-rf', lockDirectory(config)])}; false; }; }`;
}

/** Prints `present` when the lock directory exists, whatever its details say (or whether there are any). */
export function lockDirectoryPresent(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return shellLine(['test', '-d', lockDirectory(config)], '&&', ['echo', 'present'], '||', ['true']);
}

/** A lock directory with no readable details: nobody can be named as its holder. */
export function unreadableLock(): LockInfo {
  return { holder: 'nobody recorded', unreadable: true };
}

export function releaseAdvice(config: Pick<KamalConfig, 'destination'>): string {
  return `\`kamal lock release${config.destination ? ` -d ${config.destination}` : ''}\``;
}

/**
 * For a lock directory that names nobody: Kamal's release starts with `rm details`, so with no
 * details file it answers "There is no deploy lock" and leaves the directory. Says what works.
 */
export function staleLockAdvice(config: Pick<KamalConfig, 'service' | 'destination' | 'file'>, host: string): string {
  return `${releaseAdvice(config)} cannot remove a lock without details (Kamal answers "There is no deploy lock" and leaves it). If no deploy is running, remove it with ${releaseLockCommand(config)} (Release Stale Lock on the app in the Releases view), or \`rm -r ${lockDirectory(config)}\` on ${host}`;
}

/** `deploy-rollback release-lock --kamal FILE [-d D]`, quoted for a terminal. */
export function releaseLockCommand(config: Pick<KamalConfig, 'destination' | 'file'>): string {
  return `\`deploy-rollback release-lock --kamal ${shellLine([config.file])}${config.destination ? ` -d ${shellLine([config.destination])}` : ''}\``;
}

/**
 * Removes the lock directory only if it names nobody (no details, or details without Kamal's
 * `Locked by:` line), checked on the host in the same line: prints `removed`, `named` (a holder
 * is recorded: left alone), `absent`, or fails when the directory holds anything else.
 */
export function removeStaleLock(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  const directory = shellLine([lockDirectory(config)]);
  const details = shellLine([lockDetailsFile(config)]);
  const named = `cat ${details} 2>/dev/null | base64 -d 2>/dev/null | grep -q '^Locked by: '`;
  return `if test -d ${directory}; then if ${named}; then echo named; else rm -f ${details} && rmdir ${directory} && echo removed; fi; else echo absent; fi`;
}

/**
 * Removes the lock of a run that is gone only while its details still hold the lines it was judged
 * by (holder and time, message naming the run), checked on the host in the same line: prints
 * `removed`, `changed` (the lock is someone else's by now: left alone) or `absent`.
 */
export function removeLockOfGoneRun(config: Pick<KamalConfig, 'service' | 'destination'>, lock: Pick<LockInfo, 'holder' | 'lockedAt' | 'message'>): string {
  const directory = shellLine([lockDirectory(config)]);
  const details = shellLine([lockDetailsFile(config)]);
  const has = (line: string) => `cat ${details} 2>/dev/null | base64 -d 2>/dev/null | ${shellLine(['grep', '-qxF', '-e', line])}`;
  const lockedBy = `Locked by: ${lock.holder}${lock.lockedAt !== undefined ? ` at ${lock.lockedAt}` : ''}`;
  return `if test -d ${directory}; then if ${has(lockedBy)} && ${has(`Message: ${lock.message ?? ''}`)}; then rm -f ${details} && rmdir ${directory} && echo removed; else echo changed; fi; else echo absent; fi`;
}

/** `rm .kamal/lock-S/details && rm -r .kamal/lock-S` */
export function releaseLock(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return shellLine(['rm', lockDetailsFile(config)], '&&', ['rm', '-r', lockDirectory(config)]);
}

/**
 * Releases the lock only when its details are ours (holder and time, else holder and message), for
 * the emergency exit of an interrupted run that cannot tell whether its lock command reached the host.
 */
export function releaseLockIfOurs(config: Pick<KamalConfig, 'service' | 'destination'>, holder: string, message: string, lockedAt?: string): string {
  const decoded = shellLine(['cat', lockDetailsFile(config)], '|', ['base64', '-d']);
  const mine = (line: string) => `${decoded} 2>/dev/null | ${shellLine(['grep', '-qF', '-e', line])}`;
  // With its time, the first line is this run's own, whatever the message says by then (a roll forward rewrites it).
  const ours = lockedAt !== undefined ? mine(`Locked by: ${holder} at ${lockedAt}`) : `${mine(`Locked by: ${holder} at `)} && ${mine(`Message: ${message}`)}`;
  return `if ${ours}; then ${releaseLock(config)}; fi`;
}

/** `stat .kamal/lock-S > /dev/null && cat .kamal/lock-S/details | base64 -d`: exits non-zero when free. */
export function lockStatus(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return shellLine(['stat', lockDirectory(config)], '>', ['/dev/null'], '&&', ['cat', lockDetailsFile(config)], '|', ['base64', '-d']);
}

/**
 * Kamal's lock status, its decoded text encoded again for the way back: whatever the details say,
 * only base64 letters reach the answer, so no line of a lock can read as a marker of the exchange
 * it travels in (a message "@@deploy-rollback rc 0" would otherwise end a section, or fake one).
 */
export function lockStatusEncoded(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return `${lockStatus(config)} | base64`;
}

/** The text {@link lockStatusEncoded} (or any `… | base64 -d | base64` line) carried, from its answer lines. */
export function decodeLockTransport(lines: readonly string[]): string {
  return Buffer.from(lines.join('').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('utf8');
}

/** Reads decoded lock details; tolerant of extra lines and of a message spanning several lines. */
export function parseLockDetails(text: string): LockInfo {
  const lines = text.replace(/\r/g, '').split('\n');
  const first = lines.find((line) => line.startsWith('Locked by: '));
  if (!first) return unreadableLock();
  const info: LockInfo = { holder: 'unknown' };
  if (first) {
    const match = /^Locked by: (.*) at (\S+)\s*$/.exec(first);
    if (match) {
      info.holder = match[1];
      info.lockedAt = match[2];
    } else {
      info.holder = first.slice('Locked by: '.length).trim();
    }
  }
  const versionLine = lines.find((line) => line.startsWith('Version: '));
  if (versionLine) info.version = versionLine.slice('Version: '.length).trim();
  const messageIndex = lines.findIndex((line) => line.startsWith('Message: '));
  if (messageIndex >= 0) {
    info.message = [lines[messageIndex].slice('Message: '.length), ...lines.slice(messageIndex + 1)].join('\n').trim();
  }
  return info;
}

/** The lock as a view shows it: every field the host wrote on one line, control characters escaped. */
export function shownLock(lock: LockInfo): LockInfo {
  const shown: LockInfo = { ...lock, holder: oneLine(lock.holder) };
  if (lock.lockedAt !== undefined) shown.lockedAt = oneLine(lock.lockedAt);
  if (lock.version !== undefined) shown.version = oneLine(lock.version);
  if (lock.message !== undefined) shown.message = oneLine(lock.message);
  return shown;
}

export function describeLock(lock: LockInfo): string {
  if (lock.unreadable) return 'present but its details are empty or unreadable, so nobody is named (a lock that failed half-way leaves this)';
  // Whatever the lock file says is the host's text, shown, never obeyed.
  const parts = [`held by ${oneLine(lock.holder)}`];
  if (lock.lockedAt) parts.push(`since ${oneLine(lock.lockedAt)}`);
  if (lock.version) parts.push(`for version ${oneLine(lock.version)}`);
  let text = parts.join(' ');
  if (lock.message) text += `: "${oneLine(lock.message)}"`;
  return text;
}

/** Ruby's `Time.now.utc.iso8601`: `2026-11-23T00:17:41Z`. */
export function utcIso8601(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
