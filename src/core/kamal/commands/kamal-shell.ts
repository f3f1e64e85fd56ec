/**
 * Kamal's own rendering of values into shell words (lib/kamal/utils.rb): `escape_shell_value`,
 * `argumentize` and `optionize(with: "=")`. Values are double-quoted the way Ruby's String#dump
 * does it, backticks and `$` escaped, except `${...}`, which Kamal leaves for the host's shell to
 * expand. Everything else in a command line is quoted by src/core/shell.ts.
 */
import { quote } from '../../shell';

/** A word already rendered for the shell: emitted as is. */
export class ShellWord {
  constructor(readonly text: string) {}
}

export type Word = string | ShellWord;

/** A clear env value, or a config value as YAML typed it (false renders unquoted). */
export type KamalValue = string | number | bigint | boolean | null | undefined;

const DUMP_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\f': '\\f', '\v': '\\v', '\b': '\\b', '\u0007': '\\a', '\u001b': '\\e' };

/** Ruby's String#dump on an ASCII string. */
function rubyDump(text: string): string {
  let out = '"';
  for (let index = 0; index < text.length; index++) {
    const ch = text[index];
    const next = text[index + 1];
    if (DUMP_ESCAPES[ch] !== undefined) out += DUMP_ESCAPES[ch];
    else if (ch === '#' && (next === '{' || next === '$' || next === '@')) out += '\\#';
    else if (ch < ' ' || ch === '\u007f') out += `\\x${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Kamal's `escape_shell_value`: ASCII runs dumped and escaped, other runs left as they are. */
export function escapeShellValue(value: KamalValue): string {
  const text = value === null || value === undefined ? '' : String(value);
  // eslint-disable-next-line no-control-regex
  return (text.match(/[\u0000-\u007f]+|[^\u0000-\u007f]+/g) ?? [])
    .map((part) =>
      // eslint-disable-next-line no-control-regex
      /^[\u0000-\u007f]+$/.test(part) ? rubyDump(part).replace(/`/g, '\\`').replace(/\$(?!\{[^}]*\})/g, '\\$') : part,
    )
    .join('');
}

/** ActiveSupport's `present?` on a YAML value: false, nil and blank strings are not present. */
function present(value: KamalValue): boolean {
  if (value === null || value === undefined || value === false) return false;
  if (typeof value === 'string') return value.trim() !== '';
  return true;
}

/** Kamal's `argumentize(argument, {key => value})`: `KEY="v"`, `KEY=false`, or a bare `KEY`. */
export function argumentize(argument: string, entries: [string, KamalValue][]): Word[] {
  return entries.flatMap(([key, value]): Word[] => {
    if (present(value)) return [argument, new ShellWord(`${key}=${escapeShellValue(value)}`)];
    if (value === false) return [argument, new ShellWord(`${key}=false`)];
    return [argument, new ShellWord(key)];
  });
}

/** Kamal's `optionize(options, with: "=")`: `--key` for true, `--key="value"` otherwise, nil left out. */
export function optionizeWith(entries: [string, KamalValue | KamalValue[]][]): Word[] {
  return entries.flatMap(([key, value]) =>
    (Array.isArray(value) ? value : [value])
      .filter((entry) => entry !== null && entry !== undefined)
      .map((entry) => new ShellWord(entry === true ? `--${key}` : `--${key}=${escapeShellValue(entry)}`)),
  );
}

/** Kamal's `optionize(options)`: `--key` for true, `--key "value"` otherwise. */
export function optionize(entries: [string, KamalValue | KamalValue[]][]): Word[] {
  return entries.flatMap(([key, value]) =>
    (Array.isArray(value) ? value : [value])
      .filter((entry) => entry !== null && entry !== undefined)
      .flatMap((entry): Word[] => (entry === true ? [`--${key}`] : [`--${key}`, new ShellWord(escapeShellValue(entry))])),
  );
}

export function renderWords(words: readonly Word[]): string {
  return words.map((word) => (word instanceof ShellWord ? word.text : quote(word))).join(' ');
}
