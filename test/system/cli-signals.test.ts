/**
 * The CLI bundle interrupted by SIGINT, SIGTERM and SIGHUP at several phases of a Kamal rollback on
 * real hosts. Each case asserts the exit code, what the user was told (the per-host table), the
 * deploy lock, each host's state (one consistent version, the target container under its name),
 * and that a plain re-run then converges.
 * Run: npx mocha --require tsx/cjs --timeout 300000 test/system/cli-signals.test.ts
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { requireHostsOrSkip, startHosts, type TestHost, type TestHosts } from '../hosts/harness';

const repoRoot = path.resolve(__dirname, '../..');

interface Run {
  child: ChildProcess;
  /** Resolves when stderr has a line matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; endedAt: number }>;
}

describe('deploy-rollback CLI interrupted by signals on real Kamal hosts', function () {
  this.timeout(300_000);
  let hosts: TestHosts;
  let dir: string;
  let bundle: string;
  let home: string;

  function project(service: string, extra: string[] = [], hooks: Record<string, string> = {}): string {
    const root = path.join(dir, service);
    fs.mkdirSync(path.join(root, 'config'), { recursive: true });
    fs.writeFileSync(
      path.join(root, 'config', 'deploy.yml'),
      [`service: ${service}`, `image: ${hosts.repository}`, 'servers:', ...hosts.hosts.map((host) => `  - ${host.address}`), 'deploy_timeout: 10', ...extra, ''].join('\n'),
    );
    for (const [name, body] of Object.entries(hooks)) {
      fs.mkdirSync(path.join(root, '.kamal', 'hooks'), { recursive: true });
      fs.writeFileSync(path.join(root, '.kamal', 'hooks', name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    }
    return root;
  }

  function start(cwd: string, args: string[]): Run {
    const child = spawn(process.execPath, [bundle, ...args], { cwd, env: { ...process.env, HOME: home, SSH_AUTH_SOCK: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const waiters: Array<{ pattern: RegExp; resolve: () => void }> = [];
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
      for (const waiter of waiters.splice(0)) {
        if (waiter.pattern.test(stderr)) waiter.resolve();
        else waiters.push(waiter);
      }
    });
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; endedAt: number }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, endedAt: Date.now() })),
    );
    return {
      child,
      done,
      waitForLine: (pattern, timeoutMs = 60_000) =>
        new Promise<void>((resolve, reject) => {
          if (pattern.test(stderr)) {
            resolve();
            return;
          }
          const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stderr so far:\n${stderr}`)), timeoutMs);
          waiters.push({
            pattern,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          });
          void done.then(() => {
            clearTimeout(timer);
            if (!pattern.test(stderr)) reject(new Error(`the CLI ended before a line matching ${pattern}; stderr:\n${stderr}`));
          });
        }),
    };
  }

  async function lockExists(service: string): Promise<boolean> {
    return fs.existsSync(path.join(hosts.hosts[0]!.home, '.kamal', `lock-${service}`));
  }

  /** The version the proxy serves, and the names of the service's running containers. */
  async function hostState(host: TestHost, service: string): Promise<{ serving?: string; running: string[]; names: string[] }> {
    const target = await hosts.proxyTargetContainer(host, `${service}-web`);
    const listed = await hosts.docker(host, ['ps', '-a', '--filter', `label=service=${service}`, '--format', '{{.Names}} {{.State}}']);
    const rows = listed.stdout.split('\n').filter(Boolean).map((line) => line.split(' '));
    return {
      serving: target?.replace(`${service}-web-`, '').replace(/_replaced_[0-9a-f]+$/, ''),
      running: rows.filter(([, state]) => state === 'running').map(([name]) => name!).sort(),
      names: rows.map(([name]) => name!).sort(),
    };
  }

  /** One consistent version per host: the proxy's, the target container findable by its exact name. */
  async function assertConsistent(service: string, target: string): Promise<Array<string | undefined>> {
    const serving: Array<string | undefined> = [];
    for (const host of hosts.hosts) {
      const state = await hostState(host, service);
      assert.ok(state.serving === 'v1' || state.serving === 'v2', `${host.name} serves ${state.serving}`);
      assert.ok(state.names.includes(`${service}-web-${target}`), `${host.name}: ${service}-web-${target} exists for a re-run (${state.names.join(', ')})`);
      assert.ok(state.running.includes(`${service}-web-${state.serving}`) || state.running.some((name) => name.startsWith(`${service}-web-${state.serving}_replaced_`)), `${host.name} runs what it serves`);
      serving.push(state.serving);
    }
    return serving;
  }

  async function rerunConverges(cwd: string, service: string): Promise<void> {
    const again = start(cwd, ['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
    const result = await again.done;
    assert.equal(result.code, 0, result.stderr);
    for (const host of hosts.hosts) {
      const state = await hostState(host, service);
      assert.equal(state.serving, 'v1', `${host.name} after the re-run`);
      assert.deepEqual(state.running, [`${service}-web-v1`], `${host.name}: only v1 runs after the re-run`);
    }
    assert.equal(await lockExists(service), false);
  }

  before(async function () {
    requireHostsOrSkip(this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-cli-signals-'));
    bundle = path.join(dir, 'cli.js');
    buildSync({ entryPoints: [path.join(repoRoot, 'src/cli.ts')], bundle: true, platform: 'node', target: 'node20', outfile: bundle, external: ['cpu-features', '*.node'], logLevel: 'silent' });
    hosts = await startHosts({ count: 2, images: [{ version: 'v1' }, { version: 'v2' }] });
    home = path.join(dir, 'home');
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
    fs.copyFileSync(hosts.clientKeyPath, path.join(home, '.ssh', 'id_ed25519'));
    fs.chmodSync(path.join(home, '.ssh', 'id_ed25519'), 0o600);
    fs.copyFileSync(hosts.knownHostsPath, path.join(home, '.ssh', 'known_hosts'));
  });

  after(async () => {
    await hosts?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('SIGINT during the pre-flight checks: exit 130 at once, nothing changed, no lock', async () => {
    const service = 'sigpre';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const cwd = project(service);
    await hosts.slowLink(hosts.hosts[1]!, 3000);
    try {
      const run = start(cwd, ['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
      await run.waitForLine(/Checking 2 hosts/);
      const sent = Date.now();
      run.child.kill('SIGINT');
      const result = await run.done;
      assert.equal(result.code, 130, result.stderr);
      assert.ok(result.endedAt - sent < 3000, `took ${result.endedAt - sent} ms`);
      assert.match(result.stderr, /Interrupted \(SIGINT\) while checking the hosts: nothing was changed/);
    } finally {
      await hosts.clearLink(hosts.hosts[1]!);
    }
    assert.equal(await lockExists(service), false);
    for (const host of hosts.hosts) assert.equal((await hostState(host, service)).serving, 'v2');
    await rerunConverges(cwd, service);
  });

  it('SIGTERM while booting: exit 143 within seconds, the per-host table, lock released, hosts consistent; a re-run converges', async () => {
    const service = 'sigboot';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const cwd = project(service);
    const run = start(cwd, ['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
    await run.waitForLine(/starting sigboot-web-v1/);
    const sent = Date.now();
    run.child.kill('SIGTERM');
    const result = await run.done;
    assert.equal(result.code, 143, `${result.stdout}\n${result.stderr}`);
    assert.ok(result.endedAt - sent < 10_000, `took ${result.endedAt - sent} ms`);
    assert.match(result.stderr, /SIGTERM: cancelling…/);
    assert.match(result.stdout, /HOST +ROLE +FROM +TO +NOW +OUTCOME/);
    assert.match(result.stderr, /did not complete: cancelled\. Now serving: /);
    for (const host of hosts.hosts) assert.match(result.stdout, new RegExp(`${host.address.replace(/\./g, '\\.')} +web +v2 +v1 +v[12] `));
    assert.equal(await lockExists(service), false);
    await assertConsistent(service, 'v1');
    await rerunConverges(cwd, service);
  });

  it('SIGHUP after the first host switched (post-app-boot hook running): exit 129, the hook stopped, the table names each host\'s version; a re-run converges', async () => {
    const service = 'sighup';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const cwd = project(service, ['boot:', '  limit: 1'], { 'post-app-boot': 'echo post-app-boot started >&2\nexec sleep 60' });
    const run = start(cwd, ['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
    await run.waitForLine(/Group 1 of 2/);
    // The hook's own output is only shown when it ends: wait for the first host's switch instead.
    await run.waitForLine(/stopping v2/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const sent = Date.now();
    run.child.kill('SIGHUP');
    const result = await run.done;
    assert.equal(result.code, 129, `${result.stdout}\n${result.stderr}`);
    assert.ok(result.endedAt - sent < 10_000, `took ${result.endedAt - sent} ms`);
    assert.doesNotMatch(result.stderr, /Group 2 of 2/, 'the second group never started');
    const [first, second] = hosts.hosts;
    assert.match(result.stdout, new RegExp(`${first!.address.replace(/\./g, '\\.')} +web +v2 +v1 +v1 +rolled-back`), result.stderr);
    assert.match(result.stdout, new RegExp(`${second!.address.replace(/\./g, '\\.')} +web +v2 +v1 +v2 +cancelled`));
    assert.equal(await lockExists(service), false);
    assert.deepEqual(await assertConsistent(service, 'v1'), ['v1', 'v2']);
    fs.rmSync(path.join(cwd, '.kamal', 'hooks', 'post-app-boot'));
    await rerunConverges(cwd, service);
  });

  it('a second SIGINT during an interrupted pre-deploy hook exits at once and still releases the lock', async () => {
    const service = 'sigtwice';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const cwd = project(service, [], { 'pre-deploy': 'exec sleep 60' });
    const run = start(cwd, ['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
    await run.waitForLine(/released|taking the deploy lock/);
    await waitUntil(() => lockExists(service), 'the run to take the lock');
    const sent = Date.now();
    run.child.kill('SIGINT');
    run.child.kill('SIGINT');
    const result = await run.done;
    assert.equal(result.code, 130, result.stderr);
    assert.ok(result.endedAt - sent < 6000, `took ${result.endedAt - sent} ms`);
    assert.equal(await lockExists(service), false, result.stderr);
    for (const host of hosts.hosts) assert.equal((await hostState(host, service)).serving, 'v2');
    fs.rmSync(path.join(cwd, '.kamal', 'hooks', 'pre-deploy'));
    await rerunConverges(cwd, service);
  });
});

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
