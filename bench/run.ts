// `npm run bench`: every benchmark, one after another (they share the machine's two cores).
// Each prints its ratios against its goal; timings are never asserted in tests.
import { main as cliEndToEnd } from './cli-e2e';
import { main as commits } from './commits';
import { main as gitops } from './gitops';
import { main as kamalInventory } from './kamal-inventory';
import { main as kamalRollback } from './kamal-rollback';
import { main as treeEndToEnd } from './tree-e2e';

const benchmarks: [string, () => Promise<number>][] = [
  ['gitops history', gitops],
  ['kamal inventory', kamalInventory],
  ['kamal rollback', kamalRollback],
  ['release commits', commits],
  ['cli end to end', cliEndToEnd],
  ['tree end to end', treeEndToEnd],
];

async function run(): Promise<void> {
  const only = process.argv.slice(2);
  let failures = 0;
  for (const [name, benchmark] of benchmarks) {
    if (only.length && !only.some((word) => name.includes(word))) continue;
    console.log(`\n== ${name}`);
    try {
      failures += (await benchmark()) === 0 ? 0 : 1;
    } catch (error) {
      failures++;
      console.error(`${name} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  process.exitCode = failures ? 1 : 0;
}

void run();
