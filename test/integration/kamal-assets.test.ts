import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DeployRollbackApi } from '../../src/vscode/extension';
import type { AppNode, EnvironmentNode, ReleaseNode, TreeNode } from '../../src/vscode/tree/nodes';
import { requireHostsOrSkip, startHosts, type TestHosts } from '../hosts/harness';
import { activateExtension, settledChildren } from './helpers';

const SERVICE = 'vscassets';

describe('Kamal asset_path rolled back from the tree on real hosts', function () {
  this.timeout(240_000);
  let api: DeployRollbackApi;
  let hosts: TestHosts;
  let dir: string;
  let configFile: string;
  const confirmations: string[] = [];
  const settings = () => vscode.workspace.getConfiguration('deployRollback');
  const assets = (home: string) => path.join(home, '.kamal/apps', SERVICE, 'assets');

  before(async function () {
    requireHostsOrSkip(this);
    api = await activateExtension();
    hosts = await startHosts({
      count: 1,
      service: SERVICE,
      dockerSeesHome: true,
      images: [
        { version: 'v1', assets: { 'app-v1.css': 'v1\n' } },
        { version: 'v2', assets: { 'app-v2.css': 'v2\n' } },
      ],
    });
    await hosts.seedKamalState({ service: SERVICE, versions: ['v1', 'v2'], running: 'v2' });
    const home = hosts.hosts[0]!.home;
    fs.mkdirSync(path.join(assets(home), 'extracted/web-v2'), { recursive: true });
    fs.mkdirSync(path.join(assets(home), 'volumes/web-v2'), { recursive: true });
    fs.writeFileSync(path.join(assets(home), 'extracted/web-v2/app-v2.css'), 'v2\n');
    fs.writeFileSync(path.join(assets(home), 'volumes/web-v2/app-v2.css'), 'v2\n');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-vscode-assets-'));
    configFile = path.join(dir, 'config', 'deploy.yml');
    fs.mkdirSync(path.dirname(configFile), { recursive: true });
    fs.writeFileSync(
      configFile,
      [
        `service: ${SERVICE}`,
        `image: ${hosts.repository}`,
        'servers:',
        ...hosts.hosts.map((host) => `  - ${host.address}`),
        'asset_path: /rails/public/assets',
        'ssh:',
        `  keys: [${JSON.stringify(hosts.clientKeyPath)}]`,
        '  keys_only: true',
        '  config: false',
        'deploy_timeout: 10',
        '',
      ].join('\n'),
    );
    api.testing.setPrompter({
      confirm: async (message, detail) => {
        if (!message.startsWith('The authenticity of host')) confirmations.push(`${message}\n${detail}`);
        return true;
      },
      input: async () => undefined,
      pick: async () => undefined,
    });
    await settings().update('kamal.configPaths', [configFile], vscode.ConfigurationTarget.Global);
    await api.refresh();
  });

  after(async () => {
    api?.testing.setPrompter(undefined);
    await settings().update('kamal.configPaths', undefined, vscode.ConfigurationTarget.Global);
    await api?.refresh();
    await hosts?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function releases(): Promise<ReleaseNode[]> {
    const roots = await api.tree.getChildren();
    const environment = roots.find((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === configFile);
    assert.ok(environment, 'the Kamal config is an environment');
    const app = (await settledChildren(api, environment)).find((node): node is AppNode => node.kind === 'app');
    assert.ok(app, 'an app under the environment');
    const children: TreeNode[] = await settledChildren(api, app);
    return children.filter((node): node is ReleaseNode => node.kind === 'release');
  }

  it('rolls back to v1 from the release row: the confirmation names the assets, the new container has both versions\' files', async () => {
    const v1 = (await releases()).find((node) => node.release.version === 'v1');
    assert.ok(v1, 'v1 is listed');
    const outcome = (await vscode.commands.executeCommand('deployRollback.rollbackToRelease', v1)) as { ok: boolean; message: string } | undefined;
    assert.ok(outcome?.ok, outcome?.message ?? 'no outcome: the command showed an error');
    assert.match(confirmations.at(-1)!, /Assets \(web\): both versions' files are served during the switch/);
    const host = hosts.hosts[0]!;
    assert.equal(await hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v1`);
    const listing = await hosts.docker(host, ['exec', `${SERVICE}-web-v1`, 'ls', '/rails/public/assets']);
    assert.deepEqual(listing.stdout.split(/\s+/).filter(Boolean).sort(), ['app-v1.css', 'app-v2.css']);
    assert.deepEqual(fs.readdirSync(path.join(assets(host.home), 'volumes')), ['web-v1']);
  });
});
