// Runs the extension-host suite (out/test/integration) inside a real VS Code 1.100.3:
// code-server serves the workbench, headless Chromium opens it with the extension under
// development and the suite as extensionTestsPath, and the suite reports through files.
//
//   tsx test/runner/code-server-tests.ts [--workspace DIR]... [--env NAME=VALUE]... [--grep TEXT]
//
// Without --workspace the suite runs once in a fresh empty folder. Every DEPLOY_ROLLBACK_*
// variable of this process and every --env reaches the suite's process.env via env.json.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, missingChromium, prerequisiteMissing } from './browser';
import { channelDirFor, channelFiles, RESULT_FILE_ENV, type TestResult } from './channel';
import { loadCodeServerModule, quietWorkbenchSettings, repoRoot, type CodeServer, type StartOptions } from './code-server';
import { runLayer, summaryLine } from './summary';

const LAYER = 'integration';
const RESULT_TIMEOUT_MS = Number(process.env.DEPLOY_ROLLBACK_TEST_TIMEOUT_MS ?? 5 * 60_000);
const EXPECTED_VSCODE_VERSION = '1.100';

interface Options {
  workspaces: string[];
  env: Record<string, string>;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { workspaces: [], env: {} };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--workspace':
        if (!value) throw new Error('--workspace needs a directory');
        options.workspaces.push(path.resolve(value));
        i++;
        break;
      case '--env': {
        const match = value?.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s);
        if (!match) throw new Error(`--env needs NAME=VALUE, got ${value ?? 'nothing'}`);
        options.env[match[1]] = match[2];
        i++;
        break;
      }
      case '--grep':
        if (!value) throw new Error('--grep needs a pattern');
        options.env.DEPLOY_ROLLBACK_TEST_GREP = value;
        i++;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]} (usage: code-server-tests.ts [--workspace DIR]... [--env NAME=VALUE]... [--grep TEXT])`);
    }
  }
  for (const workspace of options.workspaces) {
    if (!existsSync(workspace) || !statSync(workspace).isDirectory()) throw new Error(`--workspace ${workspace} is not a directory`);
  }
  return options;
}

/** Prints what the suite appends to output.log as it runs. */
function tailFile(file: string, write: (text: string) => void): { flush(): void; stop(): void } {
  let offset = 0;
  const flush = () => {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    if (size < offset) offset = 0;
    if (size === offset) return;
    const buffer = Buffer.alloc(size - offset);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buffer, 0, buffer.length, offset);
    } finally {
      closeSync(fd);
    }
    offset = size;
    write(buffer.toString('utf8'));
  };
  const timer = setInterval(flush, 200);
  return { flush, stop: () => clearInterval(timer) };
}

/** Tails of code-server's logs in the user-data-dir (logs/<time>/exthostN/...), for a timeout report. */
function extensionHostLogTail(userDataDir: string, lines: number): string {
  const found: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      // The extension host's own log, code-server's agent log, and our extension's output channel.
      else if (/^(remoteexthost|remoteagent)\.log$/.test(entry.name) || full.includes(`${path.sep}deploy-rollback.deploy-rollback${path.sep}`)) found.push(full);
    }
  };
  walk(path.join(userDataDir, 'logs'));
  return found
    .map((file) => `--- ${file}\n${readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')}`)
    .join('\n');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function writeUserSettings(userDataDir: string): void {
  const dir = path.join(userDataDir, 'User');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'settings.json'),
    JSON.stringify(quietWorkbenchSettings, null, 2),
  );
}

