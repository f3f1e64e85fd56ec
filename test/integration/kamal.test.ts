import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DeployRollbackApi } from '../../src/vscode/extension';
import type { AppNode, EnvironmentNode, HostContainerNode, HostErrorNode, ReleaseNode, TreeNode } from '../../src/vscode/tree/nodes';
import { requireHostsOrSkip, startHosts, type TestHosts } from '../hosts/harness';
import { activateExtension, escapeRegExp, settledChildren, waitFor } from './helpers';

const SERVICE = 'vsc';

describe('Kamal releases in VS Code on real hosts', function () {
  this.timeout(240_000);
  let api: DeployRollbackApi;
  let hosts: TestHosts;
  let dir: string;
  let configFile: string;
  const hostKeyPrompts: string[] = [];
  const confirmations: string[] = [];
  /** The release version the next release pick answers with. */
  let pickVersion: string | undefined;
  /** How the next confirmations with several buttons are answered, one entry each (null: Escape); else with the first button. */
  const choices: (string | null)[] = [];
  /** The labels each next multi-select leaves checked (null: Escape). */
  const multiSelects: (string[] | null)[] = [];
  /** Every such confirmation's buttons. */
  const buttons: string[][] = [];
  /** Every single pick's items, as `label | detail`. */
  const picked: string[][] = [];
  const settings = () => vscode.workspace.getConfiguration('deployRollback');

  before(async function () {
    requireHostsOrSkip(this);
    api = await activateExtension();
    hosts = await startHosts({ count: 2, service: SERVICE, images: [{ version: 'v1' }, { version: 'v2' }] });
    await hosts.seedKamalState({ service: SERVICE, versions: ['v1', 'v2'], running: 'v2' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drb-vscode-kamal-'));
    configFile = path.join(dir, 'config', 'deploy.yml');
    fs.mkdirSync(path.dirname(configFile), { recursive: true });
    fs.writeFileSync(
      configFile,
      [
        `service: ${SERVICE}`,
        `image: ${hosts.repository}`,
        'servers:',
        ...hosts.hosts.map((host) => `  - ${host.address}`),
        'ssh:',
        `  keys: [${JSON.stringify(hosts.clientKeyPath)}]`,
        '  keys_only: true',
        '  config: false',
        'deploy_timeout: 10',
        '',
      ].join('\n'),
    );
    api.testing.setPrompter({
      confirm: async (message, detail) => {
        if (message.startsWith('The authenticity of host')) {
          hostKeyPrompts.push(`${message}\n${detail}`);
          return true;
        }
        confirmations.push(`${message}\n${detail}`);
        return true;
      },
      choose: async (message, detail, actions) => {
        confirmations.push(`${message}\n${detail}`);
        buttons.push(actions);
        const answer = choices.length > 0 ? choices.shift()! : actions[0]!;
        if (answer === null) return undefined;
        assert.ok(actions.includes(answer), `"${answer}" is one of ${actions.join(', ')}`);
        return answer;
      },
      input: async () => undefined,
      pick: async (items) => {
        picked.push(items.map((item) => `${item.label} | ${item.detail ?? ''}`));
        return items.find((item) => (item.value as { release?: { version: string } } | undefined)?.release?.version === pickVersion);
      },
      pickMany: async (items) => {
        assert.ok(multiSelects.length > 0, 'a multi-select was expected');
        const keep = multiSelects.shift()!;
        return keep === null ? undefined : items.filter((item) => item.value !== undefined && keep.includes(item.label));
      },
    });
    await settings().update('kamal.configPaths', [configFile], vscode.ConfigurationTarget.Global);
    await api.refresh();
  });

  after(async () => {
    api?.testing.setPrompter(undefined);
    await settings().update('kamal.configPaths', undefined, vscode.ConfigurationTarget.Global);
    await api?.refresh();
    await hosts?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function app(): Promise<AppNode> {
    const roots = await api.tree.getChildren();
    const environment = roots.find((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === configFile);
    assert.ok(environment, 'the Kamal config is an environment');
    assert.equal(environment.environment.name, 'default');
    const children = await settledChildren(api, environment);
    const found = children.find((node): node is AppNode => node.kind === 'app');
    assert.ok(found, `an app under the environment, got ${children.map((node) => node.kind).join(', ')}`);
    return found;
  }

  async function releases(): Promise<ReleaseNode[]> {
    const children: TreeNode[] = await settledChildren(api, await app());
    return children.filter((node): node is ReleaseNode => node.kind === 'release');
  }

  it('shows releases with flags and the containers on each host', async () => {
    const list = await releases();
    assert.deepEqual(list.map((node) => [node.release.version, node.release.current, node.release.rollbackable]), [
      ['v2', true, false],
      ['v1', false, true],
    ]);
    for (const fingerprint of hosts.hosts.map((host) => host.hostKeyFingerprint)) {
      assert.ok(hostKeyPrompts.some((prompt) => prompt.includes(fingerprint)), `asked to trust ${fingerprint}`);
    }
    const containers = (await api.tree.getChildren(list[0])).filter((node): node is HostContainerNode => node.kind === 'hostContainer');
    assert.deepEqual(containers.map((node) => [node.container.host, node.container.state]).sort(), hosts.hosts.map((host) => [host.address, 'running']).sort());
    const item = api.tree.getTreeItem(containers[0]!);
    assert.equal(item.label, `${containers[0]!.container.host} · web`);
  });

  it('Release Stale Lock on the app row removes a lock directory without details after confirmation, leaves a lock naming its holder, and removes one naming a run on this machine that is gone', async () => {
    const lockDir = path.join(hosts.hosts[0]!.home, '.kamal', `lock-${SERVICE}`);
    fs.mkdirSync(lockDir, { recursive: true });
    try {
      await api.refresh();
      const locked = await app();
      assert.equal(locked.app.lock?.unreadable, true, JSON.stringify(locked.app.lock));
      assert.match(String(api.tree.getTreeItem(locked).contextValue), /^app\+kamal\b.*\+locked\b/);
      const asked = confirmations.length;
      const result = (await vscode.commands.executeCommand('deployRollback.releaseStaleLock', locked)) as { removed: boolean; message: string } | undefined;
      assert.equal(result?.removed, true, result?.message);
      assert.match(confirmations[asked] ?? '', /^Remove the stale deploy lock of vsc \(default\)\?\nThe lock directory has no details, so `kamal lock release` cannot remove it/);
      assert.equal(fs.existsSync(lockDir), false, 'the lock directory was removed');

      // A lock naming its holder is not stale here: left as it is.
      fs.mkdirSync(lockDir, { recursive: true });
      fs.writeFileSync(path.join(lockDir, 'details'), `${Buffer.from('Locked by: Grace at 2026-12-03T09:00:00Z\nVersion: v2\nMessage: Automatic deploy lock').toString('base64')}\n`);
      await api.refresh();
      const named = await app();
      assert.equal(named.app.lock?.holder, 'Grace');
      const refused = await vscode.commands.executeCommand('deployRollback.releaseStaleLock', named);
      assert.equal(refused, undefined);
      assert.ok(fs.existsSync(path.join(lockDir, 'details')), 'the named lock is kept');

      // A lock naming a Deploy Rollback run on this machine whose process has exited: stale, removed after confirmation.
      const gone = Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
      const machine = os.hostname().replace(/[^A-Za-z0-9._-]/g, '_');
      const message = `Automatic deploy lock: rollback to v1 by Deploy Rollback (pid ${gone} on ${machine})`;
      fs.writeFileSync(path.join(lockDir, 'details'), `${Buffer.from(`Locked by: Ada at 2026-12-03T09:00:00Z\nVersion: v1\nMessage: ${message}`).toString('base64')}\n`);
      await api.refresh();
      const killed = await app();
      assert.equal(killed.app.lock?.message, message);
      const askedAgain = confirmations.length;
      const removed = (await vscode.commands.executeCommand('deployRollback.releaseStaleLock', killed)) as { removed: boolean; message: string } | undefined;
      assert.equal(removed?.removed, true, removed?.message);
      assert.match(removed?.message ?? '', new RegExp(`the Deploy Rollback run \\(pid ${gone} on [^)]+\\) that took it is gone`));
      assert.match(confirmations[askedAgain] ?? '', new RegExp(`names a Deploy Rollback run \\(pid ${gone} on [^)]+\\) that is no longer running on this machine`));
      assert.equal(fs.existsSync(lockDir), false, 'the stale lock directory was removed');
    } finally {
      fs.rmSync(lockDir, { recursive: true, force: true });
      await api.refresh();
    }
  });

  it('opens a container\'s logs in a read-only editor', async () => {
    const v2 = (await releases()).find((node) => node.release.version === 'v2')!;
    const container = (await api.tree.getChildren(v2)).find((node): node is HostContainerNode => node.kind === 'hostContainer')!;
    await vscode.commands.executeCommand('deployRollback.showContainerLogs', container);
    const editor = vscode.window.activeTextEditor;
    assert.equal(editor?.document.uri.scheme, 'deploy-rollback');
    assert.ok(editor?.document.uri.path.includes(container.container.name), editor?.document.uri.toString());
    // What the container printed itself, as `docker logs` shows it.
    assert.match(editor!.document.getText(), /app v2 starting: httpd on :80/);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  it('rolls back from the release context command and the hosts switch', async () => {
    const v1 = (await releases()).find((node) => node.release.version === 'v1')!;
    const outcome = (await vscode.commands.executeCommand('deployRollback.rollbackToRelease', v1)) as { ok: boolean; message: string } | undefined;
    assert.ok(outcome?.ok, outcome?.message ?? 'no outcome: the command showed an error');
    assert.match(confirmations.at(-1)!, /from v2 to v1/);
    for (const host of hosts.hosts) {
      assert.equal(await hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v1`);
      const latest = await hosts.docker(host, ['image', 'inspect', '--format', '{{.Id}}', `${hosts.repository}:latest`]);
      const v1Image = await hosts.docker(host, ['image', 'inspect', '--format', '{{.Id}}', `${hosts.repository}:v1`]);
      assert.equal(latest.stdout, v1Image.stdout, `latest is v1 on ${host.name}`);
    }
    const after = await releases();
    assert.deepEqual(after.find((node) => node.release.current)?.release.version, 'v1');
  });

  it('Roll Back This Host to… on a container row rolls that host alone (a canary); the release then says "current on 1/2 hosts" and brings the other host to it', async () => {
    const v1 = (await releases()).find((node) => node.release.version === 'v1')!;
    const rows = (await api.tree.getChildren(v1)).filter((node): node is HostContainerNode => node.kind === 'hostContainer');
    const [canary, other] = hosts.hosts;
    const row = rows.find((node) => node.container.host === canary!.address)!;
    pickVersion = 'v2';
    try {
      const outcome = (await vscode.commands.executeCommand('deployRollback.rollbackHost', row)) as { ok: boolean; message: string; lines: string[] } | undefined;
      assert.ok(outcome?.ok, outcome?.message ?? 'no outcome: the command showed an error');
      assert.match(confirmations.at(-1)!, new RegExp(`\\(--hosts ${escapeRegExp(canary!.address)}; left as they are: ${escapeRegExp(other!.address)} web\\)`));
      assert.equal(await hosts.proxyTargetContainer(canary!, `${SERVICE}-web`), `${SERVICE}-web-v2`);
      assert.equal(await hosts.proxyTargetContainer(other!, `${SERVICE}-web`), `${SERVICE}-web-v1`);
      assert.ok(outcome.lines.includes(`Left as they were (outside --hosts ${canary!.address}): ${other!.address} (web)`), outcome.lines.join('\n'));
    } finally {
      pickVersion = undefined;
    }
    // The canary ran on the primary host: v2 is the app's current release, on 1 of its 2 hosts.
    const list = await releases();
    const v2 = list.find((node) => node.release.version === 'v2')!;
    assert.deepEqual(v2.release.runningOn, { hosts: [canary!.address], otherHosts: [other!.address], total: 2 });
    const item = api.tree.getTreeItem(v2);
    assert.match(String(item.description), /^current on 1\/2 hosts\b/);
    assert.match(String(item.contextValue), /^release\+kamal\b.*\+partial\b/);
    assert.match(String(api.tree.getTreeItem(list.find((node) => node.release.version === 'v1')!).description), /current on 1\/2 hosts/);
    // The palette's release pick says it too, and points from the partly current release to the rest (nothing picked: nothing runs).
    await vscode.commands.executeCommand('deployRollback.rollback', await app());
    const offered = picked.at(-1)!;
    assert.ok(offered.some((item) => /^\$\(circle-slash\) v2 \| Not pickable: current on 1\/2 hosts; its row's Bring the Other Hosts to This Release moves the rest$/.test(item)), offered.join('\n'));
    assert.ok(offered.some((item) => /^v1 \| current on 1\/2 hosts · /.test(item)), offered.join('\n'));
    // Then the rest: only the other host is planned and switched.
    const rest = (await vscode.commands.executeCommand('deployRollback.bringOtherHostsToRelease', v2)) as { ok: boolean; message: string } | undefined;
    assert.ok(rest?.ok, rest?.message ?? 'no outcome');
    assert.match(confirmations.at(-1)!, new RegExp(`\\(--hosts ${escapeRegExp(other!.address)}; left as they are: ${escapeRegExp(canary!.address)} web\\)`));
    for (const host of hosts.hosts) assert.equal(await hosts.proxyTargetContainer(host, `${SERVICE}-web`), `${SERVICE}-web-v2`);
    const after = (await releases()).find((node) => node.release.version === 'v2')!;
    assert.equal(after.release.runningOn, undefined, 'every host runs it now');
    assert.match(String(api.tree.getTreeItem(after).description), /^current(?! on)/);
  });

  it('the confirmation\'s "Only Some Roles or Hosts…" narrows the plan to the hosts left checked, confirmed again before anything runs', async () => {
    const [first, second] = hosts.hosts;
    const v1 = (await releases()).find((node) => node.release.version === 'v1')!;
    const before = buttons.length;
    choices.push('Only Some Roles or Hosts…', 'Roll Back');
    multiSelects.push(['web', second!.address]);
    const outcome = (await vscode.commands.executeCommand('deployRollback.rollbackToRelease', v1)) as { ok: boolean; message: string } | undefined;
    assert.ok(outcome?.ok, outcome?.message ?? 'no outcome: the command showed an error');
    const asked = buttons.slice(before);
    assert.equal(asked.length, 2, `two confirmations: ${JSON.stringify(asked)}`);
    assert.ok(asked.every((actions) => actions.includes('Only Some Roles or Hosts…')), JSON.stringify(asked));
    assert.doesNotMatch(confirmations.at(-2)!, /--hosts/);
    assert.match(confirmations.at(-1)!, new RegExp(`\\(--hosts ${escapeRegExp(second!.address)}; left as they are: ${escapeRegExp(first!.address)} web\\)`));
    assert.equal(await hosts.proxyTargetContainer(second!, `${SERVICE}-web`), `${SERVICE}-web-v1`);
    assert.equal(await hosts.proxyTargetContainer(first!, `${SERVICE}-web`), `${SERVICE}-web-v2`, 'the host unchecked is left as it was');
    // Unchecking every host is asked again; closing the list brings the confirmation back, and Escape there changes nothing.
    const whole = (await releases()).find((node) => node.release.version === 'v1')!;
    const asking = buttons.length;
    choices.push('Only Some Roles or Hosts…', null);
    multiSelects.push(['web'], null);
    const none = await vscode.commands.executeCommand('deployRollback.rollbackToRelease', whole);
    assert.equal(none, undefined);
    assert.equal(buttons.length - asking, 2, 'the confirmation came back after the list closed');
    assert.equal(multiSelects.length, 0, 'the list was asked again after every host was unchecked');
    assert.equal(await hosts.proxyTargetContainer(first!, `${SERVICE}-web`), `${SERVICE}-web-v2`, 'nothing ran');
  });

  it('a host that goes silent never holds the view: shown once at the app with its kind within the bound, the environment warns, its rows are marked stale, never running', async () => {
    const silent = hosts.hosts[1]!;
    await hosts.linkDown(silent);
    try {
      await api.refresh();
      const roots = await api.tree.getChildren();
      const environment = roots.find((node): node is EnvironmentNode => node.kind === 'environment' && node.environment.location === configFile)!;
      const started = Date.now();
      const first = await api.tree.getChildren(environment);
      assert.ok(Date.now() - started < 3000, `the environment answered after ${Date.now() - started} ms`);
      // While the silent host is waited for, the rows read before stay, marked, never a lone "Reading the hosts…".
      const shownApp = first.find((node): node is AppNode => node.kind === 'app');
      assert.ok(shownApp, `the app stays shown during the read: ${first.map((node) => node.kind).join(', ')}`);
      {
        assert.equal(shownApp.lastKnown?.state, 'reading', 'the app row is the one read before, marked');
        assert.match(String(api.tree.getTreeItem(shownApp).description), /^reading…/);
        const lastReleases = await api.tree.getChildren(shownApp);
        assert.ok(Date.now() - started < 3000, `the app answered after ${Date.now() - started} ms`);
        const marked = lastReleases.filter((node): node is ReleaseNode => node.kind === 'release');
        assert.ok(marked.length > 0 && marked.every((node) => node.lastKnown?.state === 'reading'), `last known releases marked reading: ${lastReleases.map((node) => `${node.kind} ${node.lastKnown?.state}`).join(', ')}`);
        const item = api.tree.getTreeItem(marked[0]!);
        assert.match(String(item.description), /^reading… · /);
        assert.equal(item.contextValue, 'release+lastKnown', 'no action on a row that may not be true now');
      }
      const appNode = (await settledChildren(api, environment)).find((node): node is AppNode => node.kind === 'app')!;
      const children = await settledChildren(api, appNode);
      assert.ok(Date.now() - started < 20_000, `the app answered after ${Date.now() - started} ms`);
      const errors = children.filter((node): node is HostErrorNode => node.kind === 'hostError');
      assert.deepEqual(errors.map((node) => [node.error.host, node.error.kind]), [[silent.address, 'unreachable']]);
      assert.match(String(api.tree.getTreeItem(errors[0]!).label), /unreachable/);
      const current = children.find((node): node is ReleaseNode => node.kind === 'release' && node.release.current)!;
      const rows = await api.tree.getChildren(current);
      assert.ok(!rows.some((node) => node.kind === 'hostError'), 'not repeated under every release');
      const silentRows = rows.filter((node): node is HostContainerNode => node.kind === 'hostContainer' && node.container.host === silent.address);
      assert.ok(silentRows.length > 0, 'what the last read saw there is still shown');
      for (const row of silentRows) {
        assert.ok(row.container.stale, 'marked stale');
        assert.match(String(api.tree.getTreeItem(row).description), /^stale: was \w+ at .* · host not answering$/);
      }
      const deadline = Date.now() + 10_000;
      while (!String(api.tree.getTreeItem(environment).description ?? '').includes('not read') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.match(String(api.tree.getTreeItem(environment).description), new RegExp(`${silent.address.replace(/\./g, '\\.')} not read`));
    } finally {
      await hosts.linkUp(silent);
      await api.refresh();
    }
  });

  // The Cancel button's handler (what its cancellation token calls); the UI journey kamal-faults clicks the button itself.
  it('Cancel during a rollback makes its notification show "Cancelling…" at once, stops within seconds, releases the lock and leaves every host as it was', async () => {
    const hooks = path.join(dir, '.kamal', 'hooks');
    const marker = path.join(dir, 'hook-started');
    fs.mkdirSync(hooks, { recursive: true });
    fs.writeFileSync(path.join(hooks, 'pre-app-boot'), `#!/bin/sh\necho $$ > ${JSON.stringify(marker)}\nexec sleep 60\n`, { mode: 0o755 });
    try {
      const before = await Promise.all(hosts.hosts.map((host) => hosts.proxyTargetContainer(host, `${SERVICE}-web`)));
      const target = (await releases()).find((node) => !node.release.current && node.release.rollbackable)!;
      const running = vscode.commands.executeCommand('deployRollback.rollbackToRelease', target) as Thenable<{ ok: boolean; message: string } | undefined>;
      const deadline = Date.now() + 60_000;
      while (!fs.existsSync(marker) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(fs.existsSync(marker), 'the pre-app-boot hook started');
      const lockDir = path.join(hosts.hosts[0]!.home, '.kamal', `lock-${SERVICE}`);
      assert.ok(fs.existsSync(lockDir), 'the rollback holds the lock while its hook runs');
      const cancelledAt = Date.now();
      const shown = api.testing.cancelRollbacks();
      assert.equal(shown.length, 1, `one rollback in flight: ${shown.join(' | ')}`);
      assert.match(shown[0]!, /^Cancelling…/, 'what the notification shows once Cancel returns');
      const outcome = await running;
      const took = Date.now() - cancelledAt;
      assert.ok(took < 5000, `stopped ${took} ms after Cancel`);
      assert.equal(outcome?.ok, false);
      assert.match(outcome?.message ?? '', /did not complete: cancelled before any host was changed/);
      assert.equal(fs.existsSync(lockDir), false, 'the lock was released');
      const pid = Number(fs.readFileSync(marker, 'utf8').trim());
      assert.ok(!fs.existsSync(`/proc/${pid}`) || /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), 'the hook was stopped');
      assert.deepEqual(await Promise.all(hosts.hosts.map((host) => hosts.proxyTargetContainer(host, `${SERVICE}-web`))), before);
    } finally {
      fs.rmSync(hooks, { recursive: true, force: true });
      fs.rmSync(marker, { force: true });
    }
  });

  it('Cancel while one host has gone silent mid-boot (link dropped, no reset): a clear answer within 20 s, that host unknown, the lock released', async () => {
    const hooks = path.join(dir, '.kamal', 'hooks');
    const marker = path.join(dir, 'hook-waiting');
    const go = path.join(dir, 'hook-go');
    fs.mkdirSync(hooks, { recursive: true });
    // The hook holds the boot until the link is down, so the silent host's boot exchange is in flight.
    fs.writeFileSync(path.join(hooks, 'pre-app-boot'), `#!/bin/sh\ntouch ${JSON.stringify(marker)}\nwhile [ ! -f ${JSON.stringify(go)} ]; do sleep 0.1; done\n`, { mode: 0o755 });
    const [answering, silent] = hosts.hosts as [(typeof hosts.hosts)[0], (typeof hosts.hosts)[0]];
    try {
      const target = (await releases()).find((node) => !node.release.current && node.release.rollbackable)!;
      const running = vscode.commands.executeCommand('deployRollback.rollbackToRelease', target) as Thenable<{ ok: boolean; message: string; lines: string[] } | undefined>;
      await waitFor(() => fs.existsSync(marker), { what: 'the pre-app-boot hook to start', timeoutMs: 60_000 });
      await hosts.linkDown(silent);
      fs.writeFileSync(go, '');
      await waitFor(async () => (await hosts.proxyTargetContainer(answering, `${SERVICE}-web`)) === `${SERVICE}-web-${target.release.version}`, { what: `${answering.name} to switch to ${target.release.version}`, timeoutMs: 60_000 });
      const cancelledAt = Date.now();
      const shown = api.testing.cancelRollbacks();
      assert.equal(shown.length, 1, `one rollback in flight: ${shown.join(' | ')}`);
      assert.match(shown[0]!, /^Cancelling…/, 'what the notification shows once Cancel returns');
      const outcome = await running;
      const took = Date.now() - cancelledAt;
      assert.ok(took < 20_000, `answered ${took} ms after Cancel`);
      assert.equal(outcome?.ok, false);
      const table = (outcome?.lines ?? []).join('\n');
      assert.match(table, new RegExp(`${silent.address.replace(/\./g, '\\.')} +web +\\S+ +${target.release.version} +unknown`), table);
      assert.equal(fs.existsSync(path.join(answering.home, '.kamal', `lock-${SERVICE}`)), false, 'the lock on the answering host was released');
    } finally {
      await hosts.linkUp(silent);
      fs.rmSync(hooks, { recursive: true, force: true });
      fs.rmSync(marker, { force: true });
      fs.rmSync(go, { force: true });
    }
  });
});
