import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Problem } from '../model';
import { parseReleaseJson } from './releaseJson';

export type GitopsLayout = 'multi-env' | 'repo-per-env';
export type GitopsMode = 'auto' | GitopsLayout;

export interface GitopsEnv {
  name: string;
  /** Directory of the env relative to the repository root: the env name, or '' for repo-per-env. */
  dir: string;
  /** App directory names, sorted. */
  apps: string[];
}

export interface GitopsRepo {
  /** Absolute path of the working tree root. */
  root: string;
  layout: GitopsLayout;
  envs: GitopsEnv[];
  problems: Problem[];
}

export interface FindGitopsOptions {
  /** The `paths` setting: exactly these repositories, no scanning. */
  paths?: string[];
  mode?: GitopsMode;
  /** Env name for repo-per-env when release.json does not say. */
  envName?: string;
}

const NOT_APPS = new Set(['.git', 'flux']);

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function subdirectories(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && !NOT_APPS.has(entry.name))
    .map((entry) => entry.name)
    .sort();
}

/** `<repo>/<relative>` relative path joined with '/', as git spells paths. */
export function repoPath(...parts: string[]): string {
  return parts.filter((part) => part !== '').join('/');
}

export function appPath(env: GitopsEnv, app: string): string {
  return repoPath(env.dir, app);
}

export function envReleasePath(env: GitopsEnv): string {
  return repoPath(env.dir, 'release.json');
}

export function findEnv(repo: GitopsRepo, envName: string): GitopsEnv | undefined {
  return repo.envs.find((env) => env.name === envName);
}

/**
 * Reads the env/app layout of one repository from its working tree (no history), or
 * undefined when it holds no release.json where Gimlet puts one.
 */
export async function readGitopsRepo(root: string, options: Omit<FindGitopsOptions, 'paths'> = {}): Promise<GitopsRepo | undefined> {
  const absolute = path.resolve(root);
  if (!(await exists(path.join(absolute, '.git')))) return undefined;
  const mode = options.mode ?? 'auto';
  const problems: Problem[] = [];
  const rootRelease = path.join(absolute, 'release.json');
  if (mode === 'repo-per-env' || (mode === 'auto' && (await exists(rootRelease)))) {
    let name = options.envName;
    try {
      const parsed = parseReleaseJson(await fs.readFile(rootRelease, 'utf8'));
      if (parsed === undefined) {
        problems.push({ file: rootRelease, message: 'release.json is not a JSON object; the env name falls back to the setting or folder name', severity: 'warning' });
      }
      name = parsed?.env ?? name;
    } catch {
      if (mode !== 'repo-per-env') return undefined;
    }
    const env: GitopsEnv = { name: name ?? path.basename(absolute), dir: '', apps: await subdirectories(absolute) };
    return { root: absolute, layout: 'repo-per-env', envs: [env], problems };
  }
  const envs: GitopsEnv[] = [];
  for (const dir of await subdirectories(absolute)) {
    if (!(await exists(path.join(absolute, dir, 'release.json')))) continue;
    envs.push({ name: dir, dir, apps: await subdirectories(path.join(absolute, dir)) });
  }
  if (envs.length === 0) return undefined;
  return { root: absolute, layout: 'multi-env', envs, problems };
}

/**
 * The gitops repositories among the given folders and their direct subfolders, or exactly
 * the `paths` setting when given (a listed path that is no gitops repository is reported as
 * a problem, not dropped silently).
 */
export async function findGitopsRepos(folders: string[], options: FindGitopsOptions = {}): Promise<GitopsRepo[]> {
  const found: GitopsRepo[] = [];
  if (options.paths && options.paths.length > 0) {
    for (const listed of options.paths) {
      const root = path.resolve(folders[0] ?? process.cwd(), listed);
      const repo = await readGitopsRepo(root, options);
      if (repo) {
        found.push(repo);
        continue;
      }
      const isGit = await exists(path.join(root, '.git'));
      found.push({
        root,
        layout: options.mode === 'repo-per-env' ? 'repo-per-env' : 'multi-env',
        envs: [],
        problems: [
          {
            file: root,
            message: isGit
              ? `${root} is a git repository but holds no <env>/release.json or release.json, so it is not a Gimlet-style gitops repository`
              : `${root} (from the gitops paths setting) is not a git repository`,
            severity: 'error',
          },
        ],
      });
    }
    return found;
  }
  const seen = new Set<string>();
  for (const folder of folders) {
    const candidates = [path.resolve(folder), ...(await subdirectories(folder)).map((name) => path.resolve(folder, name))];
    for (const candidate of candidates) {
      if (seen.has(candidate)) continue;
      seen.add(candidate);
      const repo = await readGitopsRepo(candidate, options);
      if (repo) found.push(repo);
    }
  }
  return found;
}