async function runInWorkspace(
  browser: Browser,
  workspace: string,
  runnerEnv: Record<string, string>,
  startCodeServer: (options: StartOptions) => Promise<CodeServer>,
): Promise<TestResult> {
  const base = mkdtempSync(path.join(tmpdir(), 'deploy-rollback-it-'));
  const userDataDir = path.join(base, 'user-data');
  const extensionsDir = path.join(base, 'extensions');
  const channelDir = channelDirFor(workspace);
  rmSync(channelDir, { recursive: true, force: true });
  mkdirSync(channelDir, { recursive: true });
  const resultFile = path.join(channelDir, channelFiles.result);
  writeFileSync(path.join(channelDir, channelFiles.env), JSON.stringify(runnerEnv, null, 2));
  writeUserSettings(userDataDir);

  let server: CodeServer | undefined;
  const consoleLines: string[] = [];
  const tail = tailFile(path.join(channelDir, channelFiles.output), (text) => process.stdout.write(text));
  try {
    server = await startCodeServer({
      userDataDir,
      extensionsDir,
      disableWorkspaceTrust: true,
      // DEPLOY_ROLLBACK_TEST_CHANNEL=workspace proves the fallback for hosts that drop our env.
      env: process.env.DEPLOY_ROLLBACK_TEST_CHANNEL === 'workspace' ? {} : { [RESULT_FILE_ENV]: resultFile },
      quiet: true,
    });
    const remote = (file: string) => `vscode-remote://127.0.0.1:${server!.port}${file}`;
    const payload = [
      ['extensionDevelopmentPath', remote(repoRoot)],
      ['extensionTestsPath', remote(path.join(repoRoot, 'out', 'test', 'integration', 'index'))],
    ];
    const url = `${server.url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    console.log(`[${LAYER}] workspace ${workspace}`);
    console.log(`[${LAYER}] opening the workbench on ${server.url} in headless Chromium`);

    const page = await browser.newPage();
    page.on('console', (message) => {
      consoleLines.push(`[browser ${message.type()}] ${message.text()}`);
      if (consoleLines.length > 300) consoleLines.shift();
    });
    page.on('pageerror', (error) => consoleLines.push(`[page error] ${error.message}`));
    let crashed = false;
    page.on('crash', () => (crashed = true));
    await page.goto(url, { waitUntil: 'domcontentloaded' });

    const deadline = Date.now() + RESULT_TIMEOUT_MS;
    while (!existsSync(resultFile)) {
      // Fail at once rather than after the whole timeout when a part is already gone.
      const gone = crashed ? 'the workbench page crashed' : !isAlive(server.pid) ? `code-server (pid ${server.pid}) exited` : undefined;
      if (gone || Date.now() > deadline) {
        tail.flush();
        throw new Error(
          [
            gone ? `${gone} before the suite wrote ${resultFile}` : `no result from the suite after ${RESULT_TIMEOUT_MS / 1000} s (expected ${resultFile})`,
            'last browser console lines:',
            ...consoleLines.slice(-40),
            'last code-server lines:',
            ...server.output.slice(-20),
            'extension host logs:',
            extensionHostLogTail(userDataDir, 30),
          ].join('\n'),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    tail.flush();
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as TestResult;
    console.log(`[${LAYER}] VS Code ${result.vscodeVersion}; result reached the runner via ${result.channel}`);
    await page.close();
    return result;
  } finally {
    tail.stop();
    await server?.stop();
    rmSync(base, { recursive: true, force: true });
    rmSync(channelDir, { recursive: true, force: true });
  }
}

function requireBuilt(file: string, how: string): void {
  if (!existsSync(path.join(repoRoot, file))) throw new Error(`${file} is missing: run ${how} first`);
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  requireBuilt('dist/extension.js', 'npm run build');
  requireBuilt('out/test/integration/index.js', 'node scripts/build-tests.mjs');
  const missing = missingChromium();
  if (missing) prerequisiteMissing(LAYER, missing);

  const codeServer = await loadCodeServerModule();
  await codeServer.ensureCodeServer();

  const runnerEnv: Record<string, string> = { DEPLOY_ROLLBACK_EXPECT_VSCODE_VERSION: EXPECTED_VSCODE_VERSION };
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('DEPLOY_ROLLBACK_') && value !== undefined) runnerEnv[name] = value;
  }
  Object.assign(runnerEnv, options.env);

  const scratch = options.workspaces.length ? undefined : mkdtempSync(path.join(tmpdir(), 'deploy-rollback-empty-workspace-'));
  const workspaces = options.workspaces.length ? options.workspaces : [scratch!];
  const browser = await launchChromium();
  const total = { passed: 0, failed: 0, pending: 0 };
  const failures: string[] = [];
  try {
    for (const workspace of workspaces) {
      try {
        const result = await runInWorkspace(browser, workspace, runnerEnv, codeServer.startCodeServer);
        total.passed += result.passed;
        total.failed += result.failed;
        total.pending += result.pending;
        for (const failure of result.failures) failures.push(`${failure.title} [${workspace}]\n    ${failure.message}`);
      } catch (error) {
        total.failed++;
        failures.push(`running the suite in ${workspace}\n    ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    await browser.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }

  if (failures.length) {
    console.log(`\n[${LAYER}] failures:`);
    failures.forEach((failure, index) => console.log(`  ${index + 1}) ${failure}`));
  }
  console.log(summaryLine(LAYER, total.passed, total.failed, total.pending));
  return total.failed > 0 || total.passed === 0 ? 1 : 0;
}

runLayer(LAYER, main);
