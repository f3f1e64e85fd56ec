import type { App, HostContainer, HostEntry, HostError, Release } from '../../model';
import { isHostError } from '../../model';
import type { AuditBoot, HostInventory, InventoryContainer, KamalInventory } from './inventory';
import { newestFirstOrder } from './inventory';

/**
 * Releases of one Kamal app from its inventory: one per version that has a container (not a
 * `_replaced_` copy) on some host, newest first by container creation. A version missing
 * somewhere is still listed, not rollbackable, with the reason.
 */

export function kamalReleaseId(app: Pick<App, 'id'>, version: string): string {
  return `${app.id}@${version}`;
}

/**
 * The app's current version: what the primary host's primary role runs; when that is
 * unknown, the version running on most host/roles (newest wins a tie).
 */
export function appCurrentVersion(inventory: KamalInventory): string | undefined {
  const primary = inventory.hosts.find((host) => host.host === inventory.primaryHost);
  const onPrimary = primary?.currentVersions[inventory.primaryRole];
  if (onPrimary) return onPrimary;
  const counts = new Map<string, number>();
  for (const host of inventory.hosts) {
    for (const version of Object.values(host.currentVersions)) counts.set(version, (counts.get(version) ?? 0) + 1);
  }
  let best: string | undefined;
  for (const version of versionsNewestFirst(inventory)) {
    const count = counts.get(version) ?? 0;
    if (count > 0 && (best === undefined || count > (counts.get(best) ?? 0))) best = version;
  }
  return best;
}

interface VersionFacts {
  version: string;
  /** The version's oldest container, `_replaced_` copies included: when it was first deployed. */
  firstSeen: InventoryContainer;
  /** A container named exactly for the version: without one the version is not listed. */
  named: InventoryContainer;
  /** The version's newest container: when it was last booted, when no audit line says so. */
  newest: InventoryContainer;
}

/**
 * Versions with a container named exactly for them, newest first by first deployment. A
 * rollback re-creates the target's container, so ordering by newest container would move an
 * old version to the top; the renamed copy keeps its original creation time.
 */
function versionFacts(inventory: KamalInventory): VersionFacts[] {
  const byVersion = new Map<string, { firstSeen: InventoryContainer; newest: InventoryContainer; named?: InventoryContainer }>();
  for (const host of inventory.hosts) {
    for (const container of host.containers) {
      const known = byVersion.get(container.version);
      if (!known) {
        byVersion.set(container.version, { firstSeen: container, newest: container, named: container.replaced ? undefined : container });
        continue;
      }
      if (newestFirstOrder(container, known.firstSeen) > 0) known.firstSeen = container;
      if (newestFirstOrder(container, known.newest) < 0) known.newest = container;
      if (!container.replaced && (!known.named || newestFirstOrder(container, known.named) < 0)) known.named = container;
    }
  }
  const facts: VersionFacts[] = [];
  for (const [version, { firstSeen, newest, named }] of byVersion) if (named) facts.push({ version, firstSeen, named, newest });
  return facts.sort((a, b) => newestFirstOrder(a.firstSeen, b.firstSeen) || a.version.localeCompare(b.version));
}

function versionsNewestFirst(inventory: KamalInventory): string[] {
  return versionFacts(inventory).map((facts) => facts.version);
}

/** Roles of `host` that lack a container named exactly for `version`. */
function missingRoles(host: HostInventory, version: string): string[] {
  const present = new Set(host.containers.filter((c) => c.version === version && !c.replaced).map((c) => c.role));
  return host.roles.filter((role) => !present.has(role));
}

function hostWithRoles(host: HostInventory, missing: string[]): string {
  return missing.length === host.roles.length ? host.host : `${host.host} (${missing.length === 1 ? 'role' : 'roles'} ${missing.join(', ')})`;
}

function absenceReason(inventory: KamalInventory, version: string): { reasons: string[]; fullHosts: number } {
  const unreachable = inventory.hosts.filter((host) => host.error).map((host) => host.host);
  const missing: string[] = [];
  let fullHosts = 0;
  for (const host of inventory.hosts) {
    if (host.error) continue;
    const lacking = missingRoles(host, version);
    if (lacking.length === 0) fullHosts++;
    else missing.push(hostWithRoles(host, lacking));
  }
  const reasons: string[] = [];
  if (missing.length === 1) reasons.push(`pruned on ${missing[0]}`);
  else if (missing.length > 1) reasons.push(`missing on ${missing.length} hosts: ${missing.join(', ')}`);
  if (unreachable.length === 1) reasons.push(`host ${unreachable[0]} unreachable`);
  else if (unreachable.length > 1) reasons.push(`hosts ${unreachable.join(', ')} unreachable`);
  return { reasons, fullHosts };
}

