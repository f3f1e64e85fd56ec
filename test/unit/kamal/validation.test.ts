import { strict as assert } from 'node:assert';
import { parseKamalConfig } from '../../../src/core/kamal/config/read';
import { containerName, validateDestination, validateService } from '../../../src/core/kamal/commands/app';

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
