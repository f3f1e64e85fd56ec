/**
 * Listing one app's 10 latest releases in a big Gimlet-style repository (20 envs × 50 apps,
 * 20,000 deploys) against the floor: one path-limited `git log` plus one `git cat-file --batch`.
 * Run: npx tsx bench/gitops.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GitopsRepo } from '../src/core/gitops/discovery';
import { listReleases } from '../src/core/gitops/history';
import { gimletReleaseJson } from '../test/fixtures/gitops';

const ENVS = 20;
const APPS_PER_ENV = 50;
const DEPLOYS = 20_000;
const LIMIT = 10;
const RUNS = 15;
const GOAL = 1.5;
const DATA_DIR = path.join(__dirname, '.data', `gitops-${ENVS}x${APPS_PER_ENV}-${DEPLOYS}`);
const BASE_TIME = Date.UTC(2025, 0, 1) / 1000;

const envName = (index: number): string => `env${String(index).padStart(2, '0')}`;
const appName = (index: number): string => `app${String(index).padStart(2, '0')}`;

/** Deterministic pseudo-random sequence (mulberry32) so the repository is the same every time. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function data(text: string): string {
  return `data ${Buffer.byteLength(text)}\n${text}\n`;
}

async function generate(dir: string): Promise<void> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  spawnSync('git', ['init', '-q', '-b', 'main', dir], { stdio: 'inherit' });
  const importer = spawn('git', ['fast-import', '--quiet'], { cwd: dir, stdio: ['pipe', 'inherit', 'inherit'] });
  const write = (text: string): Promise<void> =>
    new Promise((resolve) => {
      if (importer.stdin.write(text)) resolve();
      else importer.stdin.once('drain', resolve);
    });
  const author = (time: number): string => `author Gimlet <gimlet@gimlet.io> ${time} +0000\ncommitter Gimlet <gimlet@gimlet.io> ${time} +0000\n`;
  let bootstrap = `commit refs/heads/main\n${author(BASE_TIME)}${data('[Gimlet] Bootstrapping')}`;
  for (let env = 0; env < ENVS; env++) bootstrap += `M 100644 inline ${envName(env)}/flux/flux.yaml\n${data(`# flux for ${envName(env)}\n`)}`;
  await write(bootstrap);
  const next = random(42);
  for (let deploy = 1; deploy <= DEPLOYS; deploy++) {
    const env = envName(Math.floor(next() * ENVS));
    const app = appName(Math.floor(next() * APPS_PER_ENV));
    const time = BASE_TIME + deploy * 60;
    const release = gimletReleaseJson(app, env, String(deploy), time);
    const manifest = `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${app}\nspec:\n  template:\n    spec:\n      containers:\n        - name: ${app}\n          image: registry.example.com/${app}:${deploy}\n`;
    await write(
      `commit refs/heads/main\n${author(time)}${data(`[Gimlet] ${env}/${app} automated deploy`)}` +
        `D ${env}/${app}\n` +
        `M 100644 inline ${env}/${app}/deployment.yaml\n${data(manifest)}` +
        `M 100644 inline ${env}/${app}/release.json\n${data(release)}` +
        `M 100644 inline ${env}/release.json\n${data(release)}`,
    );
  }
  importer.stdin.end();
  await new Promise<void>((resolve, reject) => importer.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import exited ${code}`)))));
  spawnSync('git', ['reset', '-q', '--hard', 'main'], { cwd: dir, stdio: 'inherit' });
  fs.writeFileSync(path.join(dir, '.git', 'bench-complete'), `${DEPLOYS}\n`);
}

/** What the listing cannot avoid: the path-limited log of the latest commits and their release.json blobs. */
async function floor(dir: string, appPathName: string): Promise<number> {
  const run = (args: string[], input?: string): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const child = spawn('git', args, { cwd: dir });
      const out: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.on('error', reject);
      child.on('close', () => resolve(Buffer.concat(out)));
      child.stdin.end(input ?? '');
    });
  const log = await run(['log', '-z', `--max-count=${LIMIT}`, '--format=%H%x1f%ct%x1f%P%x1f%B', '--', appPathName]);
  const shas = log
    .toString('utf8')
    .split('\0')
    .filter(Boolean)
    .map((record) => record.split('\x1f')[0]);
  const blobs = await run(['cat-file', '--batch'], shas.map((sha) => `${sha}:${appPathName}/release.json\n`).join(''));
  if (shas.length !== LIMIT || blobs.includes(' missing\n')) throw new Error(`floor read ${shas.length} commits of ${appPathName} or missed a release.json`);
  return shas.length;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export async function main(): Promise<number> {
  if (!fs.existsSync(path.join(DATA_DIR, '.git', 'bench-complete'))) {
    const started = Date.now();
    process.stderr.write(`generating ${DEPLOYS} deploys in ${DATA_DIR}...\n`);
    await generate(DATA_DIR);
    process.stderr.write(`generated in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
  const env = envName(7);
  const app = appName(23);
  const repo: GitopsRepo = {
    root: DATA_DIR,
    layout: 'multi-env',
    envs: [{ name: env, dir: env, apps: [app] }],
    problems: [],
  };
  const ours: number[] = [];
  const floors: number[] = [];
  // Warm the page cache and the JIT once before measuring.
  await floor(DATA_DIR, `${env}/${app}`);
  const warm = await listReleases(repo, env, app, { limit: LIMIT });
  if (warm.length !== LIMIT) throw new Error(`expected ${LIMIT} releases of ${env}/${app}, got ${warm.length}`);
  for (let run = 0; run < RUNS; run++) {
    let start = process.hrtime.bigint();
    await floor(DATA_DIR, `${env}/${app}`);
    floors.push(Number(process.hrtime.bigint() - start) / 1e6);
    start = process.hrtime.bigint();
    await listReleases(repo, env, app, { limit: LIMIT });
    ours.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const ratio = median(ours) / median(floors);
  console.log(`gitops list-10: ours ${median(ours).toFixed(1)} ms, floor ${median(floors).toFixed(1)} ms (median of ${RUNS})`);
  console.log(`gitops list-10 ratio: ${ratio.toFixed(2)} (goal <= ${GOAL})`);
  return ratio;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
