/**
 * Builders for the Kamal inventory tests: a KamalConfig, docker's `{{json .}}` lines in the
 * exact shape docker prints them, the marked output of the inventory exec, and fake sessions
 * that count execs. The describe block below checks the builders against output captured
 * from a real dockerd, so the other tests' canned output stays faithful.
 */
import { strict as assert } from 'node:assert';
import type { ExecOptions, ExecResult, HostSession } from '../../../src/core/ssh/types';
import { INVENTORY_SECTIONS } from '../../../src/core/kamal/commands/inventory';
import { emptyConfig } from '../../../src/core/kamal/config/read';
import { parseInventoryOutput } from '../../../src/core/kamal/hosts/inventory';
import type { KamalConfig, KamalRole } from '../../../src/core/kamal/config/types';

export function configFixture(options: {
  service?: string;
  destination?: string;
  repository?: string;
  roles?: Record<string, string[]>;
  primaryRole?: string;
} = {}): KamalConfig {
  const roleHosts = options.roles ?? { web: ['web-1'] };
  const primaryRole = options.primaryRole ?? 'web';
  const roles: KamalRole[] = Object.keys(roleHosts)
    .sort()
    .map((name) => ({
      name,
      hosts: roleHosts[name],
      hostTags: {},
      primary: name === primaryRole,
      options: {},
      labels: {},
      env: { clear: {}, secret: [] },
    }));
  const hosts: string[] = [];
  for (const role of roles) for (const host of role.hosts) if (!hosts.includes(host)) hosts.push(host);
  const repository = options.repository ?? 'localhost:5555/bars/app';
  return {
    ...emptyConfig('/project/config/deploy.yml'),
    destinationFile: options.destination ? `/project/config/deploy.${options.destination}.yml` : undefined,
    destination: options.destination,
    service: options.service ?? 'chat',
    image: 'bars/app',
    registryServer: 'localhost:5555',
    repository,
    roles,
    primaryRole,
    hosts,
  };
}

export interface ContainerFixture {
  host: string;
  role: string;
  version: string;
  /** ISO 8601 (whole seconds). */
  created: string;
  state?: 'running' | 'exited' | 'restarting' | 'created';
  id?: string;
  /** `_replaced_<hex>` suffix. */
  replacedSuffix?: string;
  /** Override the destination label (for filter tests). */
  destinationLabel?: string;
  image?: string;
  extraLabels?: string;
}

let nextId = 0x100000000;
export function fixtureId(): string {
  nextId += 1;
  return nextId.toString(16).padStart(12, '0');
}

function dockerTime(iso: string): string {
  return `${iso.replace('T', ' ').replace(/Z$/, '').replace(/\.\d+$/, '')} +0000 UTC`;
}

/** One line of `docker container ls --format '{{json .}}'` as docker 20 prints it. */
export function dockerPsLine(config: KamalConfig, container: ContainerFixture & { id: string }): string {
  const name = `${[config.service, container.role, config.destination].filter(Boolean).join('-')}-${container.version}${container.replacedSuffix ?? ''}`;
  const state = container.state ?? 'running';
  const status = state === 'running' ? 'Up 2 hours' : state === 'exited' ? 'Exited (0) 2 hours ago' : state === 'restarting' ? 'Restarting (1) 3 seconds ago' : 'Created';
  const labels = [`destination=${container.destinationLabel ?? config.destination ?? ''}`, `role=${container.role}`, `service=${config.service}`, container.extraLabels]
    .filter(Boolean)
    .join(',');
  return JSON.stringify({
    Command: '"/bin/app"',
    CreatedAt: dockerTime(container.created),
    ID: container.id,
    Image: container.image ?? `${config.repository}:${container.version}`,
    Labels: labels,
    LocalVolumes: '0',
    Mounts: '',
    Names: name,
    Networks: 'kamal',
    Platform: null,
    Ports: '',
    RunningFor: '2 hours ago',
    Size: '0B (virtual 1.98MB)',
    State: state,
    Status: status,
  });
}

