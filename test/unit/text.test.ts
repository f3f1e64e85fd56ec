import { strict as assert } from 'node:assert';
import { describeLock, parseLockDetails } from '../../src/core/kamal/commands/lock';
import { escapeControl, oneLine, quotedInput } from '../../src/core/text';

function isControl(char: string): boolean {
  const code = char.charCodeAt(0);
  return (code < 0x20 && char !== '\n' && char !== '\t') || (code >= 0x7f && code <= 0x9f);
}

describe('text from hosts shown in a terminal', () => {
  it('makes control characters visible and keeps newlines, tabs and non-ASCII text', () => {
    assert.equal(escapeControl('a\tb\nc é ✓'), 'a\tb\nc é ✓');
    assert.equal(escapeControl('\u001b[2J\u001b]0;pwned\u0007'), '\\e[2J\\e]0;pwned\\x07');
    assert.equal(escapeControl('ok\rAll good'), 'ok\\rAll good');
    assert.equal(escapeControl('\u009b31m\u0000\u007f'), '\\x9b31m\\x00\\x7f');
  });

  it('a lock file cannot clear the terminal, set its title or print a fake line', () => {
    const hostile = 'Locked by: \u001b[2J\u001b]0;owned\u0007eve at 2026-11-23T07:30:00Z\nVersion: v3\nMessage: x\r\u001b[32mAll good\u001b[0m';
    const shown = describeLock(parseLockDetails(hostile));
    assert.ok(![...shown].some(isControl), shown);
    assert.match(shown, /held by \\e\[2J\\e\]0;owned\\x07eve since 2026-11-23T07:30:00Z for version v3: "x\\e\[32mAll good\\e\[0m"/);
  });

  it('one message, one line: line breaks and tabs from a host are shown as escapes', () => {
    assert.equal(oneLine('a\nAll good: rolled back on every host\r\n\tb\u2028c'), 'a\\nAll good: rolled back on every host\\r\\n\\tb\\u2028c');
    assert.equal(oneLine('é ✓ \u001b[2J'), 'é ✓ \\e[2J');
  });

  it('a lock message cannot forge a line of its own', () => {
    const forged = 'Locked by: eve at 2026-11-23T07:30:00Z\nVersion: v3\nMessage: hot fix\nAll good: rolled back on every host\nreally';
    const shown = describeLock(parseLockDetails(forged));
    assert.ok(!shown.includes('\n'), shown);
    assert.match(shown, /: "hot fix\\nAll good: rolled back on every host\\nreally"$/);
  });

  it('quotes input in messages, cut when long, saying how long it was', () => {
    assert.equal(quotedInput('v2'), '"v2"');
    assert.equal(quotedInput('a\nb'), '"a\\nb"');
    const shown = quotedInput('x'.repeat(100_000));
    assert.ok(shown.length < 120, String(shown.length));
    assert.match(shown, /^"x{80}"… \(100000 characters\)$/);
  });
});
