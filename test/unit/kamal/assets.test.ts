import { strict as assert } from 'node:assert';
import { parseKamalConfig } from '../../../src/core/kamal/config/read';
import { assetVolumeArg, cleanUpAssets, extractAssets, roleHasAssets, syncAssetVolumes } from '../../../src/core/kamal/commands/assets';
import { renderWords } from '../../../src/core/kamal/commands/kamal-shell';
import { runContainer } from '../../../src/core/kamal/commands/app';
import { executeKamalRollback, planKamalRollback } from '../../../src/core/kamal/rollback';
import type { KamalConfig } from '../../../src/core/kamal/config/types';
import { FakeHosts, RecordingReporter } from './rollback-fixtures';

/** Kamal's test/commands/app_test.rb setup: service app, image dhh/app, version 999. */
function kamalTestConfig(extra = 'asset_path: /public/assets\n', destination?: string): KamalConfig {
  const config = parseKamalConfig({
    baseText: `service: app\nimage: dhh/app\nservers:\n  web: [1.1.1.1]\n  workers:\n    hosts: [1.1.1.2]\n    cmd: bin/jobs\n${extra}`,
    baseFile: '/app/config/deploy.yml',
    destination,
    destinationText: destination ? 'x-destination: true\n' : undefined,
  });
  assert.deepEqual(config.problems, []);
  return config;
}

describe('Kamal assets (commands/app/assets.rb)', () => {
  const config = kamalTestConfig();
  const web = config.roles.find((role) => role.name === 'web')!;
  const workers = config.roles.find((role) => role.name === 'workers')!;

  it('extracts assets as Kamal\'s "extract assets" test expects', () => {
    assert.equal(
      extractAssets(config, web, '999'),
      'mkdir -p .kamal/apps/app/assets/extracted/web-999 && docker container rm app-web-assets 2> /dev/null || true && docker container create --name app-web-assets dhh/app:999' +
        ' && docker container cp -L app-web-assets:/public/assets/. .kamal/apps/app/assets/extracted/web-999 && docker container rm app-web-assets',
    );
  });

  it('syncs volumes as Kamal\'s "sync asset volumes" test expects, with and without an old version', () => {
    assert.equal(syncAssetVolumes(config, 'web', '999'), 'mkdir -p .kamal/apps/app/assets/volumes/web-999 ; cp -rnT .kamal/apps/app/assets/extracted/web-999 .kamal/apps/app/assets/volumes/web-999');
    assert.equal(
      syncAssetVolumes(config, 'web', '999', '998'),
      'mkdir -p .kamal/apps/app/assets/volumes/web-999 ; cp -rnT .kamal/apps/app/assets/extracted/web-999 .kamal/apps/app/assets/volumes/web-999' +
        ' ; cp -rnT .kamal/apps/app/assets/extracted/web-999 .kamal/apps/app/assets/volumes/web-998 || true' +
        ' ; cp -rnT .kamal/apps/app/assets/extracted/web-998 .kamal/apps/app/assets/volumes/web-999 || true',
    );
  });

  it('cleans up as Kamal\'s "clean up assets" test expects', () => {
    assert.equal(
      cleanUpAssets(config, 'web', '999'),
      `find .kamal/apps/app/assets/extracted -maxdepth 1 -name 'web-*' ! -name web-999 -exec rm -rf "{}" + ; find .kamal/apps/app/assets/volumes -maxdepth 1 -name 'web-*' ! -name web-999 -exec rm -rf "{}" +`,
    );
  });

  it('mounts the version\'s volume under $PWD, for proxy roles only', () => {
    assert.equal(roleHasAssets(config, web), true);
    assert.equal(roleHasAssets(config, workers), false);
    assert.equal(assetVolumeArg(config, workers, '999'), undefined);
    assert.match(
      renderWords(runContainer(config, web, { host: '1.1.1.1', version: '999', hostname: 'h', assetVolume: assetVolumeArg(config, web, '999') })),
      / --log-opt max-size="10m" --volume \$PWD\/\.kamal\/apps\/app\/assets\/volumes\/web-999:\/public\/assets --label service="app" /,
    );
  });

  it('takes a role\'s asset_path (with options) over the top-level one, and names destinations', () => {
    const staging = kamalTestConfig('asset_path: /public/assets\nx-role: 1\n', 'staging');
    assert.equal(extractAssets(staging, staging.roles[0], '1').split(' && ')[0], 'mkdir -p .kamal/apps/app-staging/assets/extracted/web-1');
    assert.match(extractAssets(staging, staging.roles[0], '1'), / --name app-web-staging-assets dhh\/app:1 /);
    const perRole = parseKamalConfig({ baseText: 'service: app\nimage: dhh/app\nservers:\n  web:\n    hosts: [1.1.1.1]\n    asset_path: /rails/public/assets:ro\nasset_path: /x\n', baseFile: '/app/config/deploy.yml' });
    assert.equal(assetVolumeArg(perRole, perRole.roles[0], '2')?.text, '$PWD/.kamal/apps/app/assets/volumes/web-2:/rails/public/assets:ro');
  });

  it('refuses an asset_path that would need quoting, and the editor warns at its line', async () => {
    const hostile = parseKamalConfig({ baseText: 'service: app\nimage: dhh/app\nservers: [1.1.1.1]\nasset_path: "/public/$(id)"\n', baseFile: '/app/config/deploy.yml' });
    assert.deepEqual(hostile.problems.map((problem) => `${problem.line} ${problem.severity}`), ['4 warning']);
    assert.throws(() => extractAssets(hostile, hostile.roles[0], '1'), /Refusing asset_path/);
    const fakes = new FakeHosts(['1.1.1.1']);
    await assert.rejects(planKamalRollback({ config: hostile, sessions: fakes.sessions, targetVersion: 'v1' }), /Refusing asset_path "\/public\/\$\(id\)" of role web .*\(\/app\/config\/deploy\.yml:4\)$/);
    assert.deepEqual(fakes.get('1.1.1.1').commands, [], 'no command ran');
  });
});

