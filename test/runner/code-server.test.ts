// The install cache of scripts/code-server.mjs, with a stand-in `npm` on PATH so no registry
// is contacted. Run: npx mocha --require tsx/cjs test/runner/code-server.test.ts
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const script = pathToFileURL(path.resolve(__dirname, '..', '..', 'scripts', 'code-server.mjs')).href;

// Records each call, then installs a code-server that only answers --version, as npm would.
const fakeNpm = `#!/bin/sh
echo "$*" >> "$FAKE_NPM_LOG"
if [ -n "$FAKE_NPM_FAIL" ]; then echo "npm error code ENOTFOUND registry.npmjs.org" >&2; exit 1; fi
mkdir -p node_modules/.bin
printf '#!/bin/sh\\necho "4.100.3 409c64e0df4d53530e59c16acc2b5d5766f717b0 with Code 1.100.3"\\n' > node_modules/.bin/code-server
chmod +x node_modules/.bin/code-server
`;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

describe('scripts/code-server.mjs install cache', () => {
  let dir: string;
  let cacheDir: string;
  let npmLog: string;
  let binDir: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'code-server-cache-test-'));
    cacheDir = path.join(dir, 'cache', 'code-server-4.100.3');
    npmLog = path.join(dir, 'npm.log');
    binDir = path.join(dir, 'bin');
    mkdirSync(binDir);
    writeFileSync(path.join(binDir, 'npm'), fakeNpm);
    chmodSync(path.join(binDir, 'npm'), 0o755);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function ensure(extraEnv: Record<string, string> = {}): Promise<Outcome> {
    const program = `import(${JSON.stringify(script)}).then((m) => m.ensureCodeServer()).then((bin) => console.log('BIN ' + bin), (e) => { console.error('ERROR ' + e.message); process.exit(1); })`;
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', program],
        { env: { ...process.env, PATH: `${binDir}:${process.env.PATH}`, DEPLOY_ROLLBACK_CODE_SERVER_DIR: cacheDir, FAKE_NPM_LOG: npmLog, ...extraEnv } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  const npmCalls = () => (existsSync(npmLog) ? readFileSync(npmLog, 'utf8').trim().split('\n').filter(Boolean) : []);

  it('installs code-server@4.100.3 into its own folder and writes the marker only after it runs', async () => {
    const outcome = await ensure();
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.match(outcome.stdout, new RegExp(`BIN ${cacheDir}/node_modules/.bin/code-server`));
    assert.deepEqual(npmCalls(), ['install --unsafe-perm --no-audit --no-fund code-server@4.100.3']);
    assert.equal(JSON.parse(readFileSync(path.join(cacheDir, 'package.json'), 'utf8')).private, true);
    assert.match(readFileSync(path.join(cacheDir, '.installed'), 'utf8'), /^4\.100\.3 \S+ with Code 1\.100\.3\n/);
  });

  it('reuses a finished install without running npm again', async () => {
    assert.equal((await ensure()).code, 0);
    const second = await ensure();
    assert.equal(second.code, 0, second.stderr);
    assert.equal(npmCalls().length, 1);
  });

  it('redoes an install that stopped before writing the marker', async () => {
    mkdirSync(path.join(cacheDir, 'node_modules', 'half-written'), { recursive: true });
    const outcome = await ensure();
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.equal(npmCalls().length, 1);
    assert.equal(existsSync(path.join(cacheDir, 'node_modules', 'half-written')), false, 'the half install was not cleared first');
    assert.ok(existsSync(path.join(cacheDir, '.installed')));
  });

  it("reports npm's own error when the install fails, and leaves no marker", async () => {
    const outcome = await ensure({ FAKE_NPM_FAIL: '1' });
    assert.equal(outcome.code, 1);
    assert.match(outcome.stderr, /npm install code-server@4\.100\.3 in .* failed/);
    assert.match(outcome.stderr, /ENOTFOUND registry\.npmjs\.org/);
    assert.equal(existsSync(path.join(cacheDir, '.installed')), false);
    const retry = await ensure();
    assert.equal(retry.code, 0, 'a failed install blocked the next attempt');
  });
});
