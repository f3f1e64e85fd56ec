/**
 * A whole Kamal rollback (plan with its pre-flight, lock, boot behind the kamal-proxy stand-in,
 * stop, tag, unlock) on 1 and on 4 real test hosts, each from a fresh SSH pool as a
 * `kamal rollback` invocation connects afresh, against two things measured in the same run:
 *
 * - the hosts' own floor: one SSH connect, then the rollback's own `docker run` V,
 *   `kamal-proxy deploy` and `docker stop` O lines (taken from a plan, byte for byte) issued back
 *   to back over that one connection, on every host in parallel. It uses the project's ssh2
 *   pool, the client the rollback uses, so the ratio measures what the rollback does on top
 *   (exchanges, extra commands), not OpenSSH against ssh2 handshake costs;
 * - itself with 100 ms of round trip added on every host's link (harness `slowLink`: netem,
 *   or the in-host relay delaying every chunk by half the delay each way), which gives the
 *   number of sequential round trips on the critical path; likewise for a tree refresh, for a
 *   rollback started from the tree (its connections open, planned from its reading), and for
 *   one connect and one bare command (the unit prices those counts are made of).
 *
 * Runs with and without the delay alternate (so do rollback and floor), and each ratio is the
 * median over runs of the adjacent pair, to cancel the drift of a loaded machine.
 * Run: npx tsx bench/kamal-rollback.ts   (BENCH_RUNS=N pairs, default 7; BENCH_TRACE=1 prints
 * every exchange of the last rollback, floor and refresh, with and without the delay, with its
 * start and end time)
 */
import * as path from 'node:path';
import { silentReporter } from '../src/core/model';
import { loadKamalConfig } from '../src/core/kamal/config/read';
import { KamalSource } from '../src/core/kamal/source';
import { sshTargetFor } from '../src/core/kamal/ssh-target';
import { TARGET_ARG_PLACEHOLDER, executeKamalRollback, planKamalRollback, type KamalRoleStep } from '../src/core/kamal/rollback';
import type { KamalConfig } from '../src/core/kamal/config/types';
import type { InspectableSessionPool } from '../src/core/ssh/pool';
import type { HostSession, SessionPool } from '../src/core/ssh/types';
import type { TestHosts } from '../test/hosts/harness';
import { median, realPool, runIfMain, withHostsAndDir, writeDeployYml } from '../test/system/kamal-hosts';
import { readAll } from './kamal-inventory';

const HOST_COUNTS = [1, 4];
const RUNS = positiveInteger(process.env.BENCH_RUNS) ?? 7;
const ADDED_RTT_MS = 100;
/** From the tree: the connections are open and the hosts were just read, so only the run's 4 exchanges remain. */
const GOALS = { floorRatio: 1.3, rollbackRoundTrips: 12, refreshRoundTrips: 7, fromTreeRoundTrips: 5 };
/** Bounds: a run that takes longer than this is a failure, not a slow number. */
const RUN_TIMEOUT_MS = 180_000;
const CONNECT_TIMEOUT_MS = 30_000;
const VERSIONS = ['v1', 'v2'] as const;

