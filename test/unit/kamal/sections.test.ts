import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { chain, concurrent, markerWatcher, parseSections, section } from '../../../src/core/kamal/rollback/sections';

describe('marker sections (several steps in one exchange)', () => {
  it('builds a section and a chain whose later steps run only after a 0', () => {
    assert.equal(section('tag', 'docker tag a b'), `echo '@@deploy-rollback tag'; docker tag a b; echo "@@deploy-rollback rc $?"`);
    assert.equal(
      chain([
        ['proxy', 'docker exec kamal-proxy kamal-proxy deploy x --target="abc:80"'],
        ['booted', 'docker stop y'],
      ]),
      `echo '@@deploy-rollback proxy'; docker exec kamal-proxy kamal-proxy deploy x --target="abc:80" && echo "@@deploy-rollback rc 0" && echo '@@deploy-rollback booted' && docker stop y; echo "@@deploy-rollback rc $?"`,
    );
  });

  it('reads the status of a step whose output has no final newline (a real shell running `base64 -d` of a lock), never as part of its text', () => {
    const script = section('lock', `printf '%s' 'Message: Rollback to v2 by Deploy Rollback'`) + '; ' + section('after', 'echo next');
    const sections = parseSections(execFileSync('sh', ['-c', script], { encoding: 'utf8' }));
    assert.deepEqual(sections.get('lock'), { lines: ['Message: Rollback to v2 by Deploy Rollback'], rc: 0 });
    assert.deepEqual(sections.get('after'), { lines: ['next'], rc: 0 });
  });

  it('reads each step: output and status; a chain stopped early has no later section', () => {
    const sections = parseSections('@@deploy-rollback current\nchat-web-v3\n@@deploy-rollback rc 0\n@@deploy-rollback run\n\n@@deploy-rollback rc 125\n');
    assert.deepEqual(sections.get('current'), { lines: ['chat-web-v3'], rc: 0 });
    assert.deepEqual(sections.get('run'), { lines: [], rc: 125 });
    const stopped = parseSections('@@deploy-rollback proxy\nError: target failed to become healthy\n@@deploy-rollback rc 1\n');
    assert.equal(stopped.get('proxy')?.rc, 1);
    assert.equal(stopped.has('booted'), false);
  });

  it('reports each marker once, as soon as its whole line arrived, whatever the chunking', () => {
    const seen: string[] = [];
    const watch = markerWatcher((name) => seen.push(name));
    watch.onStdout('@@deploy-rollback cur');
    assert.deepEqual(seen, []);
    watch.onStdout('rent\nchat-web-v3\n@@deploy-rollback rc 0\n@@deploy-');
    assert.deepEqual(seen, ['current']);
    watch.onStdout('rollback run\n');
    assert.deepEqual(seen, ['current', 'run']);
    watch.finish('@@deploy-rollback current\n@@deploy-rollback rc 0\n@@deploy-rollback run\nabc\n@@deploy-rollback rc 0\n');
    assert.deepEqual(seen, ['current', 'run'], 'not again at the end');
    const late: string[] = [];
    markerWatcher((name) => late.push(name)).finish('@@deploy-rollback proxy\n@@deploy-rollback rc 0\n@@deploy-rollback booted\n@@deploy-rollback rc 0\n');
    assert.deepEqual(late, ['proxy', 'booted'], 'a session that cannot stream reports them at the end');
  });

  it('runs concurrent sections at once in sh and bash, and reads each whole and in order however their lines interleave', () => {
    const script = `${concurrent([
      ['slow', 'echo a1; sleep 0.3; echo "a2  with  spaces"'],
      ['fast', 'echo b1; sleep 0.1; echo b2; (exit 3)'],
      ['empty', 'true'],
    ])}; ${section('after', 'echo c')}`;
    for (const shell of ['sh', 'bash']) {
      const started = Date.now();
      const stdout = execFileSync(shell, ['-c', script], { encoding: 'utf8' });
      const took = Date.now() - started;
      // Interleaved as written: b2 (0.1 s) before a2 (0.3 s).
      assert.ok(stdout.indexOf('b2') < stdout.indexOf('a2'), stdout);
      assert.ok(took < 1_000, `${shell}: ${took} ms, the sections ran one after another`);
      const sections = parseSections(stdout);
      assert.deepEqual([...sections.keys()], ['slow', 'fast', 'empty', 'after'], shell);
      assert.deepEqual(sections.get('slow'), { lines: ['a1', 'a2  with  spaces'], rc: 0 }, shell);
      assert.deepEqual(sections.get('fast'), { lines: ['b1', 'b2'], rc: 3 }, shell);
      assert.deepEqual(sections.get('empty'), { lines: [], rc: 0 }, shell);
      assert.deepEqual(sections.get('after'), { lines: ['c'], rc: 0 }, shell);
    }
  });
});
