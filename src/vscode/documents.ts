import * as vscode from 'vscode';

/** Read-only virtual documents for dry-run plans and container logs. */
export class ReadOnlyDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  static readonly scheme = 'deploy-rollback';
  private readonly contents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private counter = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '';
  }

  async open(title: string, text: string): Promise<vscode.TextEditor> {
    const safeTitle = title.replace(/[/\\?#%]/g, '-');
    const uri = vscode.Uri.from({ scheme: ReadOnlyDocuments.scheme, path: `/${safeTitle}`, query: String(++this.counter) });
    this.contents.set(uri.toString(), text);
    const document = await vscode.workspace.openTextDocument(uri);
    return vscode.window.showTextDocument(document, { preview: true });
  }

  dispose(): void {
    this.changed.dispose();
    this.contents.clear();
  }
}
