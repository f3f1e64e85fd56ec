import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireLock, rubyBase64 } from '../../../src/core/kamal/commands/lock';
import { inventoryCommand } from '../../../src/core/kamal/commands/inventory';
import { parseInventoryOutput } from '../../../src/core/kamal/hosts/inventory';
import { parseHostFacts, preflightScript } from '../../../src/core/kamal/rollback/preflight';
import { parseSections } from '../../../src/core/kamal/rollback/sections';
import { configFixture } from './inventory-fixtures.test';
import { kamalConfig, role } from './rollback-fixtures';

/**
 * A lock message written to pass for our framing: the pre-flight's markers (`@@deploy-rollback NAME`,
 * `… rc N`, a status glued to the end of a line, a concurrent section's prefix) and the inventory's
 * (`@@deploy-rollback:NAME`), each a line of its own.
 */
const FORGED = [
  'Locked by: Mallory at 2026-12-03T09:00:00Z',
  'Version: v2',
  'Message: hot fix',
  '@@deploy-rollback rc 0',
  '@@deploy-rollback prepare',
  '@@deploy-rollback rc 0',
  '@@deploy-rollback@0 @@deploy-rollback list web',
  'x@@deploy-rollback rc 0',
  '@@deploy-rollback:containers',
  '{"ID":"0123456789ab","Names":"chat-web-v9","Labels":"role=web,service=chat,destination=","State":"running","CreatedAt":"2026-12-03 09:00:00 +0000 UTC","Image":"bars/app:v9"}',
  '@@deploy-rollback:containers-exit:0',
  '@@deploy-rollback:audit',
  '[2026-12-03T09:00:00Z] [mallory] [web] Booted app version v9',
  '@@deploy-rollback:end',
].join('\n');

describe('a lock message cannot be read as our framing', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const sh = (script: string) => spawnSync('sh', ['-c', script], { cwd: dir, env, encoding: 'utf8' });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-lock-framing-'));
    // A docker that knows no containers, so the real shell runs every line of the exchange.
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.writeFileSync(path.join(dir, 'bin', 'docker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    env = { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH ?? ''}` };
    fs.mkdirSync(path.join(dir, '.kamal', 'lock-chat'), { recursive: true });
    fs.writeFileSync(path.join(dir, '.kamal', 'lock-chat', 'details'), rubyBase64(FORGED));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('in the pre-flight that takes the lock: the lock is someone else\'s, read whole, and taking it failed', () => {
    const config = kamalConfig({ roles: [role('web', ['web-1'])] });
    const prepare = acquireLock(config, { holder: 'ada', lockedAt: '2026-12-03T10:00:00Z', version: 'v1', message: 'Automatic deploy lock: rollback to v1 by Deploy Rollback (pid 1 on here)' });
    const answer = sh(preflightScript(config, 'web-1', true, prepare));
    assert.doesNotMatch(answer.stdout, /hot fix|Mallory|x@@deploy-rollback/, 'the lock travels encoded');
    const sections = parseSections(answer.stdout);
    assert.deepEqual([...sections.keys()].filter((name) => !name.startsWith('list') && !name.startsWith('current') && name !== 'images' && !name.startsWith('env')).sort(), ['lock', 'lockdir', 'prepare']);
    const facts = parseHostFacts(config, 'web-1', true, answer.stdout, answer.stderr);
    assert.notEqual(facts.prepared, 0, 'mkdir of a held lock failed: the forged "prepare rc 0" is not read');
    assert.equal(facts.lock?.holder, 'Mallory');
    assert.equal(facts.lock?.message, FORGED.slice(FORGED.indexOf('hot fix')));
    assert.deepEqual(facts.roles.map((entry) => entry.containers), [[]], 'no container the lock made up');
  });

  it('in the inventory: no made-up containers or boots, the lock read whole', () => {
    const config = configFixture();
    const answer = sh(inventoryCommand(config, { withLock: true }));
    assert.equal(answer.status, 0, answer.stderr);
    const parsed = parseInventoryOutput(config, 'web-1', { code: answer.status, stdout: answer.stdout, stderr: answer.stderr });
    assert.ok(!('error' in parsed), JSON.stringify(parsed));
    assert.deepEqual(parsed.containers, []);
    assert.deepEqual(parsed.boots, []);
    assert.equal(parsed.lock?.holder, 'Mallory');
    assert.match(parsed.lock?.message ?? '', /^hot fix\n@@deploy-rollback rc 0\n[^]*@@deploy-rollback:end$/);
  });
});
