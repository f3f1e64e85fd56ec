import { strict as assert } from 'node:assert';
import { chain, markerWatcher, parseSections, section } from '../../../src/core/kamal/sections';

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
});
