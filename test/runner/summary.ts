// How a test layer's runner ends (code-server-tests.ts, electron-tests.ts, test/ui/run.ts): its
// last line is `<layer>: N passed, M failed[, K skipped]`, and its exit code says the rest.

/** The summary line; `, K skipped` only when something was. */
export function summaryLine(layer: string, passed: number, failed: number, skipped = 0): string {
  return `${layer}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
}

/** Runs the layer's `main` and exits with its code; when it throws, says why and counts as one failure. */
export function runLayer(layer: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`[${layer}] ${error instanceof Error ? error.message : String(error)}`);
      console.log(summaryLine(layer, 0, 1));
      process.exit(1);
    },
  );
}
