import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodeModule from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { version } from '../../package.json';

const repoRoot = path.resolve(__dirname, '../..');
/** Node ≥ 22.1 has its own compile cache, which the launcher turns on instead of keeping one. */
const nodeHasCompileCache = typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === 'function';

describe('deploy-rollback launcher (dist/cli.js) and its compile cache', function () {
  this.timeout(60_000);
  let dir: string;
  let launcher: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-launch-'));
    const built = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/build.mjs'), '--production', '--cli-only', '--outdir', path.join(dir, 'dist')], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    launcher = path.join(dir, 'dist', 'cli.js');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function run(args: string[], cacheHome: string) {
    const result = spawnSync(process.execPath, [launcher, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', XDG_CACHE_HOME: cacheHome } });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  const cacheFiles = (cacheHome: string): string[] => {
    const folder = path.join(cacheHome, 'deploy-rollback');
    return fs.existsSync(folder) ? fs.readdirSync(folder).map((name) => path.join(folder, name)) : [];
  };

  it('runs the CLI bundle beside it, with its exit codes', () => {
    const cacheHome = path.join(dir, 'cache-exit');
    assert.deepEqual(run(['--version'], cacheHome), { code: 0, stdout: `${version}\n`, stderr: '' });
    const unknown = run(['nonsense'], cacheHome);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command: nonsense/);
  });

  it('keeps the cache in a folder only this user can write, reads it on the next start and never rewrites a good one', () => {
    const cacheHome = path.join(dir, 'cache-good');
    assert.equal(run(['--help'], cacheHome).code, 0);
    if (nodeHasCompileCache) {
      assert.deepEqual(cacheFiles(cacheHome), []);
      return;
    }
    const [file, ...others] = cacheFiles(cacheHome);
    assert.deepEqual(others, []);
    assert.match(path.basename(file), new RegExp(`^cli-${process.version.replace(/\./g, '\\.')}-${process.arch}-\\d+-\\d+\\.cache$`));
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const written = fs.statSync(file);
    assert.equal(run(['--help'], cacheHome).code, 0);
    const after = fs.statSync(file);
    assert.deepEqual([after.ino, after.mtimeMs], [written.ino, written.mtimeMs]);
  });

  it('replaces a cache V8 rejects, and a stale build\'s cache, and still runs', () => {
    const cacheHome = path.join(dir, 'cache-bad');
    const folder = path.join(cacheHome, 'deploy-rollback');
    assert.equal(run(['--version'], cacheHome).code, 0);
    if (nodeHasCompileCache) return;
    const [file] = cacheFiles(cacheHome);
    fs.writeFileSync(file, 'not a code cache');
    fs.writeFileSync(path.join(folder, 'cli-v0.0.0-x64-1-1.cache'), 'an older build');
    assert.deepEqual(run(['--version'], cacheHome), { code: 0, stdout: `${version}\n`, stderr: '' });
    assert.deepEqual(cacheFiles(cacheHome), [file]);
    assert.notEqual(fs.readFileSync(file, 'utf8'), 'not a code cache');
  });

  it('uses no cache in a folder others can write (its code would run as is), and still runs', () => {
    const cacheHome = path.join(dir, 'cache-shared');
    const folder = path.join(cacheHome, 'deploy-rollback');
    fs.mkdirSync(folder, { recursive: true });
    fs.chmodSync(folder, 0o777);
    assert.deepEqual(run(['--version'], cacheHome), { code: 0, stdout: `${version}\n`, stderr: '' });
    assert.deepEqual(cacheFiles(cacheHome), []);
  });
});
