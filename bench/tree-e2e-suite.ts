/**
 * The extension-host half of bench/tree-e2e.ts: VS Code calls run() (as extensionTestsPath) in a
 * real extension host. Before each run the tree is read as a user who just looked (untimed), then
 * alternately:
 *
 * - extension: `deployRollback.rollbackToRelease` on the release row, from invocation to its
 *   returned outcome, through the whole command layer (progress notification, env file request,
 *   confirmation by a prompter that answers at once, the refresh and read the command does after);
 * - in-process: the same core calls the command makes, in this same process, on the same source
 *   (its open connections, its recent read): `planRollback` with the same env file request, then
 *   `executeRollback`, without the command layer.
 *
 * Target versions alternate, so every run is a real switch. The result goes to the file named by
 * DEPLOY_ROLLBACK_BENCH_RESULT; a failure writes `error` there instead.
 */
import { readdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { Session } from 'node:inspector';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { silentReporter, type ReleaseSource, type Reporter, type RollbackOutcome, type RollbackPlan } from '../src/core/model';
import type { SessionPool } from '../src/core/ssh/types';
import type { DeployRollbackApi } from '../src/vscode/extension';
import type { AppNode, EnvironmentNode, ReleaseNode, TreeNode } from '../src/vscode/tree/nodes';
import { PROFILE_ENV, PROGRESS_ENV, REPORTER_ENV, RESULT_ENV, RUNS_ENV, VERSIONS_ENV, type TreeBenchResult, type TreeBenchRun } from './tree-e2e-protocol';

const EXTENSION_ID = 'deploy-rollback.deploy-rollback';
/** Bounds: a run or a tree read that takes longer is a failure, not a slow number. */
const RUN_TIMEOUT_MS = 120_000;
const READ_TIMEOUT_MS = 60_000;
/** The first line of a plan made from the tree's recent read (src/core/kamal/rollback/plan.ts). */
const FROM_READ = /^Planned from the hosts as read at /;

function withDeadline<T>(what: string, ms: number, action: Promise<T>, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`${what} took more than ${ms / 1000} s`));
    }, ms);
  });
  return Promise.race([action, deadline]).finally(() => clearTimeout(timer));
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
/** CPU time of this process (user + system) since `since`, in ms. */
const cpuMs = (since?: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

/** Children once read: a Kamal read first shows a loading row, or rows marked "reading…". */
async function settled(api: DeployRollbackApi, node: TreeNode | undefined): Promise<TreeNode[]> {
  const deadline = Date.now() + READ_TIMEOUT_MS;
  for (;;) {
    const children = await api.tree.getChildren(node);
    if (!children.some((child) => child.kind === 'loading' || child.lastKnown?.state === 'reading')) return children;
    if (Date.now() > deadline) throw new Error(`the children of ${node?.id ?? 'the root'} were not read within ${READ_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Refresh, then read environment → app → releases as the view does. */
async function readReleaseRows(api: DeployRollbackApi): Promise<ReleaseNode[]> {
  await api.refresh();
  const environment = (await settled(api, undefined)).find((node): node is EnvironmentNode => node.kind === 'environment');
  if (!environment) throw new Error('the tree shows no environment: was config/deploy.yml found in the workspace?');
  const app = (await settled(api, environment)).find((node): node is AppNode => node.kind === 'app');
  if (!app) throw new Error(`no app under ${environment.id}`);
  return (await settled(api, app)).filter((node): node is ReleaseNode => node.kind === 'release');
}

/** The row of `version`, read just now. */
async function readReleaseRow(api: DeployRollbackApi, version: string): Promise<ReleaseNode> {
  const releases = await readReleaseRows(api);
  const row = releases.find((node) => node.release.version === version);
  if (!row) throw new Error(`the tree does not list ${version} (it lists ${releases.map((node) => node.release.version).join(', ')})`);
  if (!row.release.rollbackable) throw new Error(`${version} is not a rollback target: ${row.release.reason ?? (row.release.current ? 'current' : 'unknown')}`);
  return row;
}

/**
 * Counts the calls on host sessions this source hands out (each is one exchange on an open
 * connection) by wrapping its pool on this object only: the bench's probe, not the product's code.
 */
function countExchanges(source: ReleaseSource): { count: () => number; stop: () => void } {
  let exchanges = 0;
  const probed = source as unknown as { pool: () => SessionPool };
  const inner = Object.getPrototypeOf(source).pool as (() => SessionPool) | undefined;
  if (typeof inner !== 'function') throw new Error('the source has no pool() to count exchanges on');
  probed.pool = () => {
    const pool = inner.call(source);
    return new Proxy(pool, {
      get: (target, property, receiver) => {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        if (property !== 'session') return (value as (...a: unknown[]) => unknown).bind(target);
        return async (...args: Parameters<SessionPool['session']>) =>
          new Proxy(await target.session(...args), {
            get: (session, name, sessionReceiver) => {
              const method: unknown = Reflect.get(session, name, sessionReceiver);
              if (typeof method !== 'function') return method;
              return (...methodArgs: unknown[]) => {
                exchanges++;
                return (method as (...a: unknown[]) => unknown).apply(session, methodArgs);
              };
            },
          });
      },
    });
  };
  return { count: () => exchanges, stop: () => delete (probed as Partial<typeof probed>).pool };
}

async function viaCommand(api: DeployRollbackApi, row: ReleaseNode, confirmAsked: { at?: number }): Promise<{ ms: number; toConfirmMs: number; toExecutedMs: number; fastPath: boolean; exchanges: number }> {
  confirmAsked.at = undefined;
  const counted = countExchanges(row.source);
  let exchangesWhenDone = 0;
  // When the source's run ends, seen from this object only (the bench's probe, not the product's code).
  const source = row.source;
  let executedAt: number | undefined;
  source.executeRollback = async (...args) => {
    try {
      return await Object.getPrototypeOf(source).executeRollback.apply(source, args);
    } finally {
      executedAt = now();
      exchangesWhenDone = counted.count();
    }
  };
  const started = now();
  try {
    const outcome = (await withDeadline(`the command's rollback to ${row.release.version}`, RUN_TIMEOUT_MS, Promise.resolve(vscode.commands.executeCommand('deployRollback.rollbackToRelease', row)), () => api.testing.cancelRollbacks())) as
      | (RollbackOutcome & { plan?: RollbackPlan })
      | undefined;
    const ms = now() - started;
    if (!outcome?.ok) throw new Error(`the command's rollback to ${row.release.version} failed: ${outcome?.message ?? 'no outcome (it showed an error)'}`);
    if (confirmAsked.at === undefined || executedAt === undefined) throw new Error('the command did not ask for a confirmation or did not run the source\'s rollback');
    return { ms, toConfirmMs: confirmAsked.at - started, toExecutedMs: executedAt - started, fastPath: FROM_READ.test(outcome.plan?.lines[0] ?? ''), exchanges: exchangesWhenDone };
  } finally {
    delete (source as Partial<typeof source>).executeRollback;
    counted.stop();
  }
}

async function inProcess(row: ReleaseNode): Promise<{ ms: number; fastPath: boolean; exchanges: number }> {
  const controller = new AbortController();
  const counted = countExchanges(row.source);
  const started = now();
  const run = async () => {
    // The request the command makes (src/vscode/env-files.ts withEnvFiles, secret commands off by default).
    const plan = await row.source.planRollback(row.release.app, row.release, controller.signal, { envFiles: { allowCommands: () => false } });
    // REPORTER_ENV=output: the run reports into the output channel as the source's own steps do (no progress notification), to tell that cost apart.
    const reporter = process.env[REPORTER_ENV] === 'output' ? (row.source as unknown as { reporter: Reporter }).reporter : silentReporter;
    const result = await row.source.executeRollback(plan, reporter, controller.signal);
    if (!result.ok) throw new Error(`the in-process rollback to ${row.release.version} failed: ${result.message}`);
    return plan;
  };
  try {
    // PROGRESS_ENV=1: inside a progress notification, as the command runs: its rendering competes for the CPU with local test hosts.
    const running = process.env[PROGRESS_ENV] === '1' ? Promise.resolve(vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'In-process rollback (bench)', cancellable: true }, run)) : run();
    const plan = await withDeadline(`the in-process rollback to ${row.release.version}`, RUN_TIMEOUT_MS, running, () => controller.abort());
    return { ms: now() - started, fastPath: FROM_READ.test(plan.lines[0] ?? ''), exchanges: counted.count() };
  } finally {
    counted.stop();
  }
}

