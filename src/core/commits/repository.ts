/**
 * Where a release's code lives, found from the file system alone (no git process): the
 * repository holding a path, its remotes, and a fingerprint of its refs that changes when HEAD
 * moves, a fetch lands, tags change or a shallow clone deepens.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface RepositoryDirs {
  /** The work tree's top folder. */
  root: string;
  /** `.git` or, in a linked worktree or submodule, where its `gitdir:` points. */
  gitDir: string;
  /** Where refs, packed-refs, config and objects are shared (differs from gitDir in a linked worktree). */
  commonDir: string;
}

async function isDirectory(file: string): Promise<boolean> {
  return fs.stat(file).then((stat) => stat.isDirectory(), () => false);
}

/** The git directories of the work tree whose top is `root`, or undefined when `root/.git` is not one. */
export async function repositoryDirs(root: string): Promise<RepositoryDirs | undefined> {
  const dotGit = path.join(root, '.git');
  const stat = await fs.stat(dotGit).catch(() => undefined);
  let gitDir: string;
  if (stat?.isDirectory()) gitDir = dotGit;
  else if (stat?.isFile()) {
    const pointer = /^gitdir:\s*(.+?)\s*$/m.exec(await fs.readFile(dotGit, 'utf8').catch(() => ''));
    if (!pointer) return undefined;
    gitDir = path.resolve(root, pointer[1]);
  } else return undefined;
  if (!(await fs.stat(path.join(gitDir, 'HEAD')).then((s) => s.isFile(), () => false))) return undefined;
  const common = (await fs.readFile(path.join(gitDir, 'commondir'), 'utf8').catch(() => '')).trim();
  return { root, gitDir, commonDir: common ? path.resolve(gitDir, common) : gitDir };
}

/** The top of the git work tree holding `file` (a file or folder), walking up; undefined outside any. */
export async function repositoryContaining(file: string): Promise<string | undefined> {
  let dir = path.resolve(file);
  if (!(await isDirectory(dir))) dir = path.dirname(dir);
  for (;;) {
    if (await repositoryDirs(dir)) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Repository roots to look for a release's code in: each folder's own repository and the
 * repositories directly inside it (a workspace folder holding several clones), deduplicated.
 */
export async function candidateRepositories(folders: readonly string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const folder of folders) {
    const own = await repositoryContaining(folder);
    if (own) found.add(own);
    const entries = await fs.readdir(folder, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const child = path.join(folder, entry.name);
      if (await repositoryDirs(child)) found.add(child);
    }
  }
  return [...found];
}

/** The fetch URLs of the repository's remotes, read from its config (`[remote "x"] url = …`). */
export async function remoteUrls(dirs: RepositoryDirs): Promise<string[]> {
  const text = await fs.readFile(path.join(dirs.commonDir, 'config'), 'utf8').catch(() => '');
  const urls: string[] = [];
  let inRemote = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      inRemote = /^\[remote\s+"[^"]*"\]$/.test(line);
      continue;
    }
    const url = inRemote ? /^url\s*=\s*(.+)$/i.exec(line) : null;
    if (url) urls.push(url[1].replace(/^"(.*)"$/, '$1'));
  }
  return urls;
}

/** `owner/name` of a remote URL (https, ssh, scp-like or a path), lowercased, without `.git`. */
export function repositoryNameOfUrl(url: string): string {
  const withoutScheme = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*\//i, '').replace(/^[^/@:]+@[^:]+:/, '');
  const parts = withoutScheme.replace(/\/+$/, '').replace(/\.git$/, '').split(/[/\\]/).filter((part) => part !== '');
  return parts.slice(-2).join('/').toLowerCase();
}

/**
 * Does this repository hold the code Gimlet names `repositoryName` (`owner/name`)? A remote
 * ending in owner/name is a match; the folder or a remote ending in name alone is a weaker one.
 */
export async function matchRepositoryName(root: string, repositoryName: string): Promise<'remote' | 'name' | undefined> {
  const dirs = await repositoryDirs(root);
  if (!dirs) return undefined;
  const wanted = repositoryName.toLowerCase().replace(/\.git$/, '').replace(/^\/+|\/+$/g, '');
  const wantedName = wanted.split('/').pop() ?? wanted;
  const names = (await remoteUrls(dirs)).map(repositoryNameOfUrl);
  if (wanted.includes('/') && names.includes(wanted)) return 'remote';
  if (names.some((name) => name.split('/').pop() === wantedName)) return 'name';
  if (path.basename(root).toLowerCase() === wantedName) return 'name';
  return undefined;
}

async function mtime(file: string): Promise<string> {
  return fs.stat(file).then((stat) => String(stat.mtimeMs), () => '-');
}

/**
 * Changes whenever what refs resolve to may have changed: HEAD (and the branch it names), a
 * fetch, packed or new tags, a deepened shallow clone. Read from files: no git process.
 */
export async function refsFingerprint(dirs: RepositoryDirs): Promise<string> {
  const head = (await fs.readFile(path.join(dirs.gitDir, 'HEAD'), 'utf8').catch(() => '')).trim();
  const symbolic = /^ref:\s*(\S+)$/.exec(head)?.[1];
  const parts = [head];
  if (symbolic) parts.push((await fs.readFile(path.join(dirs.commonDir, symbolic), 'utf8').catch(() => '')).trim());
  for (const file of ['packed-refs', 'FETCH_HEAD', 'shallow', 'refs/tags']) parts.push(await mtime(path.join(dirs.commonDir, file)));
  return parts.join('|');
}

/** The commits where a shallow clone's history is cut (empty for a full clone). */
export async function shallowCommits(dirs: RepositoryDirs): Promise<string[]> {
  const text = await fs.readFile(path.join(dirs.commonDir, 'shallow'), 'utf8').catch(() => '');
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
}
