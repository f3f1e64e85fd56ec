// How the runners and the suite inside the extension host talk. The extension host is started
// by code-server (or VS Code), not by the runner, so its environment is not guaranteed to be
// ours: the runner writes env.json and the suite writes result.json and output.log into a
// directory both derive from the workspace path. Imported by test/integration/index.ts too,
// so no vscode and no runner-only modules here.
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Set by the runner when it can; the suite prefers it over the derived location. */
export const RESULT_FILE_ENV = 'DEPLOY_ROLLBACK_TEST_RESULT';

export interface TestFailure {
  title: string;
  message: string;
}

export interface TestResult {
  passed: number;
  failed: number;
  pending: number;
  failures: TestFailure[];
  vscodeVersion: string;
  /** How the suite found its channel: "env" or "workspace". Tells which mechanism worked. */
  channel: 'env' | 'workspace';
}

function canonical(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}

/** A directory outside the workspace (fixtures stay clean, e.g. a gitops repo stays un-dirty). */
export function channelDirFor(workspace: string): string {
  const key = createHash('sha256').update(canonical(workspace)).digest('hex').slice(0, 16);
  return path.join(tmpdir(), 'deploy-rollback-tests', key);
}

export const channelFiles = {
  env: 'env.json',
  result: 'result.json',
  output: 'output.log',
} as const;
