import * as vscode from 'vscode';
import { appPath, type GitopsRepo } from '../core/gitops/discovery';
import { git, shortSha } from '../core/gitops/git';
import { DeployRollbackError, type Release } from '../core/model';

/** Read-only virtual documents for dry-run plans, container logs and histories. */
export class ReadOnlyDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  static readonly scheme = 'deploy-rollback';
  private readonly contents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private counter = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '';
  }

  async open(title: string, text: string, language?: string): Promise<vscode.TextEditor> {
    const safeTitle = title.replace(/[/\\?#%]/g, '-');
    const uri = vscode.Uri.from({ scheme: ReadOnlyDocuments.scheme, path: `/${safeTitle}`, query: String(++this.counter) });
    this.contents.set(uri.toString(), text);
    let document = await vscode.workspace.openTextDocument(uri);
    if (language) document = await vscode.languages.setTextDocumentLanguage(document, language);
    return vscode.window.showTextDocument(document, { preview: true });
  }

  dispose(): void {
    this.changed.dispose();
    this.contents.clear();
  }
}

interface GitContentQuery {
  root: string;
  /** Empty: the file does not exist on that side (added or deleted). */
  ref: string;
}

/** `deploy-rollback-git:/<path>?{root, ref}`: a file as one commit has it, read with `git show`. */
export class GitContent implements vscode.TextDocumentContentProvider {
  static readonly scheme = 'deploy-rollback-git';

  static uri(root: string, ref: string, file: string): vscode.Uri {
    const query: GitContentQuery = { root, ref };
    return vscode.Uri.from({ scheme: GitContent.scheme, path: `/${file}`, query: JSON.stringify(query) });
  }

  async provideTextDocumentContent(uri: vscode.Uri, token: vscode.CancellationToken): Promise<string> {
    const { root, ref } = JSON.parse(uri.query) as GitContentQuery;
    if (!ref) return '';
    const controller = new AbortController();
    token.onCancellationRequested(() => controller.abort());
    return git(['show', `${ref}:${uri.path.slice(1)}`], { cwd: root, signal: controller.signal, step: 'reading a file of the release' });
  }
}

/** What a gitops release commit changed under `<env>/<app>`: status letter and path per file. */
export async function releaseChanges(repo: GitopsRepo, release: Release): Promise<{ status: string; file: string }[]> {
  const env = repo.envs.find((candidate) => candidate.name === release.app.environment.name);
  if (!env) throw new DeployRollbackError(`No environment ${release.app.environment.name} in ${repo.root}`);
  const dir = appPath(env, release.app.name);
  // --root: the first commit of a repository has no parent to compare with.
  const output = await git(['diff-tree', '--root', '--no-commit-id', '-r', '--name-status', release.id, '--', dir], { cwd: repo.root, step: 'listing the release change' });
  return output
    .split('\n')
    .map((line) => line.split('\t'))
    .filter((parts) => parts.length >= 2)
    .map(([status, file]) => ({ status: status.charAt(0), file }));
}

/**
 * Opens the change a gitops release made to its app as a diff, as GitLens opens a commit: one
 * file in the diff editor, several in the multi-file changes editor.
 */
export async function openReleaseChange(repo: GitopsRepo, release: Release): Promise<void> {
  const sha = release.id;
  const changes = await releaseChanges(repo, release);
  const where = `${release.app.environment.name}/${release.app.name}`;
  if (changes.length === 0) throw new DeployRollbackError(`Release ${release.version} (${shortSha(sha)}) changed nothing under ${where}.`);
  const sides = changes.map(({ status, file }) => ({
    file,
    left: GitContent.uri(repo.root, status === 'A' ? '' : `${sha}^`, file),
    right: GitContent.uri(repo.root, status === 'D' ? '' : sha, file),
  }));
  const title = `${where} ${release.version} (${shortSha(sha)})`;
  if (sides.length === 1) {
    await vscode.commands.executeCommand('vscode.diff', sides[0].left, sides[0].right, `${sides[0].file.split('/').pop()} — ${title}`, { preview: true });
    return;
  }
  await vscode.commands.executeCommand(
    'vscode.changes',
    title,
    sides.map((side) => [vscode.Uri.file(`${repo.root}/${side.file}`), side.left, side.right]),
  );
}
