/**
 * Kamal 2's audit log (lib/kamal/commands/auditor.rb): one line per event in
 * `.kamal/S[-D]-audit.log` on each host, `[time] [performer] [destination] [role] message`.
 */
import { shellLine } from '../../shell';
import type { KamalConfig } from '../config/types';
import { makeRunDirectory, serviceWithDestination } from './app';

export function auditLogFile(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return `.kamal/${serviceWithDestination(config)}-audit.log`;
}

export interface AuditTags {
  recordedAt: string;
  performer: string;
  role?: string;
}

/** Tags as Kamal prints them: absent ones (no destination, no role) leave no brackets. */
export function auditLine(config: Pick<KamalConfig, 'destination'>, tags: AuditTags, message: string): string {
  const values = [tags.recordedAt, tags.performer, config.destination, tags.role].filter((value): value is string => value !== undefined);
  return `${values.map((value) => `[${value}]`).join(' ')} ${message}`;
}

/** `mkdir -p .kamal && echo "[...] message" >> .kamal/S-audit.log` */
export function recordAudit(config: Pick<KamalConfig, 'service' | 'destination'>, tags: AuditTags, message: string): string {
  return shellLine(makeRunDirectory(), '&&', ['echo', auditLine(config, tags, message)], '>>', [auditLogFile(config)]);
}
