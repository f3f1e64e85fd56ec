/**
 * Tear-down of a run from its record (run.json), shared by stop(), the exit handler and
 * cleanupLeftovers(). It is synchronous on purpose: an exit handler cannot await.
 * Processes are found by pidfile, by `ip netns pids` and by the run's own cgroup parents,
 * never by process name.
 */
import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { blockFor, processAlive, runSyncQuiet } from './exec';

export const HARNESS_ROOT = '/tmp/drt';
export const SLOT_DIR = join(HARNESS_ROOT, 'slots');

export interface HostRecord {
  name: string;
  netns: string;
  /** The veth end outside the host: on this machine, or in `outsideNetns` for jump-only hosts. */
  outsideVeth: string;
  outsideNetns?: string;
  dir: string;
  dockerPidFile: string;
  sshdPidFile: string;
  cgroupParent: string;
}

export interface RunRecord {
  runId: string;
  ownerPid: number;
  runDir: string;
  slots: number[];
  hosts: HostRecord[];
}

/**
 * The pid in a pidfile, only if that process still runs with our host directory on its
 * command line: a stale pidfile of a crashed run may name a pid reused by something else.
 */
export function readOwnedPid(file: string, hostDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return commandLine.includes(`${hostDir}/`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function waitGone(pids: readonly number[], timeoutMs: number): number[] {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(processAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    blockFor(50);
    alive = alive.filter(processAlive);
  }
  return alive;
}

export function netnsPids(netns: string): number[] {
  if (!existsSync(`/var/run/netns/${netns}`)) return [];
  const result = runSyncQuiet('ip', ['netns', 'pids', netns]);
  return result.stdout
    .split(/\s+/)
    .filter((word) => /^\d+$/.test(word))
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

export function cgroupDirs(cgroupParent: string): string[] {
  const root = '/sys/fs/cgroup';
  const dirs: string[] = [];
  let controllers: string[] = [];
  try {
    controllers = readdirSync(root);
  } catch {
    return dirs;
  }
  for (const controller of controllers) {
    const dir = join(root, controller, cgroupParent);
    if (existsSync(dir)) dirs.push(dir);
  }
  return dirs;
}

export function cgroupPids(cgroupParent: string): number[] {
  const pids = new Set<number>();
  const visit = (dir: string): void => {
    try {
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
        if (/^\d+$/.test(line)) pids.add(Number(line));
      }
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) visit(join(dir, entry.name));
      }
    } catch {
      // the cgroup went away meanwhile
    }
  };
  for (const dir of cgroupDirs(cgroupParent)) visit(dir);
  return [...pids];
}

function removeCgroups(cgroupParent: string): void {
  const removeTree = (dir: string): void => {
    try {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) removeTree(join(dir, entry.name));
      }
      rmdirSync(dir);
    } catch {
      // busy or gone: nothing more to do
    }
  };
  for (const dir of cgroupDirs(cgroupParent)) removeTree(dir);
}

