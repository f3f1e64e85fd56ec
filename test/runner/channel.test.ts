// Run: npx mocha --require tsx/cjs test/runner/channel.test.ts
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { channelDirFor } from './channel';

describe('the runner ↔ suite channel directory', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'channel-test-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is the same for the runner and the extension host when one sees the workspace through a symlink', () => {
    const real = path.join(dir, 'workspace');
    mkdirSync(real);
    symlinkSync(real, path.join(dir, 'link'));
    assert.equal(channelDirFor(path.join(dir, 'link')), channelDirFor(real));
    assert.equal(channelDirFor(`${real}/`), channelDirFor(real));
  });

  it('differs per workspace so suites on several workspaces never read each other', () => {
    mkdirSync(path.join(dir, 'a'));
    mkdirSync(path.join(dir, 'b'));
    assert.notEqual(channelDirFor(path.join(dir, 'a')), channelDirFor(path.join(dir, 'b')));
  });

  it('lies outside the workspace so fixtures such as a gitops clone stay clean', () => {
    const workspace = path.join(dir, 'workspace');
    mkdirSync(workspace);
    assert.ok(!channelDirFor(workspace).startsWith(workspace));
  });
});
