import { strict as assert } from 'node:assert';
import { parseKamalConfig } from '../../../src/core/kamal/config/read';
import { containerName, runContainer, validateDestination, validateService } from '../../../src/core/kamal/commands/app';
import { renderWords } from '../../../src/core/kamal/commands/kamal-shell';

const BASE_FILE = '/app/config/deploy.yml';
const parse = (text: string, destination?: string) =>
  parseKamalConfig({ baseText: text, baseFile: BASE_FILE, destination, destinationText: destination ? 'x-destination: true\n' : undefined });
const problems = (text: string) => parse(text).problems.map((problem) => `${problem.line}:${problem.column} ${problem.severity} ${problem.message}`);

describe('Kamal validation as Kamal 2.12 does it', () => {
  it('refuses conflicting proxy run settings on one host, naming host, file and line', () => {
    const text = 'service: chat\nimage: a/b\nservers:\n  web: [h1]\n  api:\n    hosts: [h1]\n    proxy:\n      host: api.example.com\n      run:\n        metrics_port: 9191\nproxy:\n  run:\n    metrics_port: 9090\n';
    assert.deepEqual(problems(text), ['9:7 error Conflicting proxy run configurations for host h1']);
    assert.equal(parse(text).problems[0].file, BASE_FILE);
  });

  it('accepts identical proxy run settings on one host, and different ones on different hosts', () => {
    assert.deepEqual(problems('service: chat\nimage: a/b\nservers:\n  web: [h1]\n  api:\n    hosts: [h1]\n    proxy:\n      host: api.example.com\nproxy:\n  run:\n    metrics_port: 9090\n'), []);
    assert.deepEqual(problems('service: chat\nimage: a/b\nservers:\n  web: [h1]\n  api:\n    hosts: [h2]\n    proxy:\n      run:\n        metrics_port: 9191\nproxy:\n  run:\n    metrics_port: 9090\n'), []);
  });

  it('refuses unknown keys at the top level and in a role, with their line', () => {
    assert.deepEqual(problems('service: chat\nimage: a/b\nservers:\n  web:\n    hosts: [h1]\n    replicas: 2\nhealthcheck:\n  path: /up\n'), [
      '6:5 error servers/web/replicas: unknown key: replicas (Kamal 2.12 refuses it)',
      '7:1 error healthcheck: unknown key: healthcheck (Kamal 2.12 refuses it; prefix extensions with "x-")',
    ]);
  });

  it('accepts hooks_output, stop_timeout and x- extensions', () => {
    assert.deepEqual(problems('service: chat\nimage: a/b\nservers: [h1]\nhooks_output: quiet\nstop_timeout: 20\nx-anything: {a: 1}\n'), []);
  });

  it('refuses a null env value, naming the key', () => {
    assert.deepEqual(problems('service: chat\nimage: a/b\nservers: [h1]\nenv:\n  clear:\n    A: ~\n    B: ""\n'), ['6:8 error env/clear/A: should be a string (Kamal refuses an env value that is null)']);
  });

  it('accepts service names in any case and destinations with dots, through to the commands', () => {
    const config = parse('service: ChatApp\nimage: a/b\nservers: [h1]\n', 'prod.eu');
    assert.deepEqual(config.problems, []);
    assert.equal(validateService('ChatApp'), 'ChatApp');
    assert.equal(validateDestination('prod.eu'), 'prod.eu');
    assert.equal(containerName(config, 'web', 'v1'), 'ChatApp-web-prod.eu-v1');
    assert.throws(() => validateDestination('.hidden'), /destination/);
    assert.throws(() => validateDestination('a/b'), /destination/);
  });
});

