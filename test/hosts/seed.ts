/**
 * Puts test hosts into the state a history of Kamal 2 deploys leaves behind: one container per
 * version named and labelled as `kamal deploy` names them, the live one tagged latest and
 * behind the kamal-proxy stand-in, older ones exited, the role env file in Kamal 2's layout.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { TestHost, TestHosts } from './harness';
import { auditLine, auditLogFile } from '../../src/core/kamal/commands/auditor';

export interface SeedKamalOptions {
  /** Kamal service; defaults to the hosts' `service` option (`app`). */
  service?: string;
  role?: string;
  destination?: string;
  /** Image repository, e.g. `user/app`; defaults to the hosts' repository. */
  repository?: string;
  /** Versions deployed over time, oldest first. */
  versions: string[];
  /** The version live now; the others are stopped (exited). */
  running: string;
  /** Versions pruned on a host: `{ host2: ['v1'] }`. */
  missing?: Record<string, string[]>;
  /** Content of the role's env file; default DEFAULT_ENV_FILE (a config without secret env). */
  envFileContent?: string;
  /** Deploy the live container behind the kamal-proxy stand-in; default true. */
  proxy?: boolean;
  appPort?: number;
  /** Limit seeding to these hosts; default every host (jump-only ones included). */
  hosts?: TestHost[];
  /**
   * Write the "Booted app version" lines `kamal deploy` leaves in `.kamal/<service>-audit.log`,
   * one per version, by these performers in turn (git user.email, as Kamal records), the deploys
   * spread over the last days. Default: no audit log.
   */
  auditPerformers?: string[];
}

export interface SeededHost {
  host: string;
  /** Container name per version present on the host. */
  containers: Record<string, string>;
  /** Full id of each version's container. */
  containerIds: Record<string, string>;
}

/**
 * What Kamal writes for a role without secret env (`Kamal::EnvFile#to_s` of nothing; clear env goes
 * on the `docker run` line): the tests' configs declare none, so the pre-flight finds the files as Kamal's.
 */
export const DEFAULT_ENV_FILE = '\n';

/** Kamal's container name: `S-R-D-V`, or `S-R-V` without a destination. */
export function kamalContainerName(service: string, role: string, version: string, destination?: string): string {
  return [service, role, ...(destination ? [destination] : []), version].join('-');
}

/** Kamal's proxy service name for a role: `S-R-D`, or `S-R`. */
export function kamalProxyServiceName(service: string, role: string, destination?: string): string {
  return [service, role, ...(destination ? [destination] : [])].join('-');
}

/** Kamal 2's env file for a role, relative to the SSH user's home. */
export function kamalEnvFilePath(service: string, role: string, destination?: string): string {
  return `.kamal/apps/${destination ? `${service}-${destination}` : service}/env/roles/${role}.env`;
}

/** Deploys a day apart, the last one two hours ago: each boots the role, then tags the image latest. */
function auditLog(options: SeedKamalOptions, role: string, destination: string | undefined): string {
  const performers = options.auditPerformers!;
  const hour = 3600_000;
  return options.versions
    .flatMap((version, index) => {
      const bootedAt = Date.now() - 2 * hour - (options.versions.length - 1 - index) * 24 * hour;
      const performer = performers[index % performers.length]!;
      const at = (offsetMs: number) => ({ recordedAt: new Date(bootedAt + offsetMs).toISOString().replace(/\.\d{3}Z$/, 'Z'), performer });
      return [
        auditLine({ destination }, { ...at(0), role }, `Booted app version ${version}`),
        auditLine({ destination }, at(1_000), `Tagging ${options.repository ?? 'app'}:${version} as the latest image`),
      ];
    })
    .map((line) => `${line}\n`)
    .join('');
}

