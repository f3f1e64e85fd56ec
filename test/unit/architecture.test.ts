import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

const core = path.resolve(__dirname, '../../src/core');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

describe('architecture', () => {
  it('keeps src/core free of the vscode API', () => {
    const files = sourceFiles(core);
    assert.ok(files.length > 10, 'src/core has its sources');
    const offenders = files.filter((file) => /(from\s+['"]vscode['"]|require\(\s*['"]vscode['"]\s*\)|import\(\s*['"]vscode['"]\s*\))/.test(fs.readFileSync(file, 'utf8')));
    assert.deepEqual(offenders.map((file) => path.relative(core, file)), []);
  });

  it('loads the whole domain in plain Node, where there is no vscode module', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loading each module by path is the point
    for (const file of sourceFiles(core)) require(file);
  });
});
