// Bundles the extension-host test suite: test/integration/index.ts (the entry VS Code calls) and
// every test/integration/**/*.test.ts, so a suite added later is picked up without touching this.
// Output mirrors the source tree under out/test/integration/ as CommonJS for Node 20.
import * as esbuild from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sourceDir = path.join(repoRoot, 'test', 'integration');
const outDir = path.join(repoRoot, 'out', 'test', 'integration');

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(full);
    return entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

const entryPoints = [path.join(sourceDir, 'index.ts'), ...testFiles(sourceDir)];
// A deleted suite must not linger as a stale .test.js that index.ts would still load.
rmSync(outDir, { recursive: true, force: true });
await esbuild.build({
  entryPoints,
  outbase: sourceDir,
  outdir: outDir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['vscode', 'mocha', 'cpu-features', '*.node'],
  logLevel: 'warning',
});
console.log(`[build-tests] ${entryPoints.length} entries → ${path.relative(repoRoot, outDir)}/`);
for (const file of entryPoints) console.log(`  ${path.relative(repoRoot, file)}`);
