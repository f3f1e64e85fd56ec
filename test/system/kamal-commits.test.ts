/**
 * Releases linked to their code on real hosts: an app repository whose release commits were
 * deployed as `kamal deploy` versions them (the commit sha from `git rev-parse HEAD`); the CLI
 * shows each version's subject and what a rollback takes out of production, commit by commit.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { makeAppRepo, type AppRepo } from '../fixtures/app-repo';
import { runGit } from '../fixtures/gitops';
import { useKamalCli, writePlainDeployYml } from './kamal-project';

const SERVICE = 'shop';

describe('releases linked to their commits on real Kamal hosts', function () {
  this.timeout(240_000);
  let app: AppRepo;
  let versions: string[];

  const { cli } = useKamalCli({
    prefix: 'drb-commits-',
    project: SERVICE,
    hosts(dir) {
      app = makeAppRepo(path.join(dir, SERVICE));
      // What `kamal deploy` takes as the version at each release: `git rev-parse HEAD` of a clean tree.
      versions = app.releases.slice(0, 3).map((release) => {
        runGit(['checkout', '-q', release.sha], app.root);
        return runGit(['rev-parse', 'HEAD'], app.root).trim();
      });
      runGit(['checkout', '-q', 'main'], app.root);
      return { count: 2, service: SERVICE, images: versions.map((version) => ({ version })) };
    },
    async setup({ hosts }) {
      await hosts.seedKamalState({ service: SERVICE, versions, running: versions[2] });
      await writePlainDeployYml(app.root, hosts, SERVICE);
    },
  });

  it('releases shows the subject of each version\'s commit, and --json the commit', async () => {
    const text = await cli(['releases', '--kamal', '.']);
    assert.equal(text.code, 0, text.stderr);
    const rows = text.stdout.trim().split('\n').map((row) => row.split('\t'));
    assert.deepEqual(
      rows.map((row) => [row[0], row[2]]),
      [
        [versions[2], `${versions[2].slice(0, 7)} Bump rack to 3.1.8`],
        [versions[1], `${versions[1].slice(0, 7)} Add product search (#12)`],
        [versions[0], `${versions[0].slice(0, 7)} Initial shop app`],
      ],
      text.stdout,
    );
    assert.match(rows[0].at(-1) ?? '', /current/);
    const json = await cli(['releases', '--kamal', '.', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const releases = JSON.parse(json.stdout) as { version: string; commit?: { sha: string; subject: string; author: string; date: string; uncommitted: boolean } }[];
    assert.deepEqual(releases[1].commit, {
      sha: versions[1],
      subject: 'Merge pull request #12 from acme/search',
      author: 'Alice Example',
      date: runGit(['log', '-1', '--format=%aI', versions[1]], app.root).trim(),
      uncommitted: false,
    });
  });

  it('rollback --dry-run names every commit the rollback takes out of production, newest first', async () => {
    const { code, stdout, stderr } = await cli(['rollback', '--kamal', '.', '--dry-run']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, new RegExp(`from ${versions[2]} to ${versions[1]}`));
    assert.match(stdout, /^This rollback undoes 3 commits\.$/m);
    const listed = stdout.split('\n').filter((line) => /^ {2}[0-9a-f]{7} /.test(line));
    assert.deepEqual(
      listed.map((line) => line.replace(/ \([^()]*, \d{4}-\d\d-\d\d\)$/, '')),
      [`  ${app.sha('c6').slice(0, 7)} Bump rack to 3.1.8`, `  ${app.sha('c5').slice(0, 7)} Add checkout (#15)`, `  ${app.sha('c4').slice(0, 7)} Cache product pages`],
      stdout,
    );
    const json = await cli(['rollback', '--kamal', '.', '--dry-run', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const plan = (JSON.parse(json.stdout) as { plan: { codeChange: { total: number; fromSha: string; toSha: string; commits: { sha: string }[] } } }).plan;
    assert.equal(plan.codeChange.total, 3);
    assert.equal(plan.codeChange.fromSha, versions[2]);
    assert.equal(plan.codeChange.toSha, versions[1]);
    assert.deepEqual(plan.codeChange.commits.map((commit) => commit.sha), [app.sha('c6'), app.sha('c5'), app.sha('c4')]);
  });

  it('the run says what it took out; afterwards a roll forward lists what it brings back', async () => {
    const run = await cli(['rollback', '--kamal', '.', '--yes']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /» Code: this rollback undoes 3 commits: Bump rack to 3\.1\.8; Add checkout \(#15\); Cache product pages/);
    assert.match(run.stdout, /^Code: this rollback undoes 3 commits: Bump rack to 3\.1\.8; Add checkout \(#15\); Cache product pages$/m);
    const forward = await cli(['rollback', '--kamal', '.', '--to', versions[2], '--dry-run']);
    assert.equal(forward.code, 0, forward.stderr);
    assert.match(forward.stdout, /^This roll forward brings back 3 commits\.$/m);
  });
});
