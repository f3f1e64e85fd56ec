/**
 * Turns parsed values into typed fields: each reader records a Problem at the value's file:line
 * and drops what it refuses, so a hostile or malformed value never reaches a command.
 */
import type { Problem } from '../../model';
import { dotted, isHash, pathKey, setKey, slashed, stringish, type Location, type ParsedFile, type Path } from './parse';

export class Normaliser {
  readonly problems: Problem[];
  readonly unknown: Set<string>;
  readonly dropped: Path[] = [];

  constructor(
    private readonly files: ParsedFile[],
    private readonly fallbackFile: string,
    problems: Problem[],
    unknown: string[],
  ) {
    this.problems = problems;
    this.unknown = new Set(unknown);
  }

  /** Where a path's value was written: the destination file first, since its values win. */
  locate(at: Path, preferKey = false): Location {
    for (let end = at.length; end >= 0; end--) {
      const key = pathKey(at.slice(0, end));
      for (const file of [...this.files].reverse()) {
        const found = (preferKey ? file.keys.get(key) : undefined) ?? file.values.get(key);
        if (found) return found;
      }
    }
    return { file: this.fallbackFile, line: 1, column: 1 };
  }

  /** An error about a setting as a whole: nothing is removed. */
  report(at: Path, message: string, preferKey = false): void {
    this.problems.push({ ...this.locate(at, preferKey), message: at.length ? `${slashed(at)}: ${message}` : message, severity: 'error' });
  }

  /** An error for a refused value: it is also removed from `raw`, so nothing can use it. */
  reject(at: Path, message: string, preferKey = false): void {
    this.report(at, message, preferKey);
    this.dropped.push(at);
  }

  /** An error placed at `at` whose message names its own context. */
  errorAt(at: Path, message: string): void {
    this.problems.push({ ...this.locate(at, true), message, severity: 'error' });
  }

  warning(at: Path, message: string, preferKey = false): void {
    this.problems.push({ ...this.locate(at, preferKey), message: at.length ? `${slashed(at)}: ${message}` : message, severity: 'warning' });
  }

  /** Psych reads the value at `at` as a Date or Time (the file whose value wins decides). */
  isTimestamp(at: Path): boolean {
    const key = pathKey(at);
    for (const file of [...this.files].reverse()) {
      if (file.values.has(key)) return file.timestamps?.has(key) ?? false;
    }
    return false;
  }

  isUnknown(at: Path): boolean {
    return this.unknown.has(dotted(at));
  }

  string(value: unknown, at: Path): string | undefined {
    if (value === undefined || (value === null && this.isUnknown(at))) return undefined;
    const text = stringish(value);
    if (text === undefined || value === null || this.isTimestamp(at)) {
      this.reject(at, 'should be a string');
      return undefined;
    }
    return text;
  }

  number(value: unknown, at: Path, fallback: number, check: (n: number) => boolean = (n) => n >= 0, expected = 'a number of 0 or more'): number {
    if (value === undefined || value === null) return fallback;
    // Kamal's validator takes only an Integer where its example has one: "10" and 1.5 (Psych's Float) are refused.
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      this.reject(at, 'should be an integer');
      return fallback;
    }
    const parsed = value;
    if (!Number.isFinite(parsed) || !check(parsed)) {
      this.reject(at, `should be ${expected}, got ${JSON.stringify(value)}`);
      return fallback;
    }
    return parsed;
  }

  /** Where Kamal's example is a string (ssh.port: "2222"), digits written either way. */
  numberFromString(value: unknown, at: Path, fallback: number, check?: (n: number) => boolean, expected?: string): number {
    const parsed = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value;
    return this.number(parsed, at, fallback, check, expected);
  }

  optionalNumber(value: unknown, at: Path): number | undefined {
    if (value === undefined || value === null) return undefined;
    const result = this.number(value, at, Number.NaN);
    return Number.isNaN(result) ? undefined : result;
  }

  boolean(value: unknown, at: Path, fallback: boolean): boolean {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') {
      this.reject(at, `should be a boolean (true or false), got ${JSON.stringify(value)}`);
      return fallback;
    }
    return value;
  }

  stringList(value: unknown, at: Path, check?: (text: string) => string | undefined): string[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.reject(at, 'should be an array');
      return [];
    }
    const result: string[] = [];
    value.forEach((item, index) => {
      const itemPath = [...at, String(index)];
      const text = this.string(item, itemPath);
      if (text === undefined) return;
      const reason = check?.(text);
      if (reason) this.reject(itemPath, reason);
      else result.push(text);
    });
    return result;
  }

  stringMap(value: unknown, at: Path, checkKey: (key: string) => string | undefined, checkValue?: (text: string) => string | undefined, allowNull = true): Record<string, string> {
    const result: Record<string, string> = {};
    if (value === undefined || value === null) return result;
    if (!isHash(value)) {
      this.reject(at, 'should be a hash');
      return result;
    }
    for (const [key, item] of Object.entries(value)) {
      const itemPath = [...at, key];
      const keyReason = checkKey(key);
      if (keyReason) {
        this.reject(itemPath, keyReason, true);
        continue;
      }
      if (item === null && !allowNull && !this.isUnknown(itemPath)) {
        this.reject(itemPath, 'should be a string (Kamal refuses an env value that is null)');
        continue;
      }
      const text = this.string(item === null && !this.isUnknown(itemPath) ? '' : item, itemPath);
      if (text === undefined) continue;
      const valueReason = checkValue?.(text);
      if (valueReason) {
        this.reject(itemPath, valueReason);
        continue;
      }
      setKey(result, key, text);
    }
    return result;
  }
}

export const noControlCharacters = (text: string) =>
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f]/.test(text) ? `${JSON.stringify(text.slice(0, 60))} contains a newline or control character` : undefined;

// eslint-disable-next-line no-control-regex
export const URL_PATH = /^\/[^\s\u0000-\u001f\u007f]*$/;

export const noNul = (text: string) => (text.includes('\u0000') ? 'contains a NUL character' : undefined);
