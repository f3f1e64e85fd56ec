/**
 * Finds Kamal configs in workspace folders: `config/deploy.yml` files (monorepos have
 * several) and the destinations beside each. Bounded in depth and skipping heavy folders,
 * so a large workspace is scanned quickly.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { projectDirOf } from './parse';
import { listDestinations } from './read';

export interface KamalConfigFile {
  /** Absolute path of config/deploy.yml (or the file a setting names). */
  file: string;
  /** The folder holding config/: hooks and secrets are found relative to it. */
  projectDir: string;
  /** `deploy.staging.yml` beside it → `staging`; sorted. */
  destinations: string[];
}

export interface DiscoverOptions {
  /** From the setting: files, config folders or project folders; relative ones resolve against each folder. */
  configPaths?: string[];
  /** How many folder levels below each workspace folder to look at (default 6). */
  maxDepth?: number;
  /** Told about each setting path that holds no Kamal config, so the user can fix the setting. */
  onMissing?: (message: string) => void;
}

/** Folders that never hold a project's own deploy config, or are too big to walk. */
const SKIPPED_DIRS = new Set([
  'node_modules', 'vendor', 'tmp', 'log', 'logs', 'dist', 'build', 'out', 'coverage', 'target',
  'public', 'storage', 'bower_components', '__pycache__', 'venv', 'Pods', 'DerivedData',
]);

async function statOrUndefined(target: string) {
  try {
    return await fs.stat(target);
  } catch {
    return undefined;
  }
}

async function fileFromSetting(configPath: string, folders: string[]): Promise<string | undefined> {
  const candidates = path.isAbsolute(configPath) ? [configPath] : folders.map((folder) => path.resolve(folder, configPath));
  for (const candidate of candidates) {
    const stat = await statOrUndefined(candidate);
    if (!stat) continue;
    if (stat.isFile()) return candidate;
    for (const inside of [path.join(candidate, 'config', 'deploy.yml'), path.join(candidate, 'deploy.yml')]) {
      if ((await statOrUndefined(inside))?.isFile()) return inside;
    }
  }
  return undefined;
}

/** Folders read at once: enough to be quick, few enough to stay clear of EMFILE. */
const CONCURRENCY = 32;
/** A workspace bigger than this is not searched further; the setting names configs then. */
const MAX_DIRECTORIES = 10_000;

/** Breadth-first, level by level, so results do not depend on timing. */
async function search(root: string, maxDepth: number, found: string[]): Promise<void> {
  let level = [root];
  let visited = 0;
  for (let depth = 0; level.length > 0 && depth <= maxDepth; depth++) {
    const next: string[] = [];
    for (let start = 0; start < level.length && visited < MAX_DIRECTORIES; start += CONCURRENCY) {
      const batch = level.slice(start, start + CONCURRENCY);
      visited += batch.length;
      const listings = await Promise.all(batch.map((folder) => fs.readdir(folder, { withFileTypes: true }).catch(() => [])));
      for (const [index, entries] of listings.entries()) {
        for (const entry of entries) {
          // Dirents of symlinks are not directories: links are not followed, so loops cannot trap the search.
          if (!entry.isDirectory()) continue;
          const folder = path.join(batch[index], entry.name);
          if (entry.name === 'config') {
            const candidate = path.join(folder, 'deploy.yml');
            if ((await statOrUndefined(candidate))?.isFile()) found.push(candidate);
          }
          if (!entry.name.startsWith('.') && !SKIPPED_DIRS.has(entry.name)) next.push(folder);
        }
      }
    }
    level = depth < maxDepth ? next : [];
  }
}

export async function discoverKamalConfigs(folders: string[], options: DiscoverOptions = {}): Promise<KamalConfigFile[]> {
  const files: string[] = [];
  if (options.configPaths && options.configPaths.length > 0) {
    for (const configPath of options.configPaths) {
      const file = await fileFromSetting(configPath, folders);
      if (file) files.push(file);
      else options.onMissing?.(`No Kamal config at ${configPath} (looked for the file, config/deploy.yml and deploy.yml)`);
    }
  } else {
    for (const folder of folders) await search(path.resolve(folder), options.maxDepth ?? 6, files);
  }
  const seen = new Set<string>();
  const result: KamalConfigFile[] = [];
  for (const file of files) {
    const absolute = path.resolve(file);
    const real = await fs.realpath(absolute).catch(() => absolute);
    if (seen.has(real)) continue;
    seen.add(real);
    result.push({
      file: absolute,
      projectDir: projectDirOf(absolute),
      destinations: await listDestinations(absolute),
    });
  }
  if (!options.configPaths?.length) result.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return result;
}
