import { strict as assert } from 'node:assert';
import { planKamalRollback } from '../../../src/core/kamal/rollback';
import { runMark, thisRun } from '../../../src/core/kamal/commands/lock-run';
import { FakeHosts, kamalConfig, role } from './rollback-fixtures';

describe('Kamal roll direction', () => {
  function afterRollbackToV2() {
    const config = kamalConfig({ roles: [role('web', ['web-1', 'web-2'])] });
    const fakes = new FakeHosts(['web-1', 'web-2']);
    // v3 was deployed, then rolled back to v2: v2's first container renamed, a fresh v2 serves.
    for (const host of fakes.hosts.values()) {
      host.seed('web', ['v1', 'v2', 'v3'], undefined);
      host.containers.find((container) => container.name === 'chat-web-v2')!.name = 'chat-web-v2_replaced_0123456789abcdef';
      host.seed('web', ['v2'], 'v2');
    }
    return { config, fakes };
  }

  it('calls going to a version deployed after the current one a roll forward, in the summary, lock message and plan', async () => {
    const { config, fakes } = afterRollbackToV2();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v3', performer: 'ada' });
    assert.equal(plan.direction, 'forward');
    assert.equal(plan.summary, 'Roll chat forward from v2 to v3 on 2 hosts in 1 group');
    assert.equal(plan.detail.kind, 'roll-forward');
    assert.equal(plan.detail.lockMessage, `Automatic deploy lock: roll forward to v3 by Deploy Rollback ${runMark(thisRun())}`);
  });

  it('calls going to an older version a rollback, even one re-created by an earlier rollback', async () => {
    const { config, fakes } = afterRollbackToV2();
    const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v1', performer: 'ada' });
    assert.equal(plan.direction, 'back');
    assert.equal(plan.summary, 'Roll chat back from v2 to v1 on 2 hosts in 1 group');
  });
});
