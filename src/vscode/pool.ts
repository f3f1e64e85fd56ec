import { createSessionPool } from '../core/ssh/pool';
import type { SessionPool } from '../core/ssh/types';
import type { Output } from './log';
import { vscodeSshPrompts } from './ssh-prompts';

/** Opened on the first command that needs a host; every remote command is logged at debug level (redacted by the pool). */
export function createPool(output: Output, connectTimeoutSeconds: number): SessionPool {
  return createSessionPool({
    prompts: vscodeSshPrompts,
    connectTimeoutMs: connectTimeoutSeconds * 1000,
    log: (line) => output.channel.debug(`[ssh] ${line}`),
  });
}