function lastBootOf(inventory: KamalInventory, version: string): AuditBoot | undefined {
  return bootsOf(inventory, version).at(-1);
}

/** Every host's boot lines of `version`, oldest first. */
export function bootsOf(inventory: KamalInventory, version: string): AuditBoot[] {
  return inventory.hosts
    .flatMap((host) => host.boots ?? [])
    .filter((boot) => boot.version === version)
    .sort((a, b) => a.recordedAt.localeCompare(b.recordedAt) || a.host.localeCompare(b.host));
}

/**
 * Where `version` runs now when some readable hosts run it and others do not: a host runs it when
 * every one of its roles does. Hosts that could not be read count in the total only.
 */
export function runningOn(inventory: KamalInventory, version: string): Release['runningOn'] {
  const hosts: string[] = [];
  const otherHosts: string[] = [];
  for (const host of inventory.hosts) {
    if (host.error) continue;
    if (host.roles.length > 0 && host.roles.every((role) => host.currentVersions[role] === version)) hosts.push(host.host);
    else otherHosts.push(host.host);
  }
  return hosts.length > 0 && otherHosts.length > 0 ? { hosts, otherHosts, total: inventory.hosts.length } : undefined;
}

/** "current on 1/3 hosts" (the view and the CLI say it alike), or undefined when it runs on all or none. */
export function runningOnLabel(release: Pick<Release, 'runningOn'>): string | undefined {
  const running = release.runningOn;
  return running && `current on ${running.hosts.length}/${running.total} hosts`;
}

export function kamalReleases(app: App, inventory: KamalInventory): Release[] {
  const current = appCurrentVersion(inventory);
  const total = inventory.hosts.length;
  // No title: the tree shows it next to the version, and the image tag would only repeat it.
  const releases = versionFacts(inventory).map(({ version, newest }): Release => {
    const { reasons, fullHosts } = absenceReason(inventory, version);
    const isCurrent = version === current;
    // When and by whom it was last booted: a rollback or roll forward boots a version again, and
    // the row of what runs now must say that boot, not the first deploy. No audit line: unknown.
    const lastBoot = lastBootOf(inventory, version);
    const release: Release = {
      id: kamalReleaseId(app, version),
      app,
      version,
      created: lastBoot?.recordedAt ?? (newest.created || undefined),
      current: isCurrent,
      rollbackable: !isCurrent && reasons.length === 0,
      presence: `${fullHosts} of ${total} ${total === 1 ? 'host' : 'hosts'}`,
    };
    if (lastBoot) release.triggeredBy = lastBoot.performer;
    const running = runningOn(inventory, version);
    if (running) release.runningOn = running;
    if (isCurrent) release.reason = 'running now';
    else if (reasons.length > 0) release.reason = reasons.join('; ');
    return release;
  });
  // Kamal #1677: the default target is the newest version deployed before the current one that
  // is present on every host and role (the rollback planner picks the same one).
  const currentIndex = releases.findIndex((release) => release.current);
  // Newest first: a version listed above the current one was deployed after it.
  if (currentIndex >= 0) {
    releases.forEach((release, index) => {
      if (index !== currentIndex) release.direction = index < currentIndex ? 'forward' : 'back';
    });
  }
  const previous = releases.slice(currentIndex + 1).find((release) => release.rollbackable);
  if (previous) previous.previous = true;
  return releases;
}

/**
 * The release's containers per host (config host order, then role order, newest first),
 * `_replaced_` copies included, plus one error entry per host that could not be read.
 */
