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
import * as path from 'node:path';
import type { TestHost } from '../hosts/harness';
import { waitFor } from '../hosts/exec';
import { useKamalCli, writePlainDeployYml } from './kamal-project';


interface Run {
  child: ChildProcess;
  /** Resolves when stderr has a line matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; endedAt: number }>;
}

describe('deploy-rollback CLI interrupted by signals on real Kamal hosts', function () {
  this.timeout(300_000);
  const kamal = useKamalCli({ prefix: 'drb-cli-signals-', hosts: { count: 2, images: [{ version: 'v1' }, { version: 'v2' }] } });

  async function project(service: string, extra: string[] = [], hooks: Record<string, string> = {}): Promise<string> {
    const root = path.join(kamal.dir, service);
    await writePlainDeployYml(root, kamal.hosts, service, extra);
    for (const [name, body] of Object.entries(hooks)) {
      fs.mkdirSync(path.join(root, '.kamal', 'hooks'), { recursive: true });
      fs.writeFileSync(path.join(root, '.kamal', 'hooks', name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    }
    return root;
  }

  function start(cwd: string, args: string[]): Run {
    const child = spawn(process.execPath, [kamal.bundle, ...args], { cwd, env: { ...process.env, HOME: kamal.home, SSH_AUTH_SOCK: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
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
    return fs.existsSync(path.join(kamal.hosts.hosts[0]!.home, '.kamal', `lock-${service}`));
  }

  /** The version the proxy serves, and the names of the service's running containers. */
  async function hostState(host: TestHost, service: string): Promise<{ serving?: string; running: string[]; names: string[] }> {
    const target = await kamal.hosts.proxyTargetContainer(host, `${service}-web`);
    const listed = await kamal.hosts.docker(host, ['ps', '-a', '--filter', `label=service=${service}`, '--format', '{{.Names}} {{.State}}']);
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
    for (const host of kamal.hosts.hosts) {
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
    for (const host of kamal.hosts.hosts) {
      const state = await hostState(host, service);
      assert.equal(state.serving, 'v1', `${host.name} after the re-run`);
      assert.deepEqual(state.running, [`${service}-web-v1`], `${host.name}: only v1 runs after the re-run`);
    }
    assert.equal(await lockExists(service), false);
  }

  interface Phase {
    name: string;
    extra?: string[];
    hooks?: Record<string, string>;
    /** Brings the run to the phase; resolves when the signal should go. */
    reach(run: Run, service: string): Promise<void>;
    /** What each host serves after the cancel (in host order). */
    after: Array<'v1' | 'v2'> | 'consistent';
    changed: boolean;
  }

  const phases: Phase[] = [
    {
      name: 'pre-flight',
      reach: async (run) => {
        await run.waitForLine(/Checking 2 hosts/);
      },
      after: ['v2', 'v2'],
      changed: false,
    },
    {
      name: 'a pre-deploy hook (lock held)',
      hooks: { 'pre-deploy': 'exec sleep 60' },
      reach: async (run, service) => {
        await run.waitForLine(/taking the deploy lock/);
        await waitFor('the run to take the lock', () => lockExists(service), 30_000);
        await run.waitForLine(/\[ssh [^\]]+\] mkdir -p \.kamal|mkdir -p \.kamal/);
      },
      after: ['v2', 'v2'],
      changed: false,
    },
    {
      name: 'boot',
      reach: async (run, service) => {
        await run.waitForLine(new RegExp(`starting ${service}-web-v1`));
      },
      after: 'consistent',
      changed: true,
    },
    {
      name: 'after the first group (post-app-boot hook)',
      extra: ['boot:', '  limit: 1'],
      hooks: { 'post-app-boot': 'exec sleep 60' },
      reach: async (run, service) => {
        await run.waitForLine(/Group 1 of 2/);
        await run.waitForLine(/stopping v2/);
        await waitFor('the first group to stop v2', async () => !(await hostState(kamal.hosts.hosts[0]!, service)).running.includes(`${service}-web-v2`), 30_000);
      },
      after: ['v1', 'v2'],
      changed: true,
    },
  ];

