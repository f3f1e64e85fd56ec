import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { machineName } from '../../../src/core/kamal/commands/lock-run';
import { lockMessageFor } from '../../../src/core/kamal/rollback/assemble';
import { DeployRollbackError } from '../../../src/core/model';
import { executeKamalRollback, planKamalRollback } from '../../../src/core/kamal/rollback';
import { localIdentity, parseIdentity } from '../../../src/core/kamal/rollback/plan';
import { bootGroups, hostsInBootOrder } from '../../../src/core/kamal/rollback/steps';
import { FakeHosts, kamalConfig, role } from './rollback-fixtures';
import type { KamalConfig } from '../../../src/core/kamal/config/types';

function threeHosts(): { config: KamalConfig; fakes: FakeHosts } {
  const config = kamalConfig({ roles: [role('web', ['web-1', 'web-2', 'web-3'])] });
  const fakes = new FakeHosts(['web-1', 'web-2', 'web-3']);
  for (const host of fakes.hosts.values()) host.seed('web', ['v1', 'v2', 'v3'], 'v3');
  return { config, fakes };
}

async function refusal(promise: Promise<unknown>): Promise<DeployRollbackError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DeployRollbackError, `expected a DeployRollbackError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the plan to be refused');
}

/** Only the pre-flight line may run while planning: nothing that changes a host. */
function assertReadOnly(fakes: FakeHosts): void {
  for (const command of fakes.allCommands()) assert.ok(command.includes('@@deploy-rollback'), `unexpected command while planning: ${command}`);
  for (const host of fakes.hosts.values()) assert.ok(host.commands.length <= 1, `${host.host} got ${host.commands.length} commands`);
}

describe('planKamalRollback', () => {
  it('plans v3 -> v2 on every host with one read per host and no changes', async () => {
    const { config, fakes } = threeHosts();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    assert.equal(plan.from, 'v3');
    assert.equal(plan.to, 'v2');
    assert.equal(plan.summary, 'Roll chat back from v3 to v2 on 3 hosts in 1 group');
    assert.deepEqual(plan.detail.groups, [['web-1', 'web-2', 'web-3']]);
    assert.equal(plan.detail.primaryHost, 'web-1');
    const step = plan.detail.hostPlans[1].steps[0];
    assert.equal(step.host, 'web-2');
    assert.equal(step.from, 'v3');
    assert.match(step.commands.rename ?? '', /^docker rename chat-web-v2 chat-web-v2_replaced_[0-9a-f]{16}$/);
    assert.match(step.commands.run, / --hostname web-2-[0-9a-f]{12} /);
    assert.equal(step.commands.stopOld, "docker container ls --all --filter 'name=^chat-web-v3$' --quiet | xargs docker stop");
    assert.match(step.commands.proxyDeploy ?? '', /^docker exec kamal-proxy kamal-proxy deploy chat-web --target="<cid12>:80" --deploy-timeout="10s" /);
    // The dry run's commands, with their ` \` continuations joined back into one line each.
    const commands = plan.lines.join('\n').replace(/ \\\n {6}/g, ' ').split('\n').map((line) => line.replace(/^ {2}/, ''));
    // Only a single quoted word that cannot be broken (sh -c '...') may run past 100 characters.
    assert.ok(plan.lines.every((line) => line.length <= 100 || line.startsWith("      'sh -c") || line.startsWith("      'docker ps") || /^ {6}'[A-Za-z0-9+/=\\n]+' \\$/.test(line)), 'the dry run is wrapped');
    assert.ok(!plan.lines.includes(plan.summary), 'the summary (printed above the lines) is not repeated in them');
    const prose = plan.lines.join(' ').replace(/\s+/g, ' ');
    assert.match(prose, /web-2 web v3 → v2: keep the retained chat-web-v2 aside \(renamed v2_replaced_[0-9a-f]{16}\), start a fresh v2 container from the same image, kamal-proxy switches traffic to it once its health check passes and drains the old one; then stop v3\./, 'says in words what happens per host');
    assert.ok(commands.some((line) => line.includes(step.commands.run)), 'the dry run shows the exact docker run');
    assert.ok(commands.some((line) => line.startsWith('[ssh web-3] mkdir -p .kamal && echo ') && line.endsWith(' Tagging localhost:5555/bars/app:v2 as the latest image\' >> .kamal/chat-audit.log && docker tag localhost:5555/bars/app:v2 localhost:5555/bars/app:latest')));
    assert.ok(commands.some((line) => line.startsWith('[ssh web-1] mkdir -p .kamal && mkdir .kamal/lock-chat && { echo ')));
    assert.ok(commands.includes('[ssh web-2, web-3] mkdir -p .kamal'));
    assert.ok(commands.includes('[ssh web-1] rm .kamal/lock-chat/details && rm -r .kamal/lock-chat'));
    assertReadOnly(fakes);
    for (const host of fakes.hosts.values()) assert.equal(host.commands.length, 1);
  });

  it('after an interrupted rollback: renames a target left only as a _replaced_ copy back first, and stops copies left running', async () => {
    const { config, fakes } = threeHosts();
    const web2 = fakes.get('web-2');
    web2.containers.find((container) => container.name === 'chat-web-v2')!.name = 'chat-web-v2_replaced_0123456789abcdef';
    const web3 = fakes.get('web-3');
    web3.containers.push({ id: 'e'.repeat(64), name: 'chat-web-v1_replaced_fedcba9876543210', state: 'running', created: 1, image: 'localhost:5555/bars/app:v1' });
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2' });
    const steps = plan.detail.hostPlans.map((host) => host.steps[0]!);
    assert.match(steps[1]!.commands.rename ?? '', /^docker rename chat-web-v2_replaced_0123456789abcdef chat-web-v2 && docker rename chat-web-v2 chat-web-v2_replaced_[0-9a-f]{16}$/);
    assert.equal(steps[0]!.commands.stopOthers, undefined);
    assert.equal(
      steps[2]!.commands.stopOthers,
      `docker ps --quiet --filter label=service=chat --filter label=destination= --filter label=role=web --filter status=running | { grep -vxF -e "$(docker container ls --all --quiet --filter 'name=^chat-web-v2$')" || true; } | xargs -r docker stop`,
    );
    assert.ok(plan.lines.some((line) => line.startsWith('[ssh web-3] web: once v2 serves, stop what an interrupted run left running beside it')));
    assertReadOnly(fakes);

    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: { step() {}, info() {}, debug() {}, warn() {}, error() {} }, runHooks: false });
    assert.equal(result.ok, true, result.message);
    for (const host of fakes.hosts.values()) assert.deepEqual(host.running(), ['chat-web-v2'], host.host);
  });

  it('after an interrupted run left another version running beside the one serving: a rollback to it ends with only it running', async () => {
    const { config, fakes } = threeHosts();
    // Killed mid-switch: v3 (current) serves, v2 runs beside it on web-1.
    const web1 = fakes.get('web-1');
    web1.containers.find((container) => container.name === 'chat-web-v2')!.state = 'running';
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v3' });
    const steps = plan.detail.hostPlans.map((host) => host.steps[0]!);
    assert.match(steps[0]!.commands.stopOthers ?? '', /grep -vxF -e "\$\(docker container ls --all --quiet --filter 'name=\^chat-web-v3\$'\)"/);
    assert.equal(steps[1]!.commands.stopOthers, undefined);
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: { step() {}, info() {}, debug() {}, warn() {}, error() {} }, runHooks: false });
    assert.equal(result.ok, true, result.message);
    for (const host of fakes.hosts.values()) assert.deepEqual(host.running(), ['chat-web-v3'], host.host);
  });

  it('gives the confirmation a short overview: hosts from → to in boot order, lock and hooks, no commands', async () => {
    const { config, fakes } = threeHosts();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada' });
    assert.deepEqual(plan.overview, [
      'web-1 (web): v3 → v2',
      'web-2 (web): v3 → v2',
      'web-3 (web): v3 → v2',
      'Deploy lock on web-1; hooks: none.',
      'The old containers keep serving until the new ones are healthy.',
    ]);
  });

  it('names the destination in the summary and uses S-R-D names', async () => {
    const config = kamalConfig({ destination: 'production', roles: [role('web', ['web-1'])] });
    const fakes = new FakeHosts(['web-1']);
    fakes.get('web-1').seed('web', ['v1', 'v2'], 'v2', { destination: 'production' });
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    assert.equal(plan.summary, 'Roll chat (production) back from v2 to v1 on 1 host in 1 group');
    assert.equal(plan.environment, 'production');
    assert.match(plan.detail.hostPlans[0].steps[0].commands.run, /--name chat-web-production-v1 /);
  });

  it('defaults to the previous version present on every host and role', async () => {
    const { config, fakes } = threeHosts();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, performer: 'ada' });
    assert.equal(plan.to, 'v2');
  });

  it('orders versions created within the same second by docker\'s listing order', async () => {
    const { config, fakes } = threeHosts();
    for (const host of fakes.hosts.values()) for (const container of host.containers) container.created = 1_700_000_000;
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, performer: 'ada' });
    assert.equal(plan.to, 'v2');
  });

  it('skips a previous version pruned on one host when picking the default', async () => {
    const { config, fakes } = threeHosts();
    const web2 = fakes.get('web-2');
    web2.containers = web2.containers.filter((container) => container.name !== 'chat-web-v2');
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, performer: 'ada' });
    assert.equal(plan.to, 'v1');
  });

  it('does not count a rollback\'s fresh container as a newer version', async () => {
    const config = kamalConfig({ roles: [role('web', ['web-1'])] });
    const fakes = new FakeHosts(['web-1']);
    const host = fakes.get('web-1').seed('web', ['v1', 'v2', 'v3'], undefined);
    // v3 -> v2 already happened: v2's first container was renamed, a fresh v2 serves.
    host.containers.find((container) => container.name === 'chat-web-v2')!.name = 'chat-web-v2_replaced_0123456789abcdef';
    host.seed('web', ['v2'], 'v2');
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, performer: 'ada' });
    assert.equal(plan.from, 'v2');
    assert.equal(plan.to, 'v1');
  });

  it('adds the clear env of a host\'s tags over the role\'s', async () => {
    const web = role('web', ['web-1', 'web-2'], { hostTags: { 'web-2': ['monitoring'] }, env: { clear: { MODE: 'app', LEVEL: 'info' }, secret: [] } });
    const config = kamalConfig({ roles: [web], raw: { env: { tags: { monitoring: { clear: { MODE: 'monitor' }, secret: ['TOKEN'] } } } } });
    const fakes = new FakeHosts(['web-1', 'web-2']);
    for (const host of fakes.hosts.values()) host.seed('web', ['v1', 'v2'], 'v2');
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    assert.match(plan.detail.hostPlans[0].steps[0].commands.run, / --env MODE="app" --env LEVEL="info" --env-file /);
    assert.match(plan.detail.hostPlans[1].steps[0].commands.run, / --env MODE="monitor" --env LEVEL="info" --env-file /);
  });

  it('treats the running version as a reboot and says so', async () => {
    const { config, fakes } = threeHosts();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v3', performer: 'ada' });
    assert.equal(plan.detail.reboot, true);
    assert.match(plan.summary, /^Reboot chat on v3 \(already running\)/);
    assert.ok(plan.lines.some((line) => /reboot/.test(line)));
    const step = plan.detail.hostPlans[0].steps[0];
    assert.equal(step.commands.stopOld, `docker container ls --all --filter 'name=^chat-web-${step.renamedVersion}$' --quiet | xargs docker stop`);
  });

  describe('refuses before touching anything', () => {
    it('when the target is missing on some hosts, naming each', async () => {
      const { config, fakes } = threeHosts();
      for (const name of ['web-2', 'web-3']) {
        const host = fakes.get(name);
        host.containers = host.containers.filter((container) => container.name !== 'chat-web-v1');
      }
      const error = await refusal(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1' }));
      assert.match(error.message, /version v1 has no container on web-2 \(web\), web-3 \(web\)/);
      assert.doesNotMatch(error.message, /web-1/);
      assertReadOnly(fakes);
    });

    it('when the lock is held, naming holder, time and message', async () => {
      const { config, fakes } = threeHosts();
      fakes.get('web-1').lock = 'Locked by: Grace Hopper at 2026-11-23T07:00:00Z\nVersion: v4\nMessage: Deploying the big migration';
      const error = await refusal(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.match(error.message, /deploy lock on web-1 is held by Grace Hopper since 2026-11-23T07:00:00Z for version v4: "Deploying the big migration"/);
      assertReadOnly(fakes);
    });

    it('when the lock names a run of ours on this machine that is gone, saying so and what removes it (also when taking the lock)', async () => {
      const gone = Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
      for (const takeLock of [false, true]) {
        const { config, fakes } = threeHosts();
        fakes.get('web-1').lock = `Locked by: ada at 2026-11-23T07:00:00Z\nVersion: v2\nMessage: ${lockMessageFor('rollback', 'v2', { pid: gone, machine: machineName() })}`;
        const error = await refusal(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', takeLock }));
        assert.match(error.message, new RegExp(`held by ada .* The Deploy Rollback run that took it \\(pid ${gone} on [^)]+\\) is no longer running on this machine: \`deploy-rollback release-lock --kamal \\S+\` \\(Release Stale Lock on the app row\\) removes it\\.$`), String(takeLock));
      }
      const { config, fakes } = threeHosts();
      fakes.get('web-1').lock = `Locked by: ada at 2026-11-23T07:00:00Z\nVersion: v2\nMessage: ${lockMessageFor('rollback', 'v2', { pid: process.pid, machine: machineName() })}`;
      const live = await refusal(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.doesNotMatch(live.message, /no longer running/, 'a live run is not called gone');
    });

    it('when the lock directory is there without details (a failed lock), saying so and how to release it', async () => {
      const { config, fakes } = threeHosts();
      fakes.get('web-1').lock = '';
      const error = await refusal(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.match(error.message, /deploy lock on web-1 is present but its details are empty or unreadable, so nobody is named .* `kamal lock release` cannot remove a lock without details \(Kamal answers "There is no deploy lock" and leaves it\)\. If no deploy is running, remove it with `deploy-rollback release-lock --kamal \S+` .*`rm -r \.kamal\/lock-chat` on web-1\.$/);
      assertReadOnly(fakes);
    });

    it('when the target image tag is gone on a host although its container is there', async () => {
      const { config, fakes } = threeHosts();
      fakes.get('web-2').deletedImages.add('localhost:5555/bars/app:v2');
      const error = await refusal(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.match(error.message, /nothing was changed: the image localhost:5555\/bars\/app:v2 is missing on web-2 \(its container is there/);
      assertReadOnly(fakes);
    });

    it('when a role env file is missing on a host', async () => {
      const { config, fakes } = threeHosts();
      fakes.get('web-3').envFiles.clear();
      const error = await refusal(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.match(error.message, /env file is missing on web-3 \(web: \.kamal\/apps\/chat\/env\/roles\/web\.env\)/);
    });

    it('when a host is unreachable, naming it', async () => {
      const { config, fakes } = threeHosts();
      fakes.unreachable.add('web-2');
      const error = await refusal(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.match(error.message, /web-2 is unreachable \(connect ETIMEDOUT web-2:22\)/);
      assertReadOnly(fakes);
    });

    it('when values the commands need are unresolved, but not for unrelated ones', async () => {
      const { config, fakes } = threeHosts();
      const error = await refusal(planKamalRollback({ config: { ...config, unknown: ['env.clear.DATABASE_HOST', 'builder.args.X', 'servers.web.labels.team'] }, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.match(error.message, /could not be resolved.*env\.clear\.DATABASE_HOST, servers\.web\.labels\.team/);
      assert.doesNotMatch(error.message, /builder/);
      assert.equal(fakes.allCommands().length, 0, 'no host was contacted');
      await planKamalRollback({ config: { ...config, unknown: ['builder.args.X', 'env.secret'] }, sessions: fakes.sessions, targetVersion: 'v2' });
    });

    it('when a config value is hostile, before any command is built', async () => {
      const { config, fakes } = threeHosts();
      const cases: Partial<KamalConfig>[] = [
        { service: 'chat;id' },
        { destination: '$(id)' },
        { repository: 'bars/app`id`' },
        { roles: [role('web', ['web-1 ; id'])] },
        { roles: [role('web;x', ['web-1'])], primaryRole: 'web;x' },
        { roles: [role('web', ['web-1'], { env: { clear: { 'X=1 Y': 'v' }, secret: [] } })] },
      ];
      for (const override of cases) {
        await refusal(planKamalRollback({ config: { ...config, ...override }, sessions: fakes.sessions, targetVersion: 'v2' }));
      }
      for (const target of ['v2;id', '$(reboot)', '../v1', "v2' '", '`id`']) {
        await refusal(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: target }));
      }
      assert.equal(fakes.allCommands().length, 0, 'no command reached a host');
    });

    it('when the config has errors, naming file and line', async () => {
      const { config, fakes } = threeHosts();
      const problems = [{ file: '/p/config/deploy.yml', line: 7, message: 'servers.web.hosts should be a list', severity: 'error' as const }];
      const error = await refusal(planKamalRollback({ config: { ...config, problems }, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.match(error.message, /config has errors: \/p\/config\/deploy\.yml:7: servers\.web\.hosts should be a list/);
      assert.equal(fakes.allCommands().length, 0);
    });

    it('when a custom certificate the last deploy left is missing on a host, naming host and file', async () => {
      const { config, fakes } = threeHosts();
      const custom = { ...config, raw: { proxy: { ssl: { certificate_pem: 'CERTIFICATE_PEM', private_key_pem: 'PRIVATE_KEY_PEM' } } } };
      for (const host of fakes.hosts.values()) {
        host.files.add('.kamal/proxy/apps-config/chat/tls/web/cert.pem');
        if (host.host !== 'web-2') host.files.add('.kamal/proxy/apps-config/chat/tls/web/key.pem');
      }
      const error = await refusal(planKamalRollback({ config: custom, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.match(error.message, /nothing was changed: proxy\.ssl uses a custom certificate, and the files the last deploy left for kamal-proxy are missing on web-2 \(web\): \.kamal\/proxy\/apps-config\/chat\/tls\/web\/key\.pem\. /);
      assertReadOnly(fakes);

      fakes.get('web-2').files.add('.kamal/proxy/apps-config/chat/tls/web/key.pem');
      const plan = await planKamalRollback({ config: custom, sessions: fakes.sessions, targetVersion: 'v2' });
      assert.match(
        plan.detail.hostPlans[0].steps[0].commands.proxyDeploy ?? '',
        / --tls --tls-certificate-path="\/home\/kamal-proxy\/\.apps-config\/chat\/tls\/web\/cert\.pem" --tls-private-key-path="\/home\/kamal-proxy\/\.apps-config\/chat\/tls\/web\/key\.pem" /,
      );
    });

    it('when no earlier version exists everywhere', async () => {
      const config = kamalConfig({ roles: [role('web', ['web-1'])] });
      const fakes = new FakeHosts(['web-1']);
      fakes.get('web-1').seed('web', ['v1'], 'v1');
      const error = await refusal(planKamalRollback({ config, sessions: fakes.sessions }));
      assert.match(error.message, /no earlier version/);
    });
  });

  describe('boot groups', () => {
    it('splits 5 hosts by limit 2 with primary-role hosts first', async () => {
      const config = kamalConfig({
        roles: [role('jobs', ['job-1', 'web-2']), role('web', ['web-1', 'web-2', 'web-3', 'web-4'])],
        boot: { limit: 2, wait: 3 },
      });
      assert.deepEqual(hostsInBootOrder(config), ['web-1', 'web-2', 'web-3', 'web-4', 'job-1']);
      const fakes = new FakeHosts(['web-1', 'web-2', 'web-3', 'web-4', 'job-1']);
      for (const host of fakes.hosts.values()) {
        if (host.host.startsWith('web')) host.seed('web', ['v1', 'v2'], 'v2');
        if (host.host === 'job-1' || host.host === 'web-2') host.seed('jobs', ['v1', 'v2'], 'v2');
      }
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
      assert.deepEqual(plan.detail.groups, [['web-1', 'web-2'], ['web-3', 'web-4'], ['job-1']]);
      assert.equal(plan.detail.bootWait, 3);
      assert.deepEqual(plan.detail.hostPlans.find((host) => host.host === 'web-2')?.steps.map((step) => step.role), ['web', 'jobs']);
      assert.equal(plan.summary, 'Roll chat back from v2 to v1 on 5 hosts in 3 groups');
      assert.equal(plan.detail.hostPlans.find((host) => host.host === 'job-1')?.steps[0].proxied, false);
      assert.match(plan.detail.hostPlans.find((host) => host.host === 'job-1')?.steps[0].commands.healthStatus ?? '', /xargs docker inspect --format/);
    });

    it('takes a percentage of the hosts, at least one', () => {
      assert.deepEqual(bootGroups(['a', 'b', 'c', 'd', 'e'], '25%', 'deploy.yml'), [['a'], ['b'], ['c'], ['d'], ['e']]);
      assert.deepEqual(bootGroups(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], '25%', 'deploy.yml'), [['a', 'b'], ['c', 'd'], ['e', 'f'], ['g', 'h']]);
      assert.deepEqual(bootGroups(['a', 'b'], undefined, 'deploy.yml'), [['a', 'b']]);
      assert.throws(() => bootGroups(['a'], 'lots', 'deploy.yml'), /boot\.limit/);
    });
  });

  describe('the local identity (lock holder and audit performer)', () => {
    it('reads git user.name and user.email as `git config KEY` gives them: the last value of each, a valueless key as none', async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'identity-'));
      try {
        const git = (...args: string[]) => assert.equal(spawnSync('git', args, { cwd: dir }).status, 0, `git ${args.join(' ')}`);
        git('init', '-q');
        git('config', 'user.name', 'Ada Lovelace');
        git('config', '--add', 'user.name', 'Ada King');
        git('config', 'user.email', 'ada@example.com');
        git('config', 'user.signingkey', 'ABC');
        const expected = (key: string) => spawnSync('git', ['config', key], { cwd: dir, encoding: 'utf8' }).stdout.trim();
        assert.deepEqual(await localIdentity(dir), { lockHolder: expected('user.name'), performer: expected('user.email') });
        assert.deepEqual(await localIdentity(dir), { lockHolder: 'Ada King', performer: 'ada@example.com' });
        assert.deepEqual(await localIdentity(dir, 'ci-bot'), { lockHolder: 'ci-bot', performer: 'ci-bot' });
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    });

    it('parses `git config -z --get-regexp` output: multi-line values whole, empty or valueless keys as unset', () => {
      assert.deepEqual(parseIdentity('user.name\nAda\0user.email\nada@example.com\0user.name\nAda King\0'), { name: 'Ada King', email: 'ada@example.com' });
      assert.deepEqual(parseIdentity('user.name\nAda\nKing\0'), { name: 'Ada\nKing', email: undefined });
      assert.deepEqual(parseIdentity('user.name\0user.email\n  \0'), { name: undefined, email: undefined });
      assert.deepEqual(parseIdentity(''), { name: undefined, email: undefined });
    });
  });
});
