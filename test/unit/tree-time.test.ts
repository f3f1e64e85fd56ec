import { strict as assert } from 'node:assert';
import { shortAge, shortDuration } from '../../src/vscode/tree/time';

describe('tree times', () => {
  const now = Date.parse('2026-11-28T12:00:00Z');

  it('says how long ago in a few characters, computed when drawn', () => {
    assert.equal(shortAge(now - 400, now), 'just now');
    assert.equal(shortAge(now - 42_000, now), '42s ago');
    assert.equal(shortAge(now - 5 * 60_000, now), '5m ago');
    assert.equal(shortAge(now - 3 * 3600_000 - 59_000, now), '3h ago');
    assert.equal(shortAge(now - 2 * 86400_000, now), '2d ago');
    assert.equal(shortAge(now - 400 * 86400_000, now), '1y ago');
    assert.equal(shortAge(Number.NaN, now), '');
  });

  it('gives a running container\'s uptime from its creation, not docker\'s status of the last read', () => {
    // docker said "Up Less than a second" when read; a minute later it has been up a minute.
    assert.equal(shortDuration(now - 61_000, now), '1m');
    assert.equal(shortDuration(now - 200, now), 'now');
    // A clock a little behind the host's: still an age, not a negative one.
    assert.equal(shortDuration(now + 3_000, now), '3s');
  });
});
