/**
 * The CLI end to end, as users run it: `deploy-rollback rollback --kamal CONFIG --to V --yes` as a
 * process (the bundle as shipped: `scripts/build.mjs --production`), on 4 real test hosts,
 * against the in-process rollback of bench/kamal-rollback.ts (config, plan with the lock, execute,
 * from a fresh pool) on the same hosts, measured in the same run:
 *
 * - the CLI's overhead: process − in-process, and their ratio; goal: within 0.1 s;
 * - when the process reaches its first SSH byte, counted from the spawn (node's own boot
 *   included); goal ≤ 120 ms. A preload (bench/process-marks.ts) records, from outside the
 *   product, node booted, bundle loaded, first TCP connect, first SSH byte sent and received, exit;
 * - the same with 50 ms of round trip added on every host's link (harness `slowLink`: netem, or
 *   the in-host relay).
 *
 * CLI and in-process runs alternate (which goes first swaps every run) and each figure is the
 * median over runs of the adjacent pair, to cancel the drift of a loaded machine; the spread of
 * the differences is printed as the noise.
 * Run: npx tsx bench/cli-e2e.ts   (BENCH_RUNS=N pairs per link, default 9; BENCH_CLI_BUNDLE=FILE
 * runs that CLI instead of a fresh build; BENCH_CLI_BASELINE=FILE runs that one too, in the same
 * alternation, e.g. a build of an older commit, for a before/after measured in one run;
 * BENCH_TRACE=1 runs the CLI with --verbose and prints its last run's timeline on each link:
 * every SSH socket's connect, writes and reads, every child process and stderr line, with its
 * time since spawn)
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { loadKamalConfig } from '../src/core/kamal/config/read';
import type { TestHosts } from '../test/hosts/harness';
import { sshHome } from '../test/system/cli-bundle';
import { median, runIfMain, setDelay, withHostsAndDir, writeDeployYml } from '../test/system/kamal-hosts';
import { rollback, type App } from './kamal-rollback';
import { watchTcpSockets } from './ssh-sockets';

const HOSTS = 4;
const RUNS = positiveInteger(process.env.BENCH_RUNS) ?? 9;
const LINKS = [0, 50] as const;
const GOALS = { overheadMs: 100, firstSshByteMs: 120 };
const RUN_TIMEOUT_MS = 120_000;
const VERSIONS = ['v1', 'v2'] as const;
const repoRoot = path.resolve(__dirname, '..');

function positiveInteger(text: string | undefined): number | undefined {
  const value = Number(text);
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

/** What the preload recorded, in ms since the process's spawn (not its own start). */
interface ProcessRun {
  ms: number;
  marks: Record<string, number>;
  /** With BENCH_TRACE: what happened when, in ms since spawn. */
  timeline?: [number, string][];
}
const TRACE = Boolean(process.env.BENCH_TRACE);

interface Cli {
  bundle: string;
  preload: string;
  home: string;
  project: string;
  marksFile: string;
}

/** The CLI bundle as `npm run package` ships it, and the preload bundled beside it. */
function buildCli(dir: string): { bundle: string; preload: string } {
  const built = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/build.mjs'), '--production', '--cli-only', '--outdir', dir], { cwd: repoRoot, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`building the CLI failed: ${built.stderr}`);
  const preload = path.join(dir, 'process-marks.js');
  buildSync({ entryPoints: [path.join(__dirname, 'process-marks.ts')], bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: preload, logLevel: 'warning' });
  return { bundle: process.env.BENCH_CLI_BUNDLE ? path.resolve(process.env.BENCH_CLI_BUNDLE) : path.join(dir, 'cli.js'), preload };
}

/**
 * The CLI's environment: this one without NODE_EXTRA_CA_CERTS (unless BENCH_CLI_KEEP_EXTRA_CA_CERTS=1).
 * Node 20 parses that file at every start, before any of the CLI's code (about 45 ms for the
 * system bundle), and the CLI opens no TLS connection: set on this machine's sandbox, it is not
 * the CLI's time, and the bench prints what it costs here (nodeBoot).
 */
function cliEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (process.env.BENCH_CLI_KEEP_EXTRA_CA_CERTS !== '1') delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Median wall time of `node -e 0` in `env`, over `runs` starts. */
function nodeBoot(env: NodeJS.ProcessEnv, runs = 7): number {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = process.hrtime.bigint();
    const booted = spawnSync(process.execPath, ['-e', '0'], { env, timeout: 10_000 });
    if (booted.status !== 0) throw new Error(`node -e 0 exited ${booted.status ?? booted.signal}`);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return median(times);
}

/** One `rollback --yes` as a process, timed from spawn to exit; fails unless it exits 0. */
async function cliRollback(cli: Cli, app: App): Promise<ProcessRun> {
  const target = app.live === VERSIONS[0] ? VERSIONS[1] : VERSIONS[0];
  await fs.rm(cli.marksFile, { force: true });
  // BENCH_CLI_NODE_ARGS: node options for the CLI process, e.g. `--cpu-prof --cpu-prof-dir=DIR` to see where its CPU goes.
  const args = [...(process.env.BENCH_CLI_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--require', cli.preload, cli.bundle, 'rollback', '--kamal', app.configFile, '--to', target, '--yes', ...(TRACE ? ['--verbose'] : [])];
  const spawnedAt = performance.timeOrigin + performance.now();
  const started = process.hrtime.bigint();
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: cli.project,
      env: { ...cliEnvironment(), HOME: cli.home, SSH_AUTH_SOCK: '', NODE_OPTIONS: '', BENCH_MARKS_FILE: cli.marksFile, ...(TRACE ? { BENCH_MARKS_TIMELINE: '1' } : {}) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.code !== 0) throw new Error(`the CLI rollback to ${target} exited ${result.code}: ${result.stderr.trim()}`);
  app.live = target;
  const { timeline, ...recorded } = JSON.parse(await fs.readFile(cli.marksFile, 'utf8')) as Record<string, number> & { timeline?: [number, string][] };
  const offset = recorded.timeOrigin - spawnedAt;
  const marks: Record<string, number> = {};
  for (const [name, value] of Object.entries(recorded)) if (name !== 'timeOrigin') marks[name] = name === 'cpuMs' || name === 'connects' ? value : value + offset;
  return { ms, marks, timeline: timeline?.map(([at, what]) => [at + offset, what]) };
}

const ms = (value: number): string => `${Math.round(value)} ms`;
const list = (values: number[]): string => values.map((value) => Math.round(value)).join(', ');
const verdict = (ok: boolean): string => (ok ? 'pass' : 'FAIL');
const MARKS = ['preload', 'bundleLoaded', 'firstConnect', 'firstSshByte', 'firstSshReply', 'lastSshReply', 'exit'] as const;

/** A run cut at its first SSH byte sent and its last read: what comes before, the hosts' exchanges, what comes after. */
interface Phases {
  beforeFirstByte: number;
  exchanges: number;
  afterLastReply: number;
}

const phasesOfProcess = (run: ProcessRun): Phases => ({
  beforeFirstByte: run.marks.firstSshByte,
  exchanges: run.marks.lastSshReply - run.marks.firstSshByte,
  afterLastReply: run.ms - run.marks.lastSshReply,
});

/** The in-process rollback, with its SSH sockets watched as the CLI's preload watches the process's. */
async function inProcessRollback(hosts: TestHosts, app: App): Promise<{ ms: number; phases: Phases }> {
  let firstByte = NaN;
  let lastReply = NaN;
  const unwatch = watchTcpSockets({
    connect: () => undefined,
    up: () => undefined,
    write: () => void (firstByte = Number.isNaN(firstByte) ? performance.now() : firstByte),
    read: () => void (lastReply = performance.now()),
    close: () => undefined,
  });
  const started = performance.now();
  try {
    const { ms } = await rollback(hosts, app);
    const ended = performance.now();
    return { ms, phases: { beforeFirstByte: firstByte - started, exchanges: lastReply - firstByte, afterLastReply: ended - lastReply } };
  } finally {
    unwatch();
  }
}

/** A CLI's runs in one link setting, and what they say against the in-process runs they alternate with. */
function report(name: string, runs: ProcessRun[], inProcess: number[], inProcessPhases: Phases[], coldCache: boolean): { overhead: number; firstByte: number } {
  const cliMs = runs.map((run) => run.ms);
  const overheads = cliMs.map((value, run) => value - inProcess[run]);
  const overhead = median(overheads);
  const ratio = median(cliMs.map((value, run) => value / inProcess[run]));
  const mark = (markName: (typeof MARKS)[number]): number => median(runs.map((run) => run.marks[markName] ?? NaN));
  console.log(`  ${name}: ${ms(median(cliMs))} (runs ${list(cliMs)})`);
  console.log(`    − in-process: ${ms(overhead)} (per pair ${list(overheads)}; spread ${ms(Math.max(...overheads) - Math.min(...overheads))}), ratio ${ratio.toFixed(2)}`);
  console.log(`    marks since spawn (medians): ${MARKS.map((markName) => `${markName} ${ms(mark(markName))}`).join(', ')}`);
  console.log(`    CPU time (user + system, median): ${ms(median(runs.map((run) => run.marks.cpuMs)))}; TCP connections opened: ${[...new Set(runs.map((run) => run.marks.connects))].join(' or ')}`);
  // The part outside the hosts' exchanges barely varies; the exchanges carry the hosts' docker time, and its noise.
  const phases = runs.map(phasesOfProcess);
  const part = (key: keyof Phases): string => {
    const differences = phases.map((phase, run) => phase[key] - inProcessPhases[run][key]);
    return `${ms(median(differences))} (${ms(median(phases.map((phase) => phase[key])))} against ${ms(median(inProcessPhases.map((phase) => phase[key])))}; spread ${ms(Math.max(...differences) - Math.min(...differences))})`;
  };
  console.log(`    − in-process, by part (medians of pairs): before the first SSH byte ${part('beforeFirstByte')}; the exchanges, first byte to last answer ${part('exchanges')}; after the last answer ${part('afterLastReply')}`);
  if (coldCache) console.log(`    its first run (no compile cache yet): bundle loaded ${ms(runs[0].marks.bundleLoaded ?? NaN)}, first SSH byte ${ms(runs[0].marks.firstSshByte ?? NaN)}`);
  const timeline = runs[runs.length - 1].timeline;
  if (timeline) {
    console.log('    timeline of its last run (ms since spawn):');
    for (const [at, what] of timeline) console.log(`      ${at.toFixed(1).padStart(8)} ${what}`);
  }
  return { overhead, firstByte: mark('firstSshByte') };
}

async function measure(hosts: TestHosts, clis: { name: string; cli: Cli }[], app: App, rttMs: number, coldCache: boolean): Promise<boolean> {
  const how = await setDelay(hosts, rttMs);
  const processRuns: ProcessRun[][] = clis.map(() => []);
  const inProcess: number[] = [];
  const inProcessPhases: Phases[] = [];
  /** This process's CPU time during each in-process rollback: what a warm process spends, against the CLI's. */
  const inProcessCpu: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      // Alternate the order, so a drifting machine load does not favour one side.
      const order: number[] = [...clis.keys(), -1];
      if (run % 2 === 1) order.reverse();
      for (const which of order) {
        if (which >= 0) processRuns[which].push(await cliRollback(clis[which].cli, app));
        else {
          const cpuBefore = process.cpuUsage();
          const run = await inProcessRollback(hosts, app);
          inProcess.push(run.ms);
          inProcessPhases.push(run.phases);
          const cpu = process.cpuUsage(cpuBefore);
          inProcessCpu.push((cpu.user + cpu.system) / 1000);
        }
      }
    }
  } finally {
    await setDelay(hosts, 0);
  }
  const link = rttMs === 0 ? 'LAN' : `+${rttMs} ms RTT (${how})`;
  console.log(`${HOSTS} hosts, ${link}, ${RUNS} runs each`);
  console.log(`  in-process: ${ms(median(inProcess))} (runs ${list(inProcess)}); CPU time (user + system, median): ${ms(median(inProcessCpu))}`);
  const measured = clis.map(({ name }, index) => report(name, processRuns[index], inProcess, inProcessPhases, coldCache));
  const { overhead, firstByte } = measured[0];
  const ok = { overhead: overhead <= GOALS.overheadMs, firstByte: firstByte <= GOALS.firstSshByteMs };
  console.log(`  CLI overhead, ${link}: ${ms(overhead)} (goal <= ${GOALS.overheadMs} ms) ${verdict(ok.overhead)}`);
  console.log(`  first SSH byte after spawn, ${link}: ${ms(firstByte)} (goal <= ${GOALS.firstSshByteMs} ms) ${verdict(ok.firstByte)}`);
  return ok.overhead && ok.firstByte;
}

