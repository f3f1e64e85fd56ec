/**
 * Real test hosts on this machine: each host is a network namespace `<run>-hN` joined to this
 * machine by a veth pair (10.250.x.1 here, 10.250.x.2 in the host, no default route), running
 * its own sshd (own ed25519 host key, key-only root login, private /root via a mount
 * namespace) and its own dockerd (entered with nsenter, so its containers live on that host's
 * `kamal` bridge network, with a kamal-proxy stand-in container).
 * Jump-only hosts hang off host 0's namespace by a second veth; host 0 does not forward, so
 * they are reachable only with `ssh -J root@<host 0>`.
 * Everything of a run lives under /tmp/drt/<run> and is recorded in run.json for tear-down.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { CommandResult, run, runOk, waitFor } from './exec';
import { AppImageSpec, DEFAULT_IMAGES, DEFAULT_REPOSITORY, KAMAL_PROXY_IMAGE, imageArchive } from './images';
import { ProxyServiceState, SeedKamalOptions, SeededHost, proxyState, proxyTargetContainer, seedKamalState } from './seed';
import { HARNESS_ROOT, HostRecord, RunRecord, SLOT_DIR, cgroupPids, cleanupLeftovers, netnsPids, readOwnedPid, teardownRun } from './teardown';

export { cleanupLeftovers } from './teardown';
export {
  seedKamalState, proxyState, proxyTargetContainer, proxyHistory, kamalContainerName, kamalProxyServiceName, kamalEnvFilePath,
  DEFAULT_ENV_FILE,
} from './seed';
export type { SeedKamalOptions, SeededHost, ProxyServiceState } from './seed';
export type { AppImageSpec } from './images';
export { KAMAL_PROXY_IMAGE } from './images';

export interface StartHostsOptions {
  /** Hosts reachable from this machine. */
  count: number;
  /** Extra hosts reachable only through host 0. */
  jumpOnly?: number;
  /** App image versions to build and load on every host; default v1, v2, v3 (healthy). */
  images?: AppImageSpec[];
  /** Repository of the app images; default `user/app`. */
  repository?: string;
  /** Default service name for seeding helpers; default `app`. */
  service?: string;
  /** Prefix of namespace and interface names (2-5 lowercase letters); default `drt`. */
  prefix?: string;
  /**
   * Run each dockerd with the host's private /root too, so bind mounts under `$PWD` (Kamal's asset
   * volumes) name the same folder the SSH user sees; default false (dockerd sees this machine's /root).
   */
  dockerSeesHome?: boolean;
  /**
   * CPUs for everything the hosts run (a taskset list, e.g. "1" or "2-3"): sshd and its sessions,
   * dockerd, containerd and the containers, the delay relay. Benchmarks give the hosts cores of
   * their own, as remote servers have, so the client's CPU does not slow the hosts' docker; default
   * unset (the hosts share every CPU with the caller).
   */
  hostCpus?: string;
}

export interface TestHost {
  name: string;
  address: string;
  port: number;
  /** `SHA256:...` exactly as OpenSSH prints it. */
  hostKeyFingerprint: string;
  /** `ssh-ed25519 AAAA...` */
  hostPublicKeyLine: string;
  dockerSocket: string;
  /** The host's private /root, as a directory on this machine. */
  home: string;
  netns: string;
  jumpOnly: boolean;
  /** Name of the host to jump through, for jump-only hosts. */
  jumpVia?: string;
}