/**
 * CPU time (ms) used so far by the machine's processes, grouped by what they are: Chromium (the
 * workbench), this extension host, the other node processes (code-server's server), the test hosts'
 * docker and sshd, the rest. Linux only (/proc); the deltas tell which process a run's CPU went to.
 */
function cpuByGroup(): Record<string, number> {
  const groups: Record<string, number> = {};
  const tick = 1000 / 100;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (Number(fields[11]) + Number(fields[12])) * tick;
    const group =
      Number(pid) === process.pid ? 'extension host' : /^chrom/.test(name) ? 'chromium' : /^(node|code-server)/.test(name) ? 'other node' : /^(dockerd|containerd|docker|runc|containerd-shim|kamal-proxy|sshd|sh|bash|busybox)/.test(name) ? 'test hosts' : 'other';
    groups[group] = (groups[group] ?? 0) + ms;
  }
  return groups;
}

function cpuDelta(before: Record<string, number>): Record<string, number> {
  const after = cpuByGroup();
  return Object.fromEntries(Object.keys(after).map((group) => [group, after[group]! - (before[group] ?? 0)]));
}

/** Runs `action` under V8's CPU profiler when PROFILE_ENV names a folder, writing the profile as `name`.cpuprofile there. */
async function profiled<T>(name: string, action: () => Promise<T>): Promise<T> {
  const folder = process.env[PROFILE_ENV];
  if (!folder) return action();
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  try {
    return await action();
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    writeFileSync(path.join(folder, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

export async function run(): Promise<void> {
  const resultFile = process.env[RESULT_ENV];
  if (!resultFile) throw new Error(`${RESULT_ENV} is not set: run bench/tree-e2e.ts`);
  const runs = Number(process.env[RUNS_ENV] ?? '7');
  const [older, newer] = (process.env[VERSIONS_ENV] ?? '').split(',');
  const result: TreeBenchResult = { vscodeVersion: vscode.version, runs: [] };
  let api: DeployRollbackApi | undefined;
  try {
    if (!older || !newer || !Number.isInteger(runs) || runs < 1) throw new Error(`${VERSIONS_ENV} (OLD,NEW) and ${RUNS_ENV} must be set`);
    const extension = vscode.extensions.getExtension<DeployRollbackApi>(EXTENSION_ID);
    if (!extension) throw new Error(`extension ${EXTENSION_ID} is not loaded`);
    api = await extension.activate();
    const confirmAsked: { at?: number } = {};
    api.testing.setPrompter({
      confirm: async (message) => {
        // Host keys of the test hosts are trusted as a user would; the rollback's own question is timed.
        if (!message.startsWith('The authenticity of host')) confirmAsked.at = now();
        return true;
      },
      input: async () => undefined,
      pick: async () => undefined,
      pickMany: async () => undefined,
    });
    // Each run switches to the other version, starting from the one that runs now.
    let live: string | undefined = (await readReleaseRows(api)).find((node) => node.release.current)?.release.version;
    if (live !== older && live !== newer) throw new Error(`neither ${older} nor ${newer} is the current release (the tree says ${live ?? 'none'})`);
    for (let index = 0; index < runs; index++) {
      const order = index % 2 === 0 ? (['extension', 'in-process'] as const) : (['in-process', 'extension'] as const);
      const entry: Partial<TreeBenchRun> = { first: order[0] };
      for (const side of order) {
        const target: string = live === older ? newer : older;
        const row = await readReleaseRow(api, target);
        // The /proc scan first, so this process's own figure leaves it out.
        const groupsBefore = cpuByGroup();
        const cpuBefore = process.cpuUsage();
        if (side === 'extension') {
          const measured = await profiled(`${index}-extension`, () => viaCommand(api!, row, confirmAsked));
          Object.assign(entry, { extensionCpuMs: cpuMs(cpuBefore), extensionCpuByGroup: cpuDelta(groupsBefore), extensionMs: measured.ms, extensionToConfirmMs: measured.toConfirmMs, extensionToExecutedMs: measured.toExecutedMs, extensionFastPath: measured.fastPath, extensionExchanges: measured.exchanges });
        } else {
          const measured = await profiled(`${index}-in-process`, () => inProcess(row));
          Object.assign(entry, { inProcessCpuMs: cpuMs(cpuBefore), inProcessCpuByGroup: cpuDelta(groupsBefore), inProcessMs: measured.ms, inProcessFastPath: measured.fastPath, inProcessExchanges: measured.exchanges });
        }
        live = target;
      }
      result.runs.push(entry as TreeBenchRun);
    }
  } catch (error) {
    result.error = error instanceof Error ? error.stack ?? error.message : String(error);
  } finally {
    api?.testing.setPrompter(undefined);
    writeFileSync(`${resultFile}.tmp`, JSON.stringify(result, null, 2));
    // Renamed so the bench never reads a half-written file.
    renameSync(`${resultFile}.tmp`, resultFile);
  }
}