function positiveInteger(text: string | undefined): number | undefined {
  const value = Number(text);
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

interface Exchange {
  host: string;
  method: string;
  what: string;
  startMs: number;
  endMs?: number;
}

/**
 * The real pool, counting every call on a host session (each is one exchange: a channel on the
 * open connection) and the connections opened. Method calls are counted by name, whatever the
 * session offers, so a session that grows a streaming call is still counted.
 */
class CountedPool {
  readonly exchanges: Exchange[] = [];
  readonly inner: InspectableSessionPool;
  readonly pool: SessionPool;
  private readonly started = process.hrtime.bigint();

  constructor(hosts: TestHosts) {
    this.inner = realPool(hosts, CONNECT_TIMEOUT_MS);
    const wrap = (session: HostSession, host: string): HostSession =>
      new Proxy(session, {
        get: (target, property, receiver) => {
          const value: unknown = Reflect.get(target, property, receiver);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            const exchange: Exchange = { host, method: String(property), what: typeof args[0] === 'string' ? args[0] : '', startMs: this.now() };
            this.exchanges.push(exchange);
            const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
            if (result instanceof Promise) void result.then(() => (exchange.endMs = this.now()), () => (exchange.endMs = this.now()));
            return result;
          };
        },
      });
    this.pool = new Proxy(this.inner, {
      get: (target, property, receiver) => {
        const value: unknown = Reflect.get(target, property, receiver);
        if (property !== 'session') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        return async (...args: Parameters<SessionPool['session']>) => {
          const host = args[0].host;
          // The first session of a host is its connect.
          const connect: Exchange | undefined = this.exchanges.some((exchange) => exchange.host === host) ? undefined : { host, method: 'connect', what: '(connect)', startMs: this.now() };
          if (connect) this.exchanges.push(connect);
          const session = await target.session(...args);
          if (connect) connect.endMs = this.now();
          return wrap(session, host);
        };
      },
    });
  }

  private now(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e6;
  }

  connections(): number {
    return this.inner.stats().connectionsOpened;
  }

  /** `host0 exec 8, host1 exec 7` */
  perHost(): string {
    const counts = new Map<string, Map<string, number>>();
    for (const exchange of this.exchanges) {
      const methods = counts.get(exchange.host) ?? new Map<string, number>();
      methods.set(exchange.method, (methods.get(exchange.method) ?? 0) + 1);
      counts.set(exchange.host, methods);
    }
    return [...counts].map(([host, methods]) => `${host}: ${[...methods].map(([method, count]) => `${method} ${count}`).join(', ')}`).join('; ');
  }

  dispose(): void {
    this.inner.dispose();
  }
}