export interface TestHosts {
  hosts: TestHost[];
  runId: string;
  /** Everything of the run on this machine lives below this directory. */
  runDir: string;
  repository: string;
  service: string;
  clientKeyPath: string;
  clientPublicKey: string;
  knownHostsPath: string;
  /** An ssh_config naming each host (Host host0 ...), with key, known_hosts and ProxyJump. */
  sshConfigPath: string;
  /** Runs a shell command on the host through the real `ssh` client. */
  exec(host: TestHost | string, shellCommand: string, options?: { timeoutMs?: number }): Promise<CommandResult>;
  /** Runs the docker CLI against the host's daemon directly from this machine. */
  docker(host: TestHost | string, args: readonly string[]): Promise<CommandResult>;
  host(name: string): TestHost;
  stopSshd(host: TestHost | string): Promise<void>;
  startSshd(host: TestHost | string): Promise<void>;
  linkDown(host: TestHost | string): Promise<void>;
  linkUp(host: TestHost | string): Promise<void>;
  /** Stops the host's dockerd (SIGTERM; its containers stop with it), as a daemon crash or restart would. */
  stopDockerd(host: TestHost | string): Promise<void>;
  /** Starts it again on the same data: containers with a restart policy come back. */
  startDockerd(host: TestHost | string): Promise<void>;
  /**
   * Adds `delayMs` of round-trip latency: with tc netem on the veth when the kernel has it,
   * else (this machine's kernel lacks sch_netem) by redirecting the host's port 22 through a
   * relay inside the host that delays every chunk by half the delay each way. Says which.
   */
  slowLink(host: TestHost | string, delayMs: number): Promise<'netem' | 'ssh-relay'>;
  /** Limits bandwidth each way with tc tbf (available where netem is not). */
  throttleLink(host: TestHost | string, kbitPerSecond: number): Promise<void>;
  /** Removes any slowLink/throttleLink shaping. */
  clearLink(host: TestHost | string): Promise<void>;
  /** Makes GET /up answer 404 inside a running app container. */
  makeUnhealthy(host: TestHost | string, containerName: string): Promise<void>;
  makeHealthy(host: TestHost | string, containerName: string): Promise<void>;
  /** What the kamal-proxy stand-in routes `service` to on the host (`S-R[-D]` for Kamal roles). */
  proxyState(host: TestHost | string, service: string): Promise<ProxyServiceState | undefined>;
  /** Name of the container the proxy targets for `service`. */
  proxyTargetContainer(host: TestHost | string, service: string): Promise<string | undefined>;
  seedKamalState(options: SeedKamalOptions): Promise<SeededHost[]>;
  /** PIDs of everything the run started that is still alive (sshd, dockerd, containerd, shims, containers). */
  livePids(): number[];
  stop(): Promise<void>;
}

const REQUIRED_TOOLS = ['dockerd', 'docker', 'sshd', 'ssh', 'ssh-keygen', 'busybox', 'ip', 'nsenter', 'unshare', 'tar', 'tc'];
const TOOL_PACKAGES: Record<string, string> = {
  dockerd: 'docker.io',
  docker: 'docker.io',
  sshd: 'openssh-server',
  ssh: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  busybox: 'busybox-static',
  ip: 'iproute2',
  tc: 'iproute2',
  nsenter: 'util-linux',
  unshare: 'util-linux',
  tar: 'tar',
};

function findTool(tool: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, tool))) return join(dir, tool);
  }
  return undefined;
}

export interface PrerequisiteProbe {
  isRoot: boolean;
  hasTool(tool: string): boolean;
}

const systemProbe = (): PrerequisiteProbe => ({
  isRoot: typeof process.getuid !== 'function' || process.getuid() === 0,
  hasTool: (tool) => findTool(tool) !== undefined,
});

/** One sentence naming what this machine lacks to run test hosts, or undefined when nothing. */
export function missingHostPrerequisites(probe: PrerequisiteProbe = systemProbe()): string | undefined {
  const missing = REQUIRED_TOOLS.filter((tool) => !probe.hasTool(tool));
  if (probe.isRoot && missing.length === 0) return undefined;
  const parts: string[] = [];
  if (!probe.isRoot) parts.push('root privileges (run as root)');
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((tool) => TOOL_PACKAGES[tool] ?? tool))];
    parts.push(`the tools ${missing.join(', ')} (apt-get install -y ${packages.join(' ')})`);
  }
  return `Real test hosts need ${parts.join(' and ')}.`;
}

/** Throws one sentence naming what is missing when this machine cannot run test hosts. */
export function assertHostPrerequisites(probe?: PrerequisiteProbe): void {
  const missing = missingHostPrerequisites(probe);
  if (missing) throw new Error(missing);
}

/** For mocha `before` hooks: skips when hosts cannot run here, but fails under CI=true. */
export function requireHostsOrSkip(context: Pick<Mocha.Context, 'skip'>, probe?: PrerequisiteProbe): void {
  const missing = missingHostPrerequisites(probe);
  if (!missing) return;
  if (process.env.CI === 'true') throw new Error(`${missing} CI must run them, so this fails instead of skipping.`);
  console.warn(`skipping: ${missing}`);
  context.skip();
}

