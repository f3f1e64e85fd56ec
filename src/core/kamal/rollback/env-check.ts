/**
 * Env files in the pre-flight: what Kamal's rollback would write for each role (current config and
 * .kamal/secrets) against the per-line hashes the hosts printed. Keys only, never a value.
 */
import { randomBytes } from 'node:crypto';
import type { Reporter } from '../../model';
import { roleEnvFile } from '../commands/app';
import { differingKeys, expectedEnvFile, expectedText, makeEnvDirectory, textDigest, type ExpectedEnvFile } from '../commands/env-file';
import { resolveSecrets, SecretText, type ResolvedSecrets } from '../config/secrets';
import type { KamalConfig } from '../config/types';
import { projectRoot } from './assemble';
import type { HostFacts, RoleFacts } from './preflight';
import type { KamalEnvFilesPlan, KamalHostPlan } from './types';

export interface EnvFilesRequest {
  /** Asked only when a secrets file holds `$(...)`: whether its commands may run. */
  allowCommands?: (files: string[]) => Promise<boolean> | boolean;
  /** The user already agreed to write differing files as Kamal does (CLI --write-env-files). */
  write?: boolean;
  /** Bound of each secrets command (default 60 s). */
  commandTimeoutMs?: number;
  /** The environment `$VAR` and the commands see (default: this process's). */
  processEnv?: NodeJS.ProcessEnv;
}

/** What planning needs to compare env files: the secrets as Kamal would read them, and this plan's nonce. */
export interface EnvCheck {
  nonce: string;
  secrets?: ResolvedSecrets;
  /** Why nothing could be resolved (a command failed), without any value. */
  failure?: string;
}

export async function prepareEnvCheck(config: KamalConfig, request: EnvFilesRequest, signal: AbortSignal | undefined, reporter: Reporter): Promise<EnvCheck> {
  const nonce = randomBytes(16).toString('hex');
  const secretsPath = typeof config.raw.secrets_path === 'string' && config.raw.secrets_path !== '' ? config.raw.secrets_path : undefined;
  try {
    const secrets = await resolveSecrets({
      projectRoot: projectRoot(config),
      destination: config.destination,
      secretsPath,
      processEnv: request.processEnv,
      allowCommands: request.allowCommands,
      commandTimeoutMs: request.commandTimeoutMs,
      signal,
      onCommand: () => reporter.step('[local] running a command of the secrets file (its output is not shown)'),
    });
    if (secrets.commandsRan) reporter.step(`[local] resolved ${secrets.files.join(', ')}, commands included`);
    return { nonce, secrets };
  } catch (error) {
    if (signal?.aborted) throw error;
    return { nonce, failure: error instanceof Error ? error.message : String(error) };
  }
}

/** The file on the host is, byte for byte, what Kamal would write (its salted digest, from a tree read). */
function digestMatches(expected: ExpectedEnvFile, envDigest: RoleFacts['envDigest']): boolean {
  const text = expectedText(expected);
  return envDigest !== undefined && text !== undefined && textDigest(envDigest.nonce, text) === envDigest.digest;
}

/**
 * Whether a recent tree read already shows every env file of these hosts as Kamal would write it:
 * then the plan compares nothing more and needs no exchange of its own. False whenever a file
 * differs, was not digested, or a secret is unresolved (the per-key read then says which keys).
 */
export function envFilesAsExpected(config: KamalConfig, facts: HostFacts[], check: EnvCheck): boolean {
  if (!check.secrets) return true;
  const secrets = check.secrets;
  return facts.every((host) =>
    host.roles.every((read) => {
      const role = config.roles.find((entry) => entry.name === read.role);
      return role !== undefined && digestMatches(expectedEnvFile(config, role, host.host, secrets), read.envDigest);
    }),
  );
}

/** Each role's env file on each host against what Kamal would write there: the differing keys, never a value. */
export function compareEnvFiles(config: KamalConfig, hostPlans: KamalHostPlan[], facts: HostFacts[], check: EnvCheck, write: boolean): KamalEnvFilesPlan {
  const plan: KamalEnvFilesPlan = { nonce: check.nonce, secretsFiles: check.secrets?.files ?? [], differences: [], notCompared: [], write, makeDirectory: makeEnvDirectory(config) };
  if (!check.secrets) {
    plan.notCompared.push(`reading the secrets failed (${check.failure ?? 'unknown'})`);
    return plan;
  }
  const unresolvedKeys = new Set<string>();
  const missing = new Set<string>();
  const unreadable: string[] = [];
  // What each file was when compared, for the run's lock exchange (one plan: one read, one nonce).
  const digests: { host: string; role: string; digest: NonNullable<RoleFacts['envDigest']> }[] = [];
  const steps = hostPlans.flatMap((host) => host.steps);
  for (const step of steps) {
    const role = config.roles.find((entry) => entry.name === step.role);
    const read = facts.find((host) => host.host === step.host)?.roles.find((entry) => entry.role === step.role);
    if (read?.envDigest) digests.push({ host: step.host, role: step.role, digest: read.envDigest });
    if (!role || !read) continue;
    const where = `${step.host} (${step.role})`;
    const expected = expectedEnvFile(config, role, step.host, check.secrets);
    if (!read.envHashes) {
      if (!digestMatches(expected, read.envDigest)) unreadable.push(where);
      continue;
    }
    for (const name of expected.missing) missing.add(name);
    const { differ, notCompared } = differingKeys(expected, read.envHashes, check.nonce);
    for (const key of notCompared) unresolvedKeys.add(key);
    if (differ.length > 0) {
      const text = expectedText(expected);
      plan.differences.push({ host: step.host, role: step.role, path: roleEnvFile(config, step.role), keys: differ, ...(text !== undefined ? { content: new SecretText(text) } : {}) });
    }
  }
  if (unresolvedKeys.size > 0) plan.notCompared.push(`${[...unresolvedKeys].join(', ')} come from commands in ${check.secrets.files.join(', ')} that were not run (allow them to compare these too)`);
  if (missing.size > 0) {
    plan.notCompared.push(`no secrets file defines ${[...missing].join(', ')}${check.secrets.files.length ? ` (read: ${check.secrets.files.join(', ')})` : ''}: Kamal's rollback would stop with "Secret not found"`);
  }
  if (unreadable.length > 0) plan.notCompared.push(`${unreadable.join(', ')} could not hash the env file (sha256sum missing?)`);
  // Only when every file has a digest, all from the same read.
  const nonce = digests[0]?.digest.nonce;
  if (nonce !== undefined && digests.length === steps.length && digests.every(({ digest }) => digest.nonce === nonce)) {
    plan.compared = { nonce, files: digests.map(({ host, role, digest }) => ({ host, role, digest: digest.digest })) };
  }
  return plan;
}