/** What the inventory exec prints on a host: docker lists newest first. */
export function inventoryOutput(
  config: KamalConfig,
  containers: readonly (ContainerFixture & { id: string })[],
  options: { latestVersion?: string; lockDetails?: string; withLock?: boolean } = {},
): string {
  const newestFirst = [...containers].sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
  const latest = newestFirst.filter((container) => options.latestVersion !== undefined && container.version === options.latestVersion);
  const lines = [
    INVENTORY_SECTIONS.containers,
    ...newestFirst.map((container) => dockerPsLine(config, container)),
    `${INVENTORY_SECTIONS.containersExit}:0`,
    INVENTORY_SECTIONS.latest,
    ...latest.map((container) => container.id),
    `${INVENTORY_SECTIONS.latestExit}:0`,
  ];
  if (options.withLock || options.lockDetails !== undefined) {
    lines.push(INVENTORY_SECTIONS.lock);
    // As the host sends them: decoded, then encoded again (`| base64 -d | base64`, 76 columns).
    if (options.lockDetails !== undefined) lines.push(INVENTORY_SECTIONS.locked, ...(Buffer.from(options.lockDetails, 'utf8').toString('base64').match(/.{1,76}/g) ?? []));
    lines.push('');
  }
  lines.push(INVENTORY_SECTIONS.end);
  return `${lines.join('\n')}\n`;
}

export type HostBehaviour = { stdout: string; code?: number; stderr?: string } | { connectError: string } | { execError: string };

/** Sessions answering from canned output; counts connects and execs per host. */
export class FakeSessions {
  readonly execs = new Map<string, string[]>();
  readonly connects = new Map<string, number>();

  constructor(private readonly hosts: Record<string, HostBehaviour>) {}

  sessionFor = async (host: string): Promise<HostSession> => {
    this.connects.set(host, (this.connects.get(host) ?? 0) + 1);
    const behaviour = this.hosts[host];
    if (!behaviour) throw new Error(`no fake for ${host}`);
    if ('connectError' in behaviour) throw new Error(behaviour.connectError);
    return {
      host,
      exec: async (command: string, _options?: ExecOptions): Promise<ExecResult> => {
        this.execs.set(host, [...(this.execs.get(host) ?? []), command]);
        if ('execError' in behaviour) throw new Error(behaviour.execError);
        return { code: behaviour.code ?? 0, stdout: behaviour.stdout, stderr: behaviour.stderr ?? '' };
      },
    };
  };

  execCount(host: string): number {
    return this.execs.get(host)?.length ?? 0;
  }
}

/**
 * Captured from dockerd 20.10.24 running the inventory exec for service chat, destination
 * prod (v2 booted again by a rollback, so its old container was renamed `_replaced_`).
 */
