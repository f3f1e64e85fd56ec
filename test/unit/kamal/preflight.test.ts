import { strict as assert } from 'node:assert';
import { parseHostFacts, preflightScript } from '../../../src/core/kamal/rollback/preflight';
import { kamalConfig, role } from './rollback-fixtures';

describe('Kamal pre-flight reading', () => {
  const config = kamalConfig({ roles: [role('web', ['web-1'])] });
  const section = (name: string, lines: string[], rc = 0) => [`@@deploy-rollback ${name}`, ...lines, `@@deploy-rollback rc ${rc}`];
  const listed = (rows: [string, string, string][]) => rows.map(([id, name, state]) => `${id}\t${name}\t${state}\t2026-11-23 00:17:41 +0000 UTC`);

  it("asks docker for the latest image's active container and the role's containers, not for the target by name", () => {
    const script = preflightScript(config, 'web-1', true);
    // The first half of Kamal's current_running_version (test/cli/app_test.rb), as it is: by the latest image's id, the destination label empty.
    assert.ok(
      script.includes(
        "echo '@@deploy-rollback current web'; docker ps --latest --format '{{.Names}}' --filter label=service=chat --filter label=destination= --filter label=role=web" +
          " --filter status=running --filter status=restarting --filter ancestor=$(docker image ls --filter reference=localhost:5555/bars/app:latest --format '{{.ID}}');",
      ),
      script,
    );
    assert.ok(script.includes("docker container ls --all --filter label=service=chat --filter label=destination= --filter label=role=web --format '"), script);
    assert.doesNotMatch(script, /name=\^chat-web-/);
  });

  it("takes Kamal's current version from the latest image's container, else the newest active one in the list", () => {
    const rows = listed([
      ['c3', 'chat-web-v3', 'exited'],
      ['c2', 'chat-web-v2', 'running'],
      ['c1', 'chat-web-v1', 'running'],
    ]);
    const read = (current: string[]) =>
      parseHostFacts(config, 'web-1', false, [...section('list web', rows), ...section('current web', current), ...section('env web', ['yes']), ...section('images', ['v1', 'v2', 'v3'])].join('\n'), '');
    assert.equal(read(['chat-web-v1']).roles[0]?.current, 'v1', 'the latest image runs as v1');
    assert.equal(read([]).roles[0]?.current, 'v2', 'no container of the latest image: the newest active one');
    assert.deepEqual(read([]).roles[0]?.errors, []);
  });
});
