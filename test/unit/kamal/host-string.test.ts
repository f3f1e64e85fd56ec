import { strict as assert } from 'node:assert';
import { kamalHostName, readKamalHost } from '../../../src/core/kamal/config/host-string';
import { sshTargetFor } from '../../../src/core/kamal/ssh-target';
import { parseKamalConfig } from '../../../src/core/kamal/config/read';
import { validateConfigForRollback } from '../../../src/core/kamal/rollback/validate';
import { runContainer } from '../../../src/core/kamal/commands/app';
import { renderWords } from '../../../src/core/kamal/commands/kamal-shell';
import { buildRoleStep } from '../../../src/core/kamal/rollback/steps';
import { describeTarget } from '../../../src/core/ssh/resolve';
import { knownHostsName } from '../../../src/core/ssh/knownHosts';

describe('kamal host strings (as SSHKit 1.24 reads them)', () => {
  it("reads SSHKit's own test strings", () => {
    assert.deepEqual(readKamalHost('example.com'), { hostname: 'example.com' });
    assert.deepEqual(readKamalHost('example.com:2222'), { hostname: 'example.com', port: 2222 });
    assert.deepEqual(readKamalHost('root@example.com'), { hostname: 'example.com', user: 'root' });
    assert.deepEqual(readKamalHost('user@example.com:123'), { hostname: 'example.com', user: 'user', port: 123 });
    assert.deepEqual(readKamalHost('[1fff:0:a88:85a3::ac1f]:8001'), { hostname: '1fff:0:a88:85a3::ac1f', port: 8001 });
  });

  it('takes a bare IPv6 address whole (IPv6HostParser): its last group is never a port', () => {
    assert.deepEqual(readKamalHost('::1'), { hostname: '::1' });
    assert.deepEqual(readKamalHost('fe80::1'), { hostname: 'fe80::1' });
    assert.deepEqual(readKamalHost('fe80::1:22'), { hostname: 'fe80::1:22' });
    assert.deepEqual(readKamalHost('2001:db8::10'), { hostname: '2001:db8::10' });
    assert.deepEqual(readKamalHost('fe80::1%eth0'), { hostname: 'fe80::1%eth0' });
  });

  it('reads an IPv6 address in brackets with or without a port (IPv6HostWithPortParser)', () => {
    assert.deepEqual(readKamalHost('[fe80::1]'), { hostname: 'fe80::1' });
    assert.deepEqual(readKamalHost('[::1]:2222'), { hostname: '::1', port: 2222 });
  });

  it('refuses what SSHKit misreads or cannot read, saying why', () => {
    assert.match(readKamalHost('deploy@[fe80::1]:22') as string, /cannot read a user before an IPv6 address/);
    assert.match(readKamalHost('deploy@::1') as string, /ssh\/user/);
    for (const bad of ['[::1', '[::1]:0', '[::1]:99999', '[web-1]', '[::1]x', 'a:b:c', 'web-1:', ':@hello@:', 'x:y:z@w', '@web', 'web..1', '[1.2.3.4]', 'web 1']) {
      assert.equal(typeof readKamalHost(bad), 'string', bad);
    }
  });

  it("gives SSHKit's Host#to_s: the address alone", () => {
    assert.equal(kamalHostName('[fe80::1]:2222'), 'fe80::1');
    assert.equal(kamalHostName('deploy@web-1:2222'), 'web-1');
    assert.equal(kamalHostName('::1'), '::1');
  });

  describe('through config, SSH and commands', () => {
    const text = [
      'service: chat',
      'image: bars/app',
      'servers:',
      '  web:',
      '    - "::1"',
      '    - "[fe80::1]"',
      '    - "[fd00::5]:2201"',
      '  workers:',
      '    hosts:',
      '      - "[fd00::6]": [eu]',
      '    cmd: bin/jobs',
      'env:',
      '  tags:',
      '    eu: { REGION: eu }',
      'ssh:',
      '  port: 2222',
    ].join('\n');
    const config = parseKamalConfig({ baseText: text, baseFile: '/app/config/deploy.yml' });

    it('keeps the hosts as written in a YAML list and as tagged role hosts, and passes rollback validation', () => {
      assert.deepEqual(config.problems.filter((problem) => problem.severity === 'error'), []);
      assert.deepEqual(config.roles.find((role) => role.name === 'web')?.hosts, ['::1', '[fe80::1]', '[fd00::5]:2201']);
      assert.deepEqual(config.roles.find((role) => role.name === 'workers')?.hosts, ['[fd00::6]']);
      validateConfigForRollback(config);
    });

    it('connects to the address, with the port from the host or the ssh block', () => {
      const at = (host: string) => {
        const target = sshTargetFor(config, host);
        return [target.host, target.port];
      };
      assert.deepEqual(at('::1'), ['::1', 2222]);
      assert.deepEqual(at('[fe80::1]'), ['fe80::1', 2222]);
      assert.deepEqual(at('[fd00::5]:2201'), ['fd00::5', 2201]);
    });

    it('writes KAMAL_HOST and the container hostname from the address as Kamal does, and keeps env tags by host', () => {
      const workers = config.roles.find((role) => role.name === 'workers')!;
      const line = renderWords(runContainer(config, workers, { host: '[fd00::6]', version: 'v2', hostname: 'fd00::6-0123456789ab' }));
      assert.match(line, / --hostname fd00::6-0123456789ab --env KAMAL_CONTAINER_NAME="chat-workers-v2" --env KAMAL_VERSION="v2" --env KAMAL_HOST="fd00::6" --env REGION="eu" /);
      const web = config.roles.find((role) => role.name === 'web')!;
      const step = buildRoleStep(config, web, '[fd00::5]:2201', { to: 'v2', renameExisting: false });
      assert.match(step.containerHostname, /^fd00::5-[0-9a-f]{12}$/);
      assert.equal(step.host, '[fd00::5]:2201');
    });

    it('names an IPv6 target with brackets in messages and known_hosts', () => {
      const target = { alias: '::1', hostName: '::1', user: 'root', port: 2222, identityFiles: [], identitiesOnly: false, keepaliveInterval: 30 };
      assert.equal(describeTarget(target), 'root@[::1]:2222');
      assert.equal(knownHostsName('::1', 2222), '[::1]:2222');
      assert.equal(knownHostsName('fe80::1', 22), 'fe80::1');
    });
  });
});