export const REAL_DOCKER_OUTPUT = `@@deploy-rollback:containers
{"Command":"\\"/bin/app\\"","CreatedAt":"2026-11-23 07:31:28 +0000 UTC","ID":"d9e1218f6498","Image":"localhost:5555/bars/app:v2","Labels":"destination=prod,role=web,service=chat","LocalVolumes":"0","Mounts":"","Names":"chat-web-prod-v2","Networks":"none","Platform":null,"Ports":"","RunningFor":"Less than a second ago","Size":"0B (virtual 1.98MB)","State":"running","Status":"Up Less than a second"}
{"Command":"\\"/bin/app\\"","CreatedAt":"2026-11-23 07:30:02 +0000 UTC","ID":"56ddc0e2d939","Image":"localhost:5555/bars/app:v2","Labels":"destination=prod,role=job,service=chat","LocalVolumes":"0","Mounts":"","Names":"chat-job-prod-v2","Networks":"none","Platform":null,"Ports":"","RunningFor":"About a minute ago","Size":"0B (virtual 1.98MB)","State":"running","Status":"Up About a minute"}
{"Command":"\\"/bin/app\\"","CreatedAt":"2026-11-23 07:30:02 +0000 UTC","ID":"9cc4cc96ef17","Image":"localhost:5555/bars/app:v3","Labels":"destination=prod,role=web,service=chat,traefik.x=Host(\`a\`,\`b\`)","LocalVolumes":"0","Mounts":"","Names":"chat-web-prod-v3","Networks":"none","Platform":null,"Ports":"","RunningFor":"About a minute ago","Size":"0B (virtual 1.98MB)","State":"running","Status":"Up About a minute"}
{"Command":"\\"/bin/app\\"","CreatedAt":"2026-11-23 07:30:01 +0000 UTC","ID":"a74c7c901ad0","Image":"localhost:5555/bars/app:v2","Labels":"destination=prod,role=web,service=chat,traefik.x=Host(\`a\`,\`b\`)","LocalVolumes":"0","Mounts":"","Names":"chat-web-prod-v2_replaced_4817762cd88b9b78","Networks":"none","Platform":null,"Ports":"","RunningFor":"About a minute ago","Size":"0B (virtual 1.98MB)","State":"exited","Status":"Exited (0) Less than a second ago"}
{"Command":"\\"/bin/app\\"","CreatedAt":"2026-11-23 07:30:01 +0000 UTC","ID":"f656f50ac11f","Image":"localhost:5555/bars/app:v1","Labels":"destination=prod,role=web,service=chat,traefik.x=Host(\`a\`,\`b\`)","LocalVolumes":"0","Mounts":"","Names":"chat-web-prod-v1","Networks":"none","Platform":null,"Ports":"","RunningFor":"About a minute ago","Size":"0B (virtual 1.98MB)","State":"exited","Status":"Exited (0) About a minute ago"}
@@deploy-rollback:containers-exit:0
@@deploy-rollback:latest
d9e1218f6498
56ddc0e2d939
a74c7c901ad0
@@deploy-rollback:latest-exit:0
@@deploy-rollback:lock
@@deploy-rollback:locked
TG9ja2VkIGJ5OiBKYW5lIERvZSBhdCAyMDI2LTExLTIzVDA3OjMwOjAwWgpWZXJzaW9uOiB2MwpN
ZXNzYWdlOiBmaXhpbmcgZGI=
@@deploy-rollback:end
`;

describe('kamal inventory fixtures', () => {
  it('render docker lines that parse exactly like real docker output', () => {
    const config = configFixture({ destination: 'prod', roles: { web: ['web-1'], job: ['web-1'] } });
    const real = parseInventoryOutput(config, 'web-1', { code: 0, stdout: REAL_DOCKER_OUTPUT, stderr: '' });
    assert.ok(!('error' in real));
    const rebuilt = inventoryOutput(
      config,
      real.containers.map((container) => ({
        host: 'web-1',
        id: container.id,
        role: container.role,
        version: container.version,
        created: container.created,
        state: container.state as ContainerFixture['state'],
        replacedSuffix: container.replaced ? container.name.slice(container.name.indexOf('_replaced_')) : undefined,
      })),
      { latestVersion: 'v2', lockDetails: 'Locked by: Jane Doe at 2026-11-23T07:30:00Z\nVersion: v3\nMessage: fixing db' },
    );
    const fake = parseInventoryOutput(config, 'web-1', { code: 0, stdout: rebuilt, stderr: '' });
    assert.ok(!('error' in fake));
    const essentials = (containers: typeof real.containers) =>
      containers.map(({ id, role, name, state, version, replaced, created }) => ({ id, role, name, state, version, replaced, created }));
    assert.deepEqual(essentials(fake.containers), essentials(real.containers));
    assert.deepEqual(fake.currentVersions, real.currentVersions);
    assert.deepEqual(fake.lock, real.lock);
  });
});
