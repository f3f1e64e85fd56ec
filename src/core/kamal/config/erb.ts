/**
 * Renders the ERB Kamal runs over deploy.yml, but only the ENV lookups: `ENV["X"]`,
 * `ENV['X']`, `ENV.fetch("X")`, `ENV.fetch("X", "default")`. Anything else is Ruby we will
 * not run; it is reported and replaced by a marker so the value it feeds is known to be
 * unknown. A source map takes positions in the rendered text back to the original file.
 */

export interface ErbIssue {
  /** 1-based, in the original text. */
  line: number;
  column: number;
  message: string;
  severity: 'error' | 'warning';
}

export interface ErbResult {
  text: string;
  issues: ErbIssue[];
  /** Offset in `text` → offset in the original. */
  toSourceOffset(renderedOffset: number): number;
  /** True for original offsets inside a Ruby block (`<% if %>`…`<% end %>`): whether that text is rendered at all is unknown. */
  isConditional(sourceOffset: number): boolean;
}

const BLOCK_OPENER = /^(?:if|unless|case|while|until|for|begin)\b|\bdo\s*(?:\|[^|]*\|)?\s*$/;
const BLOCK_END = /^end\b/;

/** Stands in for a value we could not compute; `isUnresolvedMarker` finds it after YAML. */
const MARKER_PREFIX = 'KAMAL_ERB_UNRESOLVED_';
const MARKER_PATTERN = /KAMAL_ERB_UNRESOLVED_[0-9]+_X/;

export function containsUnresolvedMarker(text: string): boolean {
  return MARKER_PATTERN.test(text);
}

interface Segment {
  renderedStart: number;
  sourceStart: number;
  length: number;
  /** Copied text maps offset by offset; substituted text maps to the tag's start. */
  copied: boolean;
}

const STRING_LITERAL = String.raw`(?:"([^"\\#]*)"|'([^'\\]*)')`;
const ENV_INDEX = new RegExp(String.raw`^ENV\s*\[\s*${STRING_LITERAL}\s*\]$`);
const ENV_FETCH = new RegExp(
  String.raw`^ENV\s*\.\s*fetch\s*\(\s*${STRING_LITERAL}\s*(?:,\s*(?:${STRING_LITERAL}|(-?[0-9]+(?:\.[0-9]+)?)|(nil))\s*)?\)$`,
);

type Evaluation = { kind: 'value'; text: string } | { kind: 'missing'; name: string } | { kind: 'unresolved' };

export function evaluateErbExpression(expression: string, env: NodeJS.ProcessEnv): Evaluation {
  const code = expression.trim();
  const index = ENV_INDEX.exec(code);
  if (index) {
    // Ruby renders nil as "".
    return { kind: 'value', text: env[index[1] ?? index[2]] ?? '' };
  }
  const fetch = ENV_FETCH.exec(code);
  if (fetch) {
    const name = fetch[1] ?? fetch[2];
    const value = env[name];
    if (value !== undefined) return { kind: 'value', text: value };
    const hasDefault = fetch[3] !== undefined || fetch[4] !== undefined || fetch[5] !== undefined || fetch[6] !== undefined;
    if (!hasDefault) return { kind: 'missing', name };
    return { kind: 'value', text: fetch[3] ?? fetch[4] ?? fetch[5] ?? '' };
  }
  return { kind: 'unresolved' };
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  return starts;
}

/** 1-based line and column of an offset. */
export function positionOf(starts: number[], offset: number): { line: number; column: number } {
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (starts[mid] <= offset) low = mid;
    else high = mid - 1;
  }
  return { line: low + 1, column: offset - starts[low] + 1 };
}

export function lineCounter(text: string): (offset: number) => { line: number; column: number } {
  const starts = lineStarts(text);
  return (offset) => positionOf(starts, offset);
}

function shorten(code: string): string {
  const flat = code.replace(/\s+/g, ' ').trim();
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}

