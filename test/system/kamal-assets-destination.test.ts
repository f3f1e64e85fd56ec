/**
 * The same Rails-8-style app under a destination (`--destination staging`) with a custom TLS
 * certificate: the pre-flight refuses while a host lacks the certificate files the last deploy
 * left, naming host and file; once they are there, the rollback passes their paths to kamal-proxy
 * and bridges the assets under the destination's folders.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestHost } from '../hosts/harness';
import { useKamalCli, writeFiles } from './kamal-project';

const SERVICE = 'shop';
const DESTINATION = 'staging';

describe('Kamal assets with a destination and a custom TLS certificate on real hosts, with the CLI', function () {
  this.timeout(300_000);
  const tls = (host: TestHost) => path.join(host.home, '.kamal/proxy/apps-config', `${SERVICE}-${DESTINATION}`, 'tls/web');
  const assets = (host: TestHost) => path.join(host.home, '.kamal/apps', `${SERVICE}-${DESTINATION}`, 'assets');

  const kamal = useKamalCli({
    prefix: 'drb-kamal-dest-',
    hosts: {
      count: 2,
      service: SERVICE,
      dockerSeesHome: true,
      images: [
        { version: 'v1', assets: { 'application-v1.css': 'v1\n' } },
        { version: 'v2', assets: { 'application-v2.css': 'v2\n' } },
      ],
    },
    async setup({ hosts, project }) {
      await hosts.seedKamalState({ service: SERVICE, destination: DESTINATION, versions: ['v1', 'v2'], running: 'v2' });
      for (const host of hosts.hosts) {
        writeFiles(assets(host), { 'extracted/web-v2/application-v2.css': 'v2\n', 'volumes/web-v2/application-v2.css': 'v2\n', 'volumes/web-v2/application-v1.css': 'v1\n' });
      }
      // The last deploy left the certificate on the first host only.
      fs.mkdirSync(tls(hosts.hosts[0]!), { recursive: true });
      for (const name of ['cert.pem', 'key.pem']) fs.writeFileSync(path.join(tls(hosts.hosts[0]!), name), `not a real ${name}\n`, { mode: 0o600 });
      fs.mkdirSync(path.join(project, 'config'), { recursive: true });
      fs.writeFileSync(
        path.join(project, 'config', 'deploy.yml'),
        [`service: ${SERVICE}`, `image: ${hosts.repository}`, 'require_destination: true', 'asset_path: /rails/public/assets', 'deploy_timeout: 10', ''].join('\n'),
      );
      fs.writeFileSync(
        path.join(project, 'config', `deploy.${DESTINATION}.yml`),
        [
          'servers:',
          '  web:',
          ...hosts.hosts.map((host) => `    - ${host.address}`),
          'proxy:',
          '  host: shop.example.test',
          '  ssl:',
          '    certificate_pem: CERTIFICATE_PEM',
          '    private_key_pem: PRIVATE_KEY_PEM',
          '',
        ].join('\n'),
      );
    },
  });
  const { cli } = kamal;

  async function running(): Promise<string[]> {
    const { hosts } = kamal;
    const listings = await Promise.all(hosts.hosts.map((host) => hosts.docker(host, ['ps', '--format', '{{.Names}}'])));
    return listings.map((listing) => listing.stdout.split('\n').sort().join(' '));
  }

  it('refuses while a host lacks the certificate files, naming host and file, and changes nothing', async () => {
    const before = await running();
    const { code, stderr } = await cli(['rollback', '--kamal', '.', '--destination', DESTINATION, '--to', 'v1', '--yes']);
    assert.equal(code, 1, stderr);
    const second = kamal.hosts.hosts[1]!.address.replace(/\./g, '\\.');
    assert.match(stderr.replace(/\s+/g, ' '), new RegExp(`missing on ${second} \\(web\\): \\.kamal/proxy/apps-config/shop-staging/tls/web/cert\\.pem, ${second} \\(web\\): \\.kamal/proxy/apps-config/shop-staging/tls/web/key\\.pem`));
    assert.deepEqual(await running(), before);
    assert.deepEqual(fs.readdirSync(path.join(assets(kamal.hosts.hosts[0]!), 'extracted')), ['web-v2'], 'nothing was extracted');
  });

  it('rolls back once every host has them: certificate paths passed to kamal-proxy, assets under the destination', async () => {
    fs.mkdirSync(tls(kamal.hosts.hosts[1]!), { recursive: true });
    for (const name of ['cert.pem', 'key.pem']) fs.writeFileSync(path.join(tls(kamal.hosts.hosts[1]!), name), `not a real ${name}\n`, { mode: 0o600 });
    // -d as kamal takes it.
    const { code, stdout, stderr } = await cli(['rollback', '--kamal', '.', '-d', DESTINATION, '--to', 'v1', '--yes']);
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    for (const host of kamal.hosts.hosts) {
      assert.equal(await kamal.hosts.proxyTargetContainer(host, `${SERVICE}-web-${DESTINATION}`), `${SERVICE}-web-${DESTINATION}-v1`);
      const proxy = await kamal.hosts.proxyState(host, `${SERVICE}-web-${DESTINATION}`);
      const flags = proxy?.flags ?? [];
      for (const flag of [
        '--host=shop.example.test',
        '--tls',
        `--tls-certificate-path=/home/kamal-proxy/.apps-config/${SERVICE}-${DESTINATION}/tls/web/cert.pem`,
        `--tls-private-key-path=/home/kamal-proxy/.apps-config/${SERVICE}-${DESTINATION}/tls/web/key.pem`,
      ]) {
        assert.ok(flags.includes(flag), `${flag} in ${flags.join(' ')}`);
      }
      assert.deepEqual(fs.readdirSync(path.join(assets(host), 'extracted')), ['web-v1']);
      assert.deepEqual(fs.readdirSync(path.join(assets(host), 'volumes', 'web-v1')).sort(), ['application-v1.css', 'application-v2.css']);
      const listing = await kamal.hosts.docker(host, ['exec', `${SERVICE}-web-${DESTINATION}-v1`, 'ls', '/rails/public/assets']);
      assert.deepEqual(listing.stdout.split(/\s+/).filter(Boolean).sort(), ['application-v1.css', 'application-v2.css']);
      assert.equal(fs.readFileSync(path.join(tls(host), 'cert.pem'), 'utf8'), 'not a real cert.pem\n', 'the certificate is left as the deploy wrote it');
    }
  });
});
