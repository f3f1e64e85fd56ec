import type { SessionPool } from '../core/ssh/types';
import type { Output } from './log';

export function createPool(_output: Output, _connectTimeoutSeconds: number): SessionPool {
  throw new Error('SSH is not wired yet');
}
