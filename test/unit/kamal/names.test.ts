import { strict as assert } from 'node:assert';
import { DeployRollbackError } from '../../../src/core/model';
import {
  assertValidName,
  validateDestination,
  validateEnvName,
  validateHost,
  validateImage,
  validateLabelKey,
  validateProxyHost,
  validateRegistryServer,
  validateRole,
  validateService,
  validateSshUser,
  validateVersion,
} from '../../../src/core/kamal/config/names';

const HOSTILE = ['a;b', '$(reboot)', '`id`', 'a b', '../x', "it's", 'a"b', 'a\nb', '-oProxyCommand=x', ''];

describe('Kamal names', () => {
  it('accepts service names Kamal accepts, case-insensitively as Kamal 2.12 does', () => {
    for (const ok of ['chat', 'my_app-2', 'MyApp']) assert.equal(validateService(ok), undefined, ok);
  });

  it('refuses hostile values for every kind of name', () => {
    for (const validate of [validateService, validateVersion, validateRole, validateDestination, validateHost, validateEnvName, validateLabelKey, validateImage, validateRegistryServer, validateSshUser, validateProxyHost]) {
      // Kamal writes `../x="v"` for an env key and the shell leaves it alone: harmless there.
      for (const bad of HOSTILE) if (!(validate === validateEnvName && bad === '../x')) assert.ok(validate(bad), `${validate.name} accepted ${JSON.stringify(bad)}`);
    }
  });

  it('refuses non-strings', () => {
    assert.equal(validateService(42), 'should be a string');
    assert.equal(validateHost(null), 'should be a string');
  });

  it('accepts Docker tags as versions and refuses what docker tag refuses', () => {
    for (const ok of ['v2', '3f2a1b9c0d4e5f6a7b8c9d0e1f2a3b4c5d6e7f80', '1.2.3-rc.1', '_x', 'abc_uncommitted_0123456789abcdef']) assert.equal(validateVersion(ok), undefined, ok);
    for (const bad of ['.hidden', '-v', 'a/b', 'a:b', 'x'.repeat(129)]) assert.ok(validateVersion(bad), bad);
    assert.equal(validateVersion('x'.repeat(128)), undefined);
  });

  it('accepts host names, IPs, user@host and :port', () => {
    for (const ok of ['web-1', 'web-1.example.com', '192.168.0.1', 'deploy@web-1', 'web-1:2222', '::1', '[::1]:22', 'fe80::1', 'app_host']) {
      assert.equal(validateHost(ok), undefined, ok);
    }
    for (const bad of ['web-1:99999', 'web..1', '@web', 'a@b@', 'web-1:', '[::1', 'x:y:z@w']) assert.ok(validateHost(bad), bad);
  });

  it('accepts wildcard proxy hosts', () => {
    assert.equal(validateProxyHost('*.example.com'), undefined);
    assert.ok(validateProxyHost('*'));
  });

  it('accepts destinations used as file names and refuses path tricks', () => {
    for (const ok of ['staging', 'production', 'eu-west_1', 'eu.prod']) assert.equal(validateDestination(ok), undefined, ok);
    for (const bad of ['..', 'a..b', '.staging', 'a/b']) assert.ok(validateDestination(bad), bad);
  });

  it('checks env names, label keys, images and registry servers', () => {
    assert.equal(validateEnvName('RAILS_MASTER_KEY'), undefined);
    // Kamal 2.12 takes any env key; these need no quoting on its command line.
    for (const ok of ['1X', 'A-B', 'a.b', '1ABC', '31', '1e3', '1800']) assert.equal(validateEnvName(ok), undefined, ok);
    for (const bad of ['A B', 'A=B', 'A;B', '$A', 'A"B']) assert.ok(validateEnvName(bad), bad);
    assert.equal(validateLabelKey('com.example/team'), undefined);
    assert.equal(validateImage('bars/app'), undefined);
    assert.equal(validateImage('localhost:5555/bars/app'), undefined);
    assert.equal(validateRegistryServer('localhost:5555'), undefined);
    assert.equal(validateRegistryServer('ghcr.io'), undefined);
    assert.ok(validateRegistryServer('https://ghcr.io'));
    assert.equal(validateSshUser('deploy'), undefined);
  });

  it('throws a DeployRollbackError naming the kind when asserting a hostile value', () => {
    assert.equal(assertValidName('version', 'v2'), 'v2');
    assert.throws(() => assertValidName('version', 'v2;reboot'), (error: unknown) => error instanceof DeployRollbackError && /Refusing version "v2;reboot"/.test(error.message));
  });
});
