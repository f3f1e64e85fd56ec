import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { missingHostPrerequisites } from '../../hosts/harness';
import { repoRoot } from '../../runner/code-server';
import { journey } from '../journey';

/** Polls `condition` every 200 ms until it holds or `timeoutMs` passes. */
async function until(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export const demoTeardown = journey(
  'Demo: the banner names the log file and CLI lines that work against its hosts; Ctrl-C removes everything it made, the temp folder included',
  async (ui) => {
    const vsix = path.resolve(process.env.DEPLOY_ROLLBACK_VSIX ?? path.join(repoRoot, 'deploy-rollback.vsix'));
    const withKamal = !missingHostPrerequisites();
    // Its own TMPDIR: whatever the demo leaves behind is there to see.
    const tmp = mkdtempSync(path.join(tmpdir(), 'deploy-rollback-demo-journey-'));
    ui.onCleanup(() => rmSync(tmp, { recursive: true, force: true }));
    const child = spawn(process.execPath, [require.resolve('tsx/cli'), path.join(repoRoot, 'scripts', 'demo.ts'), ...(withKamal ? [] : ['--no-kamal'])], {
      cwd: repoRoot,
      env: { ...process.env, TMPDIR: tmp, DEPLOY_ROLLBACK_VSIX: vsix },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    let exit: number | string | null | undefined;
    child.on('exit', (code, signal) => (exit = code ?? signal));
    ui.onCleanup(() => {
      if (exit === undefined) child.kill('SIGKILL');
    });

    await until('the demo to print its URL', () => /\[demo\] open http/.test(out) || exit !== undefined, 240_000);
    assert.equal(exit, undefined, `the demo ended early:\n${out}`);
    if (withKamal) assert.match(out, /Kamal app "shop" on \d+ test hosts/, out);
    await until('the CLI lines', () => /releases --gitops/.test(out) && (!withKamal || /releases --kamal/.test(out)), 10_000);
    const dirs = readdirSync(tmp).filter((name) => name.startsWith('deploy-rollback-demo-'));
    assert.equal(dirs.length, 1, `one demo folder in TMPDIR: ${readdirSync(tmp).join(', ')}`);
    const logFile = /code-server's own output: (\S+)/.exec(out)?.[1];
    assert.ok(logFile && existsSync(logFile), `the banner names code-server's log file:\n${out}`);
    assert.doesNotMatch(out, /\[code-server:\d+\]/, 'code-server output stays out of the terminal');
    if (withKamal) {
      // Each host's state is named, and its audit log holds the deploys as Kamal records them.
      const kamalDirs = [...out.matchAll(/holds the containers and kamal-proxy; (\S+\/\.kamal) holds the lock and the audit log/g)].map((match) => match[1]!);
      assert.ok(kamalDirs.length >= 2, `the banner names each host's .kamal folder:\n${out}`);
      for (const dir of kamalDirs) assert.match(readFileSync(path.join(dir, 'shop-audit.log'), 'utf8'), /^\[\S+Z\] \[\S+@example\.com\] \[web\] Booted app version [0-9a-f]{40}$/m);
    }

    // Each printed CLI line runs as printed (a shell line) and lists releases.
    const cliLines = out.split('\n').filter((line) => /^ {2}(HOME=\S+ )?node \S+ releases /.test(line));
    assert.equal(cliLines.length, withKamal ? 2 : 1, out);
    for (const line of cliLines) {
      const result = spawnSync('sh', ['-c', line.trim()], { cwd: process.cwd(), encoding: 'utf8', timeout: 60_000 });
      assert.equal(result.status, 0, `${line.trim()} failed:\n${result.stderr}`);
      // Kamal versions are commit shas of the sample app, shown with their subjects.
      assert.match(result.stdout, line.includes('--kamal') ? /^[0-9a-f]{40}\t.*\t[0-9a-f]{7} Bump rack to 3\.1\.8\t\(current\)/m : /\(current\)/, `${line.trim()} printed:\n${result.stdout}`);
    }

    child.kill('SIGINT');
    await until('the demo to exit after Ctrl-C', () => exit !== undefined, 120_000);
    assert.equal(exit, 0, `the demo's exit after Ctrl-C:\n${out}`);
    assert.match(out, /\[demo\] removed /);
    // tsx-<uid> is tsx's compile cache (the demo runs under tsx), not something the demo made.
    assert.deepEqual(readdirSync(tmp).filter((name) => !/^tsx-\d+$/.test(name)), [], 'the demo left files in TMPDIR');
  },
  { timeoutMs: 420_000 },
);