describe('Kamal rollback with assets, on fake hosts', () => {
  function fleet(): { config: KamalConfig; fakes: FakeHosts } {
    const config = parseKamalConfig({
      baseText: 'service: chat\nimage: bars/app\nregistry: {server: "localhost:5555"}\nservers:\n  web: [web-1, web-2]\n  workers:\n    hosts: [web-2]\n    stop_timeout: 90\nasset_path: /rails/public/assets\n',
      baseFile: '/nonexistent/project/config/deploy.yml',
    });
    assert.deepEqual(config.problems, []);
    const fakes = new FakeHosts(['web-1', 'web-2']);
    fakes.get('web-1').seed('web', ['v1', 'v2'], 'v2');
    fakes.get('web-2').seed('web', ['v1', 'v2'], 'v2');
    fakes.get('web-2').seed('workers', ['v1', 'v2'], 'v2');
    return { config, fakes };
  }

  it('plans extraction, bridging, the volume and the clean-up for web, none for workers; workers stop with -t 90', async () => {
    const { config, fakes } = fleet();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    const [webStep] = plan.detail.hostPlans[0].steps;
    assert.match(webStep.commands.extractAssets ?? '', /docker container cp -L chat-web-assets:\/rails\/public\/assets\/\. \.kamal\/apps\/chat\/assets\/extracted\/web-v1/);
    assert.match(webStep.commands.syncAssets ?? '', /cp -rnT \.kamal\/apps\/chat\/assets\/extracted\/web-v2 \.kamal\/apps\/chat\/assets\/volumes\/web-v1 \|\| true$/);
    assert.match(webStep.commands.run, / --volume \$PWD\/\.kamal\/apps\/chat\/assets\/volumes\/web-v1:\/rails\/public\/assets /);
    const workersStep = plan.detail.hostPlans[1].steps.find((step) => step.role === 'workers')!;
    assert.equal(workersStep.commands.extractAssets, undefined);
    assert.doesNotMatch(workersStep.commands.run, /--volume/);
    assert.match(workersStep.commands.stopOld ?? '', /\| xargs docker stop -t 90$/);
    assert.ok(plan.lines.some((line) => line.includes('docker container cp -L chat-web-assets')), 'the dry run shows the extraction');
    assert.match(plan.lines.join(' ').replace(/\s+/g, ' '), /Before any switch, on web-1, web-2 \(web\): copy the assets out of the v1 image and merge them/);
    assert.match(plan.lines.join(' ').replace(/\s+/g, ' '), /web-2 workers v2 → v1: .*then stop v2 \(docker stop -t 90\)\./);
    assert.ok(plan.overview?.some((line) => line.startsWith('Assets (web): both versions')), 'the confirmation says so');
  });

  it('extracts and bridges on every host before any switch, and cleans up after each old version stops', async () => {
    const { config, fakes } = fleet();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(result.ok, true, result.message);
    for (const name of ['web-1', 'web-2']) {
      const commands = fakes.get(name).commands.filter((command) => !command.includes('@@deploy-rollback'));
      const extract = commands.findIndex((command) => command.startsWith('mkdir -p .kamal/apps/chat/assets/extracted/web-v1 && '));
      const sync = commands.findIndex((command) => command.startsWith('mkdir -p .kamal/apps/chat/assets/volumes/web-v1 ; cp -rnT'));
      const run = commands.findIndex((command) => command.startsWith('docker run ') && command.includes('chat-web-v1'));
      const stop = commands.findIndex((command) => command.includes("'name=^chat-web-v2$' --quiet | xargs docker stop"));
      const cleanUp = commands.findIndex((command) => command.startsWith("find .kamal/apps/chat/assets/extracted -maxdepth 1 -name 'web-*' ! -name web-v1"));
      assert.ok(extract >= 0 && extract < sync && sync < run && run < stop && stop < cleanUp, `${name}: ${JSON.stringify(commands, null, 1)}`);
      assert.match(commands[sync], /cp -rnT \.kamal\/apps\/chat\/assets\/extracted\/web-v2 \.kamal\/apps\/chat\/assets\/volumes\/web-v1 \|\| true$/);
    }
    // Every host is prepared before the first switch anywhere.
    const firstRun = fakes.get('web-1').commands.findIndex((command) => command.startsWith('docker run '));
    assert.ok(firstRun > 0);
    assert.ok(fakes.get('web-2').commands.some((command) => command.startsWith('mkdir -p .kamal/apps/chat/assets/volumes/web-v1 ;')));
  });
});

