import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentReporter, type Reporter } from '../model';

/**
 * Every git this process started and that still runs ends with it: on any exit (a second signal,
 * process.exit) each is killed, a network git with the process group it leads. The groups are also
 * written to a file of this process, so that when it is SIGKILLed (no exit handler runs) the next
 * run finds and ends the git push / fetch it left behind, and the ssh or remote helper under it.
 */

const live = new Map<number, { group: boolean }>();
let exitHookInstalled = false;

/** Where each running process lists the git process groups it leads; one file per pid. */
export function childRecordDir(): string {
  const user = typeof process.getuid === 'function' ? String(process.getuid()) : os.userInfo().username;
  return path.join(os.tmpdir(), `drb-git-children-${user}`);
}

/** The kernel's start time of a process (clock ticks since boot), undefined where /proc cannot tell. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: the fields that follow start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function recordFile(): string {
  return path.join(childRecordDir(), String(process.pid));
}

/** Removes this process's record, and the folder once no run has one (nothing is left in the temp dir). */
function removeRecord(): void {
  try {
    fs.rmSync(recordFile(), { force: true });
    fs.rmdirSync(childRecordDir());
  } catch {
    // Another run's record is there, or nothing was.
  }
}

function writeRecord(): void {
  const groups = [...live].filter(([, child]) => child.group);
  if (groups.length === 0) {
    removeRecord();
    return;
  }
  const lines = [`self ${processStartTime(process.pid) ?? '-'}`, ...groups.map(([pid]) => `group ${pid} ${processStartTime(pid) ?? '-'}`)];
  // Twice: another run may remove the empty folder between our mkdir and our write.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.mkdirSync(childRecordDir(), { recursive: true, mode: 0o700 });
      fs.writeFileSync(recordFile(), `${lines.join('\n')}\n`);
      return;
    } catch {
      // Best effort: without the record only a SIGKILL's leftovers go unnoticed.
    }
  }
}

function killAll(): void {
  for (const [pid, child] of live) {
    try {
      process.kill(child.group ? -pid : pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  live.clear();
  removeRecord();
}

/** Tracks a git child until it closes; `group`: it leads its own process group (detached). */
export function trackGitChild(child: ChildProcess, group: boolean): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killAll);
  }
  live.set(pid, { group });
  if (group) writeRecord();
  child.once('exit', () => {
    live.delete(pid);
    if (group) writeRecord();
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Ends the git process groups that runs killed with SIGKILL left behind (their record names a
 * pid that is gone, or reused by another process), checking each group leader's start time so a
 * reused pid is never signalled. Returns what was ended, for the output.
 */
export function endOrphanedGitGroups(reporter: Reporter = silentReporter): string[] {
  const dir = childRecordDir();
  let owners: string[];
  try {
    owners = fs.readdirSync(dir).filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid);
  } catch {
    return [];
  }
  const ended: string[] = [];
  for (const owner of owners) {
    const file = path.join(dir, owner);
    let lines: string[];
    try {
      lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    } catch {
      continue;
    }
    const selfStart = lines.find((line) => line.startsWith('self '))?.split(' ')[1];
    const ownerPid = Number(owner);
    if (alive(ownerPid) && (selfStart === '-' || processStartTime(ownerPid) === selfStart)) continue;
    for (const line of lines.filter((entry) => entry.startsWith('group '))) {
      const [, pidText, start] = line.split(' ');
      const pid = Number(pidText);
      if (!Number.isInteger(pid) || pid <= 1 || start === '-' || processStartTime(pid) !== start) continue;
      try {
        process.kill(-pid, 'SIGKILL');
        const message = `Ended git (process group ${pid}) left running by an interrupted run (pid ${ownerPid})`;
        reporter.info(message);
        ended.push(message);
      } catch {
        // Gone meanwhile.
      }
    }
    fs.rmSync(file, { force: true });
  }
  try {
    fs.rmdirSync(dir);
  } catch {
    // Still in use by a live run.
  }
  return ended;
}
