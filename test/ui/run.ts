// Drives the real workbench of code-server with the packaged extension (deploy-rollback.vsix,
// installed as a user would) through the journeys in test/ui/journeys/*.ts.
//
//   tsx test/ui/run.ts [--grep TEXT]        (npm run test:ui packages the .vsix first)
//
// Screenshots go to test-output/ui/<journey>/. DEPLOY_ROLLBACK_VSIX overrides the .vsix path.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchChromium, missingChromium, prerequisiteMissing } from '../runner/browser';
import { loadCodeServerModule, repoRoot } from '../runner/code-server';
import { runLayer } from '../runner/summary';
import { CodeServerPool, isJourney, JourneySkipped, runJourney, type Journey } from './journey';

const LAYER = 'ui';

function loadJourneys(): Journey[] {
  const dir = path.join(__dirname, 'journeys');
  const journeys: Journey[] = [];
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.ts')).sort()) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const exported = require(path.join(dir, file)) as Record<string, unknown>;
    for (const value of Object.values(exported)) {
      for (const candidate of Array.isArray(value) ? value : [value]) if (isJourney(candidate)) journeys.push(candidate);
    }
  }
  return journeys;
}

async function main(): Promise<number> {
  const grepIndex = process.argv.indexOf('--grep');
  const grep = grepIndex >= 0 ? process.argv[grepIndex + 1] : undefined;
  const vsix = path.resolve(process.env.DEPLOY_ROLLBACK_VSIX ?? path.join(repoRoot, 'deploy-rollback.vsix'));
  if (!existsSync(vsix)) throw new Error(`${vsix} not found: npm run package builds it (npm run test:ui does that first)`);
  const missing = missingChromium();
  if (missing) prerequisiteMissing(LAYER, missing);

  const journeys = loadJourneys().filter((candidate) => !grep || candidate.name.includes(grep));
  if (journeys.length === 0) throw new Error(`no journeys${grep ? ` matching "${grep}"` : ''} in test/ui/journeys`);

  const codeServer = await loadCodeServerModule();
  await codeServer.ensureCodeServer();
  const extensionsDir = mkdtempSync(path.join(tmpdir(), 'deploy-rollback-ui-extensions-'));
  const browser = await launchChromium();
  const screenshotRoot = path.join(repoRoot, 'test-output', 'ui');
  // A full run replaces every screenshot, so none from a renamed journey lingers.
  if (!grep) rmSync(screenshotRoot, { recursive: true, force: true });
  const servers = new CodeServerPool(extensionsDir, codeServer.startCodeServer);
  let passed = 0;
  let skipped = 0;
  const failures: string[] = [];
  try {
    await codeServer.installVsix(vsix, extensionsDir);
    console.log(`\n  ui journeys (${path.relative(repoRoot, vsix)} in code-server ${codeServer.CODE_SERVER_VERSION})`);
    for (const candidate of journeys) {
      const started = Date.now();
      try {
        await runJourney({ browser, screenshotRoot, servers }, candidate);
        passed++;
        console.log(`    ✔ ${candidate.name} (${Date.now() - started} ms)`);
      } catch (error) {
        if (error instanceof JourneySkipped) {
          skipped++;
          console.log(`    - ${candidate.name} (skipped: ${error.message})`);
          continue;
        }
        const message = error instanceof Error ? error.message : String(error);
        failures.push(`${candidate.name}\n    ${message.split('\n').join('\n    ')}`);
        console.log(`    ✗ ${candidate.name} (${Date.now() - started} ms)`);
      }
    }
  } finally {
    await browser.close();
    await servers.stopAll();
    rmSync(extensionsDir, { recursive: true, force: true });
  }
  if (failures.length) {
    console.log(`\n  failures:`);
    failures.forEach((failure, index) => console.log(`  ${index + 1}) ${failure}`));
  }
  console.log(`  screenshots: ${path.relative(repoRoot, screenshotRoot)}/`);
  console.log(`${LAYER}: ${passed} passed, ${failures.length} failed${skipped ? `, ${skipped} skipped` : ''}`);
  return failures.length > 0 ? 1 : 0;
}

runLayer(LAYER, main);
