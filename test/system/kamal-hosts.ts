/**
 * Kamal on the real test hosts (test/hosts/harness.ts), shared by the system tests in this folder
 * and the Kamal benchmarks in bench/: the real SSH pool for the harness hosts, a deploy.yml for
 * them (kamal-project.ts, re-exported here), a pool that counts commands, Kamal's deploy lock held
 * by someone else, and the frame of a benchmark run. Not a *.test.ts file: mocha loads those, and
 * importing one from another would register its tests twice.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
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
  const cpus = benchCpus();
  console.log(cpus.said);
  if (cpus.client) pinProcess(cpus.client);
  try {
    const hosts = await startHosts({ ...options, hostCpus: options.hostCpus ?? cpus.hosts });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), dirPrefix));
    try {
      return await body(hosts, dir);
    } finally {
      await hosts.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  } finally {
    if (cpus.client) pinProcess(cpus.allowed);
  }
}

/**
 * Where a benchmark's parts run. By default everything shares every CPU, as in every run before
 * 2026-12-04. BENCH_SPLIT_CPUS=1 (with 2 or more CPUs) models real servers, which are other
 * machines: the hosts get the upper half of this process's CPUs and this process, with all it
 * starts (the CLI, code-server, Chromium), the lower half, so the client's CPU never delays the
 * hosts' docker nor theirs the client. On 2 cores the 4 hosts' docker then shares one core and
 * takes longer and varies more (measured 2026-12-04), so it is not the default.
 */
export function benchCpus(allowedList = allowedCpuList()): { allowed: string; client?: string; hosts?: string; said: string } {
  const cpus = cpuListIds(allowedList);
  if (process.env.BENCH_SPLIT_CPUS !== '1' || cpus.length < 2) {
    return { allowed: allowedList, said: `CPUs: the hosts and this process share ${allowedList}${process.env.BENCH_SPLIT_CPUS === '1' ? ' (one CPU only: BENCH_SPLIT_CPUS needs two)' : ' (BENCH_SPLIT_CPUS=1 gives the hosts their own)'}` };
  }
  const half = Math.floor(cpus.length / 2);
  const client = cpus.slice(0, half).join(',');
  const hosts = cpus.slice(half).join(',');
  return { allowed: allowedList, client, hosts, said: `CPUs: the hosts on ${hosts}, this process and what it starts on ${client}, as remote servers have their own (BENCH_SPLIT_CPUS=1)` };
}

/** The CPU ids of a list as Linux writes it ("0-2,4"). */
export function cpuListIds(list: string): number[] {
  return list.split(',').filter(Boolean).flatMap((part) => {
    const [first, last] = part.split('-').map(Number);
    if (!Number.isInteger(first) || (last !== undefined && !(Number.isInteger(last) && last >= first))) throw new Error(`not a CPU list: "${list}"`);
    return Array.from({ length: (last ?? first) - first + 1 }, (_, offset) => first + offset);
  });
}

function allowedCpuList(): string {
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (!list) throw new Error('no Cpus_allowed_list in /proc/self/status');
  return list;
}

/** Pins every thread of this process (and so what it starts from now on) to `cpus`. */
function pinProcess(cpus: string): void {
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { encoding: 'utf8', timeout: 10_000 });
  if (pinned.status !== 0) throw new Error(`taskset -a -p -c ${cpus} ${process.pid} failed: ${pinned.stderr || pinned.error?.message || pinned.status}`);
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
