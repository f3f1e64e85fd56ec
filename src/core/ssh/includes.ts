/**
 * ssh_config `Include`, which the ssh-config package parses but does not follow: the included
 * files are inlined where the directive stands, then the enclosing Host/Match line is repeated
 * so that what follows the Include stays in the block it was written in.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { glob } from 'ssh-config';
import { expandHome } from './resolve';

const MAX_INCLUDE_DEPTH = 16;
const INCLUDE_LINE = /^\s*Include(?:\s*=\s*|\s+)(.+?)\s*$/i;
const SECTION_LINE = /^\s*(Host|Match)(\s*=\s*|\s+)\S/i;

function splitWords(value: string): string[] {
  return [...value.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2]);
}

async function filesMatching(pattern: string): Promise<string[]> {
  const directory = path.dirname(pattern);
  const base = path.basename(pattern);
  if (!/[*?]/.test(base)) return [pattern];
  let names: string[];
  try {
    names = await fs.readdir(directory);
  } catch {
    return [];
  }
  // OpenSSH uses glob(3): sorted, dotfiles only when the pattern says so.
  return names
    .filter((name) => (name.startsWith('.') ? base.startsWith('.') : true) && glob(base, name))
    .sort()
    .map((name) => path.join(directory, name));
}

/**
 * Returns `text` with every Include replaced by the files it names. Relative paths are relative
 * to `~/.ssh` for the user's config and to `/etc/ssh` for the system one (`includeBase`).
 * Missing files are skipped, as OpenSSH does.
 */
export async function inlineIncludes(text: string, includeBase: string, homeDir: string, depth = 0): Promise<string> {
  if (depth > MAX_INCLUDE_DEPTH) throw new Error(`ssh_config Include nests deeper than ${MAX_INCLUDE_DEPTH} levels: is it including itself?`);
  const output: string[] = [];
  let section = 'Host *';
  for (const line of text.split(/\r?\n/)) {
    if (SECTION_LINE.test(line)) section = line.trim();
    const include = INCLUDE_LINE.exec(line);
    if (!include) {
      output.push(line);
      continue;
    }
    output.push(`# ${line.trim()}`);
    for (const word of splitWords(include[1])) {
      const expanded = expandHome(word, homeDir);
      const pattern = path.isAbsolute(expanded) ? expanded : path.join(includeBase, expanded);
      for (const file of await filesMatching(pattern)) {
        let included: string;
        try {
          included = await fs.readFile(file, 'utf8');
        } catch {
          continue;
        }
        output.push(await inlineIncludes(included, includeBase, homeDir, depth + 1));
        output.push(section);
      }
    }
  }
  return output.join('\n');
}
