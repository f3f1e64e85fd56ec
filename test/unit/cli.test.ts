import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { makeAppRepo } from '../fixtures/app-repo';
import { gitopsScenarios, makeGitopsFixture, type GitopsFixture, type GitopsFixtureStep } from '../fixtures/gitops';

const repoRoot = path.resolve(__dirname, '../..');

let bundle = '';

function cli(args: string[], cwd = repoRoot) {
  const result = spawnSync(process.execPath, [bundle, ...args], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('deploy-rollback CLI', function () {
  this.timeout(60_000);
  let dir: string;
  let fixture: GitopsFixture;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-cli-'));
    // The bundle, as users run it: also proves ssh2's optional native parts stay out of the way.
    bundle = path.join(dir, 'cli.js');
    buildSync({ entryPoints: [path.join(repoRoot, 'src/cli.ts')], bundle: true, platform: 'node', target: 'node20', outfile: bundle, external: ['cpu-features', '*.node'], logLevel: 'silent' });
    fixture = makeGitopsFixture(path.join(dir, 'gitops'), gitopsScenarios.interleaved());
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('documents its commands and exit codes in --help', () => {
    const { code, stdout } = cli(['--help']);
    assert.equal(code, 0);
    for (const text of ['environments --workspace', 'releases --gitops', 'rollback --kamal', 'Exit codes:', '2  usage error']) assert.ok(stdout.includes(text), text);
  });

  it('takes -h as Kamal\'s --hosts, and alone as help; Kamal\'s scope options are for Kamal only', () => {
    const help = cli(['-h']);
    assert.equal(help.code, 0);
    for (const text of ['-r, --roles', '-h, --hosts', '-p, --primary', '-H, --skip-hooks', '--lock-wait-timeout']) assert.ok(help.stdout.includes(text), text);
    const gitops = cli(['rollback', '--gitops', fixture.work, '--env', 'staging', '--app', 'a', '--to', 'a'.repeat(40), '-r', 'web']);
    assert.equal(gitops.code, 2);
    assert.match(gitops.stderr, /--roles is for Kamal rollbacks/);
  });

  it('prints the package version', () => {
    const { code, stdout } = cli(['--version']);
    assert.equal(code, 0);
    assert.equal(stdout.trim(), JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version);
  });

  it('exits 2 on an unknown command or flag', () => {
    assert.equal(cli(['frobnicate']).code, 2);
    assert.equal(cli(['environments', '--nope']).code, 2);
  });

  it('lists no environments in an empty folder', () => {
    const empty = fs.mkdtempSync(path.join(dir, 'empty-'));
    const { code, stdout } = cli(['environments', '--workspace', empty, '--json']);
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout), []);
  });

  it('reports, in environments --json, what Kamal 2.12 refuses, with file and line', () => {
    const workspace = fs.mkdtempSync(path.join(dir, 'refused-'));
    fs.mkdirSync(path.join(workspace, 'shop', 'config'), { recursive: true });
    const deployYml = path.join(workspace, 'shop', 'config', 'deploy.yml');
    fs.writeFileSync(deployYml, 'service: shop\nimage: team/shop\nservers: [10.0.0.1]\nproxy:\n  bogus: 1\nhooks_output: loud\ndeploy_timeout: "10"\nminimum_version: 99.0\n');
    const { code, stdout, stderr } = cli(['environments', '--workspace', workspace, '--json']);
    assert.equal(code, 0, stderr);
    const [kamal] = JSON.parse(stdout) as { problems?: { file: string; line: number | null; message: string }[] }[];
    assert.deepEqual(
      kamal.problems?.map((problem) => `${path.basename(problem.file)}:${problem.line} ${problem.message}`),
      ['deploy.yml:5 proxy: unknown key: bogus', 'deploy.yml:6 hooks_output: should be quiet or verbose, got "loud"', 'deploy.yml:7 deploy_timeout: should be an integer', 'deploy.yml:8 Current version is 2.12.0, minimum required is 99.0'],
    );
  });

  it('lists gitops and Kamal environments of a workspace', () => {
    // The fixture folder holds the gitops clone (work/) beside its remote; a Kamal app goes next to them.
    const workspace = path.dirname(fixture.work);
    fs.mkdirSync(path.join(workspace, 'shop', 'config'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'test/fixtures/kamal/minimal.yml'), path.join(workspace, 'shop', 'config', 'deploy.yml'));
    const { code, stdout, stderr } = cli(['environments', '--workspace', workspace, '--json']);
    assert.equal(code, 0, stderr);
    const entries = JSON.parse(stdout) as { source: string; environment: string; apps?: string[]; service?: string }[];
    const gitops = entries.find((entry) => entry.source === 'gitops');
    assert.deepEqual(gitops?.apps, ['a', 'b']);
    assert.equal(gitops?.environment, 'staging');
    const kamal = entries.find((entry) => entry.source === 'kamal');
    assert.equal(kamal?.environment, 'default');
    assert.ok(kamal?.service, 'the Kamal entry names its service');
  });

  it('prints gitops releases newest first with exactly the documented fields', () => {
    const { code, stdout, stderr } = cli(['releases', '--gitops', fixture.work, '--env', 'staging', '--app', 'a', '--json']);
    assert.equal(code, 0, stderr);
    const releases = JSON.parse(stdout) as Record<string, unknown>[];
    assert.deepEqual(releases.map((release) => release.id), [fixture.shas.a3, fixture.shas.a2, fixture.shas.a1]);
    assert.deepEqual(Object.keys(releases[0]!).sort(), ['author', 'created', 'current', 'id', 'message', 'rollbackable', 'rolledBack', 'sourceRepo', 'triggeredBy', 'url', 'version']);
    assert.equal(releases[0]!.current, true);
    assert.equal(releases[1]!.version, 'v2.0.0');
    assert.equal(cli(['releases', '--gitops', fixture.work, '--env', 'staging', '--app', 'a', '--limit', '1', '--json']).stdout.includes(fixture.shas.a2!), false);
  });

  it('names what is missing when the environment or app does not exist', () => {
    const { code, stderr } = cli(['releases', '--gitops', fixture.work, '--env', 'prod', '--app', 'a', '--json']);
    assert.equal(code, 1);
    assert.match(stderr, /No environment "prod".*found: staging/);
  });

  it('refuses an empty --to (an unset variable in a script) instead of picking the default target', () => {
    for (const to of ['', '  ']) {
      const { code, stderr } = cli(['rollback', '--kamal', path.join(dir, 'nowhere', 'config', 'deploy.yml'), '--to', to, '--yes']);
      assert.equal(code, 2, stderr);
      assert.match(stderr, /--to is empty: give the version to roll back to/);
    }
  });

  it('refuses a --connect-timeout a timer cannot hold, and non-numbers', () => {
    for (const value of [String(2 ** 31), '3601', '0', '-1', 'ten', '']) {
      const { code, stderr } = cli(['releases', '--kamal', 'x', `--connect-timeout=${value}`]);
      assert.equal(code, 2, `${value}: ${stderr}`);
      assert.match(stderr, /--connect-timeout takes seconds from 1 to 3600/);
    }
  });

  it('documents the exit codes of an interrupted rollback', () => {
    assert.match(cli(['--help']).stdout, /129, 130, 131, 143 {2}interrupted by SIGHUP, SIGINT, SIGQUIT, SIGTERM/);
  });

  it('refuses a short sha before reading anything', () => {
    const { code, stderr } = cli(['rollback', '--gitops', fixture.work, '--env', 'staging', '--app', 'a', '--to', fixture.shas.a1!.slice(0, 7), '--yes']);
    assert.equal(code, 1);
    assert.match(stderr, /full 40-hex/);
  });

  it('refuses to act without --yes when stdin is not a terminal, and changes nothing', () => {
    const before = fixture.git(['rev-parse', 'HEAD'], fixture.remote);
    const { code, stderr } = cli(['rollback', '--gitops', fixture.work, '--env', 'staging', '--app', 'a', '--to', fixture.shas.a1!]);
    assert.equal(code, 1);
    assert.match(stderr, /without --yes/);
    assert.equal(fixture.git(['rev-parse', 'HEAD'], fixture.remote), before);
  });

  it('prints the plan and changes nothing on --dry-run', () => {
    const before = fixture.git(['rev-parse', 'HEAD'], fixture.remote);
    const { code, stdout } = cli(['rollback', '--gitops', fixture.work, '--env', 'staging', '--app', 'a', '--to', fixture.shas.a1!, '--dry-run']);
    assert.equal(code, 0);
    assert.match(stdout, /Revert 2 commit/);
    assert.match(stdout, /staging\/a\/release\.json +\| +\d+ [+-]+/, 'the dry run shows the diff stat of the reverts');
    assert.doesNotMatch(stdout, /staging\/release\.json +\|/, 'the shared env release.json is not touched');
    assert.match(stdout, /Dry run: nothing was changed/);
    assert.equal(fixture.git(['rev-parse', 'HEAD'], fixture.remote), before);
  });

  it('rolls back with --yes and the release becomes current', () => {
    const { code, stderr } = cli(['rollback', '--gitops', fixture.work, '--env', 'staging', '--app', 'a', '--to', fixture.shas.a1!, '--yes']);
    assert.equal(code, 0, stderr);
    const releases = JSON.parse(cli(['releases', '--gitops', fixture.work, '--env', 'staging', '--app', 'a', '--json']).stdout) as { id: string; current: boolean; rolledBack: boolean }[];
    assert.deepEqual(
      releases.map((release) => [release.id, release.current, release.rolledBack]),
      [
        [fixture.shas.a3, false, true],
        [fixture.shas.a2, false, true],
        [fixture.shas.a1, true, false],
      ],
    );
    assert.equal(fixture.git(['rev-parse', 'HEAD'], fixture.remote), fixture.git(['rev-parse', 'HEAD']));
  });

  describe('with the apps\' code in a repository beside the gitops clone', () => {
    let shop: ReturnType<typeof makeAppRepo>;
    let gitops: GitopsFixture;
    before(() => {
      const base = path.join(dir, 'linked');
      shop = makeAppRepo(path.join(base, 'shop'), { remote: 'https://github.com/acme/shop.git' });
      const deploy = (label: string, release: string): GitopsFixtureStep => ({
        kind: 'deploy',
        app: 'a',
        label,
        source: { sha: shop.sha(release), repositoryName: 'acme/shop', message: shop.git(['log', '-1', '--format=%B', shop.sha(release)]).trim(), authorName: 'Alice Example', authorEmail: 'alice@example.com' },
      });
      gitops = makeGitopsFixture(path.join(base, 'gitops'), { steps: [{ kind: 'bootstrap' }, deploy('a1', 'r1'), deploy('a2', 'r2'), deploy('a3', 'r3')] });
    });

    it('releases shows each release\'s commit subject, and --json its commit', () => {
      const text = cli(['releases', '--gitops', gitops.work, '--env', 'staging', '--app', 'a', '--code-repo', path.dirname(shop.root)]);
      assert.equal(text.code, 0, text.stderr);
      const rows = text.stdout.trim().split('\n');
      assert.match(rows[0], new RegExp(`\\t${shop.sha('r3').slice(0, 7)} Bump rack to 3\\.1\\.8\\t\\(current\\)$`));
      assert.match(rows[1], new RegExp(`\\t${shop.sha('r2').slice(0, 7)} Add product search \\(#12\\)\\t`), 'a merge shows its pull request');
      // Without --code-repo: the repository the CLI runs in counts.
      const json = cli(['releases', '--gitops', gitops.work, '--env', 'staging', '--app', 'a', '--json'], shop.root);
      assert.equal(json.code, 0, json.stderr);
      const [current] = JSON.parse(json.stdout) as { commit?: Record<string, unknown> }[];
      assert.deepEqual(current.commit, { sha: shop.sha('r3'), subject: 'Bump rack to 3.1.8', author: 'Alice Example', date: shop.git(['log', '-1', '--format=%aI', shop.sha('r3')]).trim(), uncommitted: false });
    });

    it('leaves `commit` out when the commit is not known', () => {
      const { stdout } = cli(['releases', '--gitops', fixture.work, '--env', 'staging', '--app', 'a', '--json']);
      for (const release of JSON.parse(stdout) as Record<string, unknown>[]) assert.equal('commit' in release, false);
    });

    it('rollback --dry-run lists every commit it undoes; --json carries them', () => {
      const target = gitops.shas.a1!;
      const codeRepo = ['--code-repo', shop.root];
      const text = cli(['rollback', '--gitops', gitops.work, '--env', 'staging', '--app', 'a', '--to', target, '--dry-run', ...codeRepo]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^This rollback undoes 6 commits\.$/m);
      for (const subject of ['Bump rack to 3.1.8', 'Add checkout (#15)', 'Cache product pages', 'Add product search (#12)', 'Fix price rounding in the cart', 'Add product listing']) {
        assert.ok(text.stdout.includes(` ${subject} (`), `${subject} in:\n${text.stdout}`);
      }
      const json = cli(['rollback', '--gitops', gitops.work, '--env', 'staging', '--app', 'a', '--to', target, '--dry-run', '--json'], shop.root);
      assert.equal(json.code, 0, json.stderr);
      const parsed = JSON.parse(json.stdout) as { dryRun: boolean; plan: { codeChange: { total: number; direction: string; commits: { sha: string; title: string }[] }; codeChangeUnknown: string | null } };
      assert.equal(parsed.dryRun, true);
      assert.equal(parsed.plan.codeChange.total, 6);
      assert.equal(parsed.plan.codeChange.direction, 'back');
      assert.equal(parsed.plan.codeChange.commits[3].sha, shop.sha('m1'));
      assert.equal(parsed.plan.codeChange.commits[3].title, 'Add product search (#12)');
      assert.equal(parsed.plan.codeChangeUnknown, null);
      assert.match(json.stderr, /Dry run: nothing was changed/, 'the text goes to stderr, stdout is JSON only');
    });
  });
});
