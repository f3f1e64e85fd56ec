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
