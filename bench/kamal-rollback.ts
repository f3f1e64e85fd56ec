/**
 * Wall time of a whole Kamal rollback (plan with its pre-flight, lock, boot behind the
 * kamal-proxy stand-in, stop, tag, unlock) on 1 and on 4 real test hosts, each run from a fresh
 * SSH pool as a `kamal rollback` invocation would connect afresh. Compared with Kamal 2.12 on the
 * same kind of hosts: 2.3 s for 1 host, 3.4 s for 4.
 * Run: npx tsx bench/kamal-rollback.ts
 */
import * as path from 'node:path';
import { silentReporter } from '../src/core/model';
import { loadKamalConfig } from '../src/core/kamal/config';
import { sshTargetFor } from '../src/core/kamal/ssh-target';
import { executeKamalRollback, planKamalRollback } from '../src/core/kamal/rollback';
import type { TestHosts } from '../test/hosts/harness';
import { median, realPool, runIfMain, withHostsAndDir, writeDeployYml } from '../test/system/kamal-hosts';

const HOST_COUNTS = [1, 4];
const RUNS = 5;
const KAMAL_SECONDS: Record<number, number> = { 1: 2.3, 4: 3.4 };
const GOALS = { parallel: 1.3, vsKamal: 0.7 };

/** One `kamal rollback V` from a cold start: fresh connections, plan, execute. */
async function rollback(hosts: TestHosts, configFile: string, target: string): Promise<number> {
  const started = process.hrtime.bigint();
  const pool = realPool(hosts);
  try {
    const config = await loadKamalConfig(configFile, undefined, {});
    const sessions = (host: string) => pool.session(sshTargetFor(config, host));
    const plan = await planKamalRollback({ config, sessions, targetVersion: target, performer: 'bench' });
    const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
    if (!result.ok) throw new Error(`rollback to ${target} failed: ${result.message}\n${result.lines.join('\n')}`);
  } finally {
    pool.dispose();
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/**
 * What the hosts themselves cost: `docker run` + `docker stop` of the same image on N hosts at
 * once, straight to each daemon. With several dockerds sharing two cores this alone does not
 * scale flat, so the rollback's N/1 ratio is printed beside this floor's.
 */
async function dockerFloor(hosts: TestHosts, count: number): Promise<number> {
  const started = process.hrtime.bigint();
  await Promise.all(
    hosts.hosts.slice(0, count).map(async (host, index) => {
      const name = `floor-${index}-${Date.now()}`;
      for (const args of [['run', '--detach', '--name', name, '--network', 'kamal', `${hosts.repository}:v1`], ['stop', name], ['rm', name]]) {
        const result = await hosts.docker(host, args);
        if (result.code !== 0) throw new Error(`docker ${args[0]} on ${host.name}: ${result.stderr.trim()}`);
      }
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e9;
}

export async function main(): Promise<number> {
  return withHostsAndDir({ count: Math.max(...HOST_COUNTS) }, 'kamal-rollback-bench-', async (hosts, dir) => {
    const seconds = new Map<number, number>();
    for (const count of HOST_COUNTS) {
      const service = `bench${count}`;
      await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2', hosts: hosts.hosts.slice(0, count) });
      const configFile = await writeDeployYml(path.join(dir, service), hosts, { service, web: hosts.hosts.slice(0, count) });
      const runs: number[] = [];
      for (let run = 0; run < RUNS; run++) runs.push(await rollback(hosts, configFile, run % 2 === 0 ? 'v1' : 'v2'));
      seconds.set(count, median(runs));
      console.log(`kamal rollback ${count} host(s): ${median(runs).toFixed(2)} s (runs: ${runs.map((value) => value.toFixed(2)).join(', ')}; kamal: ${KAMAL_SECONDS[count]} s)`);
    }
    const most = Math.max(...HOST_COUNTS);
    const parallel = seconds.get(most)! / seconds.get(1)!;
    const floors: Record<number, number[]> = { 1: [], [most]: [] };
    for (let run = 0; run < RUNS; run++) for (const count of [1, most]) floors[count]!.push(await dockerFloor(hosts, count));
    const floorRatio = median(floors[most]!) / median(floors[1]!);
    const vsKamal = Math.max(...HOST_COUNTS.map((count) => seconds.get(count)! / KAMAL_SECONDS[count]));
    console.log(`kamal rollback ${most}/1 hosts ratio: ${parallel.toFixed(2)} (goal <= ${GOALS.parallel})`);
    console.log(`docker run+stop alone, ${most}/1 hosts ratio on this machine: ${floorRatio.toFixed(2)}; rollback ratio / docker ratio: ${(parallel / floorRatio).toFixed(2)}`);
    console.log(`kamal rollback 1 host: ${seconds.get(1)!.toFixed(2)} s vs kamal ${KAMAL_SECONDS[1]} s; ${most} hosts: ${seconds.get(most)!.toFixed(2)} s vs kamal ${KAMAL_SECONDS[most]} s`);
    console.log(`vs kamal: ${vsKamal.toFixed(2)} (goal <= ${GOALS.vsKamal})`);
    return parallel <= GOALS.parallel && vsKamal <= GOALS.vsKamal ? 0 : 1;
  });
}

runIfMain(module, main);
