import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseKamalConfig, destinationFileFor } from '../../../src/core/kamal/config/read';
import { deepMerge } from '../../../src/core/kamal/config/parse';
import type { KamalConfig, KamalProxy } from '../../../src/core/kamal/config/types';

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'kamal');
const BASE_FILE = '/app/config/deploy.yml';

function fixture(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

function parse(name: string, options: { destination?: string; env?: NodeJS.ProcessEnv; available?: string[] } = {}): KamalConfig {
  const { destination } = options;
  let destinationText: string | undefined;
  if (destination) {
    try {
      destinationText = fixture(`${name}.${destination}.yml`);
    } catch {
      destinationText = undefined;
    }
  }
  return parseKamalConfig({
    baseText: fixture(`${name}.yml`),
    baseFile: BASE_FILE,
    destination,
    destinationText,
    env: options.env ?? {},
    availableDestinations: options.available,
  });
}

function positions(config: KamalConfig) {
  return config.problems.map((problem) => `${path.basename(problem.file)}:${problem.line}:${problem.column} ${problem.severity}`);
}

const DEFAULT_PROXY: KamalProxy = {
  hosts: [],
  appPort: 80,
  ssl: false,
  healthcheck: { path: '/up', interval: 1, timeout: 5 },
  bufferRequests: true,
  bufferResponses: true,
  requestHeaders: ['Cache-Control', 'Last-Modified', 'User-Agent'],
  responseHeaders: [],
};

describe('Kamal config', () => {
  describe('minimal config', () => {
    const config = parse('minimal');

    it('reads an array of servers as the web role with Kamal defaults', () => {
      assert.deepEqual(config.problems, []);
      assert.equal(config.service, 'chat');
      assert.equal(config.image, 'bars/app');
      assert.equal(config.registryServer, undefined);
      assert.equal(config.repository, 'bars/app');
      assert.equal(config.primaryRole, 'web');
      assert.deepEqual(config.roles, [
        {
          name: 'web',
          hosts: ['192.168.0.1', 'web-2.internal'],
          hostTags: { '192.168.0.1': [], 'web-2.internal': [] },
          primary: true,
          options: {},
          labels: {},
          env: { clear: {}, secret: [] },
          proxy: DEFAULT_PROXY,
        },
      ]);
      assert.deepEqual(config.hosts, ['192.168.0.1', 'web-2.internal']);
    });

    it('fills the documented defaults', () => {
      assert.deepEqual(config.ssh, { user: 'root', port: 22, keys: [], keysOnly: false, config: true, forwardAgent: false, keepaliveInterval: 30 });
      assert.deepEqual(config.boot, {});
      assert.equal(config.retainContainers, 5);
      assert.equal(config.readinessDelay, 7);
      assert.equal(config.deployTimeout, 30);
      assert.equal(config.drainTimeout, 30);
      assert.equal(config.hooksPath, '/app/.kamal/hooks');
      assert.equal(config.requireDestination, false);
      assert.equal(config.destination, undefined);
      assert.deepEqual(config.volumes, []);
      assert.deepEqual(config.logging, { options: {} });
      assert.deepEqual(config.unknown, []);
    });
  });

  describe('roles hash', () => {
    const config = parse('roles');
    const role = (name: string) => {
      const found = config.roles.find((candidate) => candidate.name === name);
      assert.ok(found, `role ${name}`);
      return found;
    };

    it('sorts roles by name as Kamal does and lists every host once in role order', () => {
      assert.deepEqual(config.problems, []);
      assert.deepEqual(config.roles.map((r) => r.name), ['api', 'cron', 'web', 'workers']);
      assert.deepEqual(config.hosts, ['10.0.0.5', '10.0.0.6', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
      assert.deepEqual(config.roles.map((r) => r.primary), [false, false, true, false]);
    });

    it('prefixes the image with registry.server', () => {
      assert.equal(config.registryServer, 'ghcr.io');
      assert.equal(config.repository, 'ghcr.io/bars/app');
    });

    it('reads host tags in string and array form', () => {
      assert.deepEqual(role('web').hostTags, { '10.0.0.1': [], '10.0.0.2': ['edge'] });
      assert.deepEqual(role('workers').hostTags, { '10.0.0.3': [], '10.0.0.4': ['batch', 'eu'] });
    });

    it('keeps cmd and options and merges labels and env over the top level', () => {
      const workers = role('workers');
      assert.equal(workers.cmd, 'bin/jobs');
      assert.deepEqual(workers.options, { memory: '2g', cpus: 2 });
      assert.deepEqual(workers.labels, { team: 'jobs', tier: 'background' });
      assert.deepEqual(workers.env, {
        clear: { RAILS_ENV: 'production', WEB_CONCURRENCY: '2', QUEUE: 'default' },
        secret: ['RAILS_MASTER_KEY', 'DB_PASSWORD', 'REDIS_URL'],
      });
      assert.deepEqual(config.env, { clear: { RAILS_ENV: 'production', WEB_CONCURRENCY: '2' }, secret: ['RAILS_MASTER_KEY', 'DB_PASSWORD'] });
      assert.deepEqual(role('web').labels, { team: 'chat' });
    });

    it('runs the proxy on the primary role and on roles asking for it, role settings over top-level ones', () => {
      assert.deepEqual(role('web').proxy, { ...DEFAULT_PROXY, hosts: ['chat.example.com'], appPort: 3000 });
      assert.deepEqual(role('cron').proxy, { ...DEFAULT_PROXY, hosts: ['chat.example.com'], appPort: 3000 });
      assert.deepEqual(role('api').proxy, { ...DEFAULT_PROXY, hosts: ['api.example.com'], appPort: 3000, healthcheck: { path: '/health', interval: 3, timeout: 5 } });
      assert.equal(role('workers').proxy, undefined);
    });
  });

  describe('destinations', () => {
    it('deep-merges deploy.staging.yml: hashes merge, arrays and scalars replace', () => {
      const config = parse('destinations', { destination: 'staging' });
      assert.deepEqual(config.problems, []);
      assert.equal(config.destination, 'staging');
      assert.equal(config.destinationFile, '/app/config/deploy.staging.yml');
      assert.deepEqual(config.roles[0].hosts, ['staging-1']);
      assert.deepEqual(config.roles[0].labels, { tier: 'web' });
      assert.deepEqual(config.env.clear, { LOG_LEVEL: 'debug', REGION: 'staging' });
      assert.deepEqual(config.roles[0].proxy?.hosts, ['staging.chat.example.com']);
      assert.deepEqual(config.roles[0].proxy?.healthcheck, { path: '/up', interval: 2, timeout: 10 });
      assert.deepEqual(config.volumes, []);
    });

    it('sets KAMAL_DESTINATION for ERB in the base file', () => {
      assert.equal(parse('destinations', { destination: 'production' }).env.clear.REGION, 'production');
    });

    it('reports a missing destination file', () => {
      const config = parse('destinations', { destination: 'production' });
      assert.deepEqual(config.problems.map((p) => [p.file, p.severity]), [['/app/config/deploy.production.yml', 'error']]);
      assert.match(config.problems[0].message, /deploy\.production\.yml/);
    });

    it('refuses to go without a destination when require_destination is set, naming the choices', () => {
      const config = parse('destinations', { available: ['production', 'staging'] });
      assert.equal(config.requireDestination, true);
      assert.deepEqual(config.problems, [
        { file: BASE_FILE, line: 3, column: 1, severity: 'error', message: 'config/deploy.yml requires a destination: pick one of production, staging' },
        // ERB renders nothing there without a destination: a null env value, which Kamal refuses too.
        { file: BASE_FILE, line: 17, column: 44, severity: 'error', message: 'env/clear/REGION: should be a string (Kamal refuses an env value that is null)' },
      ]);
    });

    it('refuses a hostile destination without reading another file', () => {
      const config = parseKamalConfig({ baseText: fixture('minimal.yml'), baseFile: BASE_FILE, destination: '../../etc/passwd', destinationText: 'service: evil' });
      assert.equal(config.destination, undefined);
      assert.equal(config.destinationFile, undefined);
      assert.equal(config.service, 'chat');
      assert.equal(config.problems.length, 1);
      assert.match(config.problems[0].message, /not a valid destination/);
    });

    it('names destination files as Ruby sub_ext does', () => {
      assert.equal(destinationFileFor('/app/config/deploy.yml', 'staging'), '/app/config/deploy.staging.yml');
      assert.equal(destinationFileFor('/app/config/kamal.yml', 'eu'), '/app/config/kamal.eu.yml');
    });

    it('merges hashes recursively and replaces everything else', () => {
      assert.deepEqual(deepMerge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: null, e: 2 }), { a: { b: 1, c: [3] }, d: null, e: 2 });
    });

    it('reports positions in the destination file for values it sets', () => {
      const config = parseKamalConfig({
        baseText: fixture('minimal.yml'),
        baseFile: BASE_FILE,
        destination: 'staging',
        destinationText: 'servers:\n  - ok-1\n  - "bad host"\n',
      });
      assert.deepEqual(positions(config), ['deploy.staging.yml:3:5 error']);
      assert.deepEqual(config.hosts, ['ok-1']);
    });
  });

  describe('ERB', () => {
    it('resolves ENV lookups in every supported form', () => {
      const config = parse('erb', { env: { SERVICE: 'chat', IMAGE: 'bars/app', REGISTRY: 'localhost:5555', SSH_USER: 'deploy' } });
      assert.deepEqual(config.problems, []);
      assert.equal(config.service, 'chat');
      assert.equal(config.image, 'bars/app');
      assert.equal(config.repository, 'localhost:5555/bars/app');
      assert.deepEqual(config.roles[0].hosts, ['web-1', 'web-3']);
      assert.equal(config.ssh.user, 'deploy');
      assert.equal(config.ssh.port, 2222);
      assert.deepEqual(config.raw.registry, { server: 'localhost:5555', username: 'bars' });
    });

    it('keeps a resolved registry password out of raw', () => {
      const config = parseKamalConfig({ baseText: 'service: chat\nimage: a/b\nservers: [w]\nregistry:\n  username: u\n  password: <%= ENV["PW"] %>\n', baseFile: BASE_FILE, env: { PW: 'hunter2' } });
      assert.deepEqual(config.raw.registry, { username: 'u', password: '[redacted]' });
      assert.ok(!JSON.stringify(config).includes('hunter2'));
    });

    it('makes a missing ENV.fetch an error and its value unknown', () => {
      const config = parse('erb', { env: { SERVICE: 'chat', IMAGE: 'bars/app', REGISTRY: 'r.example.com' } });
      assert.deepEqual(positions(config), ['deploy.yml:12:9 error']);
      assert.match(config.problems[0].message, /SSH_USER/);
      assert.deepEqual(config.unknown, ['ssh.user']);
    });

    it('reports ERB problems in the destination file against that file, and a destination value replaces an unknown base value', () => {
      const config = parseKamalConfig({
        baseText: 'service: chat\nimage: <%= `cat image` %>\nservers: [w]\n',
        baseFile: BASE_FILE,
        destination: 'staging',
        destinationText: 'image: bars/app\nlabels:\n  built: <%= Time.now %>\n',
      });
      assert.deepEqual(positions(config), ['deploy.yml:2:8 warning', 'deploy.staging.yml:3:10 warning']);
      assert.equal(config.image, 'bars/app');
      assert.deepEqual(config.unknown, ['labels.built']);
    });

    it('reports unresolved Ruby at its line and column and never guesses the value', () => {
      const config = parse('erb-unresolved', { env: { TOKEN: 'secret-token-value' } });
      assert.deepEqual(positions(config), [
        'deploy.yml:2:8 warning',
        'deploy.yml:6:7 warning',
        'deploy.yml:7:1 warning',
        'deploy.yml:10:1 warning',
        'deploy.yml:14:15 warning',
      ]);
      assert.deepEqual(config.unknown, ['image', 'servers.web.1', 'servers.workers', 'env.clear.BUILT_AT']);
      assert.equal(config.image, '');
      assert.equal(config.repository, '');
      assert.deepEqual(config.roles.map((r) => r.name), ['web'], 'a role written inside <% if %> is not guessed to exist');
      assert.deepEqual(config.hosts, ['web-1']);
      assert.equal(config.env.clear.TOKEN, 'secret-token-value');
      assert.ok(!('BUILT_AT' in config.env.clear));
      assert.ok(config.problems.every((p) => !p.message.includes('secret-token-value')));
    });
  });

  describe('YAML', () => {
    it('follows anchors, aliases and merge keys, later keys winning', () => {
      const config = parse('anchors');
      assert.deepEqual(config.problems, []);
      const jobs = config.roles.find((r) => r.name === 'jobs');
      const reports = config.roles.find((r) => r.name === 'reports');
      assert.deepEqual(config.roles.find((r) => r.name === 'web')?.hosts, ['10.1.0.1', '10.1.0.2']);
      assert.deepEqual([jobs?.hosts, jobs?.cmd, jobs?.options], [['10.1.0.1', '10.1.0.2'], 'bin/jobs', { memory: '1g' }]);
      assert.deepEqual([reports?.hosts, reports?.cmd], [['10.1.0.9'], 'bin/worker']);
    });

    it('ignores x- keys and leaves them out of raw', () => {
      const config = parse('anchors');
      assert.ok(!('x-hosts' in config.raw));
      assert.ok(!('x-role' in config.raw));
      assert.ok('servers' in config.raw);
    });

    it('reports syntax errors with line and column', () => {
      const config = parse('invalid-yaml');
      assert.ok(config.problems.length >= 1);
      assert.deepEqual(positions(config)[0], 'deploy.yml:6:1 error');
      assert.match(config.problems[0].message, /^YAML syntax error: /);
      assert.deepEqual(config.roles, []);
    });

    it('reports syntax errors after ERB at their original position', () => {
      const config = parseKamalConfig({ baseText: 'service: <%= ENV["LONG"] %>\nimage: "x" y\n', baseFile: BASE_FILE, env: { LONG: 'a-much-longer-value-than-the-tag-itself-is' } });
      assert.deepEqual(positions(config), ['deploy.yml:2:12 error']);
    });

    it('reports an empty file and a file that is not a hash', () => {
      assert.match(parseKamalConfig({ baseText: '', baseFile: BASE_FILE }).problems[0].message, /is empty/);
      assert.match(parseKamalConfig({ baseText: '- a\n', baseFile: BASE_FILE }).problems[0].message, /should be a hash/);
    });

    it('reads YAML 1.1 values as Psych does', () => {
      const config = parseKamalConfig({ baseText: 'service: chat\nimage: a/b\nservers: [w]\nproxy:\n  buffering:\n    requests: no\n    max_request_body: 40_000_000\n', baseFile: BASE_FILE });
      assert.deepEqual(config.problems, []);
      assert.equal(config.roles[0].proxy?.bufferRequests, false);
      assert.equal(config.roles[0].proxy?.maxRequestBody, 40_000_000);
    });

    it('lets the last of duplicate keys win, as Psych does', () => {
      const config = parseKamalConfig({ baseText: 'service: first\nservice: chat\nimage: a/b\nservers: [w]\n', baseFile: BASE_FILE });
      assert.equal(config.service, 'chat');
    });

    it('stops an alias bomb with a problem instead of expanding it', () => {
      let bomb = 'a: &a [x, x, x, x, x, x, x, x, x, x]\n';
      for (let level = 1; level < 9; level++) {
        const name = String.fromCharCode(97 + level);
        bomb += `${name}: &${name} [${Array(10).fill(`*${String.fromCharCode(96 + level)}`).join(', ')}]\n`;
      }
      const config = parseKamalConfig({ baseText: bomb, baseFile: BASE_FILE });
      assert.equal(config.problems.length, 1);
      assert.match(config.problems[0].message, /aliases expand to more than 20000 values/);
    });

    it('keeps a __proto__ key as plain data', () => {
      const config = parseKamalConfig({ baseText: 'service: chat\nimage: a/b\nservers: [w]\nenv:\n  __proto__: x\n', baseFile: BASE_FILE });
      assert.deepEqual(config.problems, []);
      assert.deepEqual(Object.keys(config.env.clear), ['__proto__']);
      assert.equal(Object.getPrototypeOf(config.env.clear), Object.prototype);
      assert.equal(Object.getOwnPropertyDescriptor(config.roles[0].env.clear, '__proto__')?.value, 'x');
    });
  });

  describe('invalid values', () => {
    const config = parse('invalid-values');

    it('reports each invalid value at its position', () => {
      assert.deepEqual(positions(config), [
        'deploy.yml:5:12 error',
        'deploy.yml:8:7 error',
        'deploy.yml:9:20 error',
        'deploy.yml:10:18 error',
        'deploy.yml:12:13 error',
        'deploy.yml:13:8 error',
        'deploy.yml:15:10 error',
        'deploy.yml:16:1 error',
        'deploy.yml:17:1 error',
      ]);
      assert.deepEqual(config.problems.map((p) => p.message), [
        'servers/web/hosts: should be an array',
        'servers/jobs/1: multiple hosts found',
        'retain_containers: Must retain at least 1 container',
        'readiness_delay: should be an integer',
        'proxy/app_port: should be a port number from 1 to 65535, got 99999',
        'proxy/ssl: Must set a host to enable automatic SSL',
        'boot/limit: should be a number of hosts or a percentage like "25%", got "lots"',
        "primary_role: The primary_role api isn't defined",
        'unknown_setting: unknown key: unknown_setting (Kamal 2.12 refuses it; prefix extensions with "x-")',
      ]);
    });

    it('falls back to defaults for refused values', () => {
      assert.equal(config.retainContainers, 5);
      assert.equal(config.readinessDelay, 7);
      assert.deepEqual(config.boot, {});
    });

    it('reports a role without servers unless allow_empty_roles', () => {
      const base = 'service: chat\nimage: a/b\nservers:\n  web: [w1]\n  jobs:\n    hosts: []\n';
      assert.deepEqual(positions(parseKamalConfig({ baseText: base, baseFile: BASE_FILE })), ['deploy.yml:5:3 error']);
      assert.deepEqual(parseKamalConfig({ baseText: `${base}allow_empty_roles: true\n`, baseFile: BASE_FILE }).problems, []);
    });

    it('reads env tags only to report bad names in them', () => {
      const config = parseKamalConfig({
        baseText: 'service: chat\nimage: a/b\nservers:\n  - w1: replica\nenv:\n  clear:\n    A: b\n  tags:\n    replica:\n      clear:\n        "BAD NAME": x\n      secret: [READONLY_PASSWORD]\n',
        baseFile: BASE_FILE,
      });
      assert.deepEqual(positions(config), ['deploy.yml:11:9 error']);
      assert.deepEqual(config.env, { clear: { A: 'b' }, secret: [] });
      assert.deepEqual(config.roles[0].hostTags, { w1: ['replica'] });
    });

    it('reports missing service and image', () => {
      const config = parseKamalConfig({ baseText: 'servers: [w1]\n', baseFile: BASE_FILE });
      assert.deepEqual(config.problems.map((p) => p.message), ['Missing required configuration for service', 'Missing required configuration for image']);
    });

    it('refuses a docker restart option as Kamal does', () => {
      const config = parseKamalConfig({ baseText: 'service: chat\nimage: a/b\nservers:\n  web:\n    hosts: [w1]\n    options:\n      restart: always\n', baseFile: BASE_FILE });
      assert.deepEqual(positions(config), ['deploy.yml:7:7 error']);
      assert.deepEqual(config.roles[0].options, {});
    });
  });

  describe('hostile values', () => {
    const config = parse('hostile');

    it('keeps hostile values out of every usable field', () => {
      assert.equal(config.service, '');
      assert.deepEqual(config.roles.map((r) => r.name), ['web']);
      assert.deepEqual(config.hosts, ['web-1']);
      assert.deepEqual(config.labels, {});
      assert.deepEqual(config.env.clear, {});
      assert.equal(config.ssh.user, 'root');
      assert.equal(config.ssh.proxy, undefined);
    });

    it('keeps them out of raw too', () => {
      assert.equal(config.raw.service, undefined);
      assert.deepEqual((config.raw.servers as Record<string, unknown>).web, ['web-1']);
      assert.ok(!('bad role;x' in (config.raw.servers as Record<string, unknown>)));
      assert.deepEqual(config.raw.labels, {});
      assert.equal((config.raw.ssh as Record<string, unknown>).user, undefined);
    });

    it('reports each at its line and column', () => {
      assert.deepEqual(positions(config), [
        'deploy.yml:1:10 error',
        'deploy.yml:6:7 error',
        'deploy.yml:7:7 error',
        'deploy.yml:8:7 error',
        'deploy.yml:9:7 error',
        'deploy.yml:10:7 error',
        'deploy.yml:11:7 error',
        'deploy.yml:12:7 error',
        'deploy.yml:13:3 error',
        'deploy.yml:16:3 error',
        'deploy.yml:17:7 error',
        'deploy.yml:20:5 error',
        'deploy.yml:22:9 error',
        'deploy.yml:23:10 error',
      ]);
      assert.match(config.problems[0].message, /^service: "chat;rm -rf \/" is not a valid service name/);
      assert.match(config.problems[8].message, /"bad role;x" is not a valid role name/);
    });

    it('removes a refused proxy host from raw once, though every proxy role reads it', () => {
      const config = parseKamalConfig({
        baseText: 'service: chat\nimage: a/b\nservers:\n  web: [w1]\n  api:\n    hosts: [w2]\n    proxy: true\nproxy:\n  hosts: [a.example.com, "b.example.com;id", c.example.com]\n',
        baseFile: BASE_FILE,
      });
      assert.deepEqual(positions(config), ['deploy.yml:9:26 error']);
      assert.deepEqual((config.raw.proxy as Record<string, unknown>).hosts, ['a.example.com', 'c.example.com']);
      assert.deepEqual(config.roles.map((r) => r.proxy?.hosts), [['a.example.com', 'c.example.com'], ['a.example.com', 'c.example.com']]);
    });

    it('drops a hostile value that came from the environment through ERB', () => {
      const hostile = parseKamalConfig({ baseText: 'service: chat\nimage: a/b\nservers:\n  - <%= ENV["HOST"] %>\n  - ok\n', baseFile: BASE_FILE, env: { HOST: 'x;reboot' } });
      assert.deepEqual(hostile.hosts, ['ok']);
      assert.deepEqual(positions(hostile), ['deploy.yml:4:5 error']);
    });
  });

  describe('ssh', () => {
    it('reads user, string port, bare jump host as root, keys, keys_only, config false, forward_agent', () => {
      const config = parse('ssh');
      assert.deepEqual(config.problems, []);
      assert.deepEqual(config.ssh, {
        user: 'deploy',
        port: 2222,
        proxy: { user: 'root', host: 'bastion.example.com', port: 22 },
        keys: ['~/.ssh/deploy_ed25519'],
        keysOnly: true,
        config: false,
        forwardAgent: true,
        keepaliveInterval: 30,
      });
    });

    it('reads user@host:port jump hosts and config file lists', () => {
      const config = parse('ssh-jump-user');
      assert.deepEqual(config.ssh.proxy, { user: 'jumper', host: 'bastion.example.com', port: 2200 });
      assert.deepEqual(config.ssh.config, ['~/.ssh/config.d/work', '/etc/ssh/extra']);
    });

    it('reads proxy_command and a single config path', () => {
      const config = parse('ssh-proxy-command');
      assert.equal(config.ssh.proxyCommand, 'ssh -W %h:%p jumper@bastion');
      assert.equal(config.ssh.proxy, undefined);
      assert.deepEqual(config.ssh.config, ['~/.ssh/only_this']);
    });

    it('resolves relative key and ssh_config paths against the project root, as Kamal run there would', () => {
      const config = parseKamalConfig({
        baseText: 'service: chat\nimage: bars/app\nservers: [web-1]\nssh:\n  keys: [config/deploy_key, ~/.ssh/id_x, /keys/abs]\n  config: [config/ssh_config]\n',
        baseFile: BASE_FILE,
      });
      assert.deepEqual(config.ssh.keys, ['/app/config/deploy_key', '~/.ssh/id_x', '/keys/abs']);
      assert.deepEqual(config.ssh.config, ['/app/config/ssh_config']);
    });
  });

  describe('boot and timings', () => {
    it('keeps a percentage boot limit and reads the timings and hooks path', () => {
      const config = parse('boot');
      assert.deepEqual(config.problems, []);
      assert.deepEqual(config.boot, { limit: '25%', wait: 2 });
      assert.deepEqual([config.retainContainers, config.readinessDelay, config.deployTimeout, config.drainTimeout], [3, 4, 10, 5]);
      assert.equal(config.hooksPath, '/app/ops/hooks');
    });

    it('keeps a numeric boot limit', () => {
      const config = parseKamalConfig({ baseText: 'service: chat\nimage: a/b\nservers: [w]\nboot:\n  limit: 2\n', baseFile: BASE_FILE });
      assert.deepEqual(config.boot, { limit: 2 });
    });
  });

  describe('proxy', () => {
    const config = parse('proxy');
    const role = (name: string) => config.roles.find((r) => r.name === name);

    it('reads every proxy setting of a role, over the top-level proxy', () => {
      assert.deepEqual(config.problems, []);
      assert.deepEqual(role('admin')?.proxy, {
        hosts: ['admin.example.com'],
        appPort: 8080,
        ssl: true,
        healthcheck: { path: '/up', interval: 1, timeout: 3 },
        responseTimeout: 60,
        bufferRequests: false,
        bufferResponses: true,
        maxRequestBody: 40_000_000,
        memory: 2_000_000,
        forwardHeaders: true,
        pathPrefix: '/admin',
        stripPathPrefix: false,
        requestHeaders: ['X-Request-Id'],
        responseHeaders: ['X-Runtime'],
      });
    });

    it('applies the top-level proxy to the primary role and none to proxy: false', () => {
      assert.deepEqual(role('web')?.proxy, { ...DEFAULT_PROXY, appPort: 8080, healthcheck: { path: '/up', interval: 1, timeout: 3 } });
      assert.equal(role('jobs')?.proxy, undefined);
    });

    it('lets the primary role opt out with proxy: false', () => {
      assert.equal(parse('proxy-off').roles[0].proxy, undefined);
    });

    it('refuses ssl on several servers without custom certificates', () => {
      const config2 = parseKamalConfig({ baseText: 'service: chat\nimage: a/b\nservers: [w1, w2]\nproxy:\n  host: a.example.com\n  ssl: true\n', baseFile: BASE_FILE });
      assert.equal(config2.problems.length, 1);
      assert.match(config2.problems[0].message, /SSL is only supported on a single server/);
    });

    it('refuses host and hosts together', () => {
      const config2 = parseKamalConfig({ baseText: 'service: chat\nimage: a/b\nservers: [w1]\nproxy:\n  host: a.example.com\n  hosts: [b.example.com]\n', baseFile: BASE_FILE });
      assert.deepEqual(config2.problems.map((p) => p.message), ["proxy: Specify one of 'host' or 'hosts', not both"]);
    });

    it('splits a comma-separated host', () => {
      const config2 = parseKamalConfig({ baseText: 'service: chat\nimage: a/b\nservers: [w1]\nproxy:\n  host: a.example.com,b.example.com\n', baseFile: BASE_FILE });
      assert.deepEqual(config2.roles[0].proxy?.hosts, ['a.example.com', 'b.example.com']);
    });
  });
});