/** Runs `action` with a deadline: past it the signal aborts, the pool is disposed and the run fails. */
async function bounded<T>(what: string, pool: CountedPool, action: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      pool.dispose();
      reject(new Error(`${what} took more than ${RUN_TIMEOUT_MS / 1000} s`));
    }, RUN_TIMEOUT_MS);
  });
  try {
    return await Promise.race([action(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

export interface App {
  count: number;
  configFile: string;
  config: KamalConfig;
  /** The version the proxy serves now on every host. */
  live: string;
}

const otherVersion = (app: App): string => (app.live === VERSIONS[0] ? VERSIONS[1] : VERSIONS[0]);

/** One `kamal rollback V` from a cold start: fresh connections, config, plan, execute. */
export async function rollback(hosts: TestHosts, app: App): Promise<{ ms: number; pool: CountedPool }> {
  const target = otherVersion(app);
  const pool = new CountedPool(hosts);
  try {
    const ms = await bounded(`rollback of ${app.count} host(s) to ${target}`, pool, (signal) =>
      timed(async () => {
        const config = await loadKamalConfig(app.configFile, undefined, {});
        const sessions = (host: string) => pool.pool.session(sshTargetFor(config, host));
        // As `deploy-rollback rollback --yes` (no confirmation in between): the lock is taken with the pre-flight.
        const plan = await planKamalRollback({ config, sessions, targetVersion: target, performer: 'bench', signal, takeLock: true });
        const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false, signal });
        if (!result.ok) throw new Error(`rollback to ${target} failed: ${result.message}\n${result.lines.join('\n')}`);
      }),
    );
    app.live = target;
    return { ms, pool };
  } finally {
    pool.dispose();
  }
}

/**
 * A rollback started from the Releases view: the tree has read the hosts (untimed, its
 * connections stay open), then Roll Back on the release: planned from the tree's reading, confirmed
 * (no time), run. Only what follows the click is timed.
 */
async function rollbackFromTree(hosts: TestHosts, app: App): Promise<{ ms: number; pool: CountedPool }> {
  const target = otherVersion(app);
  const pool = new CountedPool(hosts);
  try {
    const source = new KamalSource(app.configFile, { pool: pool.pool, connectAllowed: () => true, env: {}, runHooks: false });
    const [environment] = await source.environments();
    const [tree] = environment ? await source.apps(environment) : [];
    const release = tree ? (await source.releases(tree)).find((candidate) => candidate.version === target) : undefined;
    if (!tree || !release) throw new Error(`the tree does not list ${target}`);
    const ms = await bounded(`rollback from the tree of ${app.count} host(s) to ${target}`, pool, (signal) =>
      timed(async () => {
        const plan = await source.planRollback(tree, release, signal);
        const result = await source.executeRollback(plan, silentReporter, signal);
        if (!result.ok) throw new Error(`rollback from the tree to ${target} failed: ${result.message}`);
      }),
    );
    app.live = target;
    return { ms, pool };
  } finally {
    pool.dispose();
  }
}

/** What the Releases view does from a fresh pool: environments, app (with the lock), releases, containers of each. */
async function treeRefresh(hosts: TestHosts, app: App): Promise<{ ms: number; pool: CountedPool }> {
  const pool = new CountedPool(hosts);
  try {
    const ms = await bounded(`tree refresh of ${app.count} host(s)`, pool, () =>
      timed(async () => {
        const source = new KamalSource(app.configFile, { pool: pool.pool, connectAllowed: () => true, env: {} });
        const releases = await readAll(source);
        if (releases < VERSIONS.length) throw new Error(`the tree listed ${releases} releases, expected at least ${VERSIONS.length}`);
      }),
    );
    return { ms, pool };
  } finally {
    pool.dispose();
  }
}

/**
 * The floor: on every host at once, one SSH connect, then `docker run` V, `kamal-proxy deploy`
 * and `docker stop` O back to back on that connection. The lines come from a rollback plan to V
 * made (untimed) just before, and the existing V container is renamed out of the way (untimed)
 * with the plan's own rename line, as the rollback does before its run.
 */
async function floor(hosts: TestHosts, app: App): Promise<{ ms: number; pool: CountedPool }> {
  const target = otherVersion(app);
  const preparing = new CountedPool(hosts);
  let steps: KamalRoleStep[] = [];
  try {
    const sessions = (host: string) => preparing.pool.session(sshTargetFor(app.config, host));
    const plan = await bounded('planning the floor', preparing, (signal) => planKamalRollback({ config: app.config, sessions, targetVersion: target, performer: 'bench', signal }));
    steps = plan.detail.hostPlans.flatMap((host) => host.steps);
    await bounded('renaming for the floor', preparing, () =>
      Promise.all(
        steps.map(async (step) => {
          if (!step.commands.rename || !step.commands.proxyDeploy || !step.commands.stopOld) throw new Error(`the plan for ${step.host} has no rename, proxy deploy or stop line`);
          const renamed = await (await sessions(step.host)).exec(step.commands.rename);
          if (renamed.code !== 0) throw new Error(`rename on ${step.host}: ${renamed.stderr.trim()}`);
        }),
      ),
    );
  } finally {
    preparing.dispose();
  }

  const pool = new CountedPool(hosts);
  try {
    const ms = await bounded(`floor on ${app.count} host(s)`, pool, () =>
      timed(() =>
        Promise.all(
          steps.map(async (step) => {
            const session = await pool.pool.session(sshTargetFor(app.config, step.host));
            const run = await session.exec(step.commands.run);
            const containerId = run.stdout.trim().split('\n').slice(-1)[0]?.trim() ?? '';
            if (run.code !== 0 || !/^[0-9a-f]{64}$/.test(containerId)) throw new Error(`docker run on ${step.host}: exit ${run.code} ${run.stderr.trim()}`);
            const deployed = await session.exec(step.commands.proxyDeploy!.replace(TARGET_ARG_PLACEHOLDER, containerId.slice(0, 12)));
            if (deployed.code !== 0) throw new Error(`kamal-proxy deploy on ${step.host}: exit ${deployed.code} ${deployed.stderr.trim()}`);
            const stopped = await session.exec(step.commands.stopOld!);
            if (stopped.code !== 0) throw new Error(`docker stop on ${step.host}: exit ${stopped.code} ${stopped.stderr.trim()}`);
          }),
        ),
      ),
    );
    app.live = target;
    return { ms, pool };
  } finally {
    pool.dispose();
  }
}

/** What one connect and one bare `true` on the open connection cost on the first host: the unit prices of the counts. */
async function probe(hosts: TestHosts, app: App): Promise<{ connect: number; exec: number }> {
  const pool = new CountedPool(hosts);
  try {
    return await bounded('connect and exec probe', pool, async () => {
      const target = sshTargetFor(app.config, app.config.hosts[0]);
      let session: HostSession | undefined;
      const connect = await timed(async () => (session = await pool.pool.session(target)));
      const execs: number[] = [];
      for (let run = 0; run < 3; run++) {
        execs.push(
          await timed(async () => {
            const result = await session!.exec('true');
            if (result.code !== 0) throw new Error(`true on ${target.host}: exit ${result.code}`);
          }),
        );
      }
      return { connect, exec: median(execs) };
    });
  } finally {
    pool.dispose();
  }
}

async function setDelay(hosts: TestHosts, app: App, delayed: boolean): Promise<string> {
  const targets = hosts.hosts.slice(0, app.count);
  if (!delayed) {
    await Promise.all(targets.map((host) => hosts.clearLink(host)));
    return 'none';
  }
  const how = await Promise.all(targets.map((host) => hosts.slowLink(host, ADDED_RTT_MS)));
  return [...new Set(how)].join(', ');
}

interface Measured {
  rollback: number[];
  fromTree: number[];
  refresh: number[];
  floor: number[];
  connect: number[];
  exec: number[];
}

/** Median over runs of a per-run value. */
function medianOf(runs: number, value: (run: number) => number): number {
  return median(Array.from({ length: runs }, (_, run) => value(run)));
}

const ms = (value: number): string => `${Math.round(value)} ms`;
const list = (values: number[]): string => values.map((value) => Math.round(value)).join(', ');
const verdict = (ok: boolean): string => (ok ? 'pass' : 'FAIL');

async function measure(hosts: TestHosts, app: App): Promise<boolean> {
  const fast: Measured = { rollback: [], fromTree: [], refresh: [], floor: [], connect: [], exec: [] };
  const slow: Measured = { rollback: [], fromTree: [], refresh: [], floor: [], connect: [], exec: [] };
  let delayKind = '';
  // The pools of the last run of each kind, without and with the delay: their exchanges.
  const last: Record<'fast' | 'slow', Partial<Record<'rollback' | 'floor' | 'refresh' | 'fromTree', CountedPool>>> = { fast: {}, slow: {} };
  try {
    for (let run = 0; run < RUNS; run++) {
      // Alternate which goes first, so a drifting machine load does not favour one side.
      for (const delayed of run % 2 === 0 ? [false, true] : [true, false]) {
        const kind = await setDelay(hosts, app, delayed);
        if (delayed) delayKind = kind;
        const into = delayed ? slow : fast;
        const order = run % 2 === 0 ? (['rollback', 'floor'] as const) : (['floor', 'rollback'] as const);
        for (const what of order) {
          if (what === 'rollback') {
            const measured = await rollback(hosts, app);
            into.rollback.push(measured.ms);
            last[delayed ? 'slow' : 'fast'].rollback = measured.pool;
          } else {
            const measured = await floor(hosts, app);
            into.floor.push(measured.ms);
            last[delayed ? 'slow' : 'fast'].floor = measured.pool;
          }
        }
        const fromTree = await rollbackFromTree(hosts, app);
        into.fromTree.push(fromTree.ms);
        last[delayed ? 'slow' : 'fast'].fromTree = fromTree.pool;
        const refreshed = await treeRefresh(hosts, app);
        into.refresh.push(refreshed.ms);
        last[delayed ? 'slow' : 'fast'].refresh = refreshed.pool;
        const prices = await probe(hosts, app);
        into.connect.push(prices.connect);
        into.exec.push(prices.exec);
      }
    }
  } finally {
    await setDelay(hosts, app, false);
  }

  const n = app.count;
  const floorRatio = medianOf(RUNS, (run) => fast.rollback[run] / fast.floor[run]);
  const roundTrips = (key: keyof Measured): number => medianOf(RUNS, (run) => (slow[key][run] - fast[key][run]) / ADDED_RTT_MS);
  const rollbackTrips = roundTrips('rollback');
  const refreshTrips = roundTrips('refresh');
  const floorTrips = roundTrips('floor');
  const fromTreeTrips = roundTrips('fromTree');
  console.log(`${n} host(s), ${RUNS} runs each; added round trip ${ADDED_RTT_MS} ms by ${delayKind}`);
  // The relay accepts in the host's own kernel: TCP's handshake is not delayed, only SSH's bytes.
  if (delayKind === 'ssh-relay') console.log(`  (the relay delays SSH's bytes, not TCP's own handshake: on a real link each connect costs 1 round trip more)`);
  console.log(`  rollback: ${ms(median(fast.rollback))} (runs ${list(fast.rollback)}), +${ADDED_RTT_MS} ms RTT: ${ms(median(slow.rollback))} (runs ${list(slow.rollback)})`);
  console.log(`  floor:    ${ms(median(fast.floor))} (runs ${list(fast.floor)}), +${ADDED_RTT_MS} ms RTT: ${ms(median(slow.floor))} (runs ${list(slow.floor)})`);
  console.log(`  from the tree: ${ms(median(fast.fromTree))} (runs ${list(fast.fromTree)}), +${ADDED_RTT_MS} ms RTT: ${ms(median(slow.fromTree))} (runs ${list(slow.fromTree)})`);
  console.log(`  refresh:  ${ms(median(fast.refresh))} (runs ${list(fast.refresh)}), +${ADDED_RTT_MS} ms RTT: ${ms(median(slow.refresh))} (runs ${list(slow.refresh)})`);
  for (const what of ['rollback', 'floor', 'fromTree', 'refresh'] as const) {
    const pool = last.fast[what];
    if (pool) console.log(`  exchanges per host (${what}): ${pool.perHost()}; connections opened: ${pool.connections()}`);
  }
  if (process.env.BENCH_TRACE) {
    for (const [link, pools] of Object.entries(last)) {
      for (const [what, pool] of Object.entries(pools)) {
        console.log(`  trace of the last ${what}, ${link === 'slow' ? `+${ADDED_RTT_MS} ms RTT` : 'no added delay'} (host, start–end ms, line):`);
        for (const exchange of pool.exchanges) {
          const end = exchange.endMs === undefined ? '?' : exchange.endMs.toFixed(0);
          console.log(`    ${exchange.host} ${exchange.startMs.toFixed(0).padStart(6)}–${end.padEnd(6)} ${exchange.what.replace(/\s+/g, ' ').slice(0, 100)}`);
        }
      }
    }
  }
  const ok = {
    floor: floorRatio <= GOALS.floorRatio,
    rollback: rollbackTrips <= GOALS.rollbackRoundTrips,
    refresh: refreshTrips <= GOALS.refreshRoundTrips,
    fromTree: fromTreeTrips <= GOALS.fromTreeRoundTrips,
  };
  console.log(`  floor ratio, rollback / floor, ${n} host(s): ${floorRatio.toFixed(2)} (goal <= ${GOALS.floorRatio}) ${verdict(ok.floor)}`);
  console.log(`  round trips, rollback, ${n} host(s): ${rollbackTrips.toFixed(1)} (goal <= ${GOALS.rollbackRoundTrips}) ${verdict(ok.rollback)}`);
  console.log(`  round trips, tree refresh, ${n} host(s): ${refreshTrips.toFixed(1)} (goal <= ${GOALS.refreshRoundTrips}) ${verdict(ok.refresh)}`);
  console.log(`  round trips, rollback from the tree (connections open, planned from the tree's reading), ${n} host(s): ${fromTreeTrips.toFixed(1)} (goal <= ${GOALS.fromTreeRoundTrips}) ${verdict(ok.fromTree)}`);
  console.log(`  (round trips of the floor itself, ${n} host(s): ${floorTrips.toFixed(1)})`);
  console.log(
    `  (unit prices: a connect ${roundTrips('connect').toFixed(1)} round trips, one exec on an open connection ${roundTrips('exec').toFixed(1)}; ` +
      `fast: connect ${ms(median(fast.connect))}, exec ${ms(median(fast.exec))})`,
  );
  return ok.floor && ok.rollback && ok.refresh && ok.fromTree;
}

export async function main(): Promise<number> {
  return withHostsAndDir({ count: Math.max(...HOST_COUNTS) }, 'kamal-rollback-bench-', async (hosts, dir) => {
    let failures = 0;
    for (const count of HOST_COUNTS) {
      const service = `bench${count}`;
      await hosts.seedKamalState({ service, versions: [...VERSIONS], running: VERSIONS[1], hosts: hosts.hosts.slice(0, count) });
      const configFile = await writeDeployYml(path.join(dir, service), hosts, { service, web: hosts.hosts.slice(0, count) });
      const config = await loadKamalConfig(configFile, undefined, {});
      try {
        if (!(await measure(hosts, { count, configFile, config, live: VERSIONS[1] }))) failures++;
      } catch (error) {
        // One host count failing (a host that stopped answering) does not hide the other's numbers.
        failures++;
        console.error(`${count} host(s) failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return failures === 0 ? 0 : 1;
  });
}

runIfMain(module, main);
