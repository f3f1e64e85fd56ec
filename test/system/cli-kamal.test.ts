/**
 * The CLI bundle, as users run it, against real hosts: Kamal releases and rollbacks with exit
 * codes that scripts can trust (0 only when every host ended on the target).
 */
import { strict as assert } from 'node:assert';
import { useKamalCli, writePlainDeployYml } from './kamal-project';

const SERVICE = 'clisvc';

describe('deploy-rollback CLI on real Kamal hosts', function () {
  this.timeout(240_000);
  const kamal = useKamalCli({
    prefix: 'drb-cli-kamal-',
    hosts: { count: 2, service: SERVICE, images: [{ version: 'v1' }, { version: 'v2' }, { version: 'v3' }] },
    async setup({ hosts, project }) {
      await hosts.seedKamalState({ service: SERVICE, versions: ['v1', 'v2', 'v3'], running: 'v3', missing: { [hosts.hosts[1]!.name]: ['v1'] } });
      await writePlainDeployYml(project, hosts, SERVICE);
    },
  });
  const { cli } = kamal;

  async function containersEverywhere(): Promise<string[]> {
    const { hosts } = kamal;
    const listings = await Promise.all(hosts.hosts.map((host) => hosts.docker(host, ['ps', '-a', '--format', '{{.ID}} {{.Names}} {{.State}} {{.Image}}'])));
    return listings.map((listing) => listing.stdout.split('\n').sort().join('\n'));
  }

  it('lists releases with the reason a version is not a target', async () => {
    const { code, stdout, stderr } = await cli(['releases', '--kamal', '.', '--json']);
    assert.equal(code, 0, stderr);
    const releases = JSON.parse(stdout) as { version: string; current: boolean; rollbackable: boolean; reason: string | null; containers: unknown[] }[];
    assert.deepEqual(releases.map((release) => [release.version, release.current, release.rollbackable]), [
      ['v3', true, false],
      ['v2', false, true],
      ['v1', false, false],
    ]);
    assert.match(String(releases[2]!.reason), new RegExp(`pruned on ${kamal.hosts.hosts[1]!.address.replace(/\./g, '\\.')}`));
    assert.equal(releases[0]!.containers.length, 2);
  });

  it('refuses a target pruned on one host with exit 1, naming the host, and changes nothing', async () => {
    const before = await containersEverywhere();
    const { code, stderr } = await cli(['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(kamal.hosts.hosts[1]!.address.replace(/\./g, '\\.')));
    assert.deepEqual(await containersEverywhere(), before);
  });

  it('prints the plan on --dry-run and changes nothing', async () => {
    const before = await containersEverywhere();
    const { code, stdout } = await cli(['rollback', '--kamal', '.', '--dry-run']);
    assert.equal(code, 0);
    assert.match(stdout, /from v3 to v2/);
    assert.match(stdout, /docker exec kamal-proxy kamal-proxy deploy clisvc-web( \\\n\s+)?--target=/);
    assert.match(stdout, /Dry run: nothing was changed/);
    assert.deepEqual(await containersEverywhere(), before);
  });

  it('rolls back to the previous version with --yes and exits 0 when every host is on it', async () => {
    const { code, stdout, stderr } = await cli(['rollback', '--kamal', '.', '--yes']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /HOST +ROLE +FROM +TO +NOW +OUTCOME/);
    for (const host of kamal.hosts.hosts) assert.equal(await kamal.hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v2`);
  });
});
