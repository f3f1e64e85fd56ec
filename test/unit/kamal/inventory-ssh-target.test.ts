import { strict as assert } from 'node:assert';
import { sshTargetFor } from '../../../src/core/kamal/ssh-target';
import { configFixture } from './inventory-fixtures.test';

describe('kamal ssh target', () => {
  const base = configFixture();
  const config = {
    ...base,
    ssh: { ...base.ssh, user: 'deploy', port: 2222, proxy: { user: 'root', host: 'bastion', port: 22 }, keys: ['~/.ssh/deploy'], keysOnly: true, config: false, keepaliveInterval: 30 },
  };

  it('takes user, port, jump host and keys from the ssh block', () => {
    assert.deepEqual(sshTargetFor(config, 'web-1'), {
      host: 'web-1',
      user: 'deploy',
      port: 2222,
      proxy: { user: 'root', host: 'bastion', port: 22 },
      keys: ['~/.ssh/deploy'],
      keysOnly: true,
      config: false,
      keepaliveInterval: 30,
    });
  });

  it('lets a host written as user@host:port override user and port', () => {
    const target = sshTargetFor(config, 'app@10.0.0.5:2200');
    assert.deepEqual([target.user, target.host, target.port], ['app', '10.0.0.5', 2200]);
  });

  it('reads bracketed IPv6 with a port and leaves a bare IPv6 address whole', () => {
    const bracketed = sshTargetFor(config, '[fd00::5]:2201');
    assert.deepEqual([bracketed.host, bracketed.port], ['fd00::5', 2201]);
    const bare = sshTargetFor(config, 'fd00::5');
    assert.deepEqual([bare.host, bare.port], ['fd00::5', 2222]);
  });

  it('passes a proxy command through and omits the jump host when there is none', () => {
    const target = sshTargetFor({ ssh: { ...base.ssh, proxyCommand: 'nc -X 5 %h %p' } }, 'web-1');
    assert.equal(target.proxyCommand, 'nc -X 5 %h %p');
    assert.equal('proxy' in target, false);
  });
});