  const EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129, SIGQUIT: 131 };

  for (const phase of phases) {
    // SIGQUIT is handled as SIGTERM: once, where the run has changed hosts.
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGINT twice', ...(phase.name === 'boot' ? (['SIGQUIT'] as const) : [])] as const) {
      it(`${signal} during ${phase.name}: exit ${EXIT[signal.split(' ')[0]!]}, lock released, hosts consistent, told; a re-run converges`, async () => {
        const service = `s${phases.indexOf(phase)}${signal.replace(/[^A-Z]/g, '').toLowerCase().slice(3)}${signal.includes('twice') ? '2' : ''}`;
        await kamal.hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
        const cwd = await project(service, phase.extra, phase.hooks);
        const slow = phase.name === 'pre-flight';
        if (slow) await kamal.hosts.slowLink(kamal.hosts.hosts[1]!, 3000);
        let result: Awaited<Run['done']>;
        let sent = 0;
        try {
          const run = start(cwd, ['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
          await phase.reach(run, service);
          sent = Date.now();
          const name = signal.split(' ')[0] as NodeJS.Signals;
          run.child.kill(name);
          if (signal.includes('twice')) {
            // A second kill() before the first is handled coalesces with it (one pending signal): send it once the first was taken.
            await run.waitForLine(new RegExp(`${name}: cancelling…`), 5000);
            run.child.kill(name);
          }
          result = await run.done;
        } finally {
          if (slow) await kamal.hosts.clearLink(kamal.hosts.hosts[1]!);
        }
        const said = `${result.stdout}\n${result.stderr}`;
        assert.equal(result.code, EXIT[signal.split(' ')[0]!], said);
        assert.ok(result.endedAt - sent < 8000, `ended ${result.endedAt - sent} ms after the signal`);
        assert.equal(await lockExists(service), false, `the lock was released\n${said}`);
        if (!phase.changed) {
          assert.match(result.stderr, /nothing was changed|before any host was changed|Released the deploy lock/, said);
        } else if (!signal.includes('twice')) {
          assert.match(result.stdout, /HOST +ROLE +FROM +TO +NOW +OUTCOME/, said);
          assert.match(result.stderr, /did not complete: cancelled/, said);
        }
        if (signal.includes('twice')) {
          // Told: the second signal says it skips the read-back, then what became of the lock.
          const name = signal.split(' ')[0]!;
          assert.match(result.stderr, new RegExp(`${name} again: releasing the deploy lock \\(best effort\\) and exiting now; the hosts' state is not read back\\.`), said);
          if (phase.changed) assert.match(result.stderr, new RegExp(`Released the deploy lock on ${kamal.hosts.hosts[0]!.address.replace(/\./g, '\\.')} if this run held it\\.`), said);
          // Consistent as far as the emergency exit goes (no put-back, no read-back): every host serves
          // v1 or v2 from a running container; a re-run (below) finishes the rest.
          for (const host of kamal.hosts.hosts) {
            const state = await hostState(host, service);
            assert.ok(state.serving === 'v1' || state.serving === 'v2', `${host.name} serves ${state.serving}\n${said}`);
            assert.ok(
              state.running.includes(`${service}-web-${state.serving}`) || state.running.some((entry) => entry.startsWith(`${service}-web-${state.serving}_replaced_`)),
              `${host.name} runs what it serves (${state.running.join(', ')})`,
            );
            if (!phase.changed) assert.equal(state.serving, 'v2', `${host.name}: nothing was changed`);
          }
        } else if (phase.after === 'consistent') {
          await assertConsistent(service, 'v1');
        } else {
          assert.deepEqual(await assertConsistent(service, 'v1'), phase.after);
          if (phase.changed) {
            const [first, second] = kamal.hosts.hosts;
            assert.match(result.stdout, new RegExp(`${first!.address.replace(/\./g, '\\.')} +web +v2 +v1 +v1 +rolled-back`), said);
            assert.match(result.stdout, new RegExp(`${second!.address.replace(/\./g, '\\.')} +web +v2 +v1 +v2 +cancelled`), said);
            assert.match(result.stderr, /To finish on v1 everywhere: deploy-rollback rollback --kamal \. --to v1\nTo put every host back on v2: deploy-rollback rollback --kamal \. --to v2/, said);
          }
        }
        for (const name of Object.keys(phase.hooks ?? {})) fs.rmSync(path.join(cwd, '.kamal', 'hooks', name));
        await rerunConverges(cwd, service);
      });
    }
  }

  /** Lets frozen processes run again (a pending SIGTERM then ends them); one already gone is fine. */
  function thaw(pids: number[]): void {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Ended already (docker stop's SIGKILL).
      }
    }
  }

  it('SIGTERM during a same-version re-run as it stops the old copy: the report names what really runs on each host, a second copy included; the lock released', async () => {
    const service = 'samever';
    await kamal.hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const cwd = await project(service, ['stop_timeout: 30']);
    const at = (host: TestHost) => host.address.replace(/\./g, '\\.');
    // The running copy's process is frozen (as a busy app that ignores SIGTERM): `docker stop -t 30` waits its grace period, so the cancel lands while the host still carries it out.
    const frozen = await Promise.all(kamal.hosts.hosts.map(async (host) => Number((await kamal.hosts.docker(host, ['inspect', '--format', '{{.State.Pid}}', `${service}-web-v2`])).stdout.trim())));
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    let result: Awaited<Run['done']>;
    try {
      const run = start(cwd, ['rollback', '--kamal', '.', '--to', 'v2', '--yes']);
      // V serves again; its old copy (renamed v2_replaced_…) is being stopped.
      await run.waitForLine(/\] web: stopping v2_replaced_[0-9a-f]{16}/);
      run.child.kill('SIGTERM');
      result = await run.done;
    } catch (error) {
      thaw(frozen);
      throw error;
    }
    const said = `${result.stdout}\n${result.stderr}`;
    assert.equal(result.code, 143, said);
    assert.equal(await lockExists(service), false, said);
    let copies = 0;
    for (const host of kamal.hosts.hosts) {
      const served = await kamal.hosts.proxyTargetContainer(host, `${service}-web`);
      const state = await hostState(host, service);
      const row = result.stdout.split('\n').find((line) => new RegExp(`^${at(host)} +web +v2 +v2 `).test(line));
      assert.ok(row, said);
      assert.match(row, new RegExp(`^${at(host)} +web +v2 +v2 +${state.serving} +`), `${host.name} serves ${served}\n${said}`);
      const others = state.running.filter((name) => name !== served);
      for (const other of others) assert.ok(row.includes(`another copy of v2 (${other})`), `${host.name} also runs ${other}: ${row}`);
      if (others.length === 0) assert.doesNotMatch(row, /also running/, row);
      else assert.match(result.stderr, new RegExp(`Also running: .*another copy of v2 \\(${others[0]}\\) on ${at(host)} \\(web\\)`), said);
      copies += others.length;
    }
    thaw(frozen);
    // The state this test is for: the old copy still runs beside the new one when the run reports.
    assert.ok(copies > 0, `no host was left with two copies of v2, so the report of copies went untested\n${said}`);
  });

  it('SIGINT while a host has gone silent mid-boot (link dropped, no reset): a clear answer within 20 s, that host unknown, the lock released; a re-run converges', async () => {
    const service = 'silentint';
    await kamal.hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const cwd = await project(service);
    const silent = kamal.hosts.hosts[1]!;
    let result: Awaited<Run['done']>;
    let sent = 0;
    try {
      const run = start(cwd, ['rollback', '--kamal', '.', '--to', 'v1', '--yes']);
      await run.waitForLine(new RegExp(`\\[ssh ${silent.address.replace(/\./g, '\\.')}\\].*starting ${service}-web-v1`));
      await kamal.hosts.linkDown(silent);
      sent = Date.now();
      run.child.kill('SIGINT');
      result = await run.done;
    } finally {
      await kamal.hosts.linkUp(silent);
    }
    const said = `${result.stdout}\n${result.stderr}`;
    assert.equal(result.code, 130, said);
    assert.ok(result.endedAt - sent < 20_000, `ended ${result.endedAt - sent} ms after SIGINT`);
    assert.equal(await lockExists(service), false, `the lock on the answering host was released\n${said}`);
    assert.match(result.stdout, new RegExp(`${silent.address.replace(/\./g, '\\.')} +web +v2 +v1 +unknown`), said);
    await rerunConverges(cwd, service);
  });
});
