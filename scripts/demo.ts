// `npm run demo`: the product on built-in sample data in a real VS Code.
// Builds and packages the extension, creates a sample workspace (a Gimlet-format gitops repo
// with a bare remote, and a Kamal app on real test hosts when root and Docker allow), installs
// the .vsix into code-server and prints the URL. `--desktop` opens desktop VS Code instead when
// `code` is on PATH. Ctrl-C tears everything down: code-server, the test hosts and the temp
// folder (workspace, remote, SSH key). code-server's own output goes to a log file in it.
// DEPLOY_ROLLBACK_VSIX: use that package instead of building one.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSampleWorkspace, type SampleWorkspace } from '../test/fixtures/sample-workspace';

interface CodeServerModule {
  startCodeServer(options: {
    userDataDir: string;
    extensionsDir: string;
    folder?: string;
    disableWorkspaceTrust?: boolean;
    env?: Record<string, string>;
    port?: number;
    quiet?: boolean;
    onOutput?: (line: string) => void;
  }): Promise<{ url: string; stop(): Promise<void> }>;
  installVsix(vsix: string, extensionsDir: string, options?: { userDataDir?: string }): Promise<void>;
}

const repoRoot = path.resolve(__dirname, '..');
const say = (line: string) => console.log(`[demo] ${line}`);

function quoteForShell(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

async function main(): Promise<void> {
  const desktop = process.argv.includes('--desktop');
  const noKamal = process.argv.includes('--no-kamal');
  const portArg = process.argv.indexOf('--port');
  const port = portArg > 0 ? Number(process.argv[portArg + 1]) : undefined;

  let vsix = process.env.DEPLOY_ROLLBACK_VSIX;
  if (!vsix) {
    say('building and packaging the extension (npm run package)');
    const pack = spawnSync('npm', ['run', '--silent', 'package'], { cwd: repoRoot, stdio: 'inherit' });
    if (pack.status !== 0) throw new Error('npm run package failed');
    vsix = path.join(repoRoot, 'deploy-rollback.vsix');
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-rollback-demo-'));
  let workspace: SampleWorkspace | undefined;
  let stopServer: (() => Promise<void>) | undefined;
  let stopping = false;
  const teardown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('tearing down');
    await stopServer?.().catch(() => {});
    await workspace?.stop().catch((error: Error) => say(`test hosts: ${error.message}`));
    fs.rmSync(dir, { recursive: true, force: true });
    say(`removed ${dir}`);
    process.exit(code);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = () => void teardown(0);
  for (const signal of signals) process.on(signal, onSignal);

  try {
    const before = new Map(signals.map((signal) => [signal, process.listeners(signal)]));
    // Versions are commit shas of the sample app repository, as `kamal deploy` makes them by default.
    workspace = await createSampleWorkspace(dir, { kamal: !noKamal, log: say, kamalVersions: 'commits' });
    // The hosts harness exits on a signal as soon as its hosts are down, before our clean-up
    // could remove the temp folder; its own 'exit' hook still runs for whatever we leave.
    for (const signal of signals) {
      for (const listener of process.listeners(signal)) if (!before.get(signal)!.includes(listener)) process.removeListener(signal, listener);
    }
    if (workspace.hosts) {
      const subjects = workspace.kamalVersions.map((version) => `${version.slice(0, 7)} "${workspace!.appRepo.commits.find((commit) => commit.sha === version)?.subject ?? '?'}"`);
      say(`Kamal app "shop" on ${workspace.hosts.hosts.length} test hosts: ${workspace.hosts.hosts.map((host) => host.address).join(', ')} (${subjects.slice(0, -1).join(', ')} exited; ${subjects.at(-1)} running)`);
      say(`its code: ${workspace.appRepo.root} (a git repository; each version is one of its commits)`);
      // Where to look when the view says something surprising: what the tree reads is there.
      for (const host of workspace.hosts.hosts.filter((candidate) => !candidate.jumpOnly)) {
        say(`host ${host.address}: its docker holds the containers and kamal-proxy; ${host.home}/.kamal holds the lock and the audit log`);
      }
    } else {
      say(`No Kamal part in this demo: ${workspace.kamalSkipped} Showing the gitops part only.`);
    }

    if (desktop) {
      if (!onPath('code')) throw new Error('--desktop needs the `code` command on PATH (VS Code: "Shell Command: Install \'code\' command in PATH").');
      spawnSync('code', ['--install-extension', vsix, '--force'], { stdio: 'inherit' });
      say(`opening ${workspace.folder} in desktop VS Code (HOME=${workspace.home} so the test hosts' keys are known)`);
      spawn('code', ['--new-window', '--wait', workspace.folder], { stdio: 'inherit', env: { ...process.env, HOME: workspace.home } }).on('exit', () => void teardown(0));
      return;
    }

    const codeServer = (await import(path.join(repoRoot, 'scripts', 'code-server.mjs'))) as CodeServerModule;
    const userDataDir = path.join(dir, 'user-data');
    const extensionsDir = path.join(dir, 'extensions');
    fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
    // Settings of the demo's own profile: open straight on the view, show debug lines in the output.
    fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({ 'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false }, null, 2));
    say('installing the .vsix into code-server');
    await codeServer.installVsix(vsix, extensionsDir, { userDataDir });
    const logFile = path.join(dir, 'code-server.log');
    const server = await codeServer.startCodeServer({
      userDataDir,
      extensionsDir,
      folder: workspace.folder,
      disableWorkspaceTrust: true,
      env: { HOME: workspace.home },
      port,
      quiet: true,
      onOutput: (line: string) => fs.appendFileSync(logFile, `${line}\n`),
    });
    stopServer = () => server.stop();
    const url = `${server.url.replace(/\/$/, '')}/?folder=${encodeURIComponent(workspace.folder)}`;
    const cli = `node ${quoteForShell(path.relative(process.cwd(), path.join(repoRoot, 'dist', 'cli.js')) || 'dist/cli.js')}`;
    console.log('');
    say(`open ${url}`);
    say('then click the Deploy Rollback icon in the activity bar. Ctrl-C stops everything.');
    say(`code-server's own output: ${logFile}`);
    say('the same from a terminal:');
    console.log(`  ${cli} releases --gitops ${quoteForShell(workspace.gitopsRepo)} --env staging --app a`);
    // The CLI reads SSH keys and known_hosts from HOME, as ssh does: the demo's HOME knows the test hosts.
    if (workspace.kamalConfig) {
      console.log(`  HOME=${quoteForShell(workspace.home)} ${cli} releases --kamal ${quoteForShell(workspace.kamalConfig)}`);
      // What rolling back to the previous release would take out of production, commit by commit.
      console.log(`  HOME=${quoteForShell(workspace.home)} ${cli} rollback --kamal ${quoteForShell(workspace.kamalConfig)} --dry-run`);
    }
  } catch (error) {
    console.error(`[demo] ${error instanceof Error ? error.message : String(error)}`);
    await teardown(1);
  }
}

void main();
