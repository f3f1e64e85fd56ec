import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditBootLinesLine, inventoryCommand } from '../../../src/core/kamal/commands/inventory';
import { auditLine } from '../../../src/core/kamal/commands/auditor';
import { parseAuditBoot, parseInventoryOutput, readKamalInventory } from '../../../src/core/kamal/hosts/inventory';
import { kamalReleaseHistory, kamalReleases } from '../../../src/core/kamal/hosts/releases';
import type { App } from '../../../src/core/model';
import { FakeSessions, configFixture, fixtureId, inventoryOutput } from './inventory-fixtures.test';

// Lines as Kamal 2.12 writes them (spec: "Seen from real Kamal 2.12 driving test hosts").
const KAMAL_AUDIT_LOG = [
  '[2026-11-22T10:00:03Z] [ada@example.com] [web] Renaming container v1 to v1_replaced_1111111111111111',
  '[2026-11-22T10:00:05Z] [ada@example.com] [web] Booted app version v2',
  '[2026-11-22T10:00:06Z] [ada@example.com] Tagging localhost:5555/bars/app:v2 as the latest image',
  '[2026-11-23T09:00:05Z] [bob@example.com] [web] Booted app version v3',
  '[2026-11-23T09:30:05Z] [root] [web] Booted app version v2',
].join('\n');

describe('Kamal audit log in the inventory', () => {
  it('reads the boot lines of the service\'s audit log, bounded, in the same line as the inventory', () => {
    assert.equal(auditBootLinesLine({ service: 'chat' }), "grep -s -F -e 'Booted app version ' .kamal/chat-audit.log | tail -n 300");
    assert.equal(auditBootLinesLine({ service: 'chat', destination: 'staging' }), "grep -s -F -e 'Booted app version ' .kamal/chat-staging-audit.log | tail -n 300");
    const command = inventoryCommand(configFixture(), { withLock: false });
    assert.ok(command.includes(` ; echo @@deploy-rollback:audit ; ${auditBootLinesLine({ service: 'chat' })} ; echo @@deploy-rollback:end`), command);
  });

  it('parses boot lines with and without destination and role, and ignores every other line', () => {
    assert.deepEqual(parseAuditBoot({}, 'web-1', '[2026-11-23T00:17:41Z] [root] [web] Booted app version v2'), {
      host: 'web-1',
      recordedAt: '2026-11-23T00:17:41Z',
      performer: 'root',
      role: 'web',
      version: 'v2',
    });
    assert.deepEqual(parseAuditBoot({ destination: 'staging' }, 'web-1', '[2026-11-23T00:17:41Z] [ada@example.com] [staging] [job] Booted app version 3f2a9c1'), {
      host: 'web-1',
      recordedAt: '2026-11-23T00:17:41Z',
      performer: 'ada@example.com',
      role: 'job',
      version: '3f2a9c1',
    });
    assert.deepEqual(parseAuditBoot({ destination: 'staging' }, 'h', '[t] [p] [staging] Booted app version v9'), { host: 'h', recordedAt: 't', performer: 'p', version: 'v9' });
    // What our own rollback writes reads back the same way.
    const ours = auditLine({ destination: 'prod' }, { recordedAt: '2026-11-24T00:00:00Z', performer: 'ci', role: 'web' }, 'Booted app version v4');
    assert.equal(parseAuditBoot({ destination: 'prod' }, 'h', ours)?.version, 'v4');
    for (const other of KAMAL_AUDIT_LOG.split('\n').filter((line) => !line.includes('Booted'))) assert.equal(parseAuditBoot({}, 'h', other), undefined);
    assert.equal(parseAuditBoot({}, 'h', 'Booted app version v1'), undefined);
    assert.equal(parseAuditBoot({}, 'h', '[t] [p] [web] Booted app version v1 and more'), undefined);
  });

  it('gets boot lines from a real shell running the inventory line against an audit log, and none without one', async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'fake-kamal-home-'));
    try {
      await fs.writeFile(path.join(home, 'docker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      const config = configFixture();
      const run = () =>
        new Promise<string>((resolve, reject) =>
          execFile('sh', ['-c', inventoryCommand(config, { withLock: true })], { cwd: home, env: { PATH: `${home}:/usr/bin:/bin` } }, (error, out) => (error ? reject(error) : resolve(out))),
        );
      const without = parseInventoryOutput(config, 'web-1', { code: 0, stdout: await run(), stderr: '' });
      assert.ok(!('error' in without));
      assert.deepEqual(without.boots, []);
      await fs.mkdir(path.join(home, '.kamal'));
      await fs.writeFile(path.join(home, '.kamal', 'chat-audit.log'), `${KAMAL_AUDIT_LOG}\n`);
      const withLog = parseInventoryOutput(config, 'web-1', { code: 0, stdout: await run(), stderr: '' });
      assert.ok(!('error' in withLog));
      assert.deepEqual(withLog.boots.map((boot) => [boot.version, boot.performer, boot.recordedAt]), [
        ['v2', 'ada@example.com', '2026-11-22T10:00:05Z'],
        ['v3', 'bob@example.com', '2026-11-23T09:00:05Z'],
        ['v2', 'root', '2026-11-23T09:30:05Z'],
      ]);
    } finally {
      await fs.rm(home, { recursive: true, force: true });
    }
  });

  it('says when and by whom each release was last booted (a rollback boots it again) and lists its boots per host as its history', async () => {
    const config = configFixture({ roles: { web: ['web-1', 'web-2'] } });
    const containers = [
      { role: 'web', version: 'v2', created: '2026-11-22T10:00:04Z', state: 'running' as const },
      { role: 'web', version: 'v3', created: '2026-11-23T09:00:04Z', state: 'exited' as const },
    ];
    const audit = `@@deploy-rollback:audit\n${KAMAL_AUDIT_LOG}\n@@deploy-rollback:end\n`;
    const behaviours = Object.fromEntries(
      ['web-1', 'web-2'].map((host) => [host, { stdout: inventoryOutput(config, containers.map((c) => ({ ...c, host, id: fixtureId() })), { latestVersion: 'v2' }).replace('@@deploy-rollback:end\n', audit) }]),
    );
    const inventory = await readKamalInventory(config, new FakeSessions(behaviours).sessionFor);
    const environment = { id: 'kamal:/p:default', source: 'kamal' as const, name: 'default', location: '/p', problems: [] };
    const app: App = { id: 'kamal:/p:default/chat', environment, name: 'chat', problems: [] };
    const releases = kamalReleases(app, inventory);
    assert.deepEqual(releases.map((r) => [r.version, r.triggeredBy, r.created, r.direction]), [
      ['v3', 'bob@example.com', '2026-11-23T09:00:05Z', 'forward'],
      ['v2', 'root', '2026-11-23T09:30:05Z', undefined],
    ]);
    const history = kamalReleaseHistory(releases[1], inventory, '.kamal/chat-audit.log');
    assert.deepEqual(history.filter((line) => line.startsWith('  2026')), [
      '  2026-11-22T10:00:05Z  web-1 (web)  by ada@example.com',
      '  2026-11-22T10:00:05Z  web-2 (web)  by ada@example.com',
      '  2026-11-23T09:30:05Z  web-1 (web)  by root',
      '  2026-11-23T09:30:05Z  web-2 (web)  by root',
    ]);
    assert.ok(history.includes('  web-1 (web)  chat-web-v2  running  created 2026-11-22T10:00:04Z'), history.join('\n'));
  });
});
