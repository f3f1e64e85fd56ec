// Shared by the extension-host suites (test/integration/*.test.ts).
import { readdirSync } from 'node:fs';
import * as vscode from 'vscode';
import type { DeployRollbackApi } from '../../src/vscode/extension';

export const EXTENSION_ID = 'deploy-rollback.deploy-rollback';

/** Set by both runners; the version line a run is meant to prove, e.g. "1.100". */
export const EXPECTED_VSCODE_VERSION_ENV = 'DEPLOY_ROLLBACK_EXPECT_VSCODE_VERSION';

export async function activateExtension(): Promise<DeployRollbackApi> {
  const extension = vscode.extensions.getExtension<DeployRollbackApi>(EXTENSION_ID);
  if (!extension) throw new Error(`extension ${EXTENSION_ID} is not installed in this VS Code`);
  return extension.activate();
}

export function workspaceFolder(): string {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!folder) throw new Error('the integration suite was started without a workspace folder');
  return folder;
}

export function workspaceIsEmpty(): boolean {
  return readdirSync(workspaceFolder()).length === 0;
}

/** Polls until `condition` returns a truthy value; fails naming `what` after `timeoutMs`. */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { what, timeoutMs = 10_000, intervalMs = 50 }: { what: string; timeoutMs?: number; intervalMs?: number },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
