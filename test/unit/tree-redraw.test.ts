import { strict as assert } from 'node:assert';
import { rowsToRedraw } from '../../src/vscode/tree/redraw';

describe('tree redraws', () => {
  const row = (id: string, look = id) => ({ id, look });
  const releases = [row('staging/a/v3'), row('staging/a/v2'), row('staging/a/v1')];

  it('redraws only the rows whose look changed when the set is the one on screen', () => {
    const next = [row('staging/a/v3', 'rolled back'), row('staging/a/v2', 'current'), row('staging/a/v1')];
    assert.deepEqual(rowsToRedraw(releases, next), [0, 1]);
  });

  it('redraws nothing when the set reads the same', () => {
    assert.deepEqual(rowsToRedraw(releases, releases.map((entry) => ({ ...entry }))), []);
  });

  it('redraws the parent when a row came, went or moved', () => {
    assert.equal(rowsToRedraw(releases, [row('staging/a/v4'), ...releases]), 'parent');
    assert.equal(rowsToRedraw(releases, releases.slice(1)), 'parent');
    assert.equal(rowsToRedraw(releases, [releases[1], releases[0], releases[2]]), 'parent');
    assert.equal(rowsToRedraw([row('staging/a/loading')], releases), 'parent');
    assert.equal(rowsToRedraw([], releases), 'parent');
  });
});
