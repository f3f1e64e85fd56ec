import { strict as assert } from 'node:assert';
import { parseArgs } from 'node:util';
import { KAMAL_RUN_OPTION_SPECS, KamalOptionsError, kamalRunOptions } from '../../src/cli-kamal-options';

// The declarations src/cli.ts gives parseArgs for these options (Kamal's short forms).
const options = KAMAL_RUN_OPTION_SPECS;

function parse(args: string[], kamal = true) {
  return kamalRunOptions(parseArgs({ args, options, strict: true }).values, kamal);
}

function usage(args: string[], kamal = true): string {
  try {
    parse(args, kamal);
  } catch (error) {
    assert.ok(error instanceof KamalOptionsError, String(error));
    return error.message;
  }
  assert.fail(`expected a usage error for ${args.join(' ')}`);
}

describe('CLI Kamal run options (-r, -h, -p, -H, --lock-wait)', () => {
  it('none given: the whole app, hooks on, no wait', () => {
    assert.deepEqual(parse([]), {});
  });

  it('splits -r and -h at commas as Kamal does, keeping wildcards for the matcher', () => {
    assert.deepEqual(parse(['-r', 'web,work*', '-h', '10.0.0.*,web-2']), { scope: { roles: ['web', 'work*'], hosts: ['10.0.0.*', 'web-2'] } });
    assert.deepEqual(parse(['--roles=web,']), { scope: { roles: ['web'] } });
  });

  it('-p and -H', () => {
    assert.deepEqual(parse(['-p', '-H']), { scope: { primary: true }, skipHooks: true });
    assert.deepEqual(parse(['--primary', '--skip-hooks', '-r', 'workers']), { scope: { roles: ['workers'], primary: true }, skipHooks: true });
  });

  it('--lock-wait defaults to 900 s, checking every 15 s; both can be set', () => {
    assert.deepEqual(parse(['--lock-wait']), { lockWait: { timeoutMs: 900_000, intervalMs: 15_000 } });
    assert.deepEqual(parse(['--lock-wait', '--lock-wait-timeout', '3', '--lock-wait-interval', '0.5']), { lockWait: { timeoutMs: 3000, intervalMs: 500 } });
  });

  it('refuses what would silently mean something else', () => {
    assert.match(usage(['-r', '']), /^--roles is empty/);
    assert.match(usage(['-h', ',']), /^--hosts is empty/);
    assert.equal(usage(['--lock-wait-timeout', '5']), '--lock-wait-timeout needs --lock-wait');
    assert.match(usage(['--lock-wait', '--lock-wait-timeout', '0']), /^--lock-wait-timeout takes seconds above 0/);
    assert.match(usage(['--lock-wait', '--lock-wait-interval', 'soon']), /^--lock-wait-interval takes seconds above 0, at most 86400, not "soon"/);
    assert.match(usage(['--lock-wait', '--lock-wait-timeout', '1e9']), /at most 86400/);
    assert.equal(usage(['-r', 'web'], false), '--roles is for Kamal rollbacks (--kamal CONFIG)');
  });
});
