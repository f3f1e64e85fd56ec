// The extensionTestsPath entry: VS Code (or code-server) calls run() inside the extension host.
// Runs every *.test.js beside this file with mocha, prints the spec output, and writes a JSON
// summary because a browser-hosted run gives the runner no exit code.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { format } from 'node:util';
import Mocha from 'mocha';
import * as vscode from 'vscode';
import { channelDirFor, channelFiles, RESULT_FILE_ENV, type TestResult } from '../runner/channel';

function testFilesIn(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return testFilesIn(full);
      return entry.name.endsWith('.test.js') ? [full] : [];
    })
    .sort();
}

interface Channel {
  resultFile: string;
  outputFile?: string;
  kind: TestResult['channel'];
}

function findChannel(): Channel {
  const fromEnv = process.env[RESULT_FILE_ENV];
  if (fromEnv) return { resultFile: fromEnv, outputFile: path.join(path.dirname(fromEnv), channelFiles.output), kind: 'env' };
  const workspace = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!workspace) throw new Error(`the integration suite needs ${RESULT_FILE_ENV} or an open workspace folder to report its result`);
  const dir = channelDirFor(workspace);
  return { resultFile: path.join(dir, channelFiles.result), outputFile: path.join(dir, channelFiles.output), kind: 'workspace' };
}

/** Variables the runner asked for, merged into this process so tests read them as usual. */
function loadRunnerEnv(channel: Channel): void {
  const file = path.join(path.dirname(channel.resultFile), channelFiles.env);
  if (!existsSync(file)) return;
  const variables = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  for (const [name, value] of Object.entries(variables)) process.env[name] = value;
}

export async function run(): Promise<void> {
  const channel = findChannel();
  mkdirSync(path.dirname(channel.resultFile), { recursive: true });
  loadRunnerEnv(channel);
  const outputFile = channel.outputFile;
  if (outputFile) rmSync(outputFile, { force: true });

  // The spec reporter prints through Base.consoleLog; copying it to a file lets the runner
  // stream it without depending on how the host forwards console output.
  const print = (...args: unknown[]) => {
    console.log(...args);
    if (outputFile) appendFileSync(outputFile, `${format(...args)}\n`);
  };
  Mocha.reporters.Base.consoleLog = print;

  const mocha = new Mocha({ ui: 'bdd', reporter: 'spec', color: false, timeout: 60_000 });
  const grep = process.env.DEPLOY_ROLLBACK_TEST_GREP;
  if (grep) mocha.grep(grep);
  for (const file of testFilesIn(__dirname)) mocha.addFile(file);

  const result: TestResult = { passed: 0, failed: 0, pending: 0, failures: [], vscodeVersion: vscode.version, channel: channel.kind };
  print(`[suite] VS Code ${vscode.version} (${vscode.env.appName}), Node ${process.version}, result → ${channel.resultFile} (via ${channel.kind})`);
  try {
    await new Promise<void>((resolve) => {
      const runner = mocha.run(() => resolve());
      runner.on('pass', () => result.passed++);
      runner.on('pending', () => result.pending++);
      runner.on('fail', (test, error: Error) => {
        result.failed++;
        result.failures.push({ title: test.fullTitle(), message: error?.message ?? String(error) });
      });
    });
  } catch (error) {
    // A suite that throws while loading is a failure, not a silent zero.
    result.failed++;
    result.failures.push({ title: 'loading the integration suite', message: error instanceof Error ? error.stack ?? error.message : String(error) });
  }
  writeFileSync(`${channel.resultFile}.tmp`, JSON.stringify(result, null, 2));
  // Rename so the runner never reads a half-written file.
  renameSync(`${channel.resultFile}.tmp`, channel.resultFile);
  if (result.failed > 0) throw new Error(`${result.failed} integration test(s) failed`);
}
