import { strict as assert } from 'node:assert';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeployRollbackError } from '../../../src/core/model';
import { executeKamalRollback, KamalLockHeldError, planKamalRollback } from '../../../src/core/kamal/rollback';
import { filterSpecificItems, kamalFnmatch, resolveKamalScope, scopeRequestFromPicks, splitScopeList, type KamalScopeRequest } from '../../../src/core/kamal/rollback/scope';
import { FakeHosts, kamalConfig, RecordingReporter, role } from './rollback-fixtures';
import type { KamalConfig } from '../../../src/core/kamal/config/types';

/** Kamal's test/fixtures/deploy_with_roles.yml: web on 1.1.1.1-2, workers on 1.1.1.3-4. */
function deployWithRoles(): KamalConfig {
  return kamalConfig({ roles: [role('web', ['1.1.1.1', '1.1.1.2']), role('workers', ['1.1.1.3', '1.1.1.4'])] });
}

/** Kamal's deploy_primary_web_role_override.yml: web_chicago and web_tokyo, primary_role web_tokyo. */
function primaryWebRoleOverride(): KamalConfig {
  return kamalConfig({
    primaryRole: 'web_tokyo',
    roles: [role('web_chicago', ['1.1.1.1', '1.1.1.2'], { primary: false }), role('web_tokyo', ['1.1.1.3', '1.1.1.4'], { primary: true })],
  });
}

function hostsOf(config: KamalConfig, request: KamalScopeRequest): string[] {
  return resolveKamalScope(config, request).hosts;
}

function rolesOf(config: KamalConfig, request: KamalScopeRequest): string[] {
  return resolveKamalScope(config, request).roles;
}

function refusal(run: () => unknown): DeployRollbackError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof DeployRollbackError, String(error));
    return error;
  }
  assert.fail('expected a refusal');
}

async function refused(promise: Promise<unknown>): Promise<DeployRollbackError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DeployRollbackError, String(error));
    return error;
  }
  assert.fail('expected a refusal');
}

const quiet = { step() {}, info() {}, debug() {}, warn() {}, error() {} };