export async function seedKamalState(testHosts: TestHosts, options: SeedKamalOptions): Promise<SeededHost[]> {
  const role = options.role ?? 'web';
  const service = options.service ?? testHosts.service;
  const repository = options.repository ?? testHosts.repository;
  const destination = options.destination;
  if (!options.versions.includes(options.running)) {
    throw new Error(`seedKamalState: running version ${options.running} is not among versions ${options.versions.join(', ')}`);
  }
  const targets = options.hosts ?? testHosts.hosts;
  const latestTag = `${repository}:${destination ? `latest-${destination}` : 'latest'}`;
  const envFileRelative = kamalEnvFilePath(service, role, destination);

  return Promise.all(
    targets.map(async (host): Promise<SeededHost> => {
      const docker = async (args: string[]): Promise<string> => {
        const result = await testHosts.docker(host, args);
        if (result.code !== 0) {
          throw new Error(`seeding ${host.name}: docker ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`);
        }
        return result.stdout.trim();
      };
      const envFile = join(host.home, envFileRelative);
      mkdirSync(dirname(envFile), { recursive: true, mode: 0o700 });
      writeFileSync(envFile, options.envFileContent ?? DEFAULT_ENV_FILE, { mode: 0o600 });
      chmodSync(envFile, 0o600);

      if (options.auditPerformers && options.auditPerformers.length > 0) writeFileSync(join(host.home, auditLogFile({ service, destination })), auditLog({ ...options, repository }, role, destination), { mode: 0o644 });

      const pruned = new Set(options.missing?.[host.name] ?? []);
      const seeded: SeededHost = { host: host.name, containers: {}, containerIds: {} };
      // Created oldest first, like successive deploys, so "newest" orderings hold.
      for (const version of options.versions) {
        if (pruned.has(version)) continue;
        const name = kamalContainerName(service, role, version, destination);
        const id = await docker([
          'run', '--detach', '--restart', 'unless-stopped', '--name', name, '--network', 'kamal',
          '--hostname', `${host.name}-${randomBytes(6).toString('hex')}`,
          '--env', `KAMAL_CONTAINER_NAME=${name}`, '--env', `KAMAL_VERSION=${version}`, '--env', `KAMAL_HOST=${host.address}`,
          ...(destination ? ['--env', `KAMAL_DESTINATION=${destination}`] : []),
          '--env-file', envFile,
          '--log-opt', 'max-size=10m',
          '--label', `service=${service}`, '--label', `role=${role}`, '--label', `destination=${destination ?? ''}`,
          `${repository}:${version}`,
        ]);
        seeded.containers[version] = name;
        seeded.containerIds[version] = id;
      }
      const retired = Object.entries(seeded.containers).filter(([version]) => version !== options.running).map(([, name]) => name);
      if (retired.length > 0) await docker(['stop', ...retired]);

      const liveId = seeded.containerIds[options.running];
      if (liveId !== undefined) {
        await docker(['tag', `${repository}:${options.running}`, latestTag]);
        if (options.proxy ?? true) {
          const proxyService = kamalProxyServiceName(service, role, destination);
          await docker([
            'exec', 'kamal-proxy', 'kamal-proxy', 'deploy', proxyService,
            // Kamal 2.12's default deploy options (test/commands/app_test.rb "deploy").
            `--target=${liveId.slice(0, 12)}:${options.appPort ?? 80}`,
            '--deploy-timeout=30s', '--drain-timeout=30s', '--buffer-requests', '--buffer-responses',
            '--log-request-header=Cache-Control', '--log-request-header=Last-Modified', '--log-request-header=User-Agent',
          ]);
        }
      }
      return seeded;
    }),
  );
}

export interface ProxyServiceState {
  /** `<12-hex container id>:<port>` */
  target: string;
  /** Every flag of the last successful deploy, normalised to `--name=value` or `--name`. */
  flags: string[];
}

/** What the kamal-proxy stand-in on the host routes the service to, or undefined if nothing. */
export async function proxyState(testHosts: TestHosts, host: TestHost | string, service: string): Promise<ProxyServiceState | undefined> {
  const result = await testHosts.docker(host, ['exec', 'kamal-proxy', 'cat', `/state/services/${service}`]);
  if (result.code !== 0) {
    if (/No such file/i.test(result.stderr)) return undefined;
    throw new Error(`reading kamal-proxy state of ${service} on ${typeof host === 'string' ? host : host.name}: ${result.stderr.trim()}`);
  }
  const lines = result.stdout.split('\n').filter((line) => line !== '');
  const target = lines.find((line) => line.startsWith('target='))?.slice('target='.length) ?? '';
  return { target, flags: lines.filter((line) => line.startsWith('--')) };
}

/** The deploy attempts the stand-in saw, oldest first: `{ service, target, outcome }`. */
export async function proxyHistory(
  testHosts: TestHosts,
  host: TestHost | string,
): Promise<Array<{ service: string; target: string; outcome: 'deployed' | 'failed' }>> {
  const result = await testHosts.docker(host, ['exec', 'kamal-proxy', 'sh', '-c', 'cat /state/history 2>/dev/null || true']);
  const attempts: Array<{ service: string; target: string; outcome: 'deployed' | 'failed' }> = [];
  for (const line of result.stdout.split('\n')) {
    const [service = '', target = '', outcome = ''] = line.split(' ');
    if (outcome === 'deployed' || outcome === 'failed') attempts.push({ service, target, outcome });
  }
  return attempts;
}

/** Name of the container the proxy targets for the service, or undefined if none. */
export async function proxyTargetContainer(testHosts: TestHosts, host: TestHost | string, service: string): Promise<string | undefined> {
  const state = await proxyState(testHosts, host, service);
  if (!state) return undefined;
  const id = state.target.split(':')[0] ?? '';
  const result = await testHosts.docker(host, ['inspect', '--format', '{{.Name}}', id]);
  if (result.code !== 0) throw new Error(`kamal-proxy targets ${state.target} for ${service}, but no container has id ${id}`);
  return result.stdout.trim().replace(/^\//, '');
}
