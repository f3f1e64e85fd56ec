import { strict as assert } from 'node:assert';
import { quoteArgv } from '../../../src/core/shell';
import { DeployRollbackError } from '../../../src/core/model';
import {
  containerHostname,
  containerIdForVersion,
  containerLogs,
  containerName,
  containerStatus,
  currentRunningContainerName,
  envFileExists,
  latestImage,
  listRoleContainers,
  renameContainer,
  runContainer,
  stopContainer,
  tagLatestImage,
  validateHost,
  validateRepository,
  validateService,
  validateVersion,
} from '../../../src/core/kamal/commands/app';
import { AUTOMATIC_DEPLOY_LOCK_MESSAGE, acquireLock, lockDetailsText, lockStatus, parseLockDetails, releaseLock, rubyBase64, utcIso8601 } from '../../../src/core/kamal/commands/lock';
import { lockMessageFor } from '../../../src/core/kamal/rollback/assemble';
import { stopOtherRunningContainers } from '../../../src/core/kamal/commands/recovery';
import { auditLine, recordAudit } from '../../../src/core/kamal/commands/auditor';
import { proxyDeploy } from '../../../src/core/kamal/commands/proxy';
import { argumentize, escapeShellValue, optionize, optionizeWith, renderWords, type Word } from '../../../src/core/kamal/commands/kamal-shell';
import { parseKamalConfig } from '../../../src/core/kamal/config/read';
import { stopTimeout } from '../../../src/core/kamal/rollback/steps';
import { kamalConfig, role } from './rollback-fixtures';

const web = role('web', ['web-1']);
const plain = kamalConfig({ roles: [web] });
const production = kamalConfig({ roles: [web], destination: 'production' });