describe('Kamal rollback with assets when a host cannot prepare them', () => {
  it('switches nothing anywhere, names the host, and releases the lock', async () => {
    const config = parseKamalConfig({
      baseText: 'service: chat\nimage: bars/app\nregistry: {server: "localhost:5555"}\nservers: [web-1, web-2]\nasset_path: /rails/public/assets\n',
      baseFile: '/nonexistent/project/config/deploy.yml',
    });
    const fakes = new FakeHosts(['web-1', 'web-2']);
    for (const host of fakes.hosts.values()) host.seed('web', ['v1', 'v2'], 'v2');
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    fakes.get('web-2').beforeExec = (command, host) => {
      if (command.includes('docker container cp -L')) host.down = true;
    };
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(result.ok, false);
    assert.match(result.message, /Nothing was switched: preparing the hosts failed: web-2 \(web\): /);
    for (const host of fakes.hosts.values()) assert.ok(!host.commands.some((command) => command.startsWith('docker run ')), `no docker run on ${host.host}`);
    assert.equal(fakes.get('web-1').lock, undefined, 'the lock is released');
    assert.deepEqual(fakes.get('web-1').running(), ['chat-web-v2']);
  });
});

describe('the config `rails new` writes (Rails 8)', () => {
  it('plans a rollback with assets, the storage volume, TLS and Solid Queue env as Kamal would run them', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const config = parseKamalConfig({ baseText: readFileSync(join(__dirname, '..', '..', 'fixtures', 'kamal', 'rails-new.yml'), 'utf8'), baseFile: '/nonexistent/chat/config/deploy.yml' });
    assert.deepEqual(config.problems, []);
    const fakes = new FakeHosts(['192.168.0.1']);
    // The fake hosts answer for localhost:5555/bars/app; the template's image is your-user/chat.
    const fakeImage = { ...config, repository: 'localhost:5555/bars/app' };
    fakes.get('192.168.0.1').seed('web', ['v1', 'v2'], 'v2');
    const plan = await planKamalRollback({ config: fakeImage, sessions: fakes.sessions, performer: 'ada' });
    assert.equal(plan.to, 'v1');
    const [step] = plan.detail.hostPlans[0].steps;
    assert.match(
      step.commands.run,
      / --env KAMAL_HOST="192\.168\.0\.1" --env SOLID_QUEUE_IN_PUMA="true" --env-file \.kamal\/apps\/chat\/env\/roles\/web\.env --log-opt max-size="10m" --volume chat_storage:\/rails\/storage --volume \$PWD\/\.kamal\/apps\/chat\/assets\/volumes\/web-v1:\/rails\/public\/assets --label service="chat" /,
    );
    assert.match(step.commands.proxyDeploy ?? '', / --host="app\.example\.com" --tls --deploy-timeout="30s" --drain-timeout="30s" --buffer-requests --buffer-responses /);
    assert.doesNotMatch(step.commands.proxyDeploy ?? '', /health-check/);
    assert.match(step.commands.extractAssets ?? '', /docker container cp -L chat-web-assets:\/rails\/public\/assets\/\. /);
  });
});