/** Mount points at or below `dir` in this process's mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .map((point) => point.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))))
    .filter((point) => point === dir || point.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function hostPids(host: HostRecord): number[] {
  const pids = new Set<number>([...netnsPids(host.netns), ...cgroupPids(host.cgroupParent)]);
  for (const file of [host.sshdPidFile, host.dockerPidFile]) {
    const pid = readOwnedPid(file, host.dir);
    if (pid !== undefined && processAlive(pid)) pids.add(pid);
  }
  return [...pids];
}

/** Stops every process of the run, unmounts, deletes namespaces and links, frees slots and files. */
export function teardownRun(record: RunRecord): string[] {
  const problems: string[] = [];
  // dockerd first and gently, so it stops its containers and unmounts their filesystems.
  const daemons = record.hosts.map((host) => readOwnedPid(host.dockerPidFile, host.dir)).filter((pid): pid is number => pid !== undefined && processAlive(pid));
  const sshds = record.hosts.map((host) => readOwnedPid(host.sshdPidFile, host.dir)).filter((pid): pid is number => pid !== undefined && processAlive(pid));
  for (const pid of [...daemons, ...sshds]) signal(pid, 'SIGTERM');
  for (const pid of waitGone([...daemons, ...sshds], 15_000)) signal(pid, 'SIGKILL');

  for (let round = 0; round < 3; round++) {
    const left = record.hosts.flatMap(hostPids);
    if (left.length === 0) break;
    for (const pid of left) signal(pid, 'SIGKILL');
    const stuck = waitGone(left, 5_000);
    if (round === 2 && stuck.length > 0) problems.push(`processes still alive: ${stuck.join(', ')}`);
  }
  for (const host of record.hosts) removeCgroups(host.cgroupParent);

  for (const point of mountsUnder(record.runDir)) {
    if (runSyncQuiet('umount', [point]).code !== 0) {
      const lazy = runSyncQuiet('umount', ['-l', point]);
      if (lazy.code !== 0) problems.push(`could not unmount ${point}: ${lazy.stderr.trim()}`);
    }
  }

  for (const host of record.hosts) {
    const outside = host.outsideNetns ? ['-n', host.outsideNetns] : [];
    runSyncQuiet('ip', [...outside, 'link', 'del', host.outsideVeth]);
  }
  for (const host of record.hosts) {
    if (existsSync(`/var/run/netns/${host.netns}`)) {
      const result = runSyncQuiet('ip', ['netns', 'del', host.netns]);
      if (result.code !== 0) problems.push(`could not delete namespace ${host.netns}: ${result.stderr.trim()}`);
    }
  }

  for (const slot of record.slots) {
    const slotFile = join(SLOT_DIR, String(slot));
    try {
      if (readFileSync(slotFile, 'utf8').trim() === record.runId) rmSync(slotFile, { force: true });
    } catch {
      // not ours or already free
    }
  }
  if (mountsUnder(record.runDir).length === 0) {
    rmSync(record.runDir, { recursive: true, force: true });
  } else {
    problems.push(`left ${record.runDir} in place because something is still mounted below it`);
  }
  return problems;
}

export function readRunRecord(runDir: string): RunRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

const OUR_NETNS = /^drt[a-z0-9]*-h\d+$/;

/**
 * Removes what crashed earlier runs left behind: runs under /tmp/drt whose owner process is
 * gone, and namespaces named like ours that no live run claims. Live runs (e.g. another
 * test file running in parallel) are left alone.
 */
export function cleanupLeftovers(): string[] {
  const problems: string[] = [];
  const liveRunIds = new Set<string>();
  let entries: string[] = [];
  try {
    entries = readdirSync(HARNESS_ROOT);
  } catch {
    entries = [];
  }
  for (const entry of entries) {
    if (entry === 'slots' || entry === 'image-cache') continue;
    const runDir = join(HARNESS_ROOT, entry);
    const record = readRunRecord(runDir);
    if (!record) continue;
    if (record.ownerPid === process.pid || processAlive(record.ownerPid)) {
      liveRunIds.add(record.runId);
      continue;
    }
    problems.push(...teardownRun(record));
  }
  const namespaces = runSyncQuiet('ip', ['netns', 'list']).stdout.split('\n').map((line) => line.split(' ')[0] ?? '');
  for (const netns of namespaces) {
    if (!OUR_NETNS.test(netns)) continue;
    const runId = netns.slice(0, netns.lastIndexOf('-h'));
    if (liveRunIds.has(runId)) continue;
    const pids = netnsPids(netns);
    for (const pid of pids) signal(pid, 'SIGKILL');
    waitGone(pids, 5_000);
    runSyncQuiet('ip', ['netns', 'del', netns]);
  }
  try {
    for (const slot of readdirSync(SLOT_DIR)) {
      const owner = readFileSync(join(SLOT_DIR, slot), 'utf8').trim();
      if (!liveRunIds.has(owner) && !existsSync(join(HARNESS_ROOT, owner))) rmSync(join(SLOT_DIR, slot), { force: true });
    }
  } catch {
    // no slots yet
  }
  return problems;
}
