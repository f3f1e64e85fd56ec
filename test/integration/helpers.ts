// Shared by the extension-host suites (test/integration/*.test.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DeployRollbackApi } from '../../src/vscode/extension';
import type { TreeNode } from '../../src/vscode/tree/nodes';
import { makeGitopsFixture, type GitopsFixture, type GitopsFixtureSpec } from '../fixtures/gitops';

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
  return fs.readdirSync(workspaceFolder()).length === 0;
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

/** A node's children once its read settled: a slow Kamal read first shows a "Reading the hosts…" row, or the rows read before marked "reading…". */
export async function settledChildren(api: DeployRollbackApi, node: TreeNode | undefined, timeoutMs = 60_000): Promise<TreeNode[]> {
  return waitFor(
    async () => {
      const children = await api.tree.getChildren(node);
      return children.some((child) => child.kind === 'loading' || child.lastKnown?.state === 'reading') ? undefined : children;
    },
    { what: `the children of ${node?.id ?? 'the root'} to be read`, timeoutMs, intervalMs: 100 },
  );
}

/** Registers hooks that point `deployRollback.gitops.paths` at a fresh fixture for one suite. */
export function useGitopsFixture(spec: GitopsFixtureSpec): { api: () => DeployRollbackApi; fixture: () => GitopsFixture } {
  let api: DeployRollbackApi;
  let dir: string;
  let fixture: GitopsFixture;
  const settings = () => vscode.workspace.getConfiguration('deployRollback');
  before(async () => {
    api = await activateExtension();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-vscode-gitops-'));
    fixture = makeGitopsFixture(path.join(dir, 'gitops'), spec);
    await settings().update('gitops.paths', [fixture.work], vscode.ConfigurationTarget.Global);
    await api.refresh();
  });
  after(async () => {
    api.testing.setPrompter(undefined);
    await settings().update('gitops.paths', undefined, vscode.ConfigurationTarget.Global);
    await api.refresh();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { api: () => api, fixture: () => fixture };
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
