/**
 * The YAML side of reading a Kamal config: ERB rendered, YAML parsed to plain values with where
 * each key and value stands (for Problems at file:line:column), Psych scalars, merge keys, and
 * values from ERB we would not run kept as UNKNOWN through the destination's deep merge.
 */
import * as path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { Problem } from '../../model';
import { containsUnresolvedMarker, lineCounter, renderErb } from './erb';
import { isPsychTimestamp, psychScalar, psychTaggedFloat } from './psych';

/** A value fed by ERB we would not run: kept distinct from null through the merge. */
class UnknownValue {}
const UNKNOWN = new UnknownValue();

export type Path = readonly string[];
export interface Location {
  file: string;
  line: number;
  column: number;
}

export interface ParsedFile {
  file: string;
  data?: Record<string, unknown>;
  values: Map<string, Location>;
  keys: Map<string, Location>;
  /** Paths whose value Psych reads as a Date or Time (written plain, e.g. `2024-01-01`). */
  timestamps?: Set<string>;
}

export const pathKey = (segments: Path) => segments.join('\u0000');
export const dotted = (segments: Path) => segments.join('.');
// eslint-disable-next-line no-control-regex
export const slashed = (segments: Path) => segments.map((segment) => (/[\u0000-\u001f\u007f/]/.test(segment) ? JSON.stringify(segment) : segment)).join('/');

export type Hash = Record<string, unknown>;

export function isHash(value: unknown): value is Hash {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof UnknownValue);
}

