/**
 * Plain YAML scalars as Ruby's Psych reads them (Psych::ScalarScanner#tokenize), then as Kamal
 * passes them on: `to_s`. Kamal's configs go through Psych, so `N` stays "N", `1e3` stays "1e3",
 * `1.0` is the Float 1.0 whose text is "1.0", `0x1F` is 31 and `017` is 15.
 *
 * What comes back: null, a boolean, an integer (number, or bigint past 2^53), or a string. Floats,
 * times and symbols come back as their Ruby `to_s` text, since that is all Kamal ever makes of them.
 */

const TIME = /^-?\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|\s+)\d{1,2}:\d\d:\d\d(?:\.\d*)?(?:\s*(?:Z|[-+]\d{1,2}:?(?:\d\d)?))?$/;
const DATE = /^\d{4}-(?:1[012]|0\d|\d)-(?:[12]\d|3[01]|0\d|\d)$/;
const FLOAT = /^(?:[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$/;
const INTEGER = /^(?:[-+]?0b[0-1_,]+|[-+]?0[0-7_,]+|[-+]?(?:0|[1-9][0-9_,]*)|[-+]?0x[0-9a-fA-F_,]+)$/;
/** Psych's "looks like a word" test: such scalars are strings unless short and a null/boolean word. */
const WORDISH = /^[^\d.:-]?[\p{L}\p{M}_\s!@#$%^&*(){}<>|/\\~;=]+/u;
const SEXAGESIMAL_INT = /^[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}$/;
const SEXAGESIMAL_FLOAT = /^[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}\.[0-9_]*$/;

export type PsychValue = null | boolean | number | bigint | string;

/** Ruby's Float#to_s (flo_to_s): shortest digits, fixed notation for decimal exponents -4 < e <= 16. */
export function rubyFloatToS(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const sign = value < 0 ? '-' : '';
  const [mantissa, exponentText] = Math.abs(value).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const decpt = Number(exponentText) + 1;
  if (decpt > 0 && decpt <= 16) {
    if (digits.length <= decpt) return `${sign}${digits.padEnd(decpt, '0')}.0`;
    return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  }
  if (decpt <= 0 && decpt > -4) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  const exponent = decpt - 1;
  const shown = Math.abs(exponent) < 10 ? `0${Math.abs(exponent)}` : String(Math.abs(exponent));
  return `${sign}${digits[0]}.${digits.slice(1) || '0'}e${exponent < 0 ? '-' : '+'}${shown}`;
}

/** Ruby's Kernel#Integer on a string Psych's INTEGER regex accepted (commas and underscores removed). */
function rubyInteger(text: string): number | bigint | undefined {
  const cleaned = text.replace(/[,_]/g, '');
  const match = /^([-+]?)(0b|0x|0)?(.*)$/i.exec(cleaned);
  if (!match) return undefined;
  const [, sign, prefix = '', body] = match;
  if (body === '' && prefix !== '0') return undefined;
  const radix = prefix.toLowerCase() === '0b' ? 2 : prefix.toLowerCase() === '0x' ? 16 : prefix === '0' ? 8 : 10;
  const literal = radix === 2 ? `0b${body}` : radix === 16 ? `0x${body}` : radix === 8 ? `0o${body || '0'}` : body;
  let big: bigint;
  try {
    big = BigInt(literal);
  } catch {
    return undefined;
  }
  if (sign === '-') big = -big;
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/** Ruby's Kernel#Float on what Psych hands it: decimal digits, one point, an optional exponent. */
function rubyFloat(text: string): number | undefined {
  if (/^[-+]?\.(inf|Inf|INF)$/.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (/^\.(nan|NaN|NAN)$/.test(text)) return Number.NaN;
  const cleaned = text.replace(/[,_]|\.([Ee]|$)/g, '$1');
  if (!/^[-+]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/.test(cleaned)) return undefined;
  return Number(cleaned);
}

function pad(value: number, width = 2): string {
  return String(Math.abs(value)).padStart(width, '0');
}

/** Ruby's Time#to_s for Psych's parse_time: `2001-12-14 21:59:43 UTC`, `... -0500`, or local time. */
function rubyTimeToS(text: string): string | undefined {
  const [date, time] = text.split(/[ tT]/, 2) as [string, string | undefined];
  const dateMatch = /^(-?\d{4})-(\d{1,2})-(\d{1,2})/.exec(date);
  const timeMatch = time === undefined ? null : /(\d+:\d+:\d+)(?:\.(\d*))?\s*(Z|[-+]\d+(:\d\d)?)?/.exec(time);
  if (!dateMatch || !timeMatch) return undefined;
  const [year, month, day] = dateMatch.slice(1, 4).map(Number);
  const [hour, minute, second] = timeMatch[1].split(':').map(Number);
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  if (Number.isNaN(utc)) return undefined;
  const format = (at: Date, zone: string) =>
    `${pad(at.getUTCFullYear(), 4)}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())} ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())} ${zone}`;
  const zone = timeMatch[3];
  if (zone === 'Z') return format(new Date(utc), 'UTC');
  if (zone === undefined) {
    // Time.at: the wall clock of the machine running Kamal; this machine's zone stands in for it.
    const local = new Date(utc);
    const offset = -local.getTimezoneOffset();
    return format(new Date(utc + offset * 60_000), `${offset < 0 ? '-' : '+'}${pad(Math.trunc(offset / 60))}${pad(offset % 60)}`);
  }
  const parts = /^([+-]?\d{1,2}):?(\d{1,2})?$/.exec(zone);
  if (!parts) return undefined;
  const hours = Number(parts[1]);
  const minutes = Number(parts[2] ?? 0);
  // Time.new(..., offset) keeps the wall clock as written and prints the offset.
  return format(new Date(utc), `${hours < 0 || parts[1].startsWith('-') ? '-' : '+'}${pad(hours)}${pad(minutes)}`);
}

function rubyDateToS(text: string): string | undefined {
  const [year, month, day] = text.split('-').map(Number);
  const at = new Date(Date.UTC(year, month - 1, day));
  at.setUTCFullYear(year);
  if (at.getUTCFullYear() !== year || at.getUTCMonth() !== month - 1 || at.getUTCDate() !== day) return undefined;
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
}

function sexagesimal(text: string, parse: (part: string) => number): number {
  // Psych weighs the parts by 60^|index - 2|: "1:30" is 1*3600 + 30*60.
  return text.split(':').reduce((sum, part, index) => sum + parse(part) * 60 ** Math.abs(index - 2), 0);
}

/** Psych reads this plain scalar as a Date or Time: Kamal's validator says "should be a string" where it wants one. */
export function isPsychTimestamp(text: string): boolean {
  if (WORDISH.test(text) || text.includes('\n')) return false;
  return (TIME.test(text) && rubyTimeToS(text) !== undefined) || (DATE.test(text) && rubyDateToS(text) !== undefined);
}

/** `!!float X`: Kernel#Float, printed by Float#to_s (`!!float 1` is "1.0"); undefined when Ruby would refuse it. */
export function psychTaggedFloat(text: string): string | undefined {
  const trimmed = text.trim();
  const value = /^[-+]?(?:0|[1-9][0-9_]*)$/.test(trimmed) ? Number(trimmed.replace(/_/g, '')) : rubyFloat(trimmed);
  return value === undefined || Number.isNaN(value) && !/nan/i.test(trimmed) ? undefined : rubyFloatToS(value);
}

/** Psych's reading of a plain (unquoted, untagged) scalar. */
export function psychScalar(text: string): PsychValue {
  if (text === '') return null;
  if (WORDISH.test(text) || text.includes('\n')) {
    if (text.length > 5) return text;
    if (/^[^ytonf~]/i.test(text)) return text;
    if (text === '~' || /^null$/i.test(text)) return null;
    if (/^(yes|true|on)$/i.test(text)) return true;
    if (/^(no|false|off)$/i.test(text)) return false;
    return text;
  }
  if (TIME.test(text)) return rubyTimeToS(text) ?? text;
  if (DATE.test(text)) return rubyDateToS(text) ?? text;
  if (/^\.inf$/i.test(text)) return 'Infinity';
  if (/^-\.inf$/i.test(text)) return '-Infinity';
  if (/^\.nan$/i.test(text)) return 'NaN';
  if (/^:./.test(text)) {
    const quoted = /^:(["'])(.*)\1/.exec(text);
    return quoted ? quoted[2].replace(/^:/, '') : text.slice(1);
  }
  if (SEXAGESIMAL_INT.test(text)) return sexagesimal(text.replace(/_/g, ''), (part) => Number.parseInt(part, 10) || 0);
  if (SEXAGESIMAL_FLOAT.test(text)) return rubyFloatToS(sexagesimal(text.replace(/_/g, ''), (part) => Number.parseFloat(part) || 0));
  if (FLOAT.test(text)) {
    if (/^[-+]?\.$/.test(text)) return text;
    const value = rubyFloat(text);
    return value === undefined ? text : rubyFloatToS(value);
  }
  if (INTEGER.test(text)) return rubyInteger(text) ?? text;
  return text;
}
