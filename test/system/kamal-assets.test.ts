/**
 * A Rails-8-style app on real hosts, rolled back and forward with the CLI bundle: assets under
 * /rails/public/assets that differ per version (asset_path set), an error pages folder, a worker
 * role with stop_timeout. The hosts start as a `kamal deploy` of v1 then v2 leaves them.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestHost } from '../hosts/harness';
import { useKamalCli, writeDeployYml, writeFiles } from './kamal-project';

const SERVICE = 'rails';

function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((entry) => entry.split(path.sep).join('/'))
    .sort();
}

describe('Kamal assets, error pages and a worker on real hosts, with the CLI', function () {
  this.timeout(300_000);
  /** GET a path from inside a container, through its own web server. */
  async function get(host: TestHost, container: string, urlPath: string): Promise<string> {
    const result = await kamal.hosts.docker(host, ['exec', container, 'sh', '-c', `printf 'GET ${urlPath} HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 80`]);
    if (!/ 200 OK/.test(result.stdout)) {
      const listing = await kamal.hosts.docker(host, ['exec', container, 'ls', '-la', '/www', '/www/assets/', '/rails/public/assets']);
      const mounts = await kamal.hosts.docker(host, ['inspect', '--format', '{{json .Mounts}}', container]);
      return `${result.stdout}\n${listing.stdout}${listing.stderr}\n${mounts.stdout}`;
    }
    return result.stdout;
  }

  async function state(host: TestHost, container: string): Promise<string> {
    return (await kamal.hosts.docker(host, ['inspect', '--format', '{{.State.Status}}', container])).stdout.trim();
  }

  const assets = (host: TestHost) => path.join(host.home, '.kamal/apps', SERVICE, 'assets');
  const errorPages = (host: TestHost) => path.join(host.home, '.kamal/proxy/apps-config', SERVICE, 'error_pages');

  const kamal = useKamalCli({
    prefix: 'drb-kamal-assets-',
    hosts: {
      count: 2,
      service: SERVICE,
      dockerSeesHome: true,
      images: [
        { version: 'v1', assets: { 'application-v1.css': 'body { color: blue }\n', 'shared.js': 'v1\n' } },
        { version: 'v2', assets: { 'application-v2.css': 'body { color: red }\n', 'shared.js': 'v2\n' } },
      ],
    },
    async setup({ hosts, project }) {
      const [first, second] = hosts.hosts as [TestHost, TestHost];
      await hosts.seedKamalState({ service: SERVICE, role: 'web', versions: ['v1', 'v2'], running: 'v2' });
      await hosts.seedKamalState({ service: SERVICE, role: 'workers', versions: ['v1', 'v2'], running: 'v2', proxy: false, hosts: [second] });
      // What `kamal deploy` of v2 over v1 left: v2's extracted assets, v2's volume with both, v2's error pages.
      for (const host of hosts.hosts) {
        writeFiles(assets(host), {
          'extracted/web-v2/application-v2.css': 'body { color: red }\n',
          'extracted/web-v2/shared.js': 'v2\n',
          'volumes/web-v2/application-v2.css': 'body { color: red }\n',
          'volumes/web-v2/application-v1.css': 'body { color: blue }\n',
          'volumes/web-v2/shared.js': 'v2\n',
        });
        writeFiles(errorPages(host), { 'v2/404.html': 'old 404\n' });
      }
      writeFiles(path.join(project, 'public'), { '404.html': '<h1>Not found</h1>\n', '500.html': '<h1>Sorry</h1>\n', 'robots.txt': 'User-agent: *\n' });
      // As `rails new` writes it (Rails 8), plus a worker role with a stop_timeout.
      await writeDeployYml(project, hosts, {
        service: SERVICE,
        servers: ['  web:', ...hosts.hosts.map((host) => `    - ${host.address}`), '  workers:', '    hosts:', `      - ${second.address}`, '    stop_timeout: 7'],
        beforeSsh: [
          'proxy:',
          '  healthcheck:',
          '    path: /up',
          'asset_path: /rails/public/assets',
          'error_pages_path: public',
          'deploy_timeout: 10',
          'env:',
          '  clear:',
          '    SOLID_QUEUE_IN_PUMA: true',
          '    WEB_CONCURRENCY: 2',
        ],
        sshFromHome: true,
      });
      assert.ok(first);
    },
  });
  const { cli } = kamal;

  it('shows assets, error pages and the worker\'s stop timeout in the dry run, and changes nothing', async () => {
    const before = listTree(assets(kamal.hosts.hosts[0]!));
    const { code, stdout, stderr } = await cli(['rollback', '--kamal', '.', '--to', 'v1', '--dry-run']);
    assert.equal(code, 0, stderr);
    const prose = stdout.replace(/\s+/g, ' ');
    const commands = stdout.replace(/ \\\n\s+/g, ' ');
    assert.match(prose, /copy the assets out of the v1 image and merge them/);
    assert.match(prose, /upload the error pages \(404\.html, 500\.html\) over SFTP/);
    assert.match(prose, /workers v2 → v1: .*then stop v2 \(docker stop -t 7\)/);
    assert.match(commands, /docker container cp -L rails-web-assets:\/rails\/public\/assets\/\. \.kamal\/apps\/rails\/assets\/extracted\/web-v1 /);
    assert.match(commands, / --volume \$PWD\/\.kamal\/apps\/rails\/assets\/volumes\/web-v1:\/rails\/public\/assets /);
    assert.deepEqual(listTree(assets(kamal.hosts.hosts[0]!)), before);
  });

  it('rolls back to v1: the new containers serve both versions\' assets, folders and worker end as kamal rollback leaves them', async () => {
    const { code, stdout, stderr } = await cli(['rollback', '--kamal', '.', '--to', 'v1', '--yes', '--verbose']);
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    for (const host of kamal.hosts.hosts) {
      assert.equal(await kamal.hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v1`);
      // Requests in flight during the switch ask for either version's files: the new container has both.
      assert.match(await get(host, `${SERVICE}-web-v1`, '/assets/application-v1.css'), /200 OK[\s\S]*color: blue/);
      assert.match(await get(host, `${SERVICE}-web-v1`, '/assets/application-v2.css'), /200 OK[\s\S]*color: red/);
      // No clobbering: a file both versions have keeps the target's content.
      assert.match(await get(host, `${SERVICE}-web-v1`, '/assets/shared.js'), /\nv1\n?$/);
      assert.deepEqual(listTree(path.join(assets(host), 'extracted')), ['web-v1', 'web-v1/application-v1.css', 'web-v1/shared.js']);
      assert.deepEqual(listTree(path.join(assets(host), 'volumes')), ['web-v1', 'web-v1/application-v1.css', 'web-v1/application-v2.css', 'web-v1/shared.js']);
      assert.deepEqual(listTree(errorPages(host)), ['v1', 'v1/404.html', 'v1/500.html']);
      // Kamal's end state: kamal-proxy runs as a non-root user and reads them.
      assert.deepEqual(['v1', 'v1/404.html', 'v1/500.html'].map((name) => (fs.statSync(path.join(errorPages(host), name)).mode & 0o777).toString(8)), ['755', '644', '644']);
      const proxy = await kamal.hosts.proxyState(host, `${SERVICE}-web`);
      assert.ok(proxy?.flags.includes(`--error-pages=/home/kamal-proxy/.apps-config/${SERVICE}/error_pages/v1`), proxy?.flags.join(' '));
      const env = (await kamal.hosts.docker(host, ['inspect', '--format', '{{json .Config.Env}}', `${SERVICE}-web-v1`])).stdout;
      assert.ok(env.includes('"SOLID_QUEUE_IN_PUMA=true"') && env.includes('"WEB_CONCURRENCY=2"'), env);
    }
    const second = kamal.hosts.hosts[1]!;
    assert.equal(await state(second, `${SERVICE}-workers-v1`), 'running');
    assert.equal(await state(second, `${SERVICE}-workers-v2`), 'exited');
    assert.match(stderr, /'name=\^rails-workers-v2\$' --quiet \| xargs docker stop -t 7/);
    assert.doesNotMatch(stderr, /'name=\^rails-web-v2\$' --quiet \| xargs docker stop -t/, 'proxy roles keep docker\'s default: kamal-proxy drained them');
  });

  it('rolls forward to v2 the same way', async () => {
    for (const host of kamal.hosts.hosts) {
      // Left by some earlier upload with a tight umask: the modes are set, not inherited.
      fs.mkdirSync(path.join(errorPages(host), 'v2'), { mode: 0o700 });
      fs.writeFileSync(path.join(errorPages(host), 'v2/404.html'), 'old 404\n', { mode: 0o600 });
    }
    const { code, stdout, stderr } = await cli(['rollback', '--kamal', '.', '--to', 'v2', '--yes']);
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    for (const host of kamal.hosts.hosts) {
      assert.equal(await kamal.hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v2`);
      assert.match(await get(host, `${SERVICE}-web-v2`, '/assets/application-v1.css'), /200 OK/);
      assert.match(await get(host, `${SERVICE}-web-v2`, '/assets/application-v2.css'), /200 OK/);
      assert.deepEqual(listTree(path.join(assets(host), 'extracted')), ['web-v2', 'web-v2/application-v2.css', 'web-v2/shared.js']);
      assert.deepEqual(listTree(path.join(assets(host), 'volumes')), ['web-v2', 'web-v2/application-v1.css', 'web-v2/application-v2.css', 'web-v2/shared.js']);
      assert.deepEqual(listTree(errorPages(host)), ['v2', 'v2/404.html', 'v2/500.html']);
      assert.deepEqual(['v2', 'v2/404.html', 'v2/500.html'].map((name) => (fs.statSync(path.join(errorPages(host), name)).mode & 0o777).toString(8)), ['755', '644', '644']);
      assert.notEqual(fs.readFileSync(path.join(errorPages(host), 'v2/404.html'), 'utf8'), 'old 404\n');
    }
    assert.equal(await state(kamal.hosts.hosts[1]!, `${SERVICE}-workers-v2`), 'running');
  });
});