export function setKey(target: Hash, key: string, value: unknown): void {
  // Defined, not assigned, so a "__proto__" key in YAML stays plain data.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Ruby's `to_s` on what YAML gives a scalar; undefined for hashes and arrays. */
export function stringish(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return '';
  return undefined;
}

const STRING_TAGS = new Set(['tag:yaml.org,2002:str', '!str']);
const FLOAT_TAG = 'tag:yaml.org,2002:float';
/** Tags Psych resolves itself: yaml's failsafe schema leaves them unresolved, which is no news to report. */
const PSYCH_CORE_TAG = /^Unresolved tag: tag:yaml\.org,2002:(str|float|int|bool|null)\b/;

/** Quoted and block scalars are strings, as in Psych; plain ones are typed by its ScalarScanner. */
function scalarValue(node: { value: unknown; type?: string; tag?: string; source?: string }): unknown {
  const text = typeof node.value === 'string' ? node.value : String(node.value ?? '');
  if (node.tag === FLOAT_TAG) return psychTaggedFloat(text) ?? text;
  if (node.type !== 'PLAIN' || (node.tag !== undefined && STRING_TAGS.has(node.tag))) return text;
  return psychScalar(text);
}

/** Real configs hold a few hundred values; this stops an alias bomb early. */
const MAX_NODES = 20_000;

export function parseFile(text: string, file: string, env: NodeJS.ProcessEnv, problems: Problem[]): ParsedFile {
  const parsed: ParsedFile = { file, values: new Map(), keys: new Map() };
  const erb = renderErb(text, env);
  for (const issue of erb.issues) problems.push({ file, ...issue });
  const sourcePosition = lineCounter(text);
  const locate = (renderedOffset: number): Location => ({ file, ...sourcePosition(erb.toSourceOffset(renderedOffset)) });
  const conditional = (node: YamlNode | null) => node?.range != null && erb.isConditional(erb.toSourceOffset(node.range[0]));

  // Every scalar is read as text, then typed by Psych's rules (yaml's own 1.1 schema differs: `N` is false there).
  const doc = parseDocument(erb.text, { version: '1.1', schema: 'failsafe', merge: false, prettyErrors: false, uniqueKeys: false });
  for (const error of doc.errors) {
    problems.push({ ...locate(error.pos[0]), message: `YAML syntax error: ${error.message}`, severity: 'error' });
  }
  if (doc.errors.length > 0) return parsed;
  for (const warning of doc.warnings) {
    if (PSYCH_CORE_TAG.test(warning.message)) continue;
    problems.push({ ...locate(warning.pos[0]), message: `YAML: ${warning.message}`, severity: 'warning' });
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    problems.push({ file, line: 1, column: 1, message: `${displayPath(file)} is empty: Kamal needs a hash of settings here`, severity: 'error' });
    return parsed;
  }
  if (!isMap(doc.contents)) {
    problems.push({ ...locate(doc.contents.range?.[0] ?? 0), message: `${displayPath(file)} should be a hash of settings (key: value lines)`, severity: 'error' });
    return parsed;
  }
  let visited = 0;
  const aliasTargets = new Map<YamlNode, unknown>();
  const convert = (node: unknown, at: Path, depth: number): unknown => {
    if (++visited > MAX_NODES || depth > 200) throw new Error(`aliases expand to more than ${MAX_NODES} values; Kamal configs are far smaller, so an alias is probably nested into itself`);
    if (node === null || node === undefined) return null;
    const yamlNode = node as YamlNode;
    if (isAlias(yamlNode)) {
      // resolve() searches the whole document, so each alias is looked up once.
      if (!aliasTargets.has(yamlNode)) aliasTargets.set(yamlNode, yamlNode.resolve(doc as Document));
      return convert(aliasTargets.get(yamlNode), at, depth + 1);
    }
    if (yamlNode.range) parsed.values.set(pathKey(at), locate(yamlNode.range[0]));
    if (conditional(yamlNode)) return UNKNOWN;
    if (isScalar(yamlNode)) {
      if (yamlNode.type === 'PLAIN' && yamlNode.tag === undefined && isPsychTimestamp(String(yamlNode.value ?? ''))) {
        (parsed.timestamps ??= new Set()).add(pathKey(at));
      }
      const value = scalarValue(yamlNode);
      if (typeof value === 'string' && containsUnresolvedMarker(value)) return UNKNOWN;
      return value;
    }
    if (isSeq(yamlNode)) {
      return yamlNode.items.map((item, index) => convert(item, [...at, String(index)], depth + 1));
    }
    if (isMap(yamlNode)) {
      const result: Hash = {};
      for (const pair of yamlNode.items) {
        const key = pair.key as YamlNode | null;
        if (isScalar(key) && key.type === 'PLAIN' && key.value === '<<' && !key.tag) {
          // Psych merges `<<` in place: later keys win; in a list the earlier maps win.
          const sources = isSeq(pair.value) ? [...pair.value.items].reverse() : [pair.value];
          for (const source of sources) {
            const merged = convert(source, at, depth + 1);
            if (isHash(merged)) for (const [k, v] of Object.entries(merged)) setKey(result, k, v);
          }
          continue;
        }
        const keyValue = isScalar(key) ? scalarValue(key) : key === null ? null : String(key);
        const keyText = stringish(keyValue) ?? String(keyValue);
        const child = [...at, keyText];
        if (key?.range) {
          parsed.keys.set(pathKey(child), locate(key.range[0]));
          parsed.values.set(pathKey(child), locate(key.range[0]));
        }
        // A key written inside a Ruby block may or may not be rendered: its whole entry is unknown.
        if (containsUnresolvedMarker(keyText) || conditional(key)) {
          setKey(result, keyText, UNKNOWN);
          continue;
        }
        setKey(result, keyText, convert(pair.value, child, depth + 1));
      }
      return result;
    }
    return null;
  };
  try {
    parsed.data = convert(doc.contents, [], 0) as Hash;
  } catch (error) {
    problems.push({ file, line: 1, column: 1, message: `YAML: ${(error as Error).message}`, severity: 'error' });
  }
  return parsed;
}

/** The folder Kamal runs in: the parent of config/, else the file's own folder. */
export function projectDirOf(file: string): string {
  const folder = path.dirname(file);
  return path.basename(folder) === 'config' ? path.dirname(folder) : folder;
}

export function displayPath(file: string): string {
  return path.join(path.basename(path.dirname(file)), path.basename(file));
}

/** ActiveSupport's deep_merge: hashes merge recursively, anything else from `over` replaces. */
export function deepMerge(base: Hash, over: Hash): Hash {
  const result: Hash = {};
  for (const [key, value] of Object.entries(base)) setKey(result, key, value);
  for (const [key, value] of Object.entries(over)) {
    const existing = result[key];
    setKey(result, key, isHash(existing) && isHash(value) && Object.prototype.hasOwnProperty.call(result, key) ? deepMerge(existing, value) : value);
  }
  return result;
}

/** Replaces unknown markers by null, returning the dotted paths where they were. */
export function collectUnknown(value: unknown, at: string[], found: string[]): unknown {
  if (value === UNKNOWN) {
    found.push(dotted(at));
    return null;
  }
  if (Array.isArray(value)) return value.map((item, index) => collectUnknown(item, [...at, String(index)], found));
  if (isHash(value)) {
    const result: Hash = {};
    for (const [key, item] of Object.entries(value)) {
      if (containsUnresolvedMarker(key)) {
        found.push(dotted([...at, '*']));
        continue;
      }
      setKey(result, key, collectUnknown(item, [...at, key], found));
    }
    return result;
  }
  return value;
}
