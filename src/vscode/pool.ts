import { createSessionPool } from '../core/ssh/pool';
import type { SessionPool } from '../core/ssh/types';
import type { Output } from './log';
import { sshPromptsFor } from './ssh-prompts';
import type { Prompter } from './ui';

/** Opened on the first command that needs a host; every remote command is logged at debug level (redacted by the pool). */
export function createPool(output: Output, prompter: () => Prompter, connectTimeoutSeconds: number): SessionPool {
  return createSessionPool({
    prompts: sshPromptsFor(prompter),
    connectTimeoutMs: connectTimeoutSeconds * 1000,
    log: (line) => output.channel.debug(`[ssh] ${line}`),
  });
}