describe('Kamal scope (--roles, --hosts, --primary), as test/commander_test.rb', () => {
  it('overwriting hosts (plain, wildcards, brackets)', () => {
    const config = deployWithRoles();
    assert.deepEqual(hostsOf(config, {}), ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4']);
    assert.deepEqual(hostsOf(config, { hosts: ['1.1.1.1', '1.1.1.2'] }), ['1.1.1.1', '1.1.1.2']);
    assert.deepEqual(hostsOf(config, { hosts: ['1.1.1.1*'] }), ['1.1.1.1']);
    assert.deepEqual(hostsOf(config, { hosts: ['1.1.1.*', '*.1.2.*'] }), ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4']);
    assert.deepEqual(hostsOf(config, { hosts: ['*'] }), ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4']);
    assert.deepEqual(hostsOf(config, { hosts: ['1.1.1.[12]'] }), ['1.1.1.1', '1.1.1.2']);
    assert.match(refusal(() => resolveKamalScope(config, { hosts: ['*miss'] })).message, /^No --hosts match for \*miss/);
  });

  it('filtering hosts by filtering roles', () => {
    const config = deployWithRoles();
    assert.deepEqual(hostsOf(config, { roles: ['web'] }), ['1.1.1.1', '1.1.1.2']);
    assert.match(refusal(() => resolveKamalScope(config, { roles: ['*miss'] })).message, /^No --roles match for \*miss/);
  });

  it('filtering roles (wildcards and braces)', () => {
    const config = deployWithRoles();
    assert.deepEqual(rolesOf(config, {}), ['web', 'workers']);
    assert.deepEqual(rolesOf(config, { roles: ['workers'] }), ['workers']);
    assert.deepEqual(rolesOf(config, { roles: ['w*'] }), ['web', 'workers']);
    assert.deepEqual(rolesOf(config, { roles: ['we*', '*orkers'] }), ['web', 'workers']);
    assert.deepEqual(rolesOf(config, { roles: ['*'] }), ['web', 'workers']);
    assert.deepEqual(rolesOf(config, { roles: ['w{eb,orkers}'] }), ['web', 'workers']);
  });

  it('filtering roles by filtering hosts', () => {
    assert.deepEqual(rolesOf(deployWithRoles(), { hosts: ['1.1.1.3'] }), ['workers']);
  });

  it('overwriting hosts with primary', () => {
    assert.deepEqual(hostsOf(deployWithRoles(), { primary: true }), ['1.1.1.1']);
  });

  it('primary_host and primary_role with specific roles', () => {
    const scope = resolveKamalScope(deployWithRoles(), { roles: ['workers'] });
    assert.equal(scope.primaryHost, '1.1.1.3');
    assert.equal(scope.primaryRole, 'workers');
    assert.equal(resolveKamalScope(deployWithRoles(), {}).primaryRole, 'web');
  });

  it('try to match the primary role from a list of specific roles', () => {
    const scope = resolveKamalScope(primaryWebRoleOverride(), { roles: ['web_*'] });
    assert.deepEqual(scope.roles, ['web_tokyo', 'web_chicago']);
    assert.equal(scope.primaryRole, 'web_tokyo');
    assert.equal(scope.primaryHost, '1.1.1.3');
    assert.deepEqual(scope.hosts, ['1.1.1.3', '1.1.1.4', '1.1.1.1', '1.1.1.2']);
  });

  it('--primary with --roles takes the first matched role\'s first host; --primary replaces --hosts', () => {
    assert.deepEqual(hostsOf(deployWithRoles(), { roles: ['workers'], primary: true }), ['1.1.1.3']);
    assert.deepEqual(hostsOf(deployWithRoles(), { hosts: ['1.1.1.2'], primary: true }), ['1.1.1.1']);
  });

  it('the first matched host is the primary host (where the lock lives); hosts of the primary role boot first', () => {
    const scope = resolveKamalScope(deployWithRoles(), { hosts: ['1.1.1.4', '1.1.1.2'] });
    assert.equal(scope.primaryHost, '1.1.1.4');
    assert.equal(scope.primaryRole, 'workers');
    assert.deepEqual(scope.hosts, ['1.1.1.4', '1.1.1.2']);
    assert.deepEqual(scope.roles, ['workers', 'web']);
  });

  it('says what is left as it is, and that a full-match scope narrows nothing', () => {
    const scope = resolveKamalScope(deployWithRoles(), { roles: ['web'] });
    assert.equal(scope.narrowed, true);
    assert.deepEqual(scope.leftHosts, ['1.1.1.3', '1.1.1.4']);
    assert.deepEqual(scope.leftRoles, ['workers']);
    assert.deepEqual(scope.specificRoles, ['web']);
    assert.equal(resolveKamalScope(deployWithRoles(), { roles: ['*'] }).narrowed, false);
    assert.equal(resolveKamalScope(deployWithRoles(), {}).narrowed, false);
  });

  it('gives the whole app to pick from, narrowed or not, in config order', () => {
    const expected = { hosts: ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4'], roles: [{ name: 'web', hosts: ['1.1.1.1', '1.1.1.2'] }, { name: 'workers', hosts: ['1.1.1.3', '1.1.1.4'] }] };
    assert.deepEqual(resolveKamalScope(deployWithRoles(), {}).app, expected);
    assert.deepEqual(resolveKamalScope(deployWithRoles(), { hosts: ['1.1.1.3'] }).app, expected);
  });

  it('turns picks from a list into literal --roles/--hosts, leaving out a list that picks everything', () => {
    const { app } = resolveKamalScope(deployWithRoles(), {});
    assert.deepEqual(scopeRequestFromPicks(app, ['web', 'workers'], app.hosts), {});
    assert.deepEqual(scopeRequestFromPicks(app, ['web'], app.hosts), { roles: ['web'] });
    assert.deepEqual(scopeRequestFromPicks(app, ['web', 'workers'], ['1.1.1.1']), { hosts: ['1.1.1.1'] });
    assert.equal(scopeRequestFromPicks(app, [], app.hosts), undefined);
    assert.equal(scopeRequestFromPicks(app, ['web'], []), undefined);
    // A picked name is matched as itself: `*` or `[` in a host or role name is no wildcard.
    const odd = kamalConfig({ roles: [role('web[1]', ['h*']), role('web1', ['h1'])] });
    const picked = scopeRequestFromPicks(resolveKamalScope(odd, {}).app, ['web[1]'], ['h*'])!;
    assert.deepEqual(picked, { roles: ['web\\[1\\]'], hosts: ['h\\*'] });
    const scope = resolveKamalScope(odd, picked);
    assert.deepEqual([scope.roles, scope.hosts], [['web[1]'], ['h*']]);
  });

  it('refuses a scope whose hosts run none of its roles', () => {
    assert.match(refusal(() => resolveKamalScope(deployWithRoles(), { roles: ['web'], hosts: ['1.1.1.3'] })).message, /leaves nothing to roll back: no role among web of chat runs on 1\.1\.1\.3/);
  });

  it('matches as Ruby File.fnmatch with FNM_EXTGLOB', () => {
    assert.equal(kamalFnmatch('web', 'web'), true);
    assert.equal(kamalFnmatch('web', 'Web'), false);
    assert.equal(kamalFnmatch('w?b', 'web'), true);
    assert.equal(kamalFnmatch('w[!a]b', 'web'), true);
    assert.equal(kamalFnmatch('w[a-d]b', 'web'), false);
    assert.equal(kamalFnmatch('10.0.0.*', '10.0.0.12'), true);
    assert.equal(kamalFnmatch('10.0.0.1', '10.0.0.12'), false);
    assert.equal(kamalFnmatch('*', '.hidden'), false);
    assert.equal(kamalFnmatch('web\\*', 'web*'), true);
    assert.equal(kamalFnmatch('web\\*', 'web1'), false);
    assert.equal(kamalFnmatch('{a,b{c,d}}x', 'bdx'), true);
    assert.deepEqual(filterSpecificItems(['b*', '*'], ['a', 'b', 'c']), ['b', 'a', 'c']);
    assert.deepEqual(splitScopeList('web,workers,'), ['web', 'workers']);
  });
});

describe('a narrowed Kamal rollback', () => {
  /** web on web-1, web-2; workers on web-2 and job-1; everything on v3 with v2 retained. */
  function mixed(overrides: Partial<KamalConfig> = {}): { config: KamalConfig; fakes: FakeHosts } {
    const config = kamalConfig({ roles: [role('web', ['web-1', 'web-2']), role('workers', ['web-2', 'job-1'])], ...overrides });
    const fakes = new FakeHosts(['web-1', 'web-2', 'job-1']);
    fakes.get('web-1').seed('web', ['v2', 'v3'], 'v3');
    fakes.get('web-2').seed('web', ['v2', 'v3'], 'v3').seed('workers', ['v2', 'v3'], 'v3');
    fakes.get('job-1').seed('workers', ['v2', 'v3'], 'v3');
    return { config, fakes };
  }

  it('-r web boots only web, leaves the workers on their version, and says so in the plan and the outcome', async () => {
    const { config, fakes } = mixed();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', scope: { roles: ['web'] } });
    assert.deepEqual(plan.detail.hosts, ['web-1', 'web-2']);
    assert.deepEqual(plan.detail.hostPlans.map((host) => host.steps.map((step) => `${step.host} ${step.role}`)), [['web-1 web'], ['web-2 web']]);
    assert.equal(plan.detail.primaryHost, 'web-1');
    assert.equal(fakes.get('job-1').commands.length, 0, 'a host out of scope is not even read');
    assert.match(plan.summary, /\(--roles web; left as they are: web-2 workers, job-1 workers\)$/);
    assert.ok(plan.lines.includes('Left as they are: web-2 (workers), job-1 (workers).'));

    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: quiet, runHooks: false });
    assert.equal(result.ok, true, result.message);
    assert.deepEqual(fakes.get('web-1').running(), ['chat-web-v2']);
    assert.deepEqual(fakes.get('web-2').running().sort(), ['chat-web-v2', 'chat-workers-v3']);
    assert.deepEqual(fakes.get('job-1').running(), ['chat-workers-v3']);
    assert.equal(fakes.get('job-1').commands.length, 0);
    // The latest tag and audit lines only where Kamal writes them: the hosts in scope.
    assert.equal(fakes.get('job-1').tags.length, 0);
    assert.ok(fakes.get('web-2').audit.some((line) => line.includes('[web] Booted app version v2')));
    assert.ok(!fakes.get('web-2').audit.some((line) => line.includes('[workers]')));
    assert.equal(result.lines.at(-1), 'Left as they were (outside --roles web): web-2 (workers), job-1 (workers)');
    // Not "on every host": the notification says it was a part of the app.
    assert.equal(result.message, 'Rolled chat back to v2 on 2 hosts (--roles web; left as they were: web-2 workers, job-1 workers).');
  });

  it('-h job-1 locks on job-1, as Kamal puts the lock on the first host in scope', async () => {
    const { config, fakes } = mixed();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', scope: { hosts: ['job-1'] } });
    assert.equal(plan.detail.primaryHost, 'job-1');
    assert.deepEqual(plan.detail.hosts, ['job-1']);
    const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: quiet, runHooks: false });
    assert.equal(result.ok, true, result.message);
    assert.ok(fakes.get('job-1').commands.some((command) => command.includes('mkdir .kamal/lock-chat')));
    assert.equal(fakes.get('web-1').commands.length, 0);
    assert.deepEqual(fakes.get('job-1').running(), ['chat-workers-v2']);
  });

  it('refuses an unknown role before any host is read, in Kamal\'s words', async () => {
    const { config, fakes } = mixed();
    const error = await refused(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', scope: { roles: ['api'] } }));
    assert.match(error.message, /^No --roles match for api \(roles of chat in .*: web, workers\)$/);
    assert.equal(fakes.allCommands().length, 0);
  });

  it('boot.limit as a percentage counts every host of the config, as Kamal does', async () => {
    const { config, fakes } = mixed({ boot: { limit: '34%' } });
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', scope: { roles: ['web'] } });
    assert.deepEqual(plan.detail.groups, [['web-1'], ['web-2']]);
  });

  describe('hooks', () => {
    let dir: string | undefined;
    afterEach(async () => dir && rm(dir, { recursive: true, force: true }));

    async function withHooks(config: KamalConfig): Promise<{ config: KamalConfig; log: string }> {
      dir = await mkdtemp(join(tmpdir(), 'kamal-scope-hooks-'));
      const hooks = join(dir, '.kamal', 'hooks');
      await mkdir(hooks, { recursive: true });
      const log = join(dir, 'log');
      for (const name of ['pre-connect', 'pre-deploy', 'post-deploy']) {
        await writeFile(join(hooks, name), `#!/bin/sh\necho "$(basename "$0") hosts=$KAMAL_HOSTS roles=\${KAMAL_ROLES-unset}" >> ${log}\n`);
        await chmod(join(hooks, name), 0o755);
      }
      return { config: { ...config, hooksPath: hooks, file: join(dir, 'config', 'deploy.yml') }, log };
    }

    it('get the hosts in scope and KAMAL_ROLES as --roles matched', async () => {
      const { config: base, fakes } = mixed();
      const { config, log } = await withHooks(base);
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', scope: { roles: ['w*b'] } });
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: true });
      assert.equal(result.ok, true, result.message);
      const { readFile } = await import('node:fs/promises');
      assert.deepEqual((await readFile(log, 'utf8')).trim().split('\n'), ['pre-connect hosts=web-1,web-2 roles=web', 'pre-deploy hosts=web-1,web-2 roles=web', 'post-deploy hosts=web-1,web-2 roles=web']);
    });

    it('-H runs none of them', async () => {
      const { config: base, fakes } = mixed();
      const { config, log } = await withHooks(base);
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', skipHooks: true });
      assert.ok(plan.detail.hooks.every((hook) => !hook.present));
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: true });
      assert.equal(result.ok, true, result.message);
      await assert.rejects(stat(log), /ENOENT/);
    });
  });

  describe('--lock-wait', () => {
    const held = 'Locked by: Grace Hopper at 2026-11-23T07:00:00Z\nVersion: v4\nMessage: Deploying the big migration';

    it('without it, someone else\'s lock refuses at once', async () => {
      const { config, fakes } = mixed();
      fakes.get('web-1').lock = held;
      const error = await refused(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2' }));
      assert.ok(error instanceof KamalLockHeldError);
    });

    it('reads again until the lock is released, then plans (taking the lock with the checks)', async () => {
      const { config, fakes } = mixed();
      const primary = fakes.get('web-1');
      primary.lock = held;
      const steps: string[] = [];
      const reporter = { ...quiet, step: (message: string) => {
        steps.push(message);
        // Released by its holder while this run waits.
        if (message.includes('waiting for it')) primary.lock = undefined;
      } };
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', takeLock: true, reporter, lockWait: { timeoutMs: 5000, intervalMs: 20 } });
      assert.ok(plan.detail.lockTaken);
      assert.match(primary.lock ?? '', /Automatic deploy lock: rollback to v2/);
      assert.equal(steps.filter((message) => message.includes('waiting for it')).length, 1);
      assert.match(steps.find((message) => message.includes('waiting for it'))!, /^\[ssh web-1\] the deploy lock is held by Grace Hopper since 2026-11-23T07:00:00Z for version v4: "Deploying the big migration": waiting for it, checking again in 1 s \(giving up in 5 s\)$/);
    });

    it('gives up at its timeout with a clear message, nothing changed', async () => {
      const { config, fakes } = mixed();
      fakes.get('web-1').lock = held;
      const startedAt = Date.now();
      const error = await refused(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', takeLock: true, lockWait: { timeoutMs: 150, intervalMs: 40 } }));
      assert.ok(Date.now() - startedAt < 2000);
      assert.match(error.message, /^Gave up waiting for the deploy lock on web-1 after 0 s \(lock wait timeout 0 s\), nothing was changed: it is still held by Grace Hopper/);
      assert.equal(fakes.get('web-1').lock, held);
    });

    it('is cancelled by the signal while it waits', async () => {
      const { config, fakes } = mixed();
      fakes.get('web-1').lock = held;
      const controller = new AbortController();
      const reporter = { ...quiet, step: (message: string) => message.includes('waiting for it') && controller.abort() };
      await assert.rejects(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', signal: controller.signal, reporter, lockWait: { timeoutMs: 60_000, intervalMs: 30_000 } }), { name: 'AbortError' });
    });
  });
});