describe('Kamal commands', () => {
  describe('names', () => {
    it('names containers S-R-V without a destination and S-R-D-V with one', () => {
      assert.equal(containerName(plain, 'web', 'v2'), 'chat-web-v2');
      assert.equal(containerName(production, 'web', 'v2'), 'chat-web-production-v2');
    });
    it('tags latest per destination', () => {
      assert.equal(latestImage(plain), 'localhost:5555/bars/app:latest');
      assert.equal(latestImage(production), 'localhost:5555/bars/app:latest-production');
    });
    it('truncates the container hostname like Kamal', () => {
      assert.equal(containerHostname('web-1', 'abcdef012345'), 'web-1-abcdef012345');
      assert.equal(containerHostname(`${'a'.repeat(50)}.b`, '0123456789ab'), `${'a'.repeat(50)}-0123456789ab`);
    });
  });

  describe('container commands (as Kamal 2.12 ran them)', () => {
    // Kamal's own tests use service app, image dhh/app; so do these, to compare with its strings as they are.
    const app = kamalConfig({ service: 'app', image: 'dhh/app', registryServer: undefined, repository: 'dhh/app', roles: [web] });
    const staging = { ...app, destination: 'staging' };
    // Kamal's container_id_for renders `--filter name=^S-R-V$`; real Kamal 2.12 was seen sending it
    // single-quoted (spec), which is what we send: the same word to the host's shell.
    const quotedName = (kamal: string) => kamal.replace(/--filter name=(\^\S+\$)/g, "--filter 'name=$1'");

    it('finds a version by anchored name', () => {
      // test/commands/app_test.rb "container_id_for", "remove_container with destination".
      assert.equal(quoteArgv(containerIdForVersion(app, 'web', '999')), quotedName('docker container ls --all --filter name=^app-web-999$ --quiet'));
      assert.equal(quoteArgv(containerIdForVersion(staging, 'web', '999')), quotedName('docker container ls --all --filter name=^app-web-staging-999$ --quiet'));
    });
    it('renames the clashing container to _replaced_', () => {
      // test/cli/app_test.rb "boot will rename if same version is already running": /docker rename app-web-latest app-web-latest_replaced_[0-9a-f]{16}/.
      assert.match(quoteArgv(renameContainer(app, 'web', 'latest', 'latest_replaced_4817762cd88b9b78')), /^docker rename app-web-latest app-web-latest_replaced_[0-9a-f]{16}$/);
    });
    it('stops the old version through xargs', () => {
      // test/commands/app_test.rb "stop with version"; -t from stop_args ("stop with custom drain timeout").
      assert.equal(stopContainer(app, 'web', '123'), quotedName('docker container ls --all --filter name=^app-web-123$ --quiet | xargs docker stop'));
      assert.equal(stopContainer(staging, 'workers', '123', 20), quotedName('docker container ls --all --filter name=^app-workers-staging-123$ --quiet | xargs docker stop -t 20'));
    });
    it('reads health with Kamal\'s inspect format', () => {
      // test/cli/app_test.rb "boot with web barrier opened": the workers health check.
      assert.equal(
        containerStatus(app, 'workers', 'latest'),
        quotedName("docker container ls --all --filter name=^app-workers-latest$ --quiet | xargs docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}'"),
      );
    });
    it("shows the failed container's logs as Kamal's boot failure does, bounded to its last 50 lines", () => {
      // Kamal's close_barrier: app.logs(container_id: app.container_id_for_version(version)) (cli/app/boot.rb,
      // commands/app/logging.rb), which has no --tail; we add one where Kamal's `lines:` puts it
      // (test/commands/app_test.rb "logs with lines": `--timestamps --tail 100 2>&1`) so an output channel gets a bounded answer.
      const kamal = 'docker container ls --all --filter name=^app-web-999$ --quiet | xargs docker logs --timestamps 2>&1';
      assert.equal(containerLogs(app, 'web', '999'), quotedName(kamal).replace(' --timestamps 2>&1', ' --timestamps --tail 50 2>&1'));
    });
    it('moves the latest tag', () => {
      // test/commands/app_test.rb "tag_latest_image", "tag_latest_image with destination".
      assert.equal(quoteArgv(tagLatestImage(app, '999')), 'docker tag dhh/app:999 dhh/app:latest');
      assert.equal(quoteArgv(tagLatestImage(staging, '999')), 'docker tag dhh/app:999 dhh/app:latest-staging');
    });
    it('reads the current version from the latest image first, then the newest active container, as Kamal does with and without a destination', () => {
      // Kamal 2.12's test/cli/app_test.rb ("boot will rename if same version is already running") and
      // test/commands/app_test.rb ("current_running_container_id with destination"), service app, image dhh/app.
      // We read the name and take the version off it ourselves, so Kamal's `| while read line; …` is left off.
      const kamal = (filters: string, reference: string) =>
        `sh -c 'docker ps --latest --format '\\''{{.Names}}'\\'' ${filters} --filter status=running --filter status=restarting --filter ancestor=$(docker image ls --filter reference=${reference} --format '\\''{{.ID}}'\\'') ; ` +
        `docker ps --latest --format '\\''{{.Names}}'\\'' ${filters} --filter status=running --filter status=restarting' | head -1`;
      assert.equal(currentRunningContainerName(app, 'web'), kamal('--filter label=service=app --filter label=destination= --filter label=role=web', 'dhh/app:latest'));
      assert.equal(
        currentRunningContainerName({ ...app, destination: 'staging' }, 'web'),
        kamal('--filter label=service=app --filter label=destination=staging --filter label=role=web', 'dhh/app:latest-staging'),
      );
      // Kamal's own line, character for character, before its version extraction.
      assert.equal(
        `${currentRunningContainerName(app, 'workers')} | while read line; do echo \${line#app-workers-}; done`,
        "sh -c 'docker ps --latest --format '\\''{{.Names}}'\\'' --filter label=service=app --filter label=destination= --filter label=role=workers --filter status=running --filter status=restarting --filter ancestor=$(docker image ls --filter reference=dhh/app:latest --format '\\''{{.ID}}'\\'') ; docker ps --latest --format '\\''{{.Names}}'\\'' --filter label=service=app --filter label=destination= --filter label=role=workers --filter status=running --filter status=restarting' | head -1 | while read line; do echo ${line#app-workers-}; done",
      );
    });
    it('lists a role\'s containers with Kamal\'s list_containers filters (destination label always)', () => {
      // Kamal's list_containers: `docker container ls --all` with container_filter_args; we add the fields we parse.
      const format = " --format '{{.ID}}\t{{.Names}}\t{{.State}}\t{{.CreatedAt}}'";
      assert.equal(quoteArgv(listRoleContainers(plain, 'web')), `docker container ls --all --filter label=service=chat --filter label=destination= --filter label=role=web${format}`);
      assert.equal(quoteArgv(listRoleContainers(production, 'web')), `docker container ls --all --filter label=service=chat --filter label=destination=production --filter label=role=web${format}`);
    });
    it('stops every other running container of this role of this deployment only, never the target, never another destination\'s', () => {
      assert.equal(
        stopOtherRunningContainers(plain, 'web', 'v2', 30),
        `docker ps --quiet --filter label=service=chat --filter label=destination= --filter label=role=web --filter status=running | { grep -vxF -e "$(docker container ls --all --quiet --filter 'name=^chat-web-v2$')" || true; } | xargs -r docker stop -t 30`,
      );
      assert.match(stopOtherRunningContainers(production, 'web', 'v2'), / --filter label=destination=production --filter label=role=web .*'name=\^chat-web-production-v2\$'/);
    });
    it('checks the role env file', () => {
      assert.equal(envFileExists(production, 'web'), 'test -f .kamal/apps/chat-production/env/roles/web.env && echo yes || echo no');
    });
  });

  describe('docker run (values escaped as Kamal\'s escape_shell_value)', () => {
    it('renders the full Kamal run line without a destination (bare destination label)', () => {
      const line = renderWords(runContainer(plain, web, { host: 'web-1', version: 'v2', hostname: 'web-1-0123456789ab' }));
      assert.equal(
        line,
        'docker run --detach --restart unless-stopped --name chat-web-v2 --network kamal --hostname web-1-0123456789ab' +
          ' --env KAMAL_CONTAINER_NAME="chat-web-v2" --env KAMAL_VERSION="v2" --env KAMAL_HOST="web-1"' +
          ' --env-file .kamal/apps/chat/env/roles/web.env --log-opt max-size="10m"' +
          ' --label service="chat" --label role="web" --label destination localhost:5555/bars/app:v2',
      );
    });

    it('renders destination, clear env, volumes, logging, custom labels, options and cmd', () => {
      const jobs = role('jobs', ['web-1'], {
        cmd: 'bin/jobs --queue "default high"',
        env: { clear: { RAILS_ENV: 'production', GREETING: "it's $HOME" }, secret: ['DB_PASSWORD'] },
        labels: { 'traefik.enable': 'false', team: 'core team' },
        options: { memory: '512m', 'add-host': ['a:1.2.3.4', 'b:5.6.7.8'], init: true },
      });
      const config = kamalConfig({
        destination: 'production',
        roles: [web, jobs],
        volumes: ['/data/storage:/rails/storage'],
        logging: { driver: 'json-file', options: { 'max-size': '100m', 'max-file': '3' } },
      });
      const line = renderWords(runContainer(config, jobs, { host: '10.0.0.5', version: 'abc123', hostname: '10.0.0.5-aaaaaaaaaaaa' }));
      assert.equal(
        line,
        'docker run --detach --restart unless-stopped --name chat-jobs-production-abc123 --network kamal --hostname 10.0.0.5-aaaaaaaaaaaa' +
          ' --env KAMAL_CONTAINER_NAME="chat-jobs-production-abc123" --env KAMAL_VERSION="abc123" --env KAMAL_HOST="10.0.0.5" --env KAMAL_DESTINATION="production"' +
          ' --env RAILS_ENV="production" --env GREETING="it\'s \\$HOME"' +
          ' --env-file .kamal/apps/chat-production/env/roles/jobs.env' +
          ' --log-driver "json-file" --log-opt max-size="100m" --log-opt max-file="3"' +
          ' --volume /data/storage:/rails/storage' +
          ' --label service="chat" --label role="jobs" --label destination="production" --label traefik.enable="false" --label team="core team"' +
          ' --memory "512m" --add-host "a:1.2.3.4" --add-host "b:5.6.7.8" --init' +
          ' localhost:5555/bars/app:abc123 bin/jobs --queue "default high"',
      );
    });

    it('takes role logging from the raw role config over the top-level one', () => {
      const config = kamalConfig({ roles: [web], logging: { options: { 'max-size': '5m' } }, raw: { servers: { web: { logging: { driver: 'local' } } } } });
      assert.match(renderWords(runContainer(config, web, { host: 'web-1', version: 'v1', hostname: 'h' })), / --log-driver "local" --log-opt max-size="5m" /);
    });

    it('passes clear env as Kamal does: ${VAR} for the host shell, $ and backticks escaped, false bare, blank as a bare key', () => {
      const config = parseKamalConfig({
        baseText:
          'service: chat\nimage: bars/app\nservers: [web-1]\nenv:\n  clear:\n    HOST_TOKEN: "${HOST_TOKEN}"\n    PRICE: "$5 `date`"\n    QUOTE: \'say "hi" \\ #{x}\'\n    OFF: false\n    OFF_TEXT: "false"\n    BLANK: ""\n    SPACES: "  "\n    N: 1.0\n    CAFE: "café au lait"\n',
        baseFile: '/app/config/deploy.yml',
      });
      assert.deepEqual(config.problems, []);
      const line = renderWords(runContainer(config, config.roles[0], { host: 'web-1', version: 'v1', hostname: 'h' }));
      assert.match(
        line,
        / --env HOST_TOKEN="\$\{HOST_TOKEN\}" --env PRICE="\\\$5 \\`date\\`" --env QUOTE="say \\"hi\\" \\\\ \\#\{x\}" --env false=false --env OFF_TEXT="false" --env BLANK --env SPACES --env N="1.0" --env CAFE="caf"é" au lait" --env-file /,
      );
    });
  });

  describe('escape_shell_value (lib/kamal/utils.rb)', () => {
    it('renders as Kamal\'s utils.rb does (escape_shell_value, argumentize, optionize)', () => {
      // The cases of Kamal's test/utils_test.rb, then what escape_shell_value's regexes give.
      assert.equal(renderWords(argumentize('--label', [['foo', '`bar`'], ['baz', 'qux'], ['quux', null]])), '--label foo="\\`bar\\`" --label baz="qux" --label quux');
      assert.equal(renderWords(optionize([['foo', 'bar'], ['baz', 'qux'], ['quux', true]])), '--foo "bar" --baz "qux" --quux');
      assert.equal(renderWords(optionizeWith([['foo', 'bar'], ['baz', 'qux'], ['quux', true]])), '--foo="bar" --baz="qux" --quux');
      assert.equal(escapeShellValue('`foo`'), '"\\`foo\\`"');
      assert.equal(escapeShellValue('foo'), '"foo"');
      assert.equal(escapeShellValue('_foo'), '"_foo"');
      assert.equal(escapeShellValue('multi\nline'), '"multi\\nline"');
      assert.equal(escapeShellValue('$PATH'), '"\\$PATH"');
      assert.equal(escapeShellValue('${PATH}'), '"${PATH}"');
      assert.equal(escapeShellValue('`foo`'), '"\\`foo\\`"');
      assert.equal(escapeShellValue('foo\'bar'), '"foo\'bar"');
      assert.equal(escapeShellValue('foo"bar'), '"foo\\"bar"');
      assert.equal(escapeShellValue('$(ls)'), '"\\$(ls)"');
    });
  });

  describe('docker stop -t (Kamal\'s stop_args)', () => {
    const yaml = (extra: string) =>
      parseKamalConfig({ baseText: `service: chat\nimage: bars/app\nservers:\n  web: [web-1]\n  workers:\n    hosts: [web-1]\n    cmd: bin/jobs\n${extra}`, baseFile: '/app/config/deploy.yml' });
    it('leaves -t out for proxy roles and uses drain_timeout for the others', () => {
      const config = yaml('');
      assert.deepEqual(config.roles.map((entry) => stopTimeout(config, entry)), [undefined, 30]);
      assert.equal(stopContainer(config, 'workers', 'v1', stopTimeout(config, config.roles[1])), "docker container ls --all --filter 'name=^chat-workers-v1$' --quiet | xargs docker stop -t 30");
    });
    it('takes the role\'s stop_timeout, else the top-level one, else drain_timeout', () => {
      const roleLevel = yaml('    stop_timeout: 120\ndrain_timeout: 20\n');
      assert.deepEqual(roleLevel.roles.map((entry) => stopTimeout(roleLevel, entry)), [undefined, 120]);
      const topLevel = yaml('stop_timeout: 45\ndrain_timeout: 20\n');
      assert.deepEqual(topLevel.roles.map((entry) => stopTimeout(topLevel, entry)), [45, 45]);
      const drain = yaml('drain_timeout: 20\n');
      assert.deepEqual(drain.roles.map((entry) => stopTimeout(drain, entry)), [undefined, 20]);
    });
  });

  describe('kamal-proxy deploy (Kamal\'s deploy_options, unset flags left out)', () => {
    const parse = (text: string, destination?: string) =>
      parseKamalConfig({ baseText: `service: chat\nimage: bars/app\nservers: [web-1]\n${text}`, baseFile: '/app/config/deploy.yml', destination, destinationText: destination ? 'x-destination: true\n' : undefined });

    it('matches the line Kamal 2.12 ran for a config with a health check path', () => {
      const config = parse('deploy_timeout: 10\nproxy:\n  healthcheck:\n    path: /up\n');
      assert.deepEqual(config.problems, []);
      assert.equal(
        proxyDeploy(config, config.roles[0], 'c5744c3f08d9', 'v2'),
        'docker exec kamal-proxy kamal-proxy deploy chat-web --target="c5744c3f08d9:80" --deploy-timeout="10s" --drain-timeout="30s" --health-check-path="/up"' +
          ' --buffer-requests --buffer-responses --log-request-header="Cache-Control" --log-request-header="Last-Modified" --log-request-header="User-Agent"',
      );
    });

    it('leaves out health check flags nobody configured', () => {
      const config = parse('');
      assert.equal(
        proxyDeploy(config, config.roles[0], 'c5744c3f08d9', 'v2'),
        'docker exec kamal-proxy kamal-proxy deploy chat-web --target="c5744c3f08d9:80" --deploy-timeout="30s" --drain-timeout="30s"' +
          ' --buffer-requests --buffer-responses --log-request-header="Cache-Control" --log-request-header="Last-Modified" --log-request-header="User-Agent"',
      );
    });

    it('carries every configured option, since deploy replaces the service\'s settings', () => {
      const config = parse(
        'proxy:\n  hosts: [chat.example.com, www.chat.example.com]\n  app_port: 3000\n  ssl: true\n  ssl_redirect: false\n  response_timeout: 60\n' +
          '  healthcheck: {path: /health, interval: 3, timeout: 10}\n  buffering: {requests: false, memory: 2000000, max_request_body: 40_000_000, max_response_body: 0}\n' +
          '  forward_headers: true\n  path_prefix: /app\n  strip_path_prefix: false\n  logging: {request_headers: [X-Request-Id], response_headers: [X-Runtime]}\n',
        'production',
      );
      assert.deepEqual(config.problems, []);
      assert.equal(
        proxyDeploy(config, config.roles[0], '0123456789ab', 'v2'),
        'docker exec kamal-proxy kamal-proxy deploy chat-web-production --target="0123456789ab:3000" --host="chat.example.com" --host="www.chat.example.com" --tls' +
          ' --deploy-timeout="30s" --drain-timeout="30s" --health-check-interval="3s" --health-check-timeout="10s" --health-check-path="/health" --target-timeout="60s"' +
          ' --buffer-requests="false" --buffer-responses --buffer-memory="2000000" --max-request-body="40000000" --max-response-body="0"' +
          ' --path-prefix="/app" --strip-path-prefix="false" --forward-headers --tls-redirect="false" --log-request-header="X-Request-Id" --log-response-header="X-Runtime"',
      );
    });

    it('passes custom certificate paths and error pages as kamal-proxy sees them', () => {
      const config = parse('error_pages_path: public\nproxy:\n  host: chat.example.com\n  ssl:\n    certificate_pem: CERTIFICATE_PEM\n    private_key_pem: PRIVATE_KEY_PEM\n', 'staging');
      assert.deepEqual(config.problems, []);
      assert.equal(
        proxyDeploy(config, config.roles[0], '0123456789ab', 'v7'),
        'docker exec kamal-proxy kamal-proxy deploy chat-web-staging --target="0123456789ab:80" --host="chat.example.com" --tls' +
          ' --tls-certificate-path="/home/kamal-proxy/.apps-config/chat-staging/tls/web/cert.pem" --tls-private-key-path="/home/kamal-proxy/.apps-config/chat-staging/tls/web/key.pem"' +
          ' --deploy-timeout="30s" --drain-timeout="30s" --buffer-requests --buffer-responses' +
          ' --log-request-header="Cache-Control" --log-request-header="Last-Modified" --log-request-header="User-Agent"' +
          ' --error-pages="/home/kamal-proxy/.apps-config/chat-staging/error_pages/v7"',
      );
    });

    it('refuses a target that is not a 12-hex container id', () => {
      assert.throws(() => proxyDeploy(plain, web, '$(id)', 'v2'), DeployRollbackError);
    });
  });

  describe('lock', () => {
    const details = { holder: 'Ada Lovelace', lockedAt: '2026-11-23T00:17:41Z', version: 'v2', message: 'Rollback to v2 by Deploy Rollback' };
    it('wraps base64 at 60 characters like Ruby\'s Base64.encode64', () => {
      const encoded = rubyBase64('Locked by: Ada Lovelace at 2026-11-23T00:17:41Z\nVersion: v2\nMessage: Rollback to v2 by Deploy Rollback');
      const lines = encoded.split('\n');
      assert.equal(lines[lines.length - 1], '');
      assert.ok(lines.slice(0, -2).every((line) => line.length === 60));
      assert.ok(lines[lines.length - 2].length <= 60 && lines[lines.length - 2].length > 0);
      assert.equal(Buffer.from(encoded, 'base64').toString('utf8').split('\n')[1], 'Version: v2');
    });
    it('acquires with mkdir then writes the details', () => {
      // Kamal's line, plus: a failed write removes the directory it just made (no empty lock left behind).
      assert.equal(
        acquireLock(plain, details),
        `mkdir .kamal/lock-chat && { echo '${rubyBase64('Locked by: Ada Lovelace at 2026-11-23T00:17:41Z\nVersion: v2\nMessage: Rollback to v2 by Deploy Rollback')}' > .kamal/lock-chat/details || { rm -rf .kamal/lock-chat; false; }; }`,
      );
      assert.match(acquireLock(production, details), /^mkdir \.kamal\/lock-chat-production && \{ echo '[A-Za-z0-9+/=\n]+' > \.kamal\/lock-chat-production\/details \|\| \{ rm -rf \.kamal\/lock-chat-production; false; \}; \}$/);
    });
    it('reads status and releases exactly as Kamal', () => {
      // test/commands/lock_test.rb (service app, destination production): "status", "release"; "acquire" as a pattern.
      const app = kamalConfig({ service: 'app', repository: 'dhh/app', destination: 'production' });
      assert.equal(lockStatus(app), 'stat .kamal/lock-app-production > /dev/null && cat .kamal/lock-app-production/details | base64 -d');
      assert.equal(releaseLock(app), 'rm .kamal/lock-app-production/details && rm -r .kamal/lock-app-production');
      assert.match(acquireLock(app, { ...details, message: 'Hello', version: '123' }), /mkdir \.kamal\/lock-app-production && .*echo '.*' > \.kamal\/lock-app-production\/details/s);
      assert.equal(lockStatus(plain), 'stat .kamal/lock-chat > /dev/null && cat .kamal/lock-chat/details | base64 -d');
    });
    it("writes a message Kamal's --lock-wait waits for, naming this run", () => {
      // cli/base.rb acquire_lock_with_wait: `unless status.include?(AUTOMATIC_DEPLOY_LOCK_MESSAGE)` it refuses to wait.
      assert.equal(AUTOMATIC_DEPLOY_LOCK_MESSAGE, 'Automatic deploy lock');
      for (const kind of ['rollback', 'roll-forward'] as const) {
        const message = lockMessageFor(kind, 'v2');
        const status = lockDetailsText({ ...details, message });
        assert.ok(status.includes('Automatic deploy lock'), status);
        assert.match(message, new RegExp(`to v2 by Deploy Rollback \\(pid ${process.pid} on [A-Za-z0-9._-]+\\)$`));
      }
    });
    it('parses the holder, time, version and message', () => {
      assert.deepEqual(parseLockDetails('Locked by: DHH at 2026-11-22T10:00:00Z\nVersion: v9\nMessage: Manual deploy\nin two lines\n'), {
        holder: 'DHH',
        lockedAt: '2026-11-22T10:00:00Z',
        version: 'v9',
        message: 'Manual deploy\nin two lines',
      });
    });
    it('prints times like Ruby\'s Time#iso8601 in UTC', () => {
      assert.equal(utcIso8601(new Date(Date.UTC(2026, 10, 23, 0, 17, 41, 512))), '2026-11-23T00:17:41Z');
    });
  });

  describe('audit', () => {
    it('writes [time] [performer] [role] message without a destination', () => {
      assert.equal(
        recordAudit(plain, { recordedAt: '2026-11-23T00:17:41Z', performer: 'root', role: 'web' }, 'Booted app version v2'),
        "mkdir -p .kamal && echo '[2026-11-23T00:17:41Z] [root] [web] Booted app version v2' >> .kamal/chat-audit.log",
      );
    });
    it('adds the destination and leaves out an absent role', () => {
      assert.equal(auditLine(production, { recordedAt: 't', performer: 'ada@example.com' }, 'Tagging x:v2 as the latest image'), '[t] [ada@example.com] [production] Tagging x:v2 as the latest image');
      assert.equal(
        recordAudit(production, { recordedAt: 't', performer: 'p' }, 'm'),
        "mkdir -p .kamal && echo '[t] [p] [production] m' >> .kamal/chat-production-audit.log",
      );
    });
  });

  describe('audit (Kamal\'s test/commands/auditor_test.rb)', () => {
    // Kamal's argv [mkdir -p .kamal && echo "<tags>" "<message>" >> <log>]; the echoed words, joined, are the line.
    const app = kamalConfig({ service: 'app', repository: 'dhh/app' });
    const echoed = (command: string) => /^mkdir -p \.kamal && echo '(.*)' >> (\S+)$/.exec(command)?.slice(1);
    it('record, with destination, with command details', () => {
      const tags = { recordedAt: '2026-11-23T00:17:41Z', performer: 'dhh@example.com' };
      assert.deepEqual(echoed(recordAudit(app, tags, 'app removed container')), ['[2026-11-23T00:17:41Z] [dhh@example.com] app removed container', '.kamal/app-audit.log']);
      assert.deepEqual(echoed(recordAudit({ ...app, destination: 'staging' }, tags, 'app removed container')), [
        '[2026-11-23T00:17:41Z] [dhh@example.com] [staging] app removed container',
        '.kamal/app-staging-audit.log',
      ]);
      assert.deepEqual(echoed(recordAudit(app, { ...tags, role: 'web' }, 'app removed container')), ['[2026-11-23T00:17:41Z] [dhh@example.com] [web] app removed container', '.kamal/app-audit.log']);
    });
  });

  describe('hostile values', () => {
    const hostile = ['a;rm -rf ~', '$(id)', '`id`', "a'b", 'a"b', 'a b', '../etc', 'a|b', 'a\nb', ''];
    for (const value of hostile) {
      it(`refuses ${JSON.stringify(value)} as a service, version, host and image`, () => {
        assert.throws(() => validateService(value), DeployRollbackError);
        assert.throws(() => validateVersion(value), DeployRollbackError);
        assert.throws(() => validateHost(value), DeployRollbackError);
        assert.throws(() => validateRepository(value), DeployRollbackError);
      });
    }
    it('accepts real-world values', () => {
      validateService('chat_app-2');
      validateVersion('0a1b2c3d4e5f67890a1b2c3d4e5f67890a1b2c3d');
      validateVersion('v1.2.3_rc-1');
      validateHost('192.168.0.10');
      validateHost('app-1.example.com');
      validateHost('fe80::1');
      validateRepository('registry.example.com:5000/team/app');
      validateRepository('bars/app');
    });
    it('refuses a version starting with a dot or dash and one over 128 characters', () => {
      assert.throws(() => validateVersion('-v1'), /Docker tag/);
      assert.throws(() => validateVersion('.v1'), /Docker tag/);
      assert.throws(() => validateVersion('a'.repeat(129)), /Docker tag/);
    });
    it('refuses hostile env names, label keys and option names before building docker run', () => {
      const build = (overrides: Partial<ReturnType<typeof role>>): Word[] => runContainer(plain, role('web', ['web-1'], overrides), { host: 'web-1', version: 'v1', hostname: 'h' });
      assert.throws(() => build({ env: { clear: { 'A;id': 'x' }, secret: [] } }), /env name/);
      assert.throws(() => build({ labels: { 'a b': 'x' } }), /label/);
      assert.throws(() => build({ options: { 'privileged --x': true } }), /docker option/);
    });
    // Kamal's app.rb ends `docker run` with `role.cmd` as written (test/commands/app_test.rb: "... dhh/app:999 bin/jobs").
    const kamalCmds = [
      'bin/rails server -b 0.0.0.0 -p ${PORT:-3000}',
      `sh -c "trap 'exit 0' TERM; while :; do sleep 1 & wait \\$!; done"`,
      'bin/jobs --queue "$QUEUE"',
      'bin/run --files=*.rb',
      'echo "a\\"b"',
      'bin/jobs # the queue worker',
    ];
    for (const cmd of kamalCmds) {
      it(`ends docker run with the cmd as Kamal writes it: ${cmd}`, () => {
        const jobs = role('jobs', ['web-1'], { cmd });
        const line = renderWords(runContainer(kamalConfig({ roles: [web, jobs] }), jobs, { host: 'web-1', version: 'v2', hostname: 'h' }));
        assert.ok(line.endsWith(` --label service="chat" --label role="jobs" --label destination localhost:5555/bars/app:v2 ${cmd}`), line);
      });
    }
    it('renders the cmd of the issue byte for byte', () => {
      const jobs = role('jobs', ['web-1'], { cmd: `sh -c "trap 'exit 0' TERM; while :; do sleep 1 & wait \\$!; done"` });
      const line = renderWords(runContainer(kamalConfig({ roles: [web, jobs] }), jobs, { host: 'web-1', version: 'v2', hostname: 'h' }));
      assert.equal(line.slice(line.indexOf('localhost:5555')), `localhost:5555/bars/app:v2 sh -c "trap 'exit 0' TERM; while :; do sleep 1 & wait \\$!; done"`);
    });
  });
});
