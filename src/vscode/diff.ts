import * as path from 'node:path';
import * as vscode from 'vscode';
import { changedFiles } from '../core/commits/diff';
import { DeployRollbackError, type Release, type SourceCommit } from '../core/model';
import { commitTitle, shortCommitSha } from './code';
import { GitContent } from './documents';

/** git's empty tree: what a repository's first commit is compared with. */
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/** One row of VS Code's multi-file diff editor (`vscode.changes`): the file, then its two sides; a side is absent when the file is added or deleted. */
export type ChangesResource = [vscode.Uri, vscode.Uri | undefined, vscode.Uri | undefined];

/** What a compare opened, returned by the commands so callers (and tests) can see it. */
export interface ChangesView {
  title: string;
  repository: string;
  resources: ChangesResource[];
}

/** A file as commit `ref` has it, named as the built-in git extension's toGitUri names it: `git:/abs/path?{"path","ref"}`. */
export function builtInGitUri(root: string, file: string, ref: string): vscode.Uri {
  const uri = vscode.Uri.file(path.join(root, file));
  return uri.with({ scheme: 'git', query: JSON.stringify({ path: uri.fsPath, ref }) });
}

interface GitExtensionRepository {
  rootUri: vscode.Uri;
}

interface GitExtensionApi {
  getRepository(uri: vscode.Uri): GitExtensionRepository | null;
  openRepository?(root: vscode.Uri): Promise<GitExtensionRepository | null>;
}

interface GitExtensionExports {
  enabled: boolean;
  getAPI(version: 1): GitExtensionApi;
}

/**
 * How a file at a commit is named: the built-in git extension's `git:` URIs when it has (or can
 * open) the repository, so the diff editor is the one git and GitLens users know; else this
 * extension's own git content, for a user who turned the git extension off.
 */
async function sideUri(root: string): Promise<(file: string, ref: string) => vscode.Uri> {
  const extension = vscode.extensions.getExtension<GitExtensionExports>('vscode.git');
  try {
    const exports = extension && (extension.isActive ? extension.exports : await extension.activate());
    if (exports?.enabled) {
      const api = exports.getAPI(1);
      const rootUri = vscode.Uri.file(root);
      const open = api.getRepository(rootUri);
      const repository = open && open.rootUri.fsPath === rootUri.fsPath ? open : await api.openRepository?.(rootUri);
      if (repository) return (file, ref) => builtInGitUri(root, file, ref);
    }
  } catch {
    // The git extension is disabled or failed to start: the fallback below reads the same blobs.
  }
  return (file, ref) => GitContent.uri(root, ref, file);
}

/** The files that differ from `fromSha` to `toSha`, as rows of the multi-file diff editor. */
export async function changesBetween(repository: string, fromSha: string, toSha: string): Promise<ChangesResource[]> {
  const files = await changedFiles(repository, fromSha, toSha);
  const side = await sideUri(repository);
  return files.map((file): ChangesResource => [
    vscode.Uri.file(path.join(repository, file.path)),
    file.status === 'added' ? undefined : side(file.oldPath ?? file.path, fromSha),
    file.status === 'deleted' ? undefined : side(file.path, toSha),
  ]);
}

async function openChanges(repository: string, fromSha: string, toSha: string, title: string, nothing: string): Promise<ChangesView | undefined> {
  const resources = await changesBetween(repository, fromSha, toSha);
  if (resources.length === 0) {
    void vscode.window.showInformationMessage(nothing);
    return undefined;
  }
  await vscode.commands.executeCommand('vscode.changes', title, resources);
  return { title, repository, resources };
}

function localCommit(release: Release, what: string): { commit: SourceCommit; repository: string } {
  const code = release.code;
  if (code?.commit && code.repository) return { commit: code.commit, repository: code.repository };
  const why = code?.missing ?? 'it names no commit of a repository in this workspace';
  throw new DeployRollbackError(`${what} ${release.version} has no commit to show: ${why}.`);
}

/**
 * The code diff from the running release to `release` (what production would run after going to
 * it), as GitLens' "Compare with" opens it: the running side on the left.
 */
export async function compareWithRunning(release: Release, running: Release | undefined): Promise<ChangesView | undefined> {
  const target = localCommit(release, 'Release');
  if (!running) throw new DeployRollbackError(`No running release of ${release.app.name} in ${release.app.environment.name} to compare ${release.version} with.`);
  const current = localCommit(running, 'The running release');
  if (current.repository !== target.repository) {
    throw new DeployRollbackError(`${running.version} and ${release.version} were built from different repositories (${current.repository}, ${target.repository}): nothing to compare.`);
  }
  const from = shortCommitSha(current.commit.sha);
  const to = shortCommitSha(target.commit.sha);
  if (from === to && current.commit.sha === target.commit.sha) {
    void vscode.window.showInformationMessage(`${release.version} runs the same commit as the running release (${from}): no code differs.`);
    return undefined;
  }
  const title = `${release.app.name}: ${from} (running) ↔ ${to}`;
  return openChanges(target.repository, current.commit.sha, target.commit.sha, title, `No file differs between the running release (${from}) and ${to}.`);
}

/** The release's commit as a diff against its first parent (the change it made), as the git extension opens a commit. */
export async function openCommit(release: Release): Promise<ChangesView | undefined> {
  if (!release.code?.commit && release.url) {
    await vscode.env.openExternal(vscode.Uri.parse(release.url));
    return undefined;
  }
  const { commit, repository } = localCommit(release, 'Release');
  const title = `${shortCommitSha(commit.sha)} ${commitTitle(commit)}`;
  return openChanges(repository, commit.parents[0] ?? EMPTY_TREE, commit.sha, title, `Commit ${shortCommitSha(commit.sha)} changes no file.`);
}
