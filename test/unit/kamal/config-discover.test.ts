import { strict as assert } from 'node:assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { discoverKamalConfigs } from '../../../src/core/kamal/config/discover';
import { kamalEnvironmentsJson, listDestinations, loadKamalConfig } from '../../../src/core/kamal/config/read';

const MINIMAL = 'service: chat\nimage: bars/app\nservers: [web-1]\n';

describe('Kamal config discovery and loading', () => {
  let root: string;

  function write(relative: string, text = MINIMAL): string {
    const file = path.join(root, relative);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
    return file;
  }

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'kamal-discover-'));
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('finds every config/deploy.yml of a monorepo with the destinations beside each', async () => {
    write('config/deploy.yml');
    write('config/deploy.staging.yml', 'servers: [s-1]\n');
    write('config/deploy.production.yml', 'servers: [p-1]\n');
    write('services/api/config/deploy.yml');
    write('services/api/config/deploy.eu.yml', '');
    write('services/api/config/other.yml');

    const found = await discoverKamalConfigs([root]);
    assert.deepEqual(found, [
      { file: path.join(root, 'config/deploy.yml'), projectDir: root, destinations: ['production', 'staging'] },
      { file: path.join(root, 'services/api/config/deploy.yml'), projectDir: path.join(root, 'services/api'), destinations: ['eu'] },
    ]);
  });

  it('skips node_modules, .git, vendor and hidden folders', async () => {
    write('node_modules/pkg/config/deploy.yml');
    write('.git/x/config/deploy.yml');
    write('vendor/gem/config/deploy.yml');
    write('.cache/config/deploy.yml');
    write('app/config/deploy.yml');
    const found = await discoverKamalConfigs([root]);
    assert.deepEqual(found.map((entry) => path.relative(root, entry.file)), ['app/config/deploy.yml']);
  });

  it('stops at the depth limit', async () => {
    write('a/b/c/config/deploy.yml');
    assert.equal((await discoverKamalConfigs([root], { maxDepth: 2 })).length, 0);
    assert.equal((await discoverKamalConfigs([root], { maxDepth: 3 })).length, 1);
  });

  it('does not follow symlinked folders while searching, so link loops cannot trap it', async () => {
    write('real/config/deploy.yml');
    symlinkSync(path.join(root, 'real'), path.join(root, 'link'));
    symlinkSync(root, path.join(root, 'real', 'loop'));
    assert.deepEqual((await discoverKamalConfigs([root])).map((entry) => path.relative(root, entry.file)), ['real/config/deploy.yml']);
  });

  it('lists a config named twice in the setting (once through a symlink) once', async () => {
    write('real/config/deploy.yml');
    symlinkSync(path.join(root, 'real'), path.join(root, 'link'));
    assert.equal((await discoverKamalConfigs([root], { configPaths: ['real', 'link'] })).length, 1);
  });

  it('uses the setting paths instead of searching: a file, a config folder or a project folder', async () => {
    write('config/deploy.yml');
    const custom = write('ops/kamal.yml');
    write('ops/kamal.prod.yml', '');
    write('two/config/deploy.yml');
    write('three/deploy.yml');
    const missing: string[] = [];
    const found = await discoverKamalConfigs([root], { configPaths: ['ops/kamal.yml', 'two', path.join(root, 'three'), 'missing'], onMissing: (message) => missing.push(message) });
    assert.deepEqual(missing, ['No Kamal config at missing (looked for the file, config/deploy.yml and deploy.yml)']);
    assert.deepEqual(found, [
      { file: custom, projectDir: path.join(root, 'ops'), destinations: ['prod'] },
      { file: path.join(root, 'two/config/deploy.yml'), projectDir: path.join(root, 'two'), destinations: [] },
      { file: path.join(root, 'three/deploy.yml'), projectDir: path.join(root, 'three'), destinations: [] },
    ]);
  });

  it('ignores destination files whose names are not valid destinations', async () => {
    write('config/deploy.yml');
    write('config/deploy.ok.yml', '');
    write('config/deploy..yml', '');
    write('config/deploy.a b.yml', '');
    assert.deepEqual(await listDestinations(path.join(root, 'config/deploy.yml')), ['ok']);
  });

  it('loads a config with its destination from disk and names the choices when one is required', async () => {
    const file = write('config/deploy.yml', `${MINIMAL}require_destination: true\nenv:\n  clear:\n    WHERE: <%= ENV["KAMAL_DESTINATION"] %>\n`);
    write('config/deploy.staging.yml', 'servers: [s-1]\n');
    write('config/deploy.production.yml', 'servers: [p-1]\n');

    const staging = await loadKamalConfig(file, 'staging', {});
    assert.deepEqual(staging.problems, []);
    assert.equal(staging.destinationFile, path.join(root, 'config/deploy.staging.yml'));
    assert.deepEqual(staging.hosts, ['s-1']);
    assert.equal(staging.env.clear.WHERE, 'staging');
    assert.equal(staging.hooksPath, path.join(root, '.kamal/hooks'));

    const none = await loadKamalConfig(file, undefined, {});
    assert.deepEqual(none.problems.map((p) => [p.line, p.message]), [
      [4, 'config/deploy.yml requires a destination: pick one of production, staging'],
      [7, 'env/clear/WHERE: should be a string (Kamal refuses an env value that is null)'],
    ]);
  });

  it('reports a missing config file as a problem, not an exception', async () => {
    const config = await loadKamalConfig(path.join(root, 'config/deploy.yml'), undefined, {});
    assert.equal(config.problems.length, 1);
    assert.match(config.problems[0].message, /Cannot read Kamal config .*deploy\.yml: not found/);
  });

  it('reports a missing destination file', async () => {
    const file = write('config/deploy.yml');
    const config = await loadKamalConfig(file, 'qa', {});
    assert.deepEqual(config.problems.map((p) => p.file), [path.join(root, 'config/deploy.qa.yml')]);
  });

  it('describes configs for the CLI as JSON', async () => {
    const file = write(
      'config/deploy.yml',
      'service: chat\nimage: bars/app\nservers:\n  web: [web-1]\n  jobs: [web-2, "bad host"]\nssh:\n  user: app\n  proxy: bastion\n',
    );
    const config = await loadKamalConfig(file, undefined, {});
    assert.deepEqual(kamalEnvironmentsJson([config]), [
      {
        source: 'kamal',
        path: file,
        environment: 'default',
        service: 'chat',
        image: 'bars/app',
        primaryRole: 'web',
        roles: [
          { name: 'jobs', hosts: ['web-2'], proxy: false },
          { name: 'web', hosts: ['web-1'], proxy: true },
        ],
        ssh: { user: 'app', port: 22, proxy: 'root@bastion:22' },
        problems: [{ file, line: 5, message: config.problems[0].message }],
      },
    ]);
    assert.match(config.problems[0].message, /"bad host" is not a valid host/);
  });

  it('gives problems without a position a null line in the JSON', async () => {
    const missing = await loadKamalConfig(path.join(root, 'config/deploy.yml'), undefined, {});
    const [entry] = kamalEnvironmentsJson([missing]);
    assert.equal(entry.problems[0].line, null);
    assert.equal(entry.environment, 'default');
  });
});
