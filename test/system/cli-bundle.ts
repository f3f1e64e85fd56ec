/**
 * The CLI as users run it: one esbuild bundle of src/cli.ts, started with node, with a HOME of its
 * own whose default identity and known_hosts are the test hosts' (never root's ~/.ssh).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import type { TestHosts } from '../hosts/harness';

const repoRoot = path.resolve(__dirname, '../..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Bundles src/cli.ts into `dir/cli.js` and returns its path. */
export function buildCliBundle(dir: string): string {
  const bundle = path.join(dir, 'cli.js');
  buildSync({ entryPoints: [path.join(repoRoot, 'src/cli.ts')], bundle: true, platform: 'node', target: 'node20', outfile: bundle, external: ['cpu-features', '*.node'], logLevel: 'silent' });
  return bundle;
}

/** `dir/home` with the harness key as the default identity and the hosts in known_hosts. */
export function sshHome(dir: string, hosts: TestHosts): string {
  const home = path.join(dir, 'home');
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
  fs.copyFileSync(hosts.clientKeyPath, path.join(home, '.ssh', 'id_ed25519'));
  fs.chmodSync(path.join(home, '.ssh', 'id_ed25519'), 0o600);
  fs.copyFileSync(hosts.knownHostsPath, path.join(home, '.ssh', 'known_hosts'));
  return home;
}

/** Runs the bundle to its end in `cwd` with that HOME and no agent. */
export function runCli(bundle: string, args: string[], options: { cwd: string; home: string }): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bundle, ...args], { cwd: options.cwd, env: { ...process.env, HOME: options.home, SSH_AUTH_SOCK: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A suite's own folder and CLI bundle (made once in `before`, removed in `after`), and a synchronous
 * run of the bundle there with no NODE_OPTIONS: how the gitops suites drive the CLI.
 */
export function useCliBundle(prefix: string): { dir: () => string; bundle: () => string; run: (args: string[], env?: NodeJS.ProcessEnv) => CliResult } {
  let dir = '';
  let bundle = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    bundle = buildCliBundle(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return {
    dir: () => dir,
    bundle: () => bundle,
    run(args, env = {}) {
      const result = spawnSync(process.execPath, [bundle, ...args], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', ...env } });
      return { code: result.status, stdout: result.stdout, stderr: result.stderr };
    },
  };
}

/**
 * A PATH whose `git` runs `intercept` (a shell snippet; `$REAL_GIT` is the real git, `$MARK` a
 * file in the wrapper's folder) when its first argument is `command`, and the real git otherwise.
 */
export function gitWrapper(parent: string, command: string, intercept: string): { env: NodeJS.ProcessEnv; mark: string } {
  const bin = fs.mkdtempSync(path.join(parent, 'bin-'));
  const mark = path.join(bin, 'mark');
  const realGit = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim();
  fs.writeFileSync(path.join(bin, 'git'), `#!/bin/sh\nREAL_GIT='${realGit}'\nMARK='${mark}'\nif [ "$1" = ${command} ]; then ${intercept}; fi\nexec "$REAL_GIT" "$@"\n`, { mode: 0o755 });
  return { env: { PATH: `${bin}:${process.env.PATH}` }, mark };
}
