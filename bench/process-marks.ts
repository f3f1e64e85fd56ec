/**
 * Preloaded (`node --require`) into the CLI process by bench/cli-e2e.ts, bundled by it with
 * esbuild: records when the process reached a few points, in ms since its own start
 * (`performance.timeOrigin`), and writes them as JSON to $BENCH_MARKS_FILE on exit. Nothing in the
 * product knows about it; it watches sockets and module loading from outside.
 *
 * - `preload`: node has booted and runs its first user code;
 * - `bundleLoaded`: the CLI bundle's top level has run (main started, up to its first await);
 * - `firstConnect`: the first TCP connect is asked for;
 * - `firstSshByte`: the first byte written on such a socket (the SSH identification line);
 * - `firstSshReply`: the first byte read from one; `lastSshReply`: the last;
 * - `exit`: the process exits;
 * and, not times since start: `cpuMs`, the CPU time it used (user + system), and `connects`, the
 * TCP connections it opened. With $BENCH_MARKS_TIMELINE set, also `timeline`: every SSH socket's
 * connect, writes and reads (bytes), every child process's start and end, every line on stderr
 * (the CLI's `--verbose` steps), each with its time: where a run's time goes between the marks.
 */
import * as fs from 'node:fs';
import * as nodeModule from 'node:module';
import { performance } from 'node:perf_hooks';
import { watchTcpSockets } from './ssh-sockets';

const Module = nodeModule.Module as unknown as { prototype: { _compile: (content: string, filename: string) => unknown } };

const marks: Record<string, number> = { timeOrigin: performance.timeOrigin };
const timeline: [number, string][] | undefined = process.env.BENCH_MARKS_TIMELINE ? [] : undefined;
const event = (what: string): void => void timeline?.push([performance.now(), what]);
const mark = (name: string): void => {
  marks[name] ??= performance.now();
};
mark('preload');

watchTcpSockets({
  connect(name, host) {
    mark('firstConnect');
    connects++;
    event(`${name} connect ${host}`);
  },
  up: (name) => event(`${name} tcp up`),
  write(name, bytes) {
    mark('firstSshByte');
    event(`${name} write ${bytes ?? '?'} B`);
  },
  read(name, bytes) {
    mark('firstSshReply');
    marks.lastSshReply = performance.now();
    event(`${name} read ${bytes} B`);
  },
  close: (name) => event(`${name} closed`),
});

const compile = Module.prototype._compile;
let entry: string | undefined;
Module.prototype._compile = function (this: unknown, content: string, filename: string) {
  entry ??= filename;
  const result = compile.call(this, content, filename);
  if (filename === entry) mark('bundleLoaded');
  return result;
};

if (timeline) {
  // Loaded only for the timeline: the marks alone must not load modules the CLI would load later.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const childProcess = require('node:child_process') as typeof import('node:child_process');
  // ChildProcess#spawn (not in the typings) is what every spawn and execFile goes through.
  type Spawnable = { spawn: (this: import('node:child_process').ChildProcess, options: { args?: string[] }) => unknown };
  const prototype = childProcess.ChildProcess.prototype as unknown as Spawnable;
  const spawnChild = prototype.spawn;
  prototype.spawn = function (options) {
    const what = (options.args ?? []).join(' ').slice(0, 80);
    event(`spawn ${what}`);
    this.once('exit', (code) => event(`exit ${code} ${what}`));
    return spawnChild.call(this, options);
  };
  const stderrWrite = process.stderr.write.bind(process.stderr) as (...args: unknown[]) => boolean;
  process.stderr.write = ((...args: unknown[]) => {
    event(`stderr ${String(args[0]).trim().slice(0, 100)}`);
    return stderrWrite(...args);
  }) as typeof process.stderr.write;
}

let connects = 0;
process.on('exit', () => {
  mark('exit');
  // Less sensitive to a loaded machine than wall time: what the process itself computed.
  const cpu = process.cpuUsage();
  marks.cpuMs = (cpu.user + cpu.system) / 1000;
  marks.connects = connects;
  if (timeline) (marks as Record<string, unknown>).timeline = timeline;
  const file = process.env.BENCH_MARKS_FILE;
  if (file) fs.writeFileSync(file, JSON.stringify(marks));
});