interface LiveHost extends HostRecord {
  test: TestHost;
  slot: number;
  outsideAddress: string;
  sshdConfig: string;
  sshdLog: string;
}

const activeRuns = new Map<string, RunRecord>();
let exitHandlersInstalled = false;

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', () => {
    for (const record of activeRuns.values()) teardownRun(record);
    activeRuns.clear();
  });
  for (const signalName of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signalName, () => {
      for (const record of activeRuns.values()) teardownRun(record);
      activeRuns.clear();
      process.exit(signalName === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Slot N is the /30 at 10.250.0.0 + 4N: .0 network, .1 outside end, .2 the host. */
function slotAddress(slot: number, hostPart: 0 | 1 | 2): string {
  const base = slot * 4;
  return `10.250.${base >> 8}.${(base & 255) + hostPart}`;
}

const SLOT_COUNT = 16384;

function allocateSlots(runId: string, count: number): number[] {
  mkdirSync(SLOT_DIR, { recursive: true });
  const slots: number[] = [];
  const start = randomBytes(2).readUInt16BE(0) % SLOT_COUNT;
  for (let offset = 0; offset < SLOT_COUNT && slots.length < count; offset++) {
    const slot = (start + offset) % SLOT_COUNT;
    try {
      // 'wx' fails when the slot exists, so concurrent runs never share an address range.
      writeFileSync(join(SLOT_DIR, String(slot)), `${runId}\n`, { flag: 'wx' });
      slots.push(slot);
    } catch {
      // taken
    }
  }
  if (slots.length < count) throw new Error(`no free 10.250.0.0/16 address slots left in ${SLOT_DIR}`);
  return slots;
}

function fingerprintOf(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function dockerPing(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** Whether a TCP connection to address:port opens within `timeoutMs`. */
export function tcpOpen(address: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function runIdFor(prefix: string): string {
  const pidPart = (process.pid % 46656).toString(36).padStart(3, '0');
  const randomPart = (randomBytes(2).readUInt16BE(0) % 46656).toString(36).padStart(3, '0');
  return `${prefix}${pidPart}${randomPart}`;
}

export async function startHosts(options: StartHostsOptions): Promise<TestHosts> {
  assertHostPrerequisites();
  const prefix = options.prefix ?? 'drt';
  if (!/^[a-z]{2,5}$/.test(prefix)) throw new Error(`startHosts: prefix "${prefix}" must be 2-5 lowercase letters (it is part of interface names)`);
  const count = options.count;
  const jumpOnly = options.jumpOnly ?? 0;
  if (!Number.isInteger(count) || count < 1 || count > 60) throw new Error(`startHosts: count must be 1..60, got ${count}`);
  if (!Number.isInteger(jumpOnly) || jumpOnly < 0 || jumpOnly > 20) throw new Error(`startHosts: jumpOnly must be 0..20, got ${jumpOnly}`);
  if (options.hostCpus !== undefined && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(options.hostCpus)) throw new Error(`startHosts: hostCpus "${options.hostCpus}" must be a CPU list such as "1" or "2-3"`);
  /** A daemon's command line, pinned to the hosts' CPUs when they have their own; children inherit the pinning. */
  const onHostCpus = (program: string, args: string[]): [string, string[]] => (options.hostCpus === undefined ? [program, args] : ['taskset', ['-c', options.hostCpus, program, ...args]]);
  const repository = options.repository ?? DEFAULT_REPOSITORY;
  const images = options.images ?? [...DEFAULT_IMAGES];
  installExitHandlers();
  // Only runs whose owner process is gone are touched, so parallel test processes are safe.
  cleanupLeftovers();

  const runId = runIdFor(prefix);
  const runDir = join(HARNESS_ROOT, runId);
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const record: RunRecord = { runId, ownerPid: process.pid, runDir, slots: [], hosts: [] };
  const saveRecord = (): void => writeFileSync(join(runDir, 'run.json'), JSON.stringify(record, null, 2));
  saveRecord();
  activeRuns.set(runId, record);

  const clientKeyPath = join(runDir, 'client_ed25519');
  const knownHostsPath = join(runDir, 'known_hosts');
  const sshConfigPath = join(runDir, 'ssh_config');
  const authorizedKeys = join(runDir, 'authorized_keys');
  const dockerConfigDir = join(runDir, 'docker-client');
  const daemonConfig = join(runDir, 'daemon.json');
  mkdirSync(dockerConfigDir, { recursive: true });
  writeFileSync(daemonConfig, '{}\n');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const live: LiveHost[] = [];
  const stopRun = async (): Promise<void> => {
    if (!activeRuns.has(runId)) return;
    activeRuns.delete(runId);
    const problems = teardownRun(record);
    if (problems.length > 0) throw new Error(`test hosts ${runId} did not tear down cleanly: ${problems.join('; ')}`);
  };

  try {
    await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `client@${runId}`, '-f', clientKeyPath]);
    const clientPublicKey = readFileSync(`${clientKeyPath}.pub`, 'utf8').trim();
    writeFileSync(authorizedKeys, `${clientPublicKey}\n`);

    const total = count + jumpOnly;
    record.slots = allocateSlots(runId, total);
    saveRecord();

    for (let index = 0; index < total; index++) {
      const isJumpOnly = index >= count;
      const netns = `${runId}-h${index}`;
      const dir = join(runDir, `h${index}`);
      const slot = record.slots[index] as number;
      const hostRecord: LiveHost = {
        name: `host${index}`,
        netns,
        outsideVeth: `${runId}h${index}o`,
        outsideNetns: isJumpOnly ? `${runId}-h0` : undefined,
        dir,
        dockerPidFile: join(dir, 'docker.pid'),
        sshdPidFile: join(dir, 'sshd.pid'),
        cgroupParent: netns,
        slot,
        outsideAddress: slotAddress(slot, 1),
        sshdConfig: join(dir, 'sshd_config'),
        sshdLog: join(dir, 'sshd.log'),
        test: {
          name: `host${index}`,
          address: slotAddress(slot, 2),
          port: 22,
          hostKeyFingerprint: '',
          hostPublicKeyLine: '',
          dockerSocket: join(dir, 'docker.sock'),
          home: join(dir, 'home'),
          netns,
          jumpOnly: isJumpOnly,
          jumpVia: isJumpOnly ? 'host0' : undefined,
        },
      };
      live.push(hostRecord);
      record.hosts.push({
        name: hostRecord.name,
        netns,
        outsideVeth: hostRecord.outsideVeth,
        outsideNetns: hostRecord.outsideNetns,
        dir,
        dockerPidFile: hostRecord.dockerPidFile,
        sshdPidFile: hostRecord.sshdPidFile,
        cgroupParent: hostRecord.cgroupParent,
      });
    }
    saveRecord();

    const dockerEnv = (host: LiveHost): NodeJS.ProcessEnv => {
      const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${host.test.dockerSocket}`, DOCKER_CONFIG: dockerConfigDir };
      delete env.DOCKER_CONTEXT;
      delete env.DOCKER_TLS_VERIFY;
      delete env.DOCKER_CERT_PATH;
      return env;
    };
    const dockerOk = (host: LiveHost, args: readonly string[]): Promise<string> => runOk('docker', args, { env: dockerEnv(host) });

    const host0 = live[0] as LiveHost;
    let resolveDaemon0: () => void = () => undefined;
    let rejectDaemon0: (error: Error) => void = () => undefined;
    const daemon0Ready = new Promise<void>((resolve, reject) => {
      resolveDaemon0 = resolve;
      rejectDaemon0 = reject;
    });
    daemon0Ready.catch(() => undefined);
    const archive = daemon0Ready.then(() =>
      imageArchive(join(HARNESS_ROOT, 'image-cache'), join(runDir, 'image-build'), repository, images, (args) => dockerOk(host0, args)),
    );
    archive.catch(() => undefined);

    const network0Ready = setUpNetwork(host0);
    network0Ready.catch(() => undefined);

    const bootHost = async (host: LiveHost): Promise<void> => {
      mkdirSync(host.dir, { recursive: true });
      mkdirSync(host.test.home, { recursive: true, mode: 0o700 });
      mkdirSync(join(host.test.home, '.kamal'), { recursive: true });
      if (host === host0) await network0Ready;
      else if (host.test.jumpOnly) {
        await network0Ready;
        await setUpNetwork(host);
      } else await setUpNetwork(host);

      const hostKey = join(host.dir, 'ssh_host_ed25519_key');
      const keygen = runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${host.name}@${runId}`, '-f', hostKey]);
      await startDockerd(host, daemonConfig);
      if (host === host0) resolveDaemon0();
      await dockerOk(host, ['network', 'create', 'kamal']);
      const built = await archive;
      if (!(host === host0 && built.builtOnDaemon)) await dockerOk(host, ['load', '-q', '-i', built.path]);
      await dockerOk(host, [
        'run', '--detach', '--restart', 'unless-stopped', '--name', 'kamal-proxy', '--network', 'kamal',
        '--log-opt', 'max-size=10m', KAMAL_PROXY_IMAGE, 'kamal-proxy', 'run',
      ]);
      await keygen;
      host.test.hostPublicKeyLine = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
      host.test.hostKeyFingerprint = fingerprintOf(host.test.hostPublicKeyLine);
      writeFileSync(host.sshdConfig, sshdConfigText(host, hostKey, authorizedKeys));
      await startSshd(host);
    };

    // allSettled: a failed host must not leave others still creating things during tear-down.
    const booted = await Promise.allSettled(
      live.map((host) =>
        bootHost(host).catch((error: unknown) => {
          // Other hosts wait for host 0's daemon to build the images: never leave them waiting.
          if (host === host0) rejectDaemon0(error instanceof Error ? error : new Error(String(error)));
          throw error;
        }),
      ),
    );
    const failed = booted.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed) throw failed.reason;

    writeFileSync(knownHostsPath, live.map((host) => `${host.test.address} ${host.test.hostPublicKeyLine}\n`).join(''));
    writeFileSync(sshConfigPath, sshConfigText(live, clientKeyPath, knownHostsPath));

    const byName = (hostOrName: TestHost | string): LiveHost => {
      const name = typeof hostOrName === 'string' ? hostOrName : hostOrName.name;
      const found = live.find((host) => host.name === name);
      if (!found) throw new Error(`no test host named ${name} (have ${live.map((host) => host.name).join(', ')})`);
      return found;
    };

    const exec = (hostOrName: TestHost | string, shellCommand: string, execOptions: { timeoutMs?: number } = {}): Promise<CommandResult> =>
      run('ssh', ['-F', sshConfigPath, byName(hostOrName).name, shellCommand], { timeoutMs: execOptions.timeoutMs ?? 60_000 });

    await Promise.all(
      live.map(async (host) => {
        const result = await exec(host.test, 'true');
        if (result.code !== 0) throw new Error(`${host.name} (${host.test.address}) does not answer ssh: ${result.stderr.trim()}`);
      }),
    );

    const shape = async (hostOrName: TestHost | string, qdisc: string[] | undefined): Promise<'done' | 'no-netem'> => {
      const host = byName(hostOrName);
      const outside = host.outsideNetns ? ['-n', host.outsideNetns] : [];
      const ends: string[][] = [
        [...outside, 'qdisc', qdisc ? 'replace' : 'del', 'dev', host.outsideVeth, 'root', ...(qdisc ?? [])],
        ['-n', host.netns, 'qdisc', qdisc ? 'replace' : 'del', 'dev', insideVeth(host), 'root', ...(qdisc ?? [])],
      ];
      for (const args of ends) {
        const result = await run('tc', args);
        if (result.code !== 0 && qdisc) {
          if (/qdisc kind is unknown/i.test(result.stderr) && qdisc[0] === 'netem') return 'no-netem';
          throw new Error(`tc ${args.join(' ')} failed: ${result.stderr.trim()}`);
        }
      }
      return 'done';
    };

    const relayPids = new Map<string, number>();
    const redirectRule = (host: LiveHost): string[] => [
      'PREROUTING', '-t', 'nat', '-p', 'tcp', '-d', host.test.address, '--dport', '22', '-j', 'REDIRECT', '--to-ports', String(DELAY_RELAY_PORT),
    ];
    const stopDelayRelay = async (host: LiveHost): Promise<void> => {
      const pid = relayPids.get(host.name);
      if (pid === undefined) return;
      relayPids.delete(host.name);
      await run('ip', ['netns', 'exec', host.netns, 'iptables', '-D', ...redirectRule(host)]);
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await waitFor(`the delay relay of ${host.name} (pid ${pid}) to exit`, () => !existsSync(`/proc/${pid}`) || isZombie(pid), 5_000);
    };
    const startDelayRelay = async (host: LiveHost, delayMs: number): Promise<void> => {
      await stopDelayRelay(host);
      const script = join(runDir, 'delay-relay.js');
      writeFileSync(script, DELAY_RELAY_SOURCE);
      const child = spawn(...onHostCpus('nsenter', [`--net=/var/run/netns/${host.netns}`, process.execPath, script, host.test.address, String(DELAY_RELAY_PORT), String(delayMs)]), {
        detached: true,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      child.unref();
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      await waitFor(`the delay relay of ${host.name} to listen`, () => output.includes('listening'), 10_000);
      child.stdout?.destroy();
      if (child.pid === undefined) throw new Error(`the delay relay of ${host.name} did not start`);
      relayPids.set(host.name, child.pid);
      await runOk('ip', ['netns', 'exec', host.netns, 'iptables', '-A', ...redirectRule(host)]);
    };

    const testHosts: TestHosts = {
      hosts: live.map((host) => host.test),
      runId,
      runDir,
      repository,
      service: options.service ?? 'app',
      clientKeyPath,
      clientPublicKey,
      knownHostsPath,
      sshConfigPath,
      exec,
      docker: (hostOrName, args) => run('docker', args, { env: dockerEnv(byName(hostOrName)) }),
      host: (name) => byName(name).test,
      stopSshd: async (hostOrName) => {
        const host = byName(hostOrName);
        const pid = readOwnedPid(host.sshdPidFile, host.dir);
        if (pid === undefined) return;
        process.kill(pid, 'SIGTERM');
        await waitFor(`sshd of ${host.name} (pid ${pid}) to exit`, () => !existsSync(`/proc/${pid}`) || isZombie(pid), 10_000);
        rmSync(host.sshdPidFile, { force: true });
      },
      startSshd: async (hostOrName) => startSshd(byName(hostOrName)),
      stopDockerd: async (hostOrName) => {
        const host = byName(hostOrName);
        const pid = readOwnedPid(host.dockerPidFile, host.dir);
        if (pid === undefined) return;
        process.kill(pid, 'SIGTERM');
        await waitFor(`dockerd of ${host.name} (pid ${pid}) to exit`, () => !existsSync(`/proc/${pid}`) || isZombie(pid), 30_000);
        rmSync(host.dockerPidFile, { force: true });
      },
      startDockerd: async (hostOrName) => startDockerd(byName(hostOrName), daemonConfig),
      // The host's own end goes down, as a dead NIC would: this machine keeps its route, so
      // packets are dropped ("No route to host" after ARP gives up) instead of leaving by the default route.
      linkDown: async (hostOrName) => {
        const host = byName(hostOrName);
        await runOk('ip', ['-n', host.netns, 'link', 'set', 'dev', insideVeth(host), 'down']);
      },
      linkUp: async (hostOrName) => {
        const host = byName(hostOrName);
        await runOk('ip', ['-n', host.netns, 'link', 'set', 'dev', insideVeth(host), 'up']);
        if (!host.test.jumpOnly) {
          await waitFor(`${host.name} to answer on port 22 after linkUp`, () => tcpOpen(host.test.address, 22), 10_000, 100);
        }
      },
      slowLink: async (hostOrName, delayMs) => {
        const outcome = await shape(hostOrName, ['netem', 'delay', `${Math.max(1, Math.round(delayMs / 2))}ms`]);
        if (outcome === 'done') return 'netem';
        await startDelayRelay(byName(hostOrName), delayMs);
        return 'ssh-relay';
      },
      throttleLink: async (hostOrName, kbitPerSecond) => {
        await shape(hostOrName, ['tbf', 'rate', `${kbitPerSecond}kbit`, 'burst', '16kb', 'latency', '2000ms']);
      },
      clearLink: async (hostOrName) => {
        await shape(hostOrName, undefined);
        await stopDelayRelay(byName(hostOrName));
      },
      makeUnhealthy: async (hostOrName, containerName) => {
        await dockerOk(byName(hostOrName), ['exec', containerName, 'rm', '-f', '/www/up']);
      },
      makeHealthy: async (hostOrName, containerName) => {
        await dockerOk(byName(hostOrName), ['exec', containerName, 'sh', '-c', 'echo ok > /www/up']);
      },
      proxyState: (hostOrName, service) => proxyState(testHosts, hostOrName, service),
      proxyTargetContainer: (hostOrName, service) => proxyTargetContainer(testHosts, hostOrName, service),
      seedKamalState: (seedOptions) => seedKamalState(testHosts, seedOptions),
      livePids: () => livePidsOf(record),
      stop: stopRun,
    };
    return testHosts;
  } catch (error) {
    await stopRun().catch(() => undefined);
    throw error;
  }

  function insideVeth(host: LiveHost): string {
    return `${runId}h${live.indexOf(host)}i`;
  }

  async function setUpNetwork(host: LiveHost): Promise<void> {
    const inside = insideVeth(host);
    await runOk('ip', ['netns', 'add', host.netns]);
    const outside = host.outsideNetns ? ['-n', host.outsideNetns] : [];
    await runOk('ip', [...outside, 'link', 'add', host.outsideVeth, 'type', 'veth', 'peer', 'name', inside, 'netns', host.netns]);
    await runOk('ip', [...outside, 'addr', 'add', `${host.outsideAddress}/30`, 'dev', host.outsideVeth]);
    await runOk('ip', [...outside, 'link', 'set', 'dev', host.outsideVeth, 'up']);
    await runOk('ip', ['-n', host.netns, 'addr', 'add', `${host.test.address}/30`, 'dev', inside]);
    await runOk('ip', ['-n', host.netns, 'link', 'set', 'dev', inside, 'up']);
    await runOk('ip', ['-n', host.netns, 'link', 'set', 'dev', 'lo', 'up']);
    if (host.test.jumpOnly) {
      // Route this machine's packets for the jump-only host to host 0, which does not forward
      // them: so a direct connection fails there instead of leaving by the default route.
      await runOk('ip', ['route', 'add', `${slotAddress(host.slot, 0)}/30`, 'via', (live[0] as LiveHost).test.address]);
    }
  }

  async function startDockerd(host: LiveHost, configFile: string): Promise<void> {
    const log = openSync(join(host.dir, 'dockerd.log'), 'a');
    const dockerTmp = join(host.dir, 'tmp');
    mkdirSync(dockerTmp, { recursive: true });
    // Paths go in as "$0" and "$@" so no value is spliced into shell text; unshare execs, so the PID stays dockerd's.
    const privateHome = options.dockerSeesHome ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /root && exec dockerd "$@"', host.test.home] : ['dockerd'];
    const child = spawn(
      ...onHostCpus('nsenter', [
        `--net=/var/run/netns/${host.netns}`,
        ...privateHome,
        '--config-file', configFile,
        '--data-root', join(host.dir, 'docker'),
        '--exec-root', join(host.dir, 'exec'),
        '-H', `unix://${host.test.dockerSocket}`,
        '--pidfile', host.dockerPidFile,
        // The namespace is the host's whole network: no NAT or forwarding rules are needed for
        // containers on one bridge to talk, and host 0 must not route to jump-only hosts.
        '--iptables=false',
        '--ip-forward=false',
        '--ip-masq=false',
        '--userland-proxy=false',
        '--cgroup-parent', `/${host.cgroupParent}`,
        '--shutdown-timeout', '3',
        '--log-level', 'warn',
      ]),
      // containerd writes a stack dump to its TMPDIR when dockerd's health check restarts it under
      // load: the host's own folder, removed with the run, never the caller's temp folder.
      { detached: true, stdio: ['ignore', log, log], env: { ...process.env, TMPDIR: dockerTmp } },
    );
    closeSync(log);
    await untilReady(child, `dockerd of ${host.name}`, `answer on ${host.test.dockerSocket}`, join(host.dir, 'dockerd.log'), () => dockerPing(host.test.dockerSocket), 30_000);
  }

  async function startSshd(host: LiveHost): Promise<void> {
    const log = openSync(host.sshdLog, 'a');
    // Paths go in as "$0".."$2" so no value is spliced into shell text.
    const child = spawn(
      ...onHostCpus('ip', [
        'netns', 'exec', host.netns,
        'unshare', '-m', '--propagation', 'private',
        'sh', '-c', 'mount --bind "$0" /root && exec /usr/sbin/sshd -D -f "$1" -E "$2"',
        host.test.home, host.sshdConfig, host.sshdLog,
      ]),
      { detached: true, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    await untilReady(child, `sshd of ${host.name}`, `listen on ${host.test.address}:22`, host.sshdLog, async () => {
      const pid = readOwnedPid(host.sshdPidFile, host.dir);
      if (pid === undefined || pid !== child.pid) return false;
      return host.test.jumpOnly ? true : tcpOpen(host.test.address, 22);
    }, 15_000);
  }
}

/** Lets a detached daemon run on its own and waits until `ready`, failing at once if it exits first. */
async function untilReady(child: ChildProcess, name: string, readiness: string, logFile: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  child.unref();
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  await waitFor(
    `${name} to ${readiness} (log: ${logFile})`,
    async () => {
      if (exited) throw new Error(`${name} exited while starting; see ${logFile}`);
      return ready();
    },
    timeoutMs,
    50,
  );
}

const DELAY_RELAY_PORT = 2222;

// Runs inside the host's namespace; port 22 traffic from outside is redirected to it.
const DELAY_RELAY_SOURCE = `'use strict';
const net = require('node:net');
const [address, port, delayMs] = process.argv.slice(2);
const oneWay = Number(delayMs) / 2;
const later = (fn) => setTimeout(fn, oneWay);
const pipe = (from, to) => {
  from.on('data', (chunk) => later(() => { if (!to.destroyed) to.write(chunk); }));
  from.on('end', () => later(() => { if (!to.destroyed) to.end(); }));
  from.on('error', () => later(() => to.destroy()));
  from.on('close', () => later(() => to.destroy()));
};
// No Nagle on either side: a link delays bytes, it does not hold a chunk back for the previous one's ACK.
const server = net.createServer({ noDelay: true }, (client) => {
  const sshd = net.connect({ host: address, port: 22, noDelay: true });
  pipe(client, sshd);
  pipe(sshd, client);
});
server.listen(Number(port), address, () => process.stdout.write('listening\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

function livePidsOf(record: RunRecord): number[] {
  const pids = new Set<number>();
  for (const host of record.hosts) {
    for (const pid of [...netnsPids(host.netns), ...cgroupPids(host.cgroupParent)]) pids.add(pid);
    for (const file of [host.sshdPidFile, host.dockerPidFile]) {
      const pid = readOwnedPid(file, host.dir);
      if (pid !== undefined && !isZombie(pid)) pids.add(pid);
    }
  }
  return [...pids];
}

function sshdConfigText(host: LiveHost, hostKey: string, authorizedKeys: string): string {
  return [
    `ListenAddress ${host.test.address}:22`,
    `HostKey ${hostKey}`,
    `PidFile ${host.sshdPidFile}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    `AuthorizedKeysFile ${authorizedKeys}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The key files live under /tmp, whose permissions StrictModes would reject.
    'StrictModes no',
    'AllowTcpForwarding yes',
    'PermitTunnel no',
    'X11Forwarding no',
    'PrintMotd no',
    'UseDNS no',
    `SetEnv DOCKER_HOST=unix://${host.test.dockerSocket}`,
    'MaxStartups 200:30:400',
    'MaxSessions 100',
    'ClientAliveInterval 30',
    'Subsystem sftp internal-sftp',
    'LogLevel ERROR',
    '',
  ].join('\n');
}

function sshConfigText(hosts: readonly LiveHost[], clientKeyPath: string, knownHostsPath: string): string {
  const blocks = hosts.map((host) =>
    [`Host ${host.name}`, `  HostName ${host.test.address}`, ...(host.test.jumpVia ? [`  ProxyJump ${host.test.jumpVia}`] : [])].join('\n'),
  );
  blocks.push(
    [
      'Host *',
      '  User root',
      '  Port 22',
      `  IdentityFile ${clientKeyPath}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${knownHostsPath}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  ConnectTimeout 5',
      '  LogLevel ERROR',
    ].join('\n'),
  );
  return `${blocks.join('\n\n')}\n`;
}
