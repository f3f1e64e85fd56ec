import { strict as assert } from 'node:assert';
import { parseJumpSpec, resolveSshTarget, sshConfigFiles, describeTarget } from '../../../src/core/ssh/resolve';
import type { SshTarget } from '../../../src/core/ssh/types';

const env = { homeDir: '/home/dev', localUser: 'dev' };

function kamalTarget(overrides: Partial<SshTarget> = {}): SshTarget {
  return { host: 'web-1', user: 'root', port: 22, keys: [], keysOnly: false, config: true, keepaliveInterval: 30, ...overrides };
}

describe('ssh_config resolution', () => {
  it('uses HostName and IdentityFile from a matching Host block', () => {
    const config = 'Host web-1\n  HostName 10.0.0.5\n  IdentityFile ~/.ssh/deploy_key\n';
    const resolved = resolveSshTarget(kamalTarget(), config, env);
    assert.equal(resolved.hostName, '10.0.0.5');
    assert.equal(resolved.alias, 'web-1');
    assert.deepEqual(resolved.identityFiles, ['/home/dev/.ssh/deploy_key']);
  });

  it("keeps Kamal's user and port over ssh_config's, as net-ssh does with explicit options", () => {
    const config = 'Host web-1\n  User deploy\n  Port 2222\n';
    const resolved = resolveSshTarget(kamalTarget({ user: 'app', port: 22 }), config, env);
    assert.equal(resolved.user, 'app');
    assert.equal(resolved.port, 22);
  });

  it('lets ssh_config supply user and port the caller marks as defaulted', () => {
    const config = 'Host web-1\n  User deploy\n  Port 2222\n';
    const resolved = resolveSshTarget({ ...kamalTarget(), defaulted: { user: true, port: true } }, config, env);
    assert.equal(resolved.user, 'deploy');
    assert.equal(resolved.port, 2222);
  });

  it('matches * and ? patterns, first value wins across blocks', () => {
    const config = ['Host web-?', '  HostName %h.internal', 'Host *', '  HostName fallback', '  IdentitiesOnly yes'].join('\n');
    const web = resolveSshTarget(kamalTarget({ host: 'web-1' }), config, env);
    assert.equal(web.hostName, 'web-1.internal');
    assert.equal(web.identitiesOnly, true);
    const db = resolveSshTarget(kamalTarget({ host: 'db-1' }), config, env);
    assert.equal(db.hostName, 'fallback');
  });

  it('skips a Host block whose negated pattern matches', () => {
    const config = 'Host *.example.com !bastion.example.com\n  ProxyJump bastion.example.com\n';
    assert.equal(resolveSshTarget(kamalTarget({ host: 'app.example.com' }), config, env).jump?.hostName, 'bastion.example.com');
    assert.equal(resolveSshTarget(kamalTarget({ host: 'bastion.example.com' }), config, env).jump, undefined);
  });

  it('expands ~, %d, %u, %h and %r in IdentityFile, keeping every IdentityFile in order', () => {
    const config = 'Host web-1\n  HostName 10.0.0.5\n  IdentityFile %d/keys/%u-%r@%h\n  IdentityFile ~/.ssh/second\n  IdentityFile 100%%.key\n';
    const resolved = resolveSshTarget(kamalTarget({ user: 'app' }), config, env);
    assert.equal(resolved.identityFiles[0], '/home/dev/keys/dev-app@10.0.0.5');
    assert.equal(resolved.identityFiles[1], '/home/dev/.ssh/second');
    assert.match(resolved.identityFiles[2], /\/100%\.key$/);
  });

  it('uses the default identity files (ed25519, ecdsa, rsa) when nothing names a key', () => {
    assert.deepEqual(resolveSshTarget(kamalTarget(), '', env).identityFiles, ['/home/dev/.ssh/id_ed25519', '/home/dev/.ssh/id_ecdsa', '/home/dev/.ssh/id_rsa']);
  });

  it("uses Kamal's keys instead of IdentityFile, and keys_only turns off the agent", () => {
    const config = 'Host web-1\n  IdentityFile ~/.ssh/from_config\n';
    const resolved = resolveSshTarget(kamalTarget({ keys: ['~/.ssh/kamal_key'], keysOnly: true }), config, env);
    assert.deepEqual(resolved.identityFiles, ['/home/dev/.ssh/kamal_key']);
    assert.equal(resolved.identitiesOnly, true);
  });

  it('reads nothing from ssh_config texts the caller did not pass (config: false)', () => {
    assert.deepEqual(sshConfigFiles(false, '/home/dev'), []);
    assert.deepEqual(sshConfigFiles(true, '/home/dev'), ['/home/dev/.ssh/config', '/etc/ssh/ssh_config']);
    assert.deepEqual(sshConfigFiles(['~/.ssh/kamal_config', '/etc/other'], '/home/dev'), ['/home/dev/.ssh/kamal_config', '/etc/other']);
  });

  it('lets the first config file win over the system file, per value', () => {
    const user = 'Host web-1\n  HostName 10.0.0.5\n';
    const system = 'Host *\n  HostName wrong\n  IdentitiesOnly yes\n';
    const resolved = resolveSshTarget(kamalTarget(), [user, system], env);
    assert.equal(resolved.hostName, '10.0.0.5');
    assert.equal(resolved.identitiesOnly, true);
  });

  it('follows ProxyJump, resolving the jump host through ssh_config too', () => {
    const config = ['Host web-1', '  ProxyJump ops@bastion:2200', 'Host bastion', '  HostName 192.0.2.10', '  IdentityFile ~/.ssh/bastion_key'].join('\n');
    const resolved = resolveSshTarget(kamalTarget(), config, env);
    assert.deepEqual(
      { user: resolved.jump?.user, host: resolved.jump?.hostName, port: resolved.jump?.port, keys: resolved.jump?.identityFiles },
      { user: 'ops', host: '192.0.2.10', port: 2200, keys: ['/home/dev/.ssh/bastion_key'] },
    );
    assert.equal(describeTarget(resolved), 'root@web-1:22 via ops@192.0.2.10:2200');
  });

  it('chains ProxyJump a,b so that a is dialled first', () => {
    const resolved = resolveSshTarget(kamalTarget(), 'Host web-1\n  ProxyJump first,second\n', env);
    assert.equal(resolved.jump?.alias, 'second');
    assert.equal(resolved.jump?.jump?.alias, 'first');
    assert.equal(resolved.jump?.jump?.jump, undefined);
    assert.equal(resolved.jump?.user, 'dev', 'a hop without a user falls back to the local user');
  });

  it("prefers Kamal's proxy over ProxyJump and ProxyJump none turns it off", () => {
    const config = 'Host web-1\n  ProxyJump other\n';
    const viaKamal = resolveSshTarget(kamalTarget({ proxy: { user: 'root', host: 'jump', port: 22 } }), config, env);
    assert.equal(viaKamal.jump?.alias, 'jump');
    assert.equal(viaKamal.jump?.user, 'root');
    assert.equal(resolveSshTarget(kamalTarget(), 'Host web-1\n  ProxyJump none\n', env).jump, undefined);
  });

  it('takes ProxyCommand from Kamal or ssh_config, leaving %h/%p for the pool to quote', () => {
    assert.equal(resolveSshTarget(kamalTarget({ proxyCommand: 'nc -X 5 %h %p' }), '', env).proxyCommand, 'nc -X 5 %h %p');
    assert.equal(resolveSshTarget(kamalTarget(), 'Host web-1\n  ProxyCommand ssh -W %h:%p gw\n', env).proxyCommand, 'ssh -W %h:%p gw');
  });

  it('does not make a jump host jump through itself (Host * with ProxyJump)', () => {
    const config = 'Host bastion\n  HostName 192.0.2.10\nHost *\n  ProxyJump bastion\n';
    const resolved = resolveSshTarget(kamalTarget(), config, env);
    assert.equal(resolved.jump?.hostName, '192.0.2.10');
    assert.equal(resolved.jump?.jump, undefined);
  });

  it('refuses a ProxyJump loop', () => {
    const config = 'Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n';
    assert.throws(() => resolveSshTarget(kamalTarget({ host: 'a' }), config, env), /Too many jump hosts/);
  });

  it('parses ProxyJump specs with users, ports, brackets and ssh:// URIs', () => {
    assert.deepEqual(parseJumpSpec('bastion'), { host: 'bastion', user: undefined, port: undefined });
    assert.deepEqual(parseJumpSpec('ops@bastion:2200'), { host: 'bastion', user: 'ops', port: 2200 });
    assert.deepEqual(parseJumpSpec('ssh://ops@[2001:db8::1]:2200'), { host: '2001:db8::1', user: 'ops', port: 2200 });
    assert.throws(() => parseJumpSpec('bastion:99999'), /Invalid port/);
  });
});
