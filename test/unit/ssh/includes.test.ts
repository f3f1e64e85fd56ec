import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { inlineIncludes } from '../../../src/core/ssh/includes';
import { resolveSshTarget } from '../../../src/core/ssh/resolve';

describe('ssh_config Include', () => {
  let home: string;
  let sshDir: string;
  before(() => {
    home = mkdtempSync(path.join(tmpdir(), 'dr-ssh-include-'));
    sshDir = path.join(home, '.ssh');
    mkdirSync(path.join(sshDir, 'config.d'), { recursive: true });
    writeFileSync(path.join(sshDir, 'config.d', '20-web'), 'Host web-1\n  HostName 10.0.0.5\n');
    writeFileSync(path.join(sshDir, 'config.d', '10-db'), 'Host db-1\n  HostName 10.0.0.9\n');
    writeFileSync(path.join(sshDir, 'config.d', '.hidden'), 'Host web-1\n  HostName hidden\n');
    writeFileSync(path.join(sshDir, 'extra'), 'User from-extra\nHost zzz\n  Port 2200\n');
  });
  after(() => rmSync(home, { recursive: true, force: true }));
  const env = () => ({ homeDir: home, localUser: 'dev' });
  const target = (host: string) => ({ host, user: 'root', port: 22, keys: [], keysOnly: false, config: true, keepaliveInterval: 30 });

  it('inlines files matched by a relative glob, sorted, skipping dotfiles', async () => {
    const text = await inlineIncludes('Include config.d/*\n', sshDir, home);
    assert.ok(text.indexOf('db-1') < text.indexOf('web-1'));
    assert.doesNotMatch(text, /hidden/);
    assert.equal(resolveSshTarget(target('web-1'), text, env()).hostName, '10.0.0.5');
    assert.equal(resolveSshTarget(target('db-1'), text, env()).hostName, '10.0.0.9');
  });

  it('keeps what follows an Include in the block it was written in', async () => {
    const text = await inlineIncludes('Host app\n  Include ~/.ssh/extra\n  HostName 10.1.1.1\nHost other\n  HostName 10.2.2.2\n', sshDir, home);
    const app = resolveSshTarget({ ...target('app'), defaulted: { user: true, port: true } }, text, env());
    assert.equal(app.user, 'from-extra');
    assert.equal(app.hostName, '10.1.1.1');
    assert.equal(app.port, 22, "the included Host zzz block does not swallow app's lines");
    const zzz = resolveSshTarget({ ...target('zzz'), defaulted: { port: true } }, text, env());
    assert.equal(zzz.port, 2200);
    assert.equal(zzz.hostName, 'zzz', "app's HostName after the Include does not leak into zzz");
  });

  it('skips missing files and refuses an Include loop', async () => {
    assert.equal((await inlineIncludes('Include nothing-here\nHostName x\n', sshDir, home)).includes('HostName x'), true);
    writeFileSync(path.join(sshDir, 'loop'), 'Include loop\n');
    await assert.rejects(inlineIncludes('Include loop\n', sshDir, home), /deeper than/);
  });
});
