/**
 * A Kamal project for the harness hosts (test/hosts/harness.ts): its config/deploy.yml and other
 * files, and the frame of a suite that drives it through the CLI bundle. Light on purpose (no SSH
 * pool): the CLI suites load it on their own.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireHostsOrSkip, startHosts, type StartHostsOptions, type TestHost, type TestHosts } from '../hosts/harness';
import { buildCliBundle, runCli, sshHome, type CliResult } from './cli-bundle';

export interface DeployYmlOptions {
  service: string;
  /** The hosts of role web; default every harness host that is not jump-only. */
  web?: readonly TestHost[];
  /** The lines under `servers:` as they are, instead of role web on `web`. */
  servers?: readonly string[];
  /** Top-level lines between `servers` and `ssh`. */
  beforeSsh?: readonly string[];
  /** Lines after the last `ssh` line (`  config: false`): indented, they go on in `ssh`. */
  after?: readonly string[];
  /** No `ssh` section: the client connects as its HOME has it (the CLI suites' sshHome: default identity, known_hosts). */
  sshFromHome?: boolean;
}

/**
 * Writes `<projectDir>/config/deploy.yml` for the harness hosts (user root, the harness port and
 * client key, keys only, no ssh config; or no ssh section) and returns its path.
 */
export async function writeDeployYml(projectDir: string, hosts: TestHosts, options: DeployYmlOptions): Promise<string> {
  const folder = path.join(projectDir, 'config');
  await fs.promises.mkdir(folder, { recursive: true });
  const file = path.join(folder, 'deploy.yml');
  const web = options.web ?? hosts.hosts.filter((host) => !host.jumpOnly);
  const servers = options.servers ?? ['  web:', '    hosts:', ...web.map((host) => `      - ${host.address}`)];
  await fs.promises.writeFile(
    file,
    [
      `service: ${options.service}`,
      `image: ${hosts.repository}`,
      'servers:',
      ...servers,
      ...(options.beforeSsh ?? []),
      ...(options.sshFromHome ? [] : ['ssh:', '  user: root', `  port: ${hosts.hosts[0].port}`, '  keys_only: true', `  keys: ["${hosts.clientKeyPath}"]`, '  config: false']),
      ...(options.after ?? []),
      '',
    ].join('\n'),
  );
  return file;
}

/** A Kamal CLI suite's hosts and folders, filled in its `before`. */
export interface KamalCli {
  hosts: TestHosts;
  /** The suite's scratch folder: the bundle, HOME, the project. */
  dir: string;
  bundle: string;
  /** The CLI's HOME (sshHome). */
  home: string;
  /** The app folder the CLI runs in. */
  project: string;
  /** Runs the bundle in the project to its end. */
  cli(args: string[]): Promise<CliResult>;
}

export interface KamalCliOptions {
  /** Prefix of the scratch folder's name. */
  prefix: string;
  /** The hosts to start; a function when their images come from what it makes in the scratch folder first. */
  hosts: StartHostsOptions | ((dir: string) => StartHostsOptions);
  /** The app folder inside the scratch folder; default `project`. */
  project?: string;
  /** Puts the hosts into their state and writes the project (config/deploy.yml and the rest), once the hosts run; default nothing. */
  setup?: (kamal: KamalCli) => Promise<void>;
}

/**
 * A suite driving `--kamal` through the CLI bundle on real hosts: in `before` a scratch folder with
 * the bundle, the hosts, a HOME of their own and the project `setup` writes; all gone in `after`.
 */
export function useKamalCli(options: KamalCliOptions): KamalCli {
  const kamal = { cli: (args: string[]) => runCli(kamal.bundle, args, { cwd: kamal.project, home: kamal.home }) } as KamalCli;
  before(async function () {
    requireHostsOrSkip(this);
    kamal.dir = fs.mkdtempSync(path.join(os.tmpdir(), options.prefix));
    kamal.bundle = buildCliBundle(kamal.dir);
    kamal.hosts = await startHosts(typeof options.hosts === 'function' ? options.hosts(kamal.dir) : options.hosts);
    kamal.home = sshHome(kamal.dir, kamal.hosts);
    kamal.project = path.join(kamal.dir, options.project ?? 'project');
    fs.mkdirSync(kamal.project, { recursive: true });
    await options.setup?.(kamal);
  });
  after(async () => {
    await kamal.hosts?.stop();
    if (kamal.dir) fs.rmSync(kamal.dir, { recursive: true, force: true });
  });
  return kamal;
}

/** A deploy.yml with the hosts as a plain list (role web), `deploy_timeout: 10` and `extra` top-level lines, no ssh section: the CLI's HOME holds the key. */
export function writePlainDeployYml(projectDir: string, hosts: TestHosts, service: string, extra: readonly string[] = []): Promise<string> {
  return writeDeployYml(projectDir, hosts, { service, servers: hosts.hosts.map((host) => `  - ${host.address}`), beforeSsh: ['deploy_timeout: 10', ...extra], sshFromHome: true });
}

/** Writes each `relative path → content` under `root`, making the folders on the way. */
export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [relative, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
    fs.writeFileSync(path.join(root, relative), content);
  }
}
