import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runContainer } from '../../../src/core/kamal/commands/app';
import { renderWords } from '../../../src/core/kamal/commands/kamal-shell';
import { parseKamalConfig } from '../../../src/core/kamal/config/read';
import { buildRoleStep } from '../../../src/core/kamal/rollback/steps';
import { chain, parseSections } from '../../../src/core/kamal/rollback/sections';

/** The cmds of issue 19, as a deploy.yml holds them: Kamal 2.12 boots every one. */
const CMDS: [yaml: string, cmd: string][] = [
  ['bin/rails server -b 0.0.0.0 -p ${PORT:-3000}', 'bin/rails server -b 0.0.0.0 -p ${PORT:-3000}'],
  [`sh -c "trap 'exit 0' TERM; while :; do sleep 1 & wait \\$!; done"`, `sh -c "trap 'exit 0' TERM; while :; do sleep 1 & wait \\$!; done"`],
  [`'bin/jobs --queue "$QUEUE"'`, 'bin/jobs --queue "$QUEUE"'],
  ['bin/run --files=*.rb', 'bin/run --files=*.rb'],
  [`'echo "a\\"b"'`, 'echo "a\\"b"'],
];

function configWith(cmdYaml: string) {
  return parseKamalConfig({ baseText: `service: chat\nimage: bars/app\nservers:\n  web: [web-1]\n  jobs:\n    hosts: [web-1]\n    cmd: ${cmdYaml}\n`, baseFile: '/app/config/deploy.yml' });
}

/** Runs an exchange in a real sh, with a `docker` first on PATH that only prints a container id. */
function runInSh(line: string): string {
  const bin = mkdtempSync(join(tmpdir(), 'fake-docker-'));
  try {
    writeFileSync(join(bin, 'docker'), '#!/bin/sh\necho 0123456789ab\n', { mode: 0o755 });
    return execFileSync('sh', ['-c', line], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: `${bin}:${process.env.PATH ?? ''}`, QUEUE: 'default' } });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

describe('Kamal cmd, as Kamal 2.12 renders it', () => {
  for (const [yaml, cmd] of CMDS) {
    it(`loads and renders ${cmd} as written, for the host's shell`, () => {
      const config = configWith(yaml);
      assert.deepEqual(config.problems.filter((problem) => problem.severity === 'error'), []);
      const jobs = config.roles.find((role) => role.name === 'jobs')!;
      assert.equal(jobs.cmd, cmd);
      const line = renderWords(runContainer(config, jobs, { host: 'web-1', version: 'v2', hostname: 'h' }));
      // Kamal's app.rb: `..., config.absolute_image, role.cmd` joined by spaces.
      assert.ok(line.endsWith(` --label service="chat" --label role="jobs" --label destination bars/app:v2 ${cmd}`), line);
    });
  }

  it('runs a cmd with shell syntax in its own sh -c inside an exchange, so the steps after it still run', () => {
    for (const cmd of ['bin/jobs # worker', 'bin/jobs; true', `sh -c "trap 'exit 0' TERM; while :; do sleep 1 & wait \\$!; done"`]) {
      const config = configWith(JSON.stringify(cmd));
      const jobs = config.roles.find((role) => role.name === 'jobs')!;
      const step = buildRoleStep(config, jobs, 'web-1', { to: 'v2', renameExisting: false });
      assert.ok(step.commands.runInExchange, cmd);
      assert.equal(step.commands.runInExchange, `sh -c '${step.commands.run.replace(/'/g, `'\\''`)}'`);
      const sections = parseSections(runInSh(chain([['current', 'true'], ['run', step.commands.runInExchange!], ['after', 'echo after']])));
      assert.equal(sections.get('after')?.lines[0], 'after', cmd);
      assert.equal(sections.get('run')?.rc, 0, cmd);
    }
  });

  it("gives the exchange the exit status Kamal's own SSH exec of the line would have", () => {
    for (const [cmd, rc] of [['bin/jobs; exit 3', 3], ['bin/jobs "unterminated', 2]] as const) {
      const config = configWith(JSON.stringify(cmd));
      const step = buildRoleStep(config, config.roles.find((role) => role.name === 'jobs')!, 'web-1', { to: 'v2', renameExisting: false });
      const sections = parseSections(runInSh(`${chain([['current', 'true'], ['run', step.commands.runInExchange!]])}; echo '@@deploy-rollback after'; echo after; echo "@@deploy-rollback rc $?"`));
      assert.equal(sections.get('run')?.rc, rc, cmd);
      assert.equal(sections.get('after')?.lines[0], 'after', cmd);
    }
  });

  it('sends a plain cmd as it is', () => {
    const config = configWith('bin/jobs --queue default');
    const step = buildRoleStep(config, config.roles.find((role) => role.name === 'jobs')!, 'web-1', { to: 'v2', renameExisting: false });
    assert.equal(step.commands.runInExchange, undefined);
    assert.ok(step.commands.run.endsWith(' bars/app:v2 bin/jobs --queue default'));
  });
});
