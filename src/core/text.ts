/**
 * Text that came from a host (lock holder and message, docker's errors, container logs and names)
 * is data: before a terminal shows it, control characters are made visible so it cannot clear the
 * screen, set the title, move the cursor or overwrite a line with a fake "All good".
 */

// C0 controls except tab and newline, DEL, and the C1 range (0x9b is a one-byte CSI).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function escapeControl(text: string): string {
  return text.replace(CONTROL, (char) => {
    if (char === '\r') return '\\r';
    if (char === '\u001b') return '\\e';
    return `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/**
 * One message's worth of host text on one line: control characters as above, and line breaks
 * (`\n`, `\r`, U+2028/2029) and tabs shown as escapes, so a lock message or an error line cannot
 * forge a line of its own ("All good: rolled back on every host").
 */
export function oneLine(text: string): string {
  return escapeControl(text)
    .replace(/\n/g, '\\n')
    .replace(/\t/g, '\\t')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Input quoted in a message as JSON quotes it (line breaks escaped), cut when long: a 100 kB `--to` is not repeated in full. */
export function quotedInput(text: string, max = 80): string {
  return text.length <= max ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, max))}… (${text.length} characters)`;
}
