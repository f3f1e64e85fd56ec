/**
 * Kamal on the real test hosts (test/hosts/harness.ts), shared by the system tests in this folder
 * and the Kamal benchmarks in bench/: the real SSH pool for the harness hosts, a deploy.yml for
 * them (kamal-project.ts, re-exported here), a pool that counts commands, Kamal's deploy lock held
 * by someone else, and the frame of a benchmark run. Not a *.test.ts file: mocha loads those, and
 * importing one from another would register its tests twice.
 */
import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSessionPool, type InspectableSessionPool } from '../../src/core/ssh/pool';
import type { ExecOptions, HostSession, SessionPool, SshTarget } from '../../src/core/ssh/types';
import { startHosts, type StartHostsOptions, type TestHost, type TestHosts } from '../hosts/harness';
import { sshTargetFor } from '../../src/core/kamal/ssh-target';
import type { KamalConfig } from '../../src/core/kamal/config/types';

/**
 * The real SSH pool for the harness hosts: their known_hosts only (strict), no agent, no ssh
 * config, never a prompt. `connectTimeoutMs` undefined leaves the pool's own default.
 */
export function realPool(hosts: TestHosts, connectTimeoutMs?: number, keepalive?: { intervalMs: number; misses: number }): InspectableSessionPool {
  return createSessionPool({
    keepaliveIntervalMs: keepalive?.intervalMs,
    keepaliveMisses: keepalive?.misses,
    prompts: { confirmUnknownHostKey: async () => false, passphrase: async () => undefined },
    connectTimeoutMs,
    homeDir: path.dirname(hosts.knownHostsPath),
    knownHostsFile: hosts.knownHostsPath,
    globalKnownHostsFile: null,
    systemSshConfigFile: null,
    agentSocket: null,
    hostKeyPolicy: 'strict',
  });
}

export { writeDeployYml, type DeployYmlOptions } from './kamal-project';

/** Wraps a pool to count the commands run per host. */
export class CountingPool implements SessionPool {
  readonly execs = new Map<string, number>();
  constructor(readonly inner: SessionPool) {}
  async session(target: SshTarget): Promise<HostSession> {
    const session = await this.inner.session(target);
    return {
      host: session.host,
      exec: (command: string, options?: ExecOptions) => {
        this.execs.set(target.host, (this.execs.get(target.host) ?? 0) + 1);
        return session.exec(command, options);
      },
    };
  }
  reset(): void {
    this.execs.clear();
  }
  dispose(): void {
    this.inner.dispose();
  }
}

export interface DeployLock {
  holder: string;
  /** ISO time, as Kamal writes it. */
  at: string;
  version: string;
  message: string;
}

/** Holds Kamal's deploy lock for `service` on `host` as someone else: the details file Kamal writes (base64 of three lines). */
export async function holdDeployLock(hosts: TestHosts, host: TestHost, service: string, lock: DeployLock): Promise<void> {
  const details = Buffer.from(`Locked by: ${lock.holder} at ${lock.at}\nVersion: ${lock.version}\nMessage: ${lock.message}`).toString('base64');
  const result = await hosts.exec(host, `mkdir -p .kamal/lock-${service} && echo ${details} > .kamal/lock-${service}/details`);
  assert.equal(result.code, 0, result.stderr);
}

/**
 * A benchmark's frame: starts the hosts, makes a scratch directory `<tmp>/<dirPrefix>XXXXXX`,
 * runs `body`, then stops the hosts and removes the directory whatever happened.
 */
export async function withHostsAndDir<T>(options: StartHostsOptions, dirPrefix: string, body: (hosts: TestHosts, dir: string) => Promise<T>): Promise<T> {
  const hosts = await startHosts(options);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), dirPrefix));
  try {
    return await body(hosts, dir);
  } finally {
    await hosts.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Runs a benchmark's `main` when `benchModule` is the program (not bench/run.ts): exits with its code, 2 when it throws. */
export function runIfMain(benchModule: NodeModule, main: () => Promise<number>): void {
  if (require.main !== benchModule) return;
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(2);
    },
  );
}

/** The middle value (the upper one of an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Sessions from the real pool that record every command and let a test act just before one runs on its host. */
export function sessionsFor(pool: InspectableSessionPool, config: KamalConfig, before?: (host: string, command: string) => Promise<void>) {
  const commands: { host: string; command: string }[] = [];
  const sessions = async (host: string): Promise<HostSession> => {
    const session = await pool.session(sshTargetFor(config, host));
    return {
      host: session.host,
      exec: async (command, options) => {
        commands.push({ host, command });
        if (before) await before(host, command);
        return session.exec(command, options);
      },
    };
  };
  return { sessions, commands };
}

/** Adds `rttMs` of round trip to every host's link (0: none again); says how (netem or the relay). */
export async function setDelay(hosts: TestHosts, rttMs: number): Promise<string> {
  if (rttMs === 0) {
    await Promise.all(hosts.hosts.map((host) => hosts.clearLink(host)));
    return 'none';
  }
  const how = await Promise.all(hosts.hosts.map((host) => hosts.slowLink(host, rttMs)));
  return [...new Set(how)].join(', ');
}
