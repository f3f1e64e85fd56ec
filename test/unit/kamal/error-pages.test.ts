import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKamalConfig } from '../../../src/core/kamal/config/read';
import { cleanUpErrorPages, makeErrorPagesDirectory } from '../../../src/core/kamal/commands/error-pages';
import { executeKamalRollback, planKamalRollback } from '../../../src/core/kamal/rollback';
import { FakeHosts, RecordingReporter } from './rollback-fixtures';

describe('Kamal error pages (cli/app/error_pages.rb)', () => {
  let project: string;
  beforeEach(async () => {
    project = await mkdtemp(join(tmpdir(), 'kamal-error-pages-'));
    await mkdir(join(project, 'config'));
    await mkdir(join(project, 'public', 'nested'), { recursive: true });
    for (const name of ['404.html', '500.html', '4xx.html', 'robots.txt', '200.html', '5000.html']) await writeFile(join(project, 'public', name), `<h1>${name}</h1>`);
    await writeFile(join(project, 'public', 'nested', '401.html'), 'nested');
  });
  afterEach(async () => {
    await rm(project, { recursive: true, force: true });
  });

  function config(destination?: string) {
    const parsed = parseKamalConfig({
      baseText: 'service: chat\nimage: bars/app\nregistry: {server: "localhost:5555"}\nservers: [web-1, web-2]\nerror_pages_path: public\n',
      baseFile: join(project, 'config', 'deploy.yml'),
      destination,
      destinationText: destination ? 'x-destination: true\n' : undefined,
    });
    assert.deepEqual(parsed.problems, []);
    return parsed;
  }

  it('makes the folder and cleans up other versions with Kamal\'s commands', () => {
    assert.equal(makeErrorPagesDirectory(config()), 'mkdir -p .kamal/proxy/apps-config/chat/error_pages');
    assert.equal(cleanUpErrorPages(config('staging'), 'v1'), 'find .kamal/proxy/apps-config/chat-staging/error_pages -mindepth 1 -maxdepth 1 ! -name v1 -exec rm -rf {} +');
  });

  it('uploads 4??.html and 5??.html of V over SFTP before any switch, passes --error-pages, and removes other versions after the stop', async () => {
    const fakes = new FakeHosts(['web-1', 'web-2']);
    for (const host of fakes.hosts.values()) host.seed('web', ['v1', 'v2'], 'v2');
    const plan = await planKamalRollback({ config: config(), sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    assert.deepEqual(plan.detail.errorPages?.files.map((file) => file.name), ['404.html', '4xx.html', '500.html']);
    assert.match(plan.detail.hostPlans[0].steps[0].commands.proxyDeploy ?? '', / --error-pages="\/home\/kamal-proxy\/\.apps-config\/chat\/error_pages\/v1"$/);
    assert.ok(plan.overview?.includes('Error pages: 404.html, 4xx.html, 500.html uploaded to every host first.'), plan.overview?.join('\n'));
    assert.match(plan.lines.join('\n'), /\[sftp web-1\] upload 404\.html 4xx\.html 500\.html to \.kamal\/proxy\/apps-config\/chat\/error_pages\/v1\/ \(folder 0755, files 0644\)/);

    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
    assert.equal(result.ok, true, result.message);
    for (const name of ['web-1', 'web-2']) {
      const host = fakes.get(name);
      assert.deepEqual(host.uploads, [
        { path: '.kamal/proxy/apps-config/chat/error_pages/v1', mode: 0o755 },
        { path: '.kamal/proxy/apps-config/chat/error_pages/v1/404.html', mode: 0o644, content: '<h1>404.html</h1>' },
        { path: '.kamal/proxy/apps-config/chat/error_pages/v1/4xx.html', mode: 0o644, content: '<h1>4xx.html</h1>' },
        { path: '.kamal/proxy/apps-config/chat/error_pages/v1/500.html', mode: 0o644, content: '<h1>500.html</h1>' },
        // Kamal's end state whatever the server's umask, and over files an earlier upload left.
        { path: '.kamal/proxy/apps-config/chat/error_pages/v1', mode: 0o755, chmod: true },
        { path: '.kamal/proxy/apps-config/chat/error_pages/v1/404.html', mode: 0o644, chmod: true },
        { path: '.kamal/proxy/apps-config/chat/error_pages/v1/4xx.html', mode: 0o644, chmod: true },
        { path: '.kamal/proxy/apps-config/chat/error_pages/v1/500.html', mode: 0o644, chmod: true },
      ]);
      const commands = host.commands;
      const made = commands.indexOf('mkdir -p .kamal/proxy/apps-config/chat/error_pages');
      const run = commands.findIndex((command) => command.startsWith('docker run '));
      const cleanUp = commands.indexOf('find .kamal/proxy/apps-config/chat/error_pages -mindepth 1 -maxdepth 1 ! -name v1 -exec rm -rf {} +');
      const stop = commands.findIndex((command) => command.includes("'name=^chat-web-v2$' --quiet | xargs docker stop"));
      assert.ok(made >= 0 && made < run && run < stop && stop < cleanUp, JSON.stringify(commands, null, 1));
    }
  });

  it('refuses to plan when the error pages folder cannot be read, before any command', async () => {
    await rm(join(project, 'public'), { recursive: true });
    const fakes = new FakeHosts(['web-1', 'web-2']);
    for (const host of fakes.hosts.values()) host.seed('web', ['v1', 'v2'], 'v2');
    await assert.rejects(planKamalRollback({ config: config(), sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' }), /Cannot read the error pages in .*public/);
  });
});
