// The same extension-host suite through @vscode/test-electron, for machines that can download
// VS Code. Offline (as in this project's CI) the download fails: use code-server-tests.ts.
//
//   tsx test/runner/electron-tests.ts [--workspace DIR]
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTests } from '@vscode/test-electron';
import { channelDirFor, channelFiles, RESULT_FILE_ENV, type TestResult } from './channel';
import { repoRoot } from './code-server';
import { runLayer, summaryLine } from './summary';

const LAYER = 'integration';
const VSCODE_VERSION = '1.100.3';

async function main(): Promise<number> {
  const workspaceIndex = process.argv.indexOf('--workspace');
  const given = workspaceIndex >= 0 ? process.argv[workspaceIndex + 1] : undefined;
  if (workspaceIndex >= 0 && !given) throw new Error('--workspace needs a directory');
  const scratch = given ? undefined : mkdtempSync(path.join(tmpdir(), 'deploy-rollback-empty-workspace-'));
  const workspace = given ? path.resolve(given) : scratch!;
  const channelDir = channelDirFor(workspace);
  const resultFile = path.join(channelDir, channelFiles.result);
  rmSync(channelDir, { recursive: true, force: true });
  mkdirSync(channelDir, { recursive: true });
  const suiteEnv: Record<string, string> = { DEPLOY_ROLLBACK_EXPECT_VSCODE_VERSION: '1.100' };
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('DEPLOY_ROLLBACK_') && value !== undefined) suiteEnv[name] = value;
  }
  writeFileSync(path.join(channelDir, channelFiles.env), JSON.stringify(suiteEnv, null, 2));

  try {
    let exitCode: number;
    try {
      exitCode = await runTests({
        version: VSCODE_VERSION,
        extensionDevelopmentPath: repoRoot,
        extensionTestsPath: path.join(repoRoot, 'out', 'test', 'integration', 'index'),
        extensionTestsEnv: { ...suiteEnv, [RESULT_FILE_ENV]: resultFile },
        launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
      });
    } catch (error) {
      // runTests rejects both for a failed download and for a non-zero exit of VS Code.
      if (!existsSync(resultFile)) {
        throw new Error(
          `@vscode/test-electron could not run VS Code ${VSCODE_VERSION}: ${error instanceof Error ? error.message : String(error)}\n` +
            'It downloads VS Code from the internet; offline, run the same suite with `npm run test:integration` (code-server).',
        );
      }
      exitCode = 1;
    }
    if (!existsSync(resultFile)) throw new Error(`VS Code exited (${exitCode}) without the suite writing ${resultFile}`);
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as TestResult;
    for (const failure of result.failures) console.log(`  failed: ${failure.title}\n    ${failure.message}`);
    console.log(summaryLine(LAYER, result.passed, result.failed, result.pending));
    return result.failed > 0 || result.passed === 0 || exitCode !== 0 ? 1 : 0;
  } finally {
    rmSync(channelDir, { recursive: true, force: true });
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

runLayer(LAYER, main);