/** Issue 19: what Kamal 2.12 accepts and rejects beyond its own test configs (its validator*.rb and docs/*.yml). */
describe('Kamal 2.12 validation at the edges (issue 19)', () => {
  const base = 'service: chat\nimage: a/b\nservers: [h1]\n';
  const errors = (text: string) => parse(text).problems.filter((problem) => problem.severity === 'error').map((problem) => `${problem.line} ${problem.message}`);

  describe('accepts', () => {
    it('no image with a local registry: the image is the service name (Registry#local?)', () => {
      const config = parse('service: chat\nregistry:\n  server: localhost:5555\nservers: [h1]\n');
      assert.deepEqual(config.problems, []);
      assert.equal(config.image, 'chat');
      assert.equal(config.repository, 'localhost:5555/chat');
      assert.deepEqual(errors('service: chat\nregistry:\n  server: ghcr.io\nservers: [h1]\n'), ['1 Missing required configuration for image']);
    });

    it('env clear keys that are not identifiers, and keys Psych reads as numbers as Ruby prints them', () => {
      const config = parse(`${base}env:\n  clear:\n    A-B: 1\n    a.b: 2\n    1ABC: 3\n    1: 4\n    0x1F: 5\n    1e3: 6\n    00:30: 7\n`);
      assert.deepEqual(config.problems, []);
      assert.deepEqual(Object.keys(config.env.clear), ['1', '31', '1800', 'A-B', 'a.b', '1ABC', '1e3']);
      const line = renderWords(runContainer(config, config.roles[0], { host: 'h1', version: 'v1', hostname: 'h' }));
      assert.match(line, / --env 1="4" --env 31="5" --env 1800="7" --env A-B="1" --env a\.b="2" --env 1ABC="3" --env 1e3="6" /);
    });

    it('hooks_output quiet, verbose, or a hash of them', () => {
      for (const value of ['quiet', 'verbose', '\n  pre-deploy: verbose\n  post-deploy: quiet']) assert.deepEqual(errors(`${base}hooks_output: ${value}\n`), [], value);
    });

    it('minimum_version up to 2.12.0, and digit strings only where Kamal\'s example is a string (ssh.port)', () => {
      for (const version of ['2.12.0', '2.12', '2.0', '1.9.2', '2.12.0.rc1']) assert.deepEqual(errors(`${base}minimum_version: ${version}\n`), [], version);
      assert.equal(parse(`${base}ssh:\n  port: "2222"\n`).ssh.port, 2222);
    });

    it('renders !!float 1 as Ruby prints the Float: "1.0"', () => {
      const config = parse(`${base}env:\n  A: !!float 1\n  B: !!float "2.50"\n  C: 1.0\n`);
      assert.deepEqual(config.problems, []);
      assert.deepEqual(config.env.clear, { A: '1.0', B: '2.5', C: '1.0' });
      assert.match(renderWords(runContainer(config, config.roles[0], { host: 'h1', version: 'v1', hostname: 'h' })), / --env A="1\.0" --env B="2\.5" --env C="1\.0" /);
    });
  });

  describe('rejects, with file, line and key', () => {
    it('unknown keys under proxy, top level and in a role', () => {
      assert.deepEqual(errors(`${base}proxy:\n  host: a.example.com\n  bogus: 1\n`), ['6 proxy: unknown key: bogus']);
      assert.deepEqual(errors(`${base}proxy:\n  healthcheck:\n    path: /up\n    every: 2\n`), ['7 proxy/healthcheck: unknown key: every']);
      assert.deepEqual(errors('service: chat\nimage: a/b\nservers:\n  web:\n    hosts: [h1]\n    proxy:\n      bogus: 1\n'), ['7 servers/web/proxy: unknown key: bogus']);
    });

    it('hooks_output other than quiet or verbose', () => {
      assert.deepEqual(errors(`${base}hooks_output: loud\n`), ['4 hooks_output: should be quiet or verbose, got "loud"']);
      assert.deepEqual(errors(`${base}hooks_output:\n  pre-deploy: loud\n`), ['5 hooks_output/pre-deploy: should be quiet or verbose, got "loud"']);
    });

    it('env.tags inside a role, and unknown keys beside clear/secret (Validator::Env)', () => {
      assert.deepEqual(errors('service: chat\nimage: a/b\nservers:\n  web:\n    hosts: [h1]\n    env:\n      tags:\n        x: {A: b}\n'), ['7 servers/web/env: tags are only allowed in the root env']);
      assert.deepEqual(errors(`${base}env:\n  clear: {A: b}\n  B: c\n`), ['6 env: unknown key: B']);
    });

    it('minimum_version above 2.12.0, as Kamal words it', () => {
      assert.deepEqual(errors(`${base}minimum_version: 99.0\n`), ['4 Current version is 2.12.0, minimum required is 99.0']);
      assert.deepEqual(errors(`${base}minimum_version: 2.12.1\n`), ['4 Current version is 2.12.0, minimum required is 2.12.1']);
    });

    it('wrong types: a string or a Float where Kamal\'s example is an integer', () => {
      assert.deepEqual(errors(`${base}deploy_timeout: "10"\n`), ['4 deploy_timeout: should be an integer']);
      assert.deepEqual(errors(`${base}drain_timeout: 1.5\n`), ['4 drain_timeout: should be an integer']);
      assert.deepEqual(errors(`${base}proxy:\n  app_port: "3000"\n`), ['5 proxy/app_port: should be an integer']);
    });

    it('two SSL roles on one proxy host (test/configuration_test.rb "two proxy ssl roles with same host")', () => {
      const text = 'service: chat\nimage: a/b\nservers:\n  web:\n    hosts: [1.1.1.1]\n    proxy:\n      ssl: true\n      host: foo.example.com\n  workers:\n    hosts: [1.1.1.1]\n    proxy:\n      ssl: true\n      host: foo.example.com\n';
      assert.deepEqual(errors(text), ["11 Different roles can't share the same host for SSL: foo.example.com"]);
      assert.deepEqual(errors(text.replace(/foo\.example\.com\n$/, 'bar.example.com\n')), []);
    });

    it('env values Psych reads as a Date or Time: "should be a string"', () => {
      assert.deepEqual(errors(`${base}env:\n  A: 2024-01-01\n  B: "2024-01-01"\n  C: 2024-01-01 10:00:00 Z\n`), ['5 env/A: should be a string', '7 env/C: should be a string']);
      assert.deepEqual(errors(`${base}env:\n  clear:\n    A: 2024-01-01\n`), ['6 env/clear/A: should be a string']);
    });
  });
});
