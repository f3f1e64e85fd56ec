/**
 * Two deployments of one service on the same hosts (the default one and `-d staging`), and a real
 * Kamal waiting for the deploy lock (`kamal deploy --lock-wait`), on real hosts through the real
 * SSH pool: what Kamal 2.12 reads and checks is what these tests read and check.
 * Run: npx mocha --config test/system/.mocharc.json test/system/kamal-destinations.test.ts
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentReporter } from '../../src/core/model';
import { loadKamalConfig } from '../../src/core/kamal/config/read';
import { executeKamalRollback, planKamalRollback } from '../../src/core/kamal/rollback';
import type { KamalConfig } from '../../src/core/kamal/config/types';
import type { InspectableSessionPool } from '../../src/core/ssh/pool';
import { requireHostsOrSkip, startHosts, type TestHost, type TestHosts } from '../hosts/harness';
import { realPool, sessionsFor, writeDeployYml } from './kamal-hosts';

const SERVICE = 'chat';
const STAGING = 'staging';

/** Kamal's cli/base.rb AUTOMATIC_DEPLOY_LOCK_MESSAGE: `--lock-wait` waits only for a lock whose status includes it. */
const AUTOMATIC_DEPLOY_LOCK_MESSAGE = 'Automatic deploy lock';

describe('Kamal: a destination deployment beside the default one, and a Kamal waiting for the lock (real hosts)', function () {
  this.timeout(240_000);
  let hosts: TestHosts;
  let host: TestHost;
  let root: string;
  let pool: InspectableSessionPool;

  before(async function () {
    requireHostsOrSkip(this);
    hosts = await startHosts({ count: 1, images: [{ version: 'v1' }, { version: 'v2' }] });
    host = hosts.hosts[0]!;
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'kamal-destinations-'));
    pool = realPool(hosts);
  });

  after(async () => {
    pool?.dispose();
    await hosts?.stop();
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  async function config(service: string, destination?: string): Promise<KamalConfig> {
    const file = await writeDeployYml(path.join(root, service), hosts, { service, beforeSsh: ['deploy_timeout: 10'] });
    if (destination) await fs.writeFile(path.join(path.dirname(file), `deploy.${destination}.yml`), 'x-destination: true\n');
    const loaded = await loadKamalConfig(file, destination, {});
    assert.deepEqual(loaded.problems.filter((problem) => problem.severity === 'error'), []);
    return loaded;
  }

  async function docker(args: string[]): Promise<string> {
    const result = await hosts.docker(host, args);
    assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
    return result.stdout.trim();
  }

  /** Name, state and image id of every container of the service, and the ids its latest tags point to. */
  async function snapshot(service: string): Promise<string> {
    const containers = await docker(['container', 'ls', '--all', '--filter', `label=service=${service}`, '--format', '{{.Names}} {{.State}} {{.Label "destination"}}']);
    const tags = await docker(['image', 'ls', '--format', '{{.Tag}} {{.ID}}', hosts.repository]);
    return `${containers.split('\n').sort().join('\n')}\n--\n${tags.split('\n').sort().join('\n')}`;
  }

  it('rolling back the default deployment reads its own current version, not staging\'s, and leaves staging untouched', async () => {
    // Both run v2 (the image `latest` and `latest-staging` point to); staging's container is the newer one,
    // so a query without `label=destination=` finds staging's container as the default's current version.
    await hosts.seedKamalState({ service: SERVICE, versions: ['v1', 'v2'], running: 'v2' });
    await hosts.seedKamalState({ service: SERVICE, destination: STAGING, versions: ['v1', 'v2'], running: 'v2' });
    const staged = await snapshot(SERVICE);
    const stagingOnly = (text: string) => text.split('\n').filter((line) => line.includes(`-${STAGING}-`) || line.startsWith('latest-staging ')).join('\n');
    const stagingProxy = await hosts.proxyState(host, `${SERVICE}-web-${STAGING}`);
    assert.equal(await hosts.proxyTargetContainer(host, `${SERVICE}-web-${STAGING}`), `${SERVICE}-web-${STAGING}-v2`);

    const defaultConfig = await config(SERVICE);
    const { sessions, commands } = sessionsFor(pool, defaultConfig);
    const plan = await planKamalRollback({ config: defaultConfig, sessions, targetVersion: 'v1', performer: 'system-test' });
    assert.equal(plan.from, 'v2', plan.lines.join('\n'));
    const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(result.ok, true, `${result.message}\n${result.lines.join('\n')}`);
    assert.deepEqual(
      result.hosts.map((entry) => [entry.serving, entry.result]),
      [['v1', 'rolled-back']],
      result.lines.join('\n'),
    );

    // The current-version query the run sent is Kamal's, with the empty destination label.
    const current = commands.find((entry) => entry.command.includes('docker ps --latest'))?.command ?? '';
    assert.match(current, /--filter label=service=chat --filter label=destination= --filter label=role=web /);
    assert.match(current, /--filter ancestor=\$\(docker image ls --filter reference=user\/app:latest --format/);

    // Default: v1 serves, its v2 (the version it read as current) stopped.
    assert.equal(await hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v1`);
    const states = await docker(['container', 'ls', '--all', '--filter', `label=service=${SERVICE}`, '--format', '{{.Names}} {{.State}}']);
    assert.match(states, new RegExp(`^${SERVICE}-web-v2 exited$`, 'm'));
    assert.match(states, new RegExp(`^${SERVICE}-web-v1 running$`, 'm'));
    // Staging: its containers, its latest tag and its proxy route exactly as before.
    assert.equal(stagingOnly(await snapshot(SERVICE)), stagingOnly(staged));
    assert.match(stagingOnly(staged), new RegExp(`^${SERVICE}-web-${STAGING}-v2 running ${STAGING}$`, 'm'));
    assert.deepEqual(await hosts.proxyState(host, `${SERVICE}-web-${STAGING}`), stagingProxy);
    assert.equal((await hosts.exec(host, `test -e .kamal/lock-${SERVICE} || echo free`)).stdout.trim(), 'free');
  });

  it('a real-Kamal-style `--lock-wait` waits for our rollback\'s lock, then takes it once the rollback released it', async () => {
    const service = 'waited';
    await hosts.seedKamalState({ service, versions: ['v1', 'v2'], running: 'v2' });
    const ours = await config(service);
    const lockDir = `.kamal/lock-${service}`;
    // Kamal's acquire_lock_with_wait (cli/base.rb), with its lock commands (commands/lock.rb) run over ssh:
    // mkdir; on "cannot create directory" read the status once, refuse unless it includes the automatic
    // message, else poll every interval until the deadline. The interval is 0.2 s here (Kamal: 15 s).
    const kamalLockWait = [
      'deadline=$(( $(date +%s) + 60 )); shown=""',
      'while :; do',
      `  if err=$(mkdir ${lockDir} 2>&1); then echo "Kamal details" | base64 > ${lockDir}/details; echo ACQUIRED; break; fi`,
      '  case "$err" in *"cannot create directory"*) ;; *) echo "UNEXPECTED $err"; exit 3 ;; esac',
      '  if [ -z "$shown" ]; then',
      `    status=$(stat ${lockDir} > /dev/null && cat ${lockDir}/details | base64 -d)`,
      '    echo "HELD BY: $status" | tr "\\n" " "; echo',
      `    case "$status" in *"${AUTOMATIC_DEPLOY_LOCK_MESSAGE}"*) ;; *) echo "Deploy lock held manually, not waiting"; exit 1 ;; esac`,
      '    shown=1',
      '  fi',
      '  [ "$(date +%s)" -lt "$deadline" ] || { echo "Timed out waiting for deploy lock"; exit 1; }',
      '  echo RETRY; sleep 0.2',
      'done',
      `rm ${lockDir}/details && rm -r ${lockDir} && echo RELEASED`,
    ].join('\n');

    let waiter: Promise<{ code: number | null; stdout: string }> | undefined;
    let waiterOutput = '';
    let releasedAt = 0;
    const { sessions } = sessionsFor(pool, ours, async (_host, command) => {
      // Once our lock is held and before the switch starts, a Kamal deploy with --lock-wait comes along.
      if (!waiter && command.includes('docker run')) {
        waiter = runOverSsh(hosts, host, kamalLockWait, (text) => (waiterOutput += text));
        await until(() => waiterOutput.includes('RETRY'), 20_000, () => `the waiting Kamal never retried: ${waiterOutput}`);
      }
      if (command.includes(`rm ${lockDir}/details`)) releasedAt = Date.now();
    });
    const plan = await planKamalRollback({ config: ours, sessions, targetVersion: 'v1', performer: 'system-test', takeLock: true });
    const result = await executeKamalRollback(plan, { sessions, reporter: silentReporter, runHooks: false });
    assert.equal(result.ok, true, `${result.message}\n${result.lines.join('\n')}`);
    assert.ok(waiter, 'the waiting Kamal was started while our lock was held');
    const waited = await waiter;
    assert.equal(waited.code, 0, waited.stdout);
    const lines = waited.stdout.split('\n');
    assert.match(lines[0] ?? '', /^HELD BY: Locked by: system-test at \S+ Version: v1 Message: Automatic deploy lock: rollback to v1 by Deploy Rollback/, waited.stdout);
    assert.doesNotMatch(waited.stdout, /held manually/);
    assert.ok(lines.filter((line) => line === 'RETRY').length >= 1, waited.stdout);
    assert.ok(lines.indexOf('ACQUIRED') > lines.indexOf('RETRY'), waited.stdout);
    assert.ok(releasedAt > 0, 'our run released its lock');
    assert.equal(lines.at(-2), 'RELEASED', waited.stdout);
    assert.equal(await hosts.proxyTargetContainer(host, `${service}-web`), `${service}-web-v1`);
    assert.equal((await hosts.exec(host, `test -e ${lockDir} || echo free`)).stdout.trim(), 'free');
  });
});

function runOverSsh(hosts: TestHosts, host: TestHost, script: string, onOutput: (text: string) => void): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', ['-F', hosts.sshConfigPath, host.name, 'sh', '-c', quoteForRemote(script)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      onOutput(chunk.toString());
    });
    child.stderr.on('data', (chunk: Buffer) => onOutput(chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

function quoteForRemote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

async function until(condition: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(describe());
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