export async function main(): Promise<number> {
  return withHostsAndDir({ count: HOSTS }, 'cli-e2e-bench-', async (hosts, dir) => {
    const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
    if (extraCaCerts) {
      const kept = process.env.BENCH_CLI_KEEP_EXTRA_CA_CERTS === '1';
      console.log(
        `node's own boot (node -e 0): ${ms(nodeBoot(cliEnvironment()))} as the CLI runs${kept ? '' : ' (without this machine\'s NODE_EXTRA_CA_CERTS: the CLI opens no TLS connection; BENCH_CLI_KEEP_EXTRA_CA_CERTS=1 keeps it)'}, ` +
          `${ms(nodeBoot({ ...process.env, NODE_EXTRA_CA_CERTS: extraCaCerts }))} with NODE_EXTRA_CA_CERTS=${extraCaCerts}`,
      );
    }
    const service = 'clie2e';
    await hosts.seedKamalState({ service, versions: [...VERSIONS], running: VERSIONS[1], hosts: hosts.hosts });
    const project = path.join(dir, 'project');
    const configFile = await writeDeployYml(project, hosts, { service, web: hosts.hosts });
    // As an app's checkout: a git repository with an identity, which names the lock holder and the audit performer.
    for (const args of [['init', '-q'], ['config', 'user.name', 'Bench Dev'], ['config', 'user.email', 'dev@example.com'], ['add', '-A'], ['commit', '-qm', 'Deploy config']]) {
      const git = spawnSync('git', args, { cwd: project, encoding: 'utf8' });
      if (git.status !== 0) throw new Error(`git ${args.join(' ')}: ${git.stderr}`);
    }
    const config = await loadKamalConfig(configFile, undefined, {});
    const { bundle, preload } = buildCli(dir);
    const cli: Cli = { bundle, preload, home: sshHome(dir, hosts), project, marksFile: path.join(dir, 'marks.json') };
    const clis = [{ name: 'CLI process', cli }];
    if (process.env.BENCH_CLI_BASELINE) clis.push({ name: `baseline CLI (${process.env.BENCH_CLI_BASELINE})`, cli: { ...cli, bundle: path.resolve(process.env.BENCH_CLI_BASELINE) } });
    const app: App = { count: HOSTS, configFile, config, live: VERSIONS[1] };
    let failures = 0;
    for (const rttMs of LINKS) {
      try {
        if (!(await measure(hosts, clis, app, rttMs, rttMs === LINKS[0]))) failures++;
      } catch (error) {
        failures++;
        console.error(`${rttMs ? `+${rttMs} ms RTT` : 'LAN'} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return failures === 0 ? 0 : 1;
  });
}

runIfMain(module, main);
