/**
 * Resolving the versions of 100 releases to their commits (90 shas, 10 annotated tags) in an
 * app repository of 2,000 commits: one `git cat-file --batch` for all of them, under 100 ms,
 * and no git process at all when nothing changed. Compared in the same run with the floor (one
 * bare `git cat-file --batch` for the same names) and with a spawn per row (`git log -1` each).
 * Run: npx tsx bench/commits.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CommitResolver } from '../src/core/commits';
import type { Reporter } from '../src/core/model';

const COMMITS = 2_000;
const RELEASES = 100;
const TAGS = 10;
const RUNS = 15;
const GOALS = { coldMs: 100, processes: 1, warmProcesses: 0 };

function data(text: string): string {
  return `data ${Buffer.byteLength(text)}\n${text}\n`;
}

/** An app repository made by one `git fast-import`; returns the release names (shas and tags), newest first. */
async function generate(dir: string): Promise<string[]> {
  spawnSync('git', ['init', '-q', '-b', 'main', dir], { stdio: 'inherit' });
  const importer = spawn('git', ['fast-import', '--quiet', '--done'], { cwd: dir, stdio: ['pipe', 'inherit', 'inherit'] });
  const base = Date.UTC(2025, 0, 1) / 1000;
  let stream = '';
  for (let index = 1; index <= COMMITS; index++) {
    const who = index % 3 === 0 ? 'Bob Builder <bob@example.com>' : 'Alice Example <alice@example.com>';
    const time = `${base + index * 600} +0100`;
    stream += `commit refs/heads/main\nmark :${index}\nauthor ${who} ${time}\ncommitter ${who} ${time}\n`;
    stream += data(index % 25 === 0 ? `Merge pull request #${index} from acme/feature-${index}\n\nFeature ${index}` : `Change ${index}: tune the checkout (#${index})\n\nWhy: customers asked.`);
    if (index > 1) stream += `from :${index - 1}\n`;
    stream += `M 100644 inline app/file${index % 40}.rb\n${data(`# revision ${index}\n`)}`;
  }
  const step = Math.floor(COMMITS / RELEASES);
  const releaseMarks = Array.from({ length: RELEASES }, (_, index) => COMMITS - index * step);
  releaseMarks.slice(0, TAGS).forEach((mark, index) => {
    stream += `tag v1.${TAGS - index}.0\nfrom :${mark}\ntagger Alice Example <alice@example.com> ${base + mark * 600} +0100\n${data(`Release v1.${TAGS - index}.0`)}`;
  });
  stream += `done\n`;
  importer.stdin.end(stream);
  await new Promise((resolve) => importer.on('close', resolve));
  spawnSync('git', ['reset', '-q', '--hard', 'main'], { cwd: dir });
  const marks = spawnSync('git', ['rev-list', '--first-parent', 'main'], { cwd: dir, encoding: 'utf8' }).stdout.trim().split('\n');
  // rev-list is newest first: mark N is marks[COMMITS - N].
  return releaseMarks.map((mark, index) => (index < TAGS ? `v1.${TAGS - index}.0` : marks[COMMITS - mark]));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function countingReporter(): Reporter & { gitProcesses: number } {
  const reporter = {
    gitProcesses: 0,
    step() {},
    info() {},
    warn() {},
    error() {},
    debug(message: string) {
      if (message.startsWith('[git] ')) reporter.gitProcesses++;
    },
  };
  return reporter;
}

/** The floor: one bare cat-file process answering the same names, read to its end. */
function floor(dir: string, names: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('git', ['cat-file', '--batch'], { cwd: dir, stdio: ['pipe', 'pipe', 'ignore'] });
    child.stdout.on('data', () => {});
    child.on('close', () => resolve());
    child.stdin.end(names.map((name) => (/^[0-9a-f]{40}$/.test(name) ? `${name}^{commit}` : `refs/tags/${name}^{commit}`)).join('\n') + '\n');
  });
}

/** What a spawn per row costs: `git log -1` for each release, one after another. */
function perRow(dir: string, names: string[]): void {
  for (const name of names) spawnSync('git', ['log', '-1', '--format=%H%x00%s%x00%an%x00%aI', name], { cwd: dir });
}

export async function main(): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'commits-bench-'));
  try {
    const names = await generate(dir);
    if (names.length !== RELEASES) throw new Error(`expected ${RELEASES} release names, got ${names.length}`);
    // Warm the page cache and the JIT once.
    await floor(dir, names);
    await new CommitResolver().resolve(dir, names);
    const cold: number[] = [];
    const floors: number[] = [];
    const warm: number[] = [];
    let processes = 0;
    let warmProcesses = 0;
    for (let run = 0; run < RUNS; run++) {
      let start = process.hrtime.bigint();
      await floor(dir, names);
      floors.push(Number(process.hrtime.bigint() - start) / 1e6);
      const reporter = countingReporter();
      const resolver = new CommitResolver(reporter);
      start = process.hrtime.bigint();
      const found = await resolver.resolve(dir, names);
      cold.push(Number(process.hrtime.bigint() - start) / 1e6);
      const unresolved = names.filter((name) => !found.get(name)?.commit);
      if (unresolved.length > 0) throw new Error(`not resolved: ${unresolved.slice(0, 3).join(', ')}`);
      processes = Math.max(processes, reporter.gitProcesses);
      const before = reporter.gitProcesses;
      start = process.hrtime.bigint();
      await resolver.resolve(dir, names);
      warm.push(Number(process.hrtime.bigint() - start) / 1e6);
      warmProcesses = Math.max(warmProcesses, reporter.gitProcesses - before);
    }
    const start = process.hrtime.bigint();
    perRow(dir, names);
    const perRowMs = Number(process.hrtime.bigint() - start) / 1e6;
    const ours = median(cold);
    console.log(`commits resolve-${RELEASES}: ours ${ours.toFixed(1)} ms cold, ${median(warm).toFixed(2)} ms cached; floor (bare cat-file) ${median(floors).toFixed(1)} ms; a spawn per row ${perRowMs.toFixed(0)} ms (median of ${RUNS}, per-row once)`);
    console.log(`commits resolve-${RELEASES} cold: ${ours.toFixed(1)} ms (goal < ${GOALS.coldMs} ms); ratio to floor ${(ours / median(floors)).toFixed(2)}; a spawn per row is ${(perRowMs / ours).toFixed(1)}x slower`);
    console.log(`commits git processes per ${RELEASES} releases: ${processes} cold (goal ${GOALS.processes}), ${warmProcesses} cached (goal ${GOALS.warmProcesses})`);
    return ours < GOALS.coldMs && processes === GOALS.processes && warmProcesses === GOALS.warmProcesses ? 0 : 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
