/**
 * Kamal inventory on real test hosts (test/hosts/harness.ts) through the real SSH pool, with
 * ~20 ms added on each link: hosts are read in parallel (8 hosts should cost about what 1
 * does), a warm refresh reuses connections (no handshakes), and each refresh runs one
 * command per host.
 * Run (as root, needs the harness tools): npx tsx bench/kamal-inventory.ts
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { KamalSource } from '../src/core/kamal/source';
import type { ExecOptions, HostSession, SessionPool, SshTarget } from '../src/core/ssh/types';
import type { TestHosts } from '../test/hosts/harness';
import { median, realPool, runIfMain, withHostsAndDir, writeDeployYml } from '../test/system/kamal-hosts';

const HOST_COUNTS = [1, 2, 4, 8];
const LINK_DELAY_MS = 20;
const RUNS = 11;
const COLD_RUNS = 3;
const SERVICE = 'bench';
const GOALS = { parallel: 1.3, warmCold: 0.5, execs: 1 };

/** Counts commands per host; when the kernel has no netem, also adds the link delay per round trip. */
class BenchPool implements SessionPool {
  execs = 0;
  constructor(
    private readonly inner: SessionPool,
    private readonly simulatedDelayMs: number,
  ) {}
  async session(target: SshTarget): Promise<HostSession> {
    if (this.simulatedDelayMs > 0) await sleep(this.simulatedDelayMs * 3); // TCP + key exchange + auth round trips
    const session = await this.inner.session(target);
    return {
      host: session.host,
      exec: async (command: string, options?: ExecOptions) => {
        this.execs++;
        if (this.simulatedDelayMs > 0) await sleep(this.simulatedDelayMs);
        return session.exec(command, options);
      },
    };
  }
  dispose(): void {
    this.inner.dispose();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function pool(hosts: TestHosts, simulatedDelayMs: number): BenchPool {
  return new BenchPool(realPool(hosts), simulatedDelayMs);
}

function sshTarget(hosts: TestHosts, address: string): SshTarget {
  return { host: address, user: 'root', port: hosts.hosts[0].port, keys: [hosts.clientKeyPath], keysOnly: true, config: false, keepaliveInterval: 30 };
}

/** One full read as the tree does it: app (with lock), releases, host entries of each. */
export async function readAll(source: KamalSource): Promise<number> {
  const [environment] = await source.environments();
  const [app] = await source.apps(environment);
  const releases = await source.releases(app);
  await Promise.all(releases.map((release) => source.hostEntries(release)));
  return releases.length;
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

export async function main(): Promise<number> {
  return withHostsAndDir({ count: Math.max(...HOST_COUNTS), service: SERVICE }, 'kamal-inventory-bench-', async (hosts, dir) => {
    await hosts.seedKamalState({ service: SERVICE, versions: ['v1', 'v2', 'v3'], running: 'v3', proxy: false });
    let simulatedDelayMs = 0;
    try {
      for (const host of hosts.hosts) await hosts.slowLink(host, LINK_DELAY_MS);
    } catch (error) {
      simulatedDelayMs = LINK_DELAY_MS;
      console.log(`netem unavailable (${(error as Error).message}); adding ${LINK_DELAY_MS} ms per round trip in the session instead`);
    }

    const warm = new Map<number, number>();
    const cold = new Map<number, number>();
    const floor = new Map<number, number>();
    const dockerFloor = new Map<number, number>();
    let execsPerHost = 0;
    for (const count of HOST_COUNTS) {
      const configFile = await writeDeployYml(path.join(dir, `hosts-${count}`), hosts, { service: SERVICE, web: hosts.hosts.slice(0, count) });
      const colds: number[] = [];
      for (let run = 0; run < COLD_RUNS; run++) {
        const benchPool = pool(hosts, simulatedDelayMs);
        const source = new KamalSource(configFile, { pool: benchPool, connectAllowed: () => true, env: {} });
        colds.push(await timed(() => readAll(source)));
        benchPool.dispose();
      }
      const benchPool = pool(hosts, simulatedDelayMs);
      const source = new KamalSource(configFile, { pool: benchPool, connectAllowed: () => true, env: {} });
      const releaseCount = await readAll(source);
      const warms: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        source.refresh();
        benchPool.execs = 0;
        warms.push(await timed(() => readAll(source)));
        execsPerHost = Math.max(execsPerHost, benchPool.execs / count);
      }
      // The floor on this machine: a bare `true` on the same hosts at once, through the same
      // connections. All test hosts share this machine's CPUs, so the floor grows with N too.
      const sessions = await Promise.all(hosts.hosts.slice(0, count).map((host) => benchPool.session(sshTarget(hosts, host.address))));
      const floors: number[] = [];
      for (let run = 0; run < RUNS; run++) floors.push(await timed(() => Promise.all(sessions.map((session) => session.exec('true')))));
      floor.set(count, median(floors));
      // The docker floor: the one docker call the inventory cannot do without, on the same hosts at once.
      const dockerFloors: number[] = [];
      const listing = `docker container ls --all --filter label=service=${SERVICE} --format '{{json .}}'`;
      for (let run = 0; run < RUNS; run++) dockerFloors.push(await timed(() => Promise.all(sessions.map((session) => session.exec(listing)))));
      dockerFloor.set(count, median(dockerFloors));
      benchPool.dispose();
      warm.set(count, median(warms));
      cold.set(count, median(colds));
      console.log(
        `kamal inventory ${count} host(s): warm ${median(warms).toFixed(1)} ms, cold ${median(colds).toFixed(1)} ms, floor (bare exec) ${median(floors).toFixed(1)} ms, ${releaseCount} releases`,
      );
    }

    const most = Math.max(...HOST_COUNTS);
    const parallel = warm.get(most)! / warm.get(1)!;
    const warmCold = warm.get(most)! / cold.get(most)!;
    console.log(`kamal inventory ${most}/1 hosts ratio: ${parallel.toFixed(2)} (goal <= ${GOALS.parallel})`);
    console.log(`(floor: bare exec ${most}/1 hosts ratio ${(floor.get(most)! / floor.get(1)!).toFixed(2)} on this machine's ${os.cpus().length} CPUs)`);
    const dockerRatio = dockerFloor.get(most)! / dockerFloor.get(1)!;
    console.log(`(floor: one docker container ls per host, ${most}/1 hosts ratio ${dockerRatio.toFixed(2)}; inventory ratio / docker ratio: ${(parallel / dockerRatio).toFixed(2)})`);
    console.log(`kamal warm/cold refresh ratio: ${warmCold.toFixed(2)} (goal <= ${GOALS.warmCold})`);
    console.log(`kamal execs per host per refresh: ${execsPerHost} (goal ${GOALS.execs})`);
    return parallel <= GOALS.parallel && warmCold <= GOALS.warmCold && execsPerHost === GOALS.execs ? 0 : 1;
  });
}

runIfMain(module, main);
