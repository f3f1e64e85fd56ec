import { createSessionPool } from '../core/ssh/pool';
import type { SessionPool } from '../core/ssh/types';
import type { Output } from './log';
import type { Settings } from './settings';
import { sshPromptsFor } from './ssh-prompts';
import type { Prompter } from './ui';

/** settings.json is not checked against the schema's bounds: a value outside them falls back to the nearest bound. */
function seconds(value: number, min: number, max: number, fallback: number): number {
  return (Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : fallback) * 1000;
}

/** Opened on the first command that needs a host; every remote command is logged at debug level (redacted by the pool). */
export function createPool(output: Output, prompter: () => Prompter, settings: Pick<Settings, 'sshConnectTimeoutSeconds' | 'sshCommandTimeoutSeconds' | 'sshKeepaliveIntervalSeconds'>): SessionPool {
  return createSessionPool({
    prompts: sshPromptsFor(prompter),
    connectTimeoutMs: seconds(settings.sshConnectTimeoutSeconds, 1, 120, 10),
    commandTimeoutMs: seconds(settings.sshCommandTimeoutSeconds, 5, 3600, 120),
    keepaliveIntervalMs: seconds(settings.sshKeepaliveIntervalSeconds, 1, 60, 5),
    log: (line) => output.channel.debug(`[ssh] ${line}`),
  });
}