export function kamalReleaseHostEntries(release: Pick<Release, 'id' | 'version'>, inventory: KamalInventory): HostEntry[] {
  const entries: HostEntry[] = [];
  for (const host of inventory.hosts) {
    if (host.error) {
      const error: HostError = { id: `${release.id}!${host.host}`, host: host.host, message: host.error.message, kind: host.error.kind };
      entries.push(error);
      // What an earlier read saw there, marked stale: it is history, not the host's state now.
      const seen = host.lastSeen;
      for (const container of seen?.containers.filter((entry) => entry.version === release.version) ?? []) {
        entries.push({ id: `${container.id}~stale`, ...containerDetails(container), version: container.version, stale: { seenAt: seen!.readAt } });
      }
      continue;
    }
    const roleOrder = (role: string) => {
      const index = host.roles.indexOf(role);
      return index === -1 ? host.roles.length : index;
    };
    const containers = host.containers
      .filter((container) => container.version === release.version)
      .sort((a, b) => roleOrder(a.role) - roleOrder(b.role) || Number(a.replaced) - Number(b.replaced) || newestFirstOrder(a, b));
    for (const container of containers) entries.push({ id: container.id, ...containerDetails(container), version: container.version });
  }
  return entries;
}

/** What "Show History on Hosts" prints for a Kamal release: its boots from the audit logs, then its containers now. */
export function kamalReleaseHistory(release: Pick<Release, 'id' | 'version'>, inventory: KamalInventory, auditLog: string): string[] {
  const name = inventory.destination ? `${inventory.service} (${inventory.destination})` : inventory.service;
  const lines = [`${release.version} of ${name} on its hosts`, '', `Booted (from each host's ${auditLog}, read ${inventory.readAt}):`];
  const boots = bootsOf(inventory, release.version);
  if (boots.length === 0) lines.push('  no "Booted app version" line for it in the audit logs read');
  for (const boot of boots) lines.push(`  ${boot.recordedAt}  ${boot.host}${boot.role ? ` (${boot.role})` : ''}  by ${boot.performer}`);
  const unread = inventory.hosts.filter((host) => host.error).map((host) => `${host.host}: ${host.error!.message}`);
  if (unread.length > 0) lines.push('', 'Not read:', ...unread.map((line) => `  ${line}`));
  lines.push('', 'Containers now:');
  const containers = kamalReleaseHostEntries(release, inventory).filter((entry): entry is HostContainer => !isHostError(entry));
  // A host not read has no "now": what an earlier read saw there is listed apart, with its time.
  const entries = containers.filter((entry) => !entry.stale);
  if (entries.length === 0) lines.push(unread.length > 0 ? '  none on the hosts read' : '  none (pruned everywhere)');
  for (const entry of entries) lines.push(`  ${entry.host} (${entry.role})  ${entry.name}  ${entry.state}  created ${entry.created}`);
  const stale = containers.filter((entry) => entry.stale);
  if (stale.length > 0) lines.push('', 'Last seen on the hosts not read:', ...stale.map((entry) => `  ${entry.host} (${entry.role})  ${entry.name}  was ${entry.state} at ${entry.stale!.seenAt}`));
  return lines;
}

/** What a host entry and `releases --json` both show of a container, in this order. */
function containerDetails(container: HostContainer): Omit<HostContainer, 'id' | 'version'> {
  return {
    host: container.host,
    role: container.role,
    name: container.name,
    state: container.state,
    status: container.status,
    image: container.image,
    created: container.created,
  };
}

export interface KamalReleaseJson {
  version: string;
  current: boolean;
  previous: boolean;
  rollbackable: boolean;
  /** What going to it is: "back", "forward"; null for the current release. */
  direction: string | null;
  reason: string | null;
  /** From the audit logs: who first booted the version. */
  deployedBy: string | null;
  /** Set when it runs now on some hosts and not on others: where it does and where it does not. */
  runningOn: { hosts: string[]; otherHosts: string[]; total: number } | null;
  containers: { host: string; role: string; name: string; state: string; status: string; image: string; created: string }[];
}

/** What `deploy-rollback releases --json` prints for Kamal: newest first. */
export function kamalReleasesJson(releases: readonly Release[], entries: ReadonlyMap<string, readonly HostEntry[]>): KamalReleaseJson[] {
  return releases.map((release) => ({
    version: release.version,
    current: release.current,
    previous: release.previous === true,
    rollbackable: release.rollbackable,
    direction: release.direction ?? null,
    reason: release.reason ?? null,
    deployedBy: release.triggeredBy ?? null,
    runningOn: release.runningOn ?? null,
    containers: (entries.get(release.id) ?? [])
      .filter((entry) => !isHostError(entry))
      .map((entry) => containerDetails(entry as HostContainer)),
  }));
}