export function renderErb(source: string, env: NodeJS.ProcessEnv): ErbResult {
  const segments: Segment[] = [];
  const issues: ErbIssue[] = [];
  const at = lineCounter(source);
  let rendered = '';
  let markers = 0;
  let blockDepth = 0;
  let blockStart = 0;
  const conditional: Array<[number, number]> = [];
  let cursor = 0;

  const copy = (from: number, to: number) => {
    if (to <= from) return;
    segments.push({ renderedStart: rendered.length, sourceStart: from, length: to - from, copied: true });
    rendered += source.slice(from, to);
  };
  const substitute = (tagStart: number, text: string) => {
    if (text === '') return;
    segments.push({ renderedStart: rendered.length, sourceStart: tagStart, length: text.length, copied: false });
    rendered += text;
  };
  const issue = (offset: number, message: string, severity: 'error' | 'warning') => {
    issues.push({ ...at(offset), message, severity });
  };
  const marker = () => `${MARKER_PREFIX}${markers++}_X`;

  while (cursor < source.length) {
    const open = source.indexOf('<%', cursor);
    if (open < 0) break;
    copy(cursor, open);
    if (source[open + 2] === '%') {
      // `<%%` is ERB's escape for a literal `<%`.
      substitute(open, '<%');
      cursor = open + 3;
      continue;
    }
    const close = source.indexOf('%>', open + 2);
    if (close < 0) {
      issue(open, 'ERB tag "<%" is never closed with "%>"; Kamal would fail to render this file', 'error');
      copy(open, source.length);
      cursor = source.length;
      break;
    }
    let body = source.slice(open + 2, close);
    let end = close + 2;
    const trimsNewline = body.endsWith('-');
    if (trimsNewline) body = body.slice(0, -1);
    if (trimsNewline && source[end] === '\n') end += 1;
    else if (trimsNewline && source.startsWith('\r\n', end)) end += 2;

    if (body.startsWith('#')) {
      cursor = end;
      continue;
    }
    if (body.startsWith('=')) {
      const expression = body.slice(1);
      const result = evaluateErbExpression(expression, env);
      if (result.kind === 'value') {
        substitute(open, result.text);
      } else if (result.kind === 'missing') {
        issue(
          open,
          `ENV.fetch("${result.name}") has no value and no default: set ${result.name} in the environment (Kamal would stop with KeyError)`,
          'error',
        );
        substitute(open, marker());
      } else {
        issue(
          open,
          `Unresolved ERB "<%= ${shorten(expression)} %>": only ENV lookups are evaluated, so the value it feeds is unknown`,
          'warning',
        );
        substitute(open, marker());
      }
    } else {
      const code = body.startsWith('-') ? body.slice(1) : body;
      const statement = code.trim();
      if (BLOCK_END.test(statement) && blockDepth > 0) {
        blockDepth -= 1;
        if (blockDepth === 0) conditional.push([blockStart, open]);
      } else if (BLOCK_OPENER.test(statement)) {
        if (blockDepth === 0) blockStart = end;
        blockDepth += 1;
      }
      if (statement !== '') {
        issue(
          open,
          `Unresolved ERB "<% ${shorten(code)} %>": Ruby code is never run, so the values it controls are unknown`,
          'warning',
        );
      }
    }
    cursor = end;
  }
  copy(cursor, source.length);

  const toSourceOffset = (renderedOffset: number): number => {
    if (segments.length === 0) return Math.min(renderedOffset, source.length);
    let low = 0;
    let high = segments.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (segments[mid].renderedStart <= renderedOffset) low = mid;
      else high = mid - 1;
    }
    const segment = segments[low];
    if (renderedOffset < segment.renderedStart) return renderedOffset;
    const within = renderedOffset - segment.renderedStart;
    if (!segment.copied) return segment.sourceStart;
    if (within >= segment.length) {
      // Past the segment's end: a position just after it, or the end of the file.
      return Math.min(segment.sourceStart + within, source.length);
    }
    return segment.sourceStart + within;
  };

  // An unclosed block runs to the end of the file.
  if (blockDepth > 0) conditional.push([blockStart, source.length]);
  const isConditional = (sourceOffset: number) => conditional.some(([start, stop]) => sourceOffset >= start && sourceOffset < stop);

  return { text: rendered, issues, toSourceOffset, isConditional };
}
