import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadKamalConfig } from '../../../src/core/kamal/config/read';
import { readConfigFile } from '../../../src/core/kamal/config/size';

describe('Kamal config size limit (before any parsing)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'drb-config-size-'));
    await fs.mkdir(path.join(dir, 'config'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses a 50 MB deploy.yml of plain keys with its size, in well under a second, without parsing it', async () => {
    const file = path.join(dir, 'config', 'deploy.yml');
    const line = 'x-key-000000: a plain value that is not an alias\n';
    const lines = Math.ceil((50 * 1024 * 1024) / line.length);
    await fs.writeFile(file, `service: chat\nimage: bars/app\nservers: [web-1]\n${line.repeat(lines)}`);
    const started = Date.now();
    const config = await loadKamalConfig(file, undefined, {});
    assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
    const errors = config.problems.filter((problem) => problem.severity === 'error');
    assert.equal(errors.length, 1, JSON.stringify(config.problems));
    assert.match(errors[0]!.message, /deploy\.yml is 50\.0 MB; Kamal configs are a few KB, so it is not read \(the limit is 1\.0 MB\)/);
  });

  it('refuses an oversized destination file, naming it', async () => {
    const file = path.join(dir, 'config', 'deploy.yml');
    await fs.writeFile(file, 'service: chat\nimage: bars/app\nservers: [web-1]\n');
    await fs.writeFile(path.join(dir, 'config', 'deploy.staging.yml'), `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
    const config = await loadKamalConfig(file, 'staging', {});
    const errors = config.problems.filter((problem) => problem.severity === 'error');
    assert.equal(errors[0]?.file, path.join(dir, 'config', 'deploy.staging.yml'));
    assert.match(errors[0]!.message, /deploy\.staging\.yml is 2\.0 MB; Kamal configs are a few KB/);
  });

  it('reads at most the limit from a file that does not say its size (a device)', async () => {
    await assert.rejects(readConfigFile('/dev/zero', 4096), /zero is over 4 KB; Kamal configs are a few KB/);
  });

  it('reads a normal config whole', async () => {
    const file = path.join(dir, 'config', 'deploy.yml');
    await fs.writeFile(file, 'service: chat\nimage: bars/app\nservers: [web-1]\n');
    assert.equal(await readConfigFile(file), 'service: chat\nimage: bars/app\nservers: [web-1]\n');
    const config = await loadKamalConfig(file, undefined, {});
    assert.equal(config.service, 'chat');
    assert.deepEqual(config.problems.filter((problem) => problem.severity === 'error'), []);
  });
});
