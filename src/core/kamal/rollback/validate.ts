/** The config checked before a rollback is planned: every value that reaches a command, and ERB left unresolved where it matters. */
import { DeployRollbackError } from '../../model';
import {
  runContainer,
  validateDestination,
  validateEnvName,
  validateHost,
  validateLabelKey,
  validateOptionKey,
  validateRepository,
  validateRole,
  validateService,
  loggingArgs,
  optionArgs,
} from '../commands/app';
import { validateAssetPath } from '../commands/assets';
import { stopTimeout } from './steps';
import type { KamalConfig } from '../config/types';

/** Dotted config keys that no rollback command reads: unresolved values there do not matter. */
const IRRELEVANT_UNKNOWN = [/^builder(\.|$)/, /^accessories(\.|$)/, /^registry\.(username|password)(\.|$)/, /^aliases(\.|$)/, /^x-/, /(^|\.)env\.secret(\.|$)/, /^retain_containers$/, /^minimum_version$/, /^secrets_path$/];

export function relevantUnknowns(config: KamalConfig): string[] {
  return config.unknown.filter((path) => !IRRELEVANT_UNKNOWN.some((pattern) => pattern.test(path)));
}

/** Every value that reaches a command, checked before any command is built. */
export function validateConfigForRollback(config: KamalConfig): void {
  const where = config.destinationFile ?? config.file;
  const errors = config.problems.filter((problem) => problem.severity === 'error');
  if (errors.length > 0) {
    const shown = errors.slice(0, 3).map((problem) => `${problem.file}${problem.line !== undefined ? `:${problem.line}` : ''}: ${problem.message}`);
    throw new DeployRollbackError(`Cannot plan a rollback while the Kamal config has errors: ${shown.join('; ')}${errors.length > 3 ? ` (and ${errors.length - 3} more)` : ''}.`, 'validate');
  }
  const unknown = relevantUnknowns(config);
  if (unknown.length > 0) {
    throw new DeployRollbackError(
      `Cannot plan a rollback from ${where}: these values could not be resolved (ERB that is not ENV): ${unknown.join(', ')}. The commands need them exactly as Kamal would render them.`,
      'validate',
    );
  }
  validateService(config.service, where);
  if (config.destination !== undefined) validateDestination(config.destination, where);
  else if (config.requireDestination) throw new DeployRollbackError(`${config.file} sets require_destination: pick a destination to roll back.`, 'validate');
  validateRepository(config.repository, where);
  if (config.roles.length === 0) throw new DeployRollbackError(`${where} defines no servers for ${config.service}.`, 'validate');
  if (!config.roles.some((role) => role.name === config.primaryRole)) {
    throw new DeployRollbackError(`The primary role "${config.primaryRole}" of ${config.service} has no servers in ${where}.`, 'validate');
  }
  for (const role of config.roles) {
    validateRole(role.name, where);
    for (const host of role.hosts) validateHost(host, `role ${role.name} of ${where}`);
    for (const key of Object.keys(role.env.clear)) validateEnvName(key, `env of role ${role.name}`);
    for (const key of Object.keys(role.labels)) validateLabelKey(key, `labels of role ${role.name}`);
    for (const key of Object.keys(role.options)) validateOptionKey(key, `options of role ${role.name}`);
    optionArgs(role.options, `options of role ${role.name}`);
    // Building each host's run line once checks everything it carries (logging, tags, env).
    for (const host of role.hosts) runContainer(config, role, { host, version: 'validation', hostname: 'validation' });
    try {
      validateAssetPath(config, role.name, where);
    } catch (error) {
      const at = config.problems.find((problem) => /asset_path/.test(problem.message) && problem.line !== undefined);
      throw at ? new DeployRollbackError(`${(error as Error).message} (${at.file}:${at.line})`, 'validate') : error;
    }
  }
  for (const host of config.hosts) validateHost(host, where);
  loggingArgs(config.logging);
  for (const role of config.roles) stopTimeout(config, role);
  for (const [name, value] of [['deploy_timeout', config.deployTimeout], ['drain_timeout', config.drainTimeout], ['readiness_delay', config.readinessDelay]] as const) {
    if (!Number.isFinite(value) || value < 0) throw new DeployRollbackError(`Refusing ${name} ${JSON.stringify(value)} in ${where}: expected seconds.`, 'validate');
  }
}
