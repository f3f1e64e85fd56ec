/**
 * The one place argv becomes a POSIX shell string. Remote commands are built as argv
 * (see kamal/commands) and quoted here once; nothing else concatenates shell text
 * except the few pipelines in the command builders, which join already-quoted parts.
 */

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function quote(word: string): string {
  if (word === '') return "''";
  if (SAFE_WORD.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function quoteArgv(argv: readonly string[]): string {
  return argv.map(quote).join(' ');
}

/** A shell pipeline or list made of argv parts: `join(['a','b'], '&&', ['c'])`. */
export type ShellPart = readonly string[] | '&&' | '||' | '|' | ';' | '>' | '>>';

export function shellLine(...parts: ShellPart[]): string {
  return parts.map((part) => (typeof part === 'string' ? part : quoteArgv(part))).join(' ');
}
