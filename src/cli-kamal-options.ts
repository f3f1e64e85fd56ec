/**
 * The CLI's Kamal run options, as `kamal rollback` takes them (lib/kamal/cli/base.rb):
 * `-r/--roles`, `-h/--hosts` (comma-separated, `*` wildcards), `-p/--primary`, `-H/--skip-hooks`,
 * `--lock-wait` with `--lock-wait-timeout` (900 s) and `--lock-wait-interval` (15 s).
 */
import { splitScopeList, type KamalScopeRequest } from './core/kamal/rollback/scope';

export const DEFAULT_LOCK_WAIT_TIMEOUT_S = 900;
export const DEFAULT_LOCK_WAIT_INTERVAL_S = 15;
/** setTimeout fires at once beyond 2^31 ms (24.8 days): a day is bound enough for a lock. */
const MAX_LOCK_WAIT_S = 86_400;

/** Their `parseArgs` declarations, with Kamal's short forms. */
export const KAMAL_RUN_OPTION_SPECS = {
  roles: { type: 'string', short: 'r' },
  hosts: { type: 'string', short: 'h' },
  primary: { type: 'boolean', short: 'p' },
  'skip-hooks': { type: 'boolean', short: 'H' },
  'lock-wait': { type: 'boolean' },
  'lock-wait-timeout': { type: 'string' },
  'lock-wait-interval': { type: 'string' },
} as const;

export interface KamalRunFlags {
  roles?: string;
  hosts?: string;
  primary?: boolean;
  'skip-hooks'?: boolean;
  'lock-wait'?: boolean;
  'lock-wait-timeout'?: string;
  'lock-wait-interval'?: string;
}

export interface KamalRunOptions {
  scope?: KamalScopeRequest;
  skipHooks?: boolean;
  lockWait?: { timeoutMs: number; intervalMs: number };
}

/** A usage mistake in these options (exit 2). */
export class KamalOptionsError extends Error {}

function seconds(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0 || number > MAX_LOCK_WAIT_S) {
    throw new KamalOptionsError(`--${name} takes seconds above 0, at most ${MAX_LOCK_WAIT_S}, not ${JSON.stringify(value)}`);
  }
  return number;
}

function list(value: string | undefined, name: string): string[] | undefined {
  if (value === undefined) return undefined;
  const items = splitScopeList(value);
  // An unset variable (`-r "$ROLE"`) must not silently mean "every role".
  if (items.length === 0) throw new KamalOptionsError(`--${name} is empty: give names (comma-separated, * wildcards), or leave --${name} out for all`);
  return items;
}

/** Reads the options; `kamal` says whether the command is for a Kamal config (the only one they apply to). */
export function kamalRunOptions(flags: KamalRunFlags, kamal: boolean): KamalRunOptions {
  const given = (['roles', 'hosts', 'primary', 'skip-hooks', 'lock-wait', 'lock-wait-timeout', 'lock-wait-interval'] as const).filter((name) => flags[name] !== undefined && flags[name] !== false);
  if (!kamal && given.length > 0) throw new KamalOptionsError(`--${given[0]} is for Kamal rollbacks (--kamal CONFIG)`);
  if (!flags['lock-wait']) {
    const stray = (['lock-wait-timeout', 'lock-wait-interval'] as const).find((name) => flags[name] !== undefined);
    if (stray) throw new KamalOptionsError(`--${stray} needs --lock-wait`);
  }
  const roles = list(flags.roles, 'roles');
  const hosts = list(flags.hosts, 'hosts');
  const options: KamalRunOptions = {};
  if (roles || hosts || flags.primary) options.scope = { ...(roles ? { roles } : {}), ...(hosts ? { hosts } : {}), ...(flags.primary ? { primary: true } : {}) };
  if (flags['skip-hooks']) options.skipHooks = true;
  if (flags['lock-wait']) {
    const timeout = seconds(flags['lock-wait-timeout'], 'lock-wait-timeout', DEFAULT_LOCK_WAIT_TIMEOUT_S);
    const interval = seconds(flags['lock-wait-interval'], 'lock-wait-interval', DEFAULT_LOCK_WAIT_INTERVAL_S);
    options.lockWait = { timeoutMs: Math.round(timeout * 1000), intervalMs: Math.round(interval * 1000) };
  }
  return options;
}
