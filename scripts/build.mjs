// Bundles the extension and the CLI with esbuild.
// ssh2 tries optional native parts (cpu-features, sshcrypto.node) in try/catch and falls back to
// pure JS; they stay external so a missing native build never breaks the bundle.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');
// `--outdir DIR --cli-only`: the CLI alone, elsewhere (bench/cli-e2e.ts measures the bundle as shipped).
const outdirAt = process.argv.indexOf('--outdir');
const outdir = outdirAt > 0 ? process.argv[outdirAt + 1] : 'dist';
const cliOnly = process.argv.includes('--cli-only');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: production ? false : 'linked',
  minify: production,
  external: ['cpu-features', '*.node'],
  logLevel: 'warning',
  legalComments: 'none',
};

const builds = [
  ...(cliOnly ? [] : [{ ...common, entryPoints: ['src/vscode/extension.ts'], outfile: `${outdir}/extension.js`, external: [...common.external, 'vscode'] }]),
  // The binary is a small launcher that loads the CLI bundle through a compile cache (src/cli-launch.ts).
  { ...common, entryPoints: ['src/cli.ts'], outfile: `${outdir}/cli-main.js` },
  { ...common, entryPoints: ['src/cli-launch.ts'], outfile: `${outdir}/cli.js`, banner: { js: '#!/usr/bin/env node' } },
];

if (watch) {
  for (const options of builds) await (await esbuild.context(options)).watch();
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
}
