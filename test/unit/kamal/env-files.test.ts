import { strict as assert } from 'node:assert';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { execFileSync } from 'node:child_process';
import { agreeToWriteEnvFiles, executeKamalRollback, planKamalRollback } from '../../../src/core/kamal/rollback';

import { differingKeys, envFileDigest, envFileHashes, expectedEnvFile, lineHash, parseEnvFileHashes, renderEnvFile, secretKeysFor, textDigest } from '../../../src/core/kamal/commands/env-file';
import { parseSecretsFile, resolveSecrets, SecretText, UNRESOLVED, type SecretValue } from '../../../src/core/kamal/config/secrets';
import { emptyConfig } from '../../../src/core/kamal/config/read';
import { FakeHosts, kamalConfig, recentRead, RecordingReporter, role } from './rollback-fixtures';
import type { KamalInventory } from '../../../src/core/kamal/hosts/inventory';
import type { KamalConfig } from '../../../src/core/kamal/config/types';

async function values(text: string, env: NodeJS.ProcessEnv = {}, run?: (command: string) => Promise<string>): Promise<Record<string, string | symbol>> {
  return Object.fromEntries((await parseSecretsFile(text, env, run)).values);
}

describe('Kamal env files', () => {
  describe('Kamal::EnvFile rendering (test/env_file_test.rb)', () => {
    it('writes KEY=value lines, "\\n" when empty, escapes as Ruby dump does', () => {
      assert.equal(renderEnvFile([['foo', 'bar'], ['baz', 'haz']]), 'foo=bar\nbaz=haz\n');
      assert.equal(renderEnvFile([]), '\n');
      assert.equal(renderEnvFile([['foo', 'hello\\nthere']]), 'foo=hello\\\\nthere\n');
      assert.equal(renderEnvFile([['foo', 'hello\nthere']]), 'foo=hello\\nthere\n');
      // Double quotes and # are literal in docker env files; non-ASCII is kept as it is.
      assert.equal(renderEnvFile([['A', 'x"y#{z} é\t\x01\x7f']]), 'A=x"y#{z} é\\t\\x01\\x7F\n');
      assert.equal(renderEnvFile([['A', '\\#x']]), 'A=\\#x\n');
    });
  });

  describe('.kamal/secrets parsing (dotenv 3, overwrite: true)', () => {
    it('reads plain, quoted, exported and commented values', async () => {
      assert.deepEqual(await values('A=1\nexport B="two words" # note\nC=\'single $A\'\n# comment\nD: colon\nE=unquoted value  \n'), {
        A: '1',
        B: 'two words',
        C: 'single $A',
        D: 'colon',
        E: 'unquoted value',
      });
    });

    it('substitutes $VAR and ${VAR}, the file winning over ENV (secrets_test.rb)', async () => {
      assert.deepEqual(await values('SECRET1=ABC\nSECRET2=${SECRET1}DEF'), { SECRET1: 'ABC', SECRET2: 'ABCDEF' });
      assert.deepEqual(await values('SECRET1=$SECRET1', { SECRET1: 'ABC' }), { SECRET1: 'ABC' });
      assert.deepEqual(await values('SECRET1=DEF', { SECRET1: 'ABC' }), { SECRET1: 'DEF' });
      assert.deepEqual(await values('A=\\$HOME\nB=$UNSET-x'), { A: '$HOME', B: '-x' });
    });

    it('expands \\n in double quotes only', async () => {
      assert.deepEqual(await values('A="l1\\nl2"\nB=\'l1\\nl2\''), { A: 'l1\nl2', B: 'l1\\nl2' });
    });

    it('runs $(...) only through the runner given, and leaves the value unresolved without one', async () => {
      assert.deepEqual(await values('SECRET=$(echo ABC)\nOTHER=$SECRET-x\nPLAIN=1'), { SECRET: UNRESOLVED, OTHER: UNRESOLVED, PLAIN: '1' });
      const ran: string[] = [];
      const run = async (command: string) => {
        ran.push(command);
        return 'ABC\n';
      };
      assert.deepEqual(await values('SECRET=$(echo ABC)\nKS=$(kamal secrets extract X $(echo y))\nESC=\\$(not run)', {}, run), { SECRET: 'ABC', KS: 'ABC', ESC: '$(not run)' });
      assert.deepEqual(ran, ['echo ABC', 'kamal secrets extract X $(echo y) --inline']);
    });

    it('reads secrets-common then secrets[.D] from secrets_path, asking before any command runs', async () => {
      const root = await mkdtemp(join(tmpdir(), 'dr-secrets-'));
      try {
        await mkdir(join(root, '.kamal'));
        await writeFile(join(root, '.kamal/secrets-common'), 'SECRET=GHI\nSECRET2=JKL\n');
        await writeFile(join(root, '.kamal/secrets'), 'SECRET=ABC\n');
        await writeFile(join(root, '.kamal/secrets.dest'), 'SECRET=DEF\nCMD=$(printf x; printf y)\n');
        const plain = await resolveSecrets({ projectRoot: root, processEnv: {} });
        assert.deepEqual(plain.files, ['.kamal/secrets-common', '.kamal/secrets']);
        assert.equal(plain.lookup('SECRET')?.toString(), '[secret]');
        assert.equal((plain.lookup('SECRET') as SecretText).reveal(), 'ABC');
        assert.equal((plain.lookup('SECRET2') as SecretText).reveal(), 'JKL');
        const asked: string[][] = [];
        const refused = await resolveSecrets({ projectRoot: root, destination: 'dest', processEnv: {}, allowCommands: (files) => (asked.push(files), false) });
        assert.deepEqual(asked, [['.kamal/secrets.dest']]);
        assert.equal(refused.lookup('CMD'), UNRESOLVED);
        assert.deepEqual(refused.unresolved, ['CMD']);
        const allowed = await resolveSecrets({ projectRoot: root, destination: 'dest', processEnv: { PATH: process.env.PATH }, allowCommands: () => true });
        assert.equal((allowed.lookup('CMD') as SecretText).reveal(), 'xy');
        assert.equal((allowed.lookup('SECRET') as SecretText).reveal(), 'DEF');
        await writeFile(join(root, '.kamal/secrets.slow'), 'S=$(sleep 5)\n');
        const started = Date.now();
        await assert.rejects(resolveSecrets({ projectRoot: root, destination: 'slow', processEnv: { PATH: process.env.PATH }, allowCommands: () => true, commandTimeoutMs: 200 }), /A command in \.kamal\/secrets\.slow did not finish within/);
        assert.ok(Date.now() - started < 4000, 'the bound ends the command');
        await writeFile(join(root, '.kamal/secrets.fail'), 'S=$(echo hunter2; echo hunter2 >&2; exit 3)\n');
        await assert.rejects(resolveSecrets({ projectRoot: root, destination: 'fail', processEnv: { PATH: process.env.PATH }, allowCommands: () => true }), (error: Error) => {
          assert.match(error.message, /failed \(exit 3; its output is not shown/);
          assert.ok(!error.message.includes('hunter2'), 'no output in the error');
          return true;
        });
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    });

    it('never shows a secret value when printed, inspected or serialised', () => {
      const secret = new SecretText('hunter2');
      assert.equal(`${secret}`, '[secret]');
      assert.equal(JSON.stringify({ secret }), '{"secret":"[secret]"}');
      assert.ok(!inspect({ secret }).includes('hunter2'));
    });
  });

  describe('what Kamal writes per role and host', () => {
    it('merges root, role and host tag secrets with aliases, in Kamal order', () => {
      const config = {
        ...emptyConfig('/p/config/deploy.yml'),
        raw: {
          env: { secret: ['DB_PASSWORD', 'API_KEY:API_KEY_PROD'], tags: { eu: { secret: ['EU_TOKEN'] }, us: { secret: ['US_TOKEN'] } } },
          servers: { web: { hosts: ['h1'], env: { secret: ['WEB_ONLY', 'DB_PASSWORD'] } } },
        },
      };
      const web = { name: 'web', hostTags: { h1: ['eu'] } };
      assert.deepEqual([...secretKeysFor(config, web, 'h1')], [['DB_PASSWORD', 'DB_PASSWORD'], ['API_KEY', 'API_KEY_PROD'], ['WEB_ONLY', 'WEB_ONLY'], ['EU_TOKEN', 'EU_TOKEN']]);
      assert.deepEqual([...secretKeysFor(config, web, 'h2').keys()], ['DB_PASSWORD', 'API_KEY', 'WEB_ONLY']);
    });

    it('hashes each host line with the nonce and names differing keys only', () => {
      const script = envFileHashes({ service: 'chat', destination: 'production' }, 'web', 'abc123');
      assert.equal(
        script,
        'if test -f .kamal/apps/chat-production/env/roles/web.env; then echo yes; while IFS= read -r l || [ -n "$l" ]; do ' +
          `case "$l" in ''|'#'*) continue;; *=*) k=\${l%%=*}; case "$k" in ''|*[!A-Za-z0-9_.-]*) k='?';; esac;; *) k='?';; esac; ` +
          `printf '%s\\t' "$k"; printf '%s\\n%s' abc123 "$l" | sha256sum | cut -c1-64; done < .kamal/apps/chat-production/env/roles/web.env; else echo no; fi`,
      );
      const table: Record<string, SecretValue> = { A: new SecretText('new'), B: new SecretText('same'), C: UNRESOLVED };
      const secrets = { files: [], unresolved: [], commandsRan: false, lookup: (name: string): SecretValue | undefined => table[name] };
      const expected = expectedEnvFile({ raw: { env: { secret: ['A', 'B', 'C', 'D'] } } }, { name: 'web', hostTags: {} }, 'h1', secrets);
      assert.deepEqual(expected.missing, ['D']);
      const host = parseEnvFileHashes(['yes', `A\t${lineHash('n', 'A=old')}`, `B\t${lineHash('n', 'B=same')}`, `OLD\t${lineHash('n', 'OLD=x')}`, `?\t${lineHash('n', 'a stray line')}`]);
      assert.ok(host);
      assert.deepEqual(differingKeys(expected, host, 'n'), { differ: ['A', 'OLD', '(a line that is not KEY=value)'], notCompared: ['C'] });
      assert.equal(parseEnvFileHashes(['yes', 'A\t']), undefined, 'no sha256sum: not comparable');
    });
  });

  it('digests the whole env file after the nonce in one process, as textDigest does locally; no file says no', async () => {
    const config = { service: 'chat', destination: 'production' };
    assert.equal(
      envFileDigest(config, 'web', 'abc123'),
      "if test -f .kamal/apps/chat-production/env/roles/web.env; then { printf '%s\\n' abc123; cat .kamal/apps/chat-production/env/roles/web.env; } | sha256sum | cut -c1-64; else echo no; fi",
    );
    const home = await mkdtemp(join(tmpdir(), 'dr-envdigest-'));
    try {
      const run = (script: string) => execFileSync('sh', ['-c', script], { cwd: home, encoding: 'utf8' }).trim();
      assert.equal(run(envFileDigest(config, 'web', 'abc123')), 'no');
      await mkdir(join(home, '.kamal/apps/chat-production/env/roles'), { recursive: true });
      const text = "DB_PASSWORD=p@ss w'rd\nRAILS_MASTER_KEY=mk\n";
      await writeFile(join(home, '.kamal/apps/chat-production/env/roles/web.env'), text);
      assert.equal(run(envFileDigest(config, 'web', 'abc123')), textDigest('abc123', text));
      assert.notEqual(run(envFileDigest(config, 'web', 'other')), textDigest('abc123', text), 'salted: another nonce, another digest');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  describe('planning and running', () => {
    let root: string;
    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'dr-envplan-'));
      await mkdir(join(root, '.kamal'));
      await mkdir(join(root, 'config'));
    });
    afterEach(() => rm(root, { recursive: true, force: true }));

    function setup() {
      const config = kamalConfig({ file: join(root, 'config/deploy.yml'), raw: { env: { secret: ['DB_PASSWORD', 'RAILS_MASTER_KEY'] } }, roles: [role('web', ['web-1', 'web-2'])] });
      const fakes = new FakeHosts(['web-1', 'web-2']);
      for (const host of fakes.hosts.values()) {
        host.seed('web', ['v1', 'v2', 'v3'], 'v3');
        host.envContents.set('web', 'DB_PASSWORD=old-pw\nRAILS_MASTER_KEY=mk\n');
      }
      return { config, fakes };
    }

    it('says which keys differ, never a value, and writes them only when agreed', async () => {
      await writeFile(join(root, '.kamal/secrets'), 'DB_PASSWORD=rotated-pw\nRAILS_MASTER_KEY=mk\n');
      const { config, fakes } = setup();
      fakes.hosts.get('web-2')!.envContents.set('web', 'DB_PASSWORD=rotated-pw\nRAILS_MASTER_KEY=mk\n');
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', envFiles: {} });
      const env = plan.detail.envFiles!;
      assert.deepEqual(env.differences.map((entry) => [entry.host, entry.role, entry.path, entry.keys]), [['web-1', 'web', '.kamal/apps/chat/env/roles/web.env', ['DB_PASSWORD']]]);
      assert.equal(env.write, false);
      const text = [...plan.lines, ...(plan.overview ?? [])].join('\n');
      assert.match(text.replace(/\s+/g, ' '), /differ from what Kamal would write from the current config and \.kamal\/secrets, in the keys web: DB_PASSWORD on web-1\. They are kept/);
      assert.match(plan.overview!.join('\n'), /^Env files differ from Kamal's \(web: DB_PASSWORD on web-1\): kept as they are\.$/m);
      for (const shown of [text, JSON.stringify(plan.detail), inspect(plan, { depth: 10 })]) {
        assert.ok(!shown.includes('rotated-pw') && !shown.includes('old-pw'), 'no value anywhere');
      }
      // One exchange per host still: the hashes come with the checks.
      for (const host of fakes.hosts.values()) assert.equal(host.commands.length, 1);

      agreeToWriteEnvFiles(plan);
      assert.equal(plan.detail.envFiles!.write, true);
      assert.match(plan.lines.join(' ').replace(/\s+/g, ' '), /they are written \(mode 0600\) before any switch, so v2 boots with the current values/);
      assert.ok(plan.lines.includes('  [sftp web-1] write .kamal/apps/chat/env/roles/web.env (mode 0600) as Kamal renders it; keys that differ: DB_PASSWORD'));
      const reporter = new RecordingReporter();
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter, runHooks: false });
      assert.equal(result.ok, true, result.message);
      const written = fakes.hosts.get('web-1')!.uploads.filter((upload) => upload.content !== undefined);
      assert.deepEqual(written, [{ path: '.kamal/apps/chat/env/roles/web.env', mode: 0o600, content: 'DB_PASSWORD=rotated-pw\nRAILS_MASTER_KEY=mk\n' }]);
      assert.ok(fakes.hosts.get('web-1')!.uploads.some((upload) => upload.chmod && upload.mode === 0o600));
      assert.equal(fakes.hosts.get('web-2')!.uploads.length, 0, 'an equal file is left alone');
      assert.ok(fakes.hosts.get('web-1')!.commands.includes('mkdir -p .kamal/apps/chat/env/roles'));
      assert.ok(!JSON.stringify(reporter).includes('rotated-pw'), 'the run log holds no value');
    });

    describe('from a tree read of the last minute', () => {
      /** The tree's read of the fakes, with each env file's digest as the inventory prints it. */
      function treeRead(config: KamalConfig, fakes: FakeHosts): KamalInventory {
        const read = recentRead(config, fakes);
        read.envNonce = 'tree-nonce';
        for (const host of read.hosts) {
          const text = fakes.get(host.host).envContents.get('web');
          host.envDigests = { web: text === undefined ? null : textDigest('tree-nonce', text) };
        }
        return read;
      }

      it('plans without an exchange when every env file is as Kamal would write it', async () => {
        await writeFile(join(root, '.kamal/secrets'), 'DB_PASSWORD=old-pw\nRAILS_MASTER_KEY=mk\n');
        const { config, fakes } = setup();
        const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', envFiles: {}, recentRead: treeRead(config, fakes) });
        for (const host of fakes.hosts.values()) assert.equal(host.commands.length, 0, `${host.host} was read again: ${host.commands.join(' | ')}`);
        assert.deepEqual(plan.detail.envFiles!.differences, []);
        assert.deepEqual(plan.detail.envFiles!.notCompared, []);
        assert.match(plan.lines[0], /^Planned from the hosts as read at /);
      });

      it('stops the run, nothing changed, when a file compared from the read changed before the lock was taken', async () => {
        await writeFile(join(root, '.kamal/secrets'), 'DB_PASSWORD=old-pw\nRAILS_MASTER_KEY=mk\n');
        const { config, fakes } = setup();
        const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', envFiles: {}, recentRead: treeRead(config, fakes) });
        assert.deepEqual(plan.detail.envFiles!.compared?.files.map((file) => file.host), ['web-1', 'web-2']);
        fakes.get('web-2').envContents.set('web', 'DB_PASSWORD=edited-on-the-host\nRAILS_MASTER_KEY=mk\n');
        const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
        assert.equal(result.ok, false);
        assert.match(result.message, /Nothing was changed: the hosts no longer fit the confirmed plan: the env file of web on web-2 \(\.kamal\/apps\/chat\/env\/roles\/web\.env\) changed since it was compared/);
        for (const host of fakes.hosts.values()) assert.deepEqual(host.running(), ['chat-web-v3'], host.host);
        assert.equal(fakes.get('web-1').lock, undefined, 'lock released');
        // The lock exchange asks for the digest alone: no per-line hashing on the run's path.
        const relock = fakes.get('web-2').commands[0]!;
        assert.match(relock, /\| sha256sum \| cut -c1-64; else echo no; fi/);
        assert.doesNotMatch(relock, /read -r l \|\| \[ -n "\$l" \]/);
      });

      it('reads the hosts for the keys when a digest differs (a rotated secret), and says which', async () => {
        await writeFile(join(root, '.kamal/secrets'), 'DB_PASSWORD=rotated-pw\nRAILS_MASTER_KEY=mk\n');
        const { config, fakes } = setup();
        const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', envFiles: {}, recentRead: treeRead(config, fakes) });
        for (const host of fakes.hosts.values()) assert.equal(host.commands.length, 1, host.host);
        assert.deepEqual(plan.detail.envFiles!.differences.map((entry) => [entry.host, entry.keys]), [['web-1', ['DB_PASSWORD']], ['web-2', ['DB_PASSWORD']]]);
      });

      it('refuses from the read alone when it saw no env file, as the pre-flight would', async () => {
        await writeFile(join(root, '.kamal/secrets'), 'DB_PASSWORD=old-pw\nRAILS_MASTER_KEY=mk\n');
        const { config, fakes } = setup();
        const read = treeRead(config, fakes);
        read.hosts[1]!.envDigests = { web: null };
        // Not as Kamal would write it: the hosts are read, and the pre-flight names the missing file.
        fakes.get('web-2').envFiles.delete('web');
        await assert.rejects(planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', envFiles: {}, recentRead: read }), /role env file is missing on web-2/);
      });
    });

    it('checks with the lock that no compared file changed since the plan; a file it was agreed to write may have', async () => {
      await writeFile(join(root, '.kamal/secrets'), 'DB_PASSWORD=rotated-pw\nRAILS_MASTER_KEY=mk\n');
      const { config, fakes } = setup();
      fakes.get('web-2').envContents.set('web', 'DB_PASSWORD=rotated-pw\nRAILS_MASTER_KEY=mk\n');
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', envFiles: { write: true } });
      assert.deepEqual(plan.detail.envFiles!.differences.map((entry) => entry.host), ['web-1']);
      // web-1's file is replaced by the run anyway; web-2's was equal when compared and must still be.
      fakes.get('web-1').envContents.set('web', 'DB_PASSWORD=someone-else\n');
      const ok = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(ok.ok, true, ok.message);

      const again = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v3', performer: 'ada', envFiles: {} });
      fakes.get('web-2').envContents.set('web', 'DB_PASSWORD=edited\n');
      const refused = await executeKamalRollback(again, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(refused.ok, false);
      assert.match(refused.message, /the env file of web on web-2 .* changed since it was compared/);
    });

    it('keeps host files when not agreed, and says what was not compared', async () => {
      await writeFile(join(root, '.kamal/secrets'), 'DB_PASSWORD=$(echo rotated)\n');
      const { config, fakes } = setup();
      const asked: string[][] = [];
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', envFiles: { allowCommands: (files) => (asked.push(files), false) } });
      assert.deepEqual(asked, [['.kamal/secrets']]);
      const env = plan.detail.envFiles!;
      assert.deepEqual(env.differences, []);
      assert.equal(env.notCompared.length, 2);
      assert.match(env.notCompared[0], /^DB_PASSWORD come from commands in \.kamal\/secrets that were not run/);
      assert.match(env.notCompared[1], /no secrets file defines RAILS_MASTER_KEY/);
      const result = await executeKamalRollback(plan, { sessions: fakes.sessions, reporter: new RecordingReporter(), runHooks: false });
      assert.equal(result.ok, true);
      for (const host of fakes.hosts.values()) assert.equal(host.uploads.length, 0);
    });

    it('writes when agreed in advance (CLI --write-env-files) and the file is missing a key', async () => {
      await writeFile(join(root, '.kamal/secrets'), 'DB_PASSWORD=old-pw\nRAILS_MASTER_KEY=mk\nNEW_KEY=n\n');
      const { config, fakes } = setup();
      config.raw = { env: { secret: ['DB_PASSWORD', 'RAILS_MASTER_KEY', 'NEW_KEY'] } };
      const plan = await planKamalRollback({ config, sessions: fakes.sessions, targetVersion: 'v2', performer: 'ada', envFiles: { write: true } });
      assert.deepEqual(plan.detail.envFiles!.differences.map((entry) => entry.keys), [['NEW_KEY'], ['NEW_KEY']]);
      assert.ok(plan.lines.some((line) => line.startsWith('  [sftp web-2] write .kamal/apps/chat/env/roles/web.env (mode 0600)')));
    });
  });
});
