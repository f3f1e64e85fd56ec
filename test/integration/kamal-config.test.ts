import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DeployRollbackApi } from '../../src/vscode/extension';
import type { EnvironmentNode, ProblemNode } from '../../src/vscode/tree/nodes';
import { activateExtension, waitFor } from './helpers';

describe('Kamal config problems in VS Code', function () {
  this.timeout(60_000);
  let api: DeployRollbackApi;
  let dir: string;
  let configFile: string;
  const settings = () => vscode.workspace.getConfiguration('deployRollback');

  before(async () => {
    api = await activateExtension();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-vscode-kamal-config-'));
    configFile = path.join(dir, 'config', 'deploy.yml');
    fs.mkdirSync(path.dirname(configFile), { recursive: true });
    fs.writeFileSync(configFile, 'service: chat\nimage: bars/app\nservers:\n  web:\n    - web-1\n   - web-2\n');
    await settings().update('kamal.configPaths', [configFile], vscode.ConfigurationTarget.Global);
    await api.refresh();
  });

  after(async () => {
    await settings().update('kamal.configPaths', undefined, vscode.ConfigurationTarget.Global);
    await api.refresh();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows a YAML error as an error item in the tree and a diagnostic at its line and column', async () => {
    const environment = (await api.tree.getChildren()).find((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === configFile);
    assert.ok(environment, 'the broken config is still an environment');
    const problems = (await api.tree.getChildren(environment)).filter((node): node is ProblemNode => node.kind === 'problem');
    assert.ok(problems.length >= 1, 'an error item under the environment');
    assert.match(problems[0]!.problem.message, /YAML syntax error/);
    const item = api.tree.getTreeItem(problems[0]!);
    assert.equal(item.description, `${vscode.workspace.asRelativePath(configFile)}:6`);

    const diagnostics = await waitFor(() => {
      const found = vscode.languages.getDiagnostics(vscode.Uri.file(configFile));
      return found.length ? found : undefined;
    }, { what: 'a diagnostic on deploy.yml' });
    assert.equal(diagnostics[0]!.range.start.line, 5);
    assert.equal(diagnostics[0]!.range.start.character, 0);
    assert.equal(diagnostics[0]!.severity, vscode.DiagnosticSeverity.Error);
  });
});
