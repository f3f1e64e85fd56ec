/**
 * The CLI as users run it: one esbuild bundle of src/cli.ts, started with node, with a HOME of its
 * own whose default identity and known_hosts are the test hosts' (never root's ~/.ssh).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
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
