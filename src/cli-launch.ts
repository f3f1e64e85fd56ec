/**
 * The `deploy-rollback` binary (dist/cli.js): loads the CLI, one esbuild bundle (dist/cli-main.js),
 * through a compile cache, so that a start after the first does not parse the bundle again (it
 * would take about as long as node's own boot, before the first SSH byte). Node ≥ 22.1 has one
 * (`module.enableCompileCache`); before it, V8's code cache of the bundle is kept in
 * `$XDG_CACHE_HOME/deploy-rollback` (default ~/.cache), a folder only this user may write, since
 * the cached code runs as is. Whatever goes wrong with a cache only costs the parse.
 */
import * as fs from 'node:fs';
import * as nodeModule from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

const MAIN = path.join(__dirname, 'cli-main.js');

type ModuleInternals = typeof nodeModule & {
  enableCompileCache?: () => unknown;
  wrap: (source: string) => string;
};
const Module = nodeModule as ModuleInternals;

/** A folder only this user can write, for the cache; undefined when there is none. */
function cacheFolder(): string | undefined {
  try {
    const base = process.env.XDG_CACHE_HOME && path.isAbsolute(process.env.XDG_CACHE_HOME) ? process.env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
    const folder = path.join(base, 'deploy-rollback');
    fs.mkdirSync(folder, { recursive: true, mode: 0o700 });
    const stat = fs.lstatSync(folder);
    const ownedHere = typeof process.getuid !== 'function' || stat.uid === process.getuid();
    return stat.isDirectory() && ownedHere && (stat.mode & 0o022) === 0 ? folder : undefined;
  } catch {
    return undefined;
  }
}

/** Runs the bundle as node would (`require`), compiled with V8's code cache when there is a usable one. */
function loadWithCodeCache(file: string): void {
  const source = fs.readFileSync(file, 'utf8');
  const folder = cacheFolder();
  const stat = fs.statSync(file);
  // A different bundle or node never reads this file: V8 would reject it anyway, this saves the read.
  const cacheFile = folder && path.join(folder, `cli-${process.version}-${process.arch}-${stat.size}-${Math.floor(stat.mtimeMs)}.cache`);
  let cachedData: Buffer | undefined;
  try {
    if (cacheFile) cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  if (cacheFile && (cachedData === undefined || script.cachedDataRejected)) {
    // At exit the cache also holds every function this run compiled, not only the top level.
    process.once('exit', () => {
      try {
        const temporary = `${cacheFile}.${process.pid}`;
        fs.writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
        fs.renameSync(temporary, cacheFile);
        // Older builds' caches are never read again.
        for (const name of fs.readdirSync(folder)) if (/^cli-.*\.cache$/.test(name) && name !== path.basename(cacheFile)) fs.rmSync(path.join(folder, name), { force: true });
      } catch {
        // No cache this time.
      }
    });
  }
  const module = new nodeModule.Module(file, undefined);
  module.filename = file;
  module.paths = [];
  const run = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
  run.call(module.exports, module.exports, nodeModule.createRequire(file), module, file, path.dirname(file));
}

if (typeof Module.enableCompileCache === 'function') {
  try {
    Module.enableCompileCache();
  } catch {
    // Without the cache the bundle is parsed as usual.
  }
  nodeModule.createRequire(__filename)(MAIN);
} else {
  loadWithCodeCache(MAIN);
}
