/**
 * Kamal's asset bridging (lib/kamal/commands/app/assets.rb): for roles behind kamal-proxy with an
 * `asset_path`, the target image's assets are extracted on the host and merged, without clobbering,
 * with the running version's, so requests in flight during the switch find either version's files.
 */
import { DeployRollbackError } from '../../model';
import { quote } from '../../shell';
import type { KamalConfig, KamalRole } from '../config/types';
import { containerPrefix, image, isRecord, rawRoleConfig, serviceWithDestination, validateVersion } from './app';
import { ShellWord } from './kamal-shell';

/** An absolute container path of plain characters: it is written into commands as Kamal writes it. */
const ASSET_PATH = /^\/[A-Za-z0-9._/@+-]*$/;
const VOLUME_OPTIONS = /^[a-z,]+$/;

/** `asset_path` of the role, else the top-level one: `[path, options]`, or undefined. */
export function assetPathConfig(config: Pick<KamalConfig, 'raw'>, role: string): { path: string; options?: string } | undefined {
  const roleValue = rawRoleConfig(config, role)?.asset_path;
  const raw = roleValue !== undefined && roleValue !== null && roleValue !== '' ? roleValue : config.raw.asset_path;
  if (raw === undefined || raw === null || raw === '' || isRecord(raw)) return undefined;
  const [path, options] = String(raw).split(/:(.*)/s, 2) as [string, string | undefined];
  return { path, ...(options !== undefined && options !== '' ? { options } : {}) };
}

/** Kamal's `assets?`: an asset_path, on a role that runs the proxy. */
export function roleHasAssets(config: Pick<KamalConfig, 'raw'>, role: KamalRole): boolean {
  return role.proxy !== undefined && assetPathConfig(config, role.name) !== undefined;
}

/** Refuses an asset_path the commands could not carry verbatim. */
export function validateAssetPath(config: Pick<KamalConfig, 'raw'>, role: string, where: string): { path: string; options?: string } | undefined {
  const asset = assetPathConfig(config, role);
  if (!asset) return undefined;
  if (!ASSET_PATH.test(asset.path) || asset.path.includes('..')) {
    throw new DeployRollbackError(`Refusing asset_path ${JSON.stringify(asset.path)} of role ${role} in ${where}: expected an absolute path in the image (letters, digits, ".", "_", "-", "/").`, 'validate');
  }
  if (asset.options !== undefined && !VOLUME_OPTIONS.test(asset.options)) {
    throw new DeployRollbackError(`Refusing asset_path options ${JSON.stringify(asset.options)} of role ${role} in ${where}: expected volume options like "ro".`, 'validate');
  }
  return asset;
}

/** `.kamal/apps/S[-D]/assets`. */
export function assetsDirectory(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return `.kamal/apps/${serviceWithDestination(config)}/assets`;
}

export function assetExtractedDirectory(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, version: string): string {
  return `${assetsDirectory(config)}/extracted/${role}-${validateVersion(version)}`;
}

export function assetVolumeDirectory(config: Pick<KamalConfig, 'service' | 'destination'>, role: string, version: string): string {
  return `${assetsDirectory(config)}/volumes/${role}-${validateVersion(version)}`;
}

/** `--volume $PWD/.kamal/apps/S/assets/volumes/R-V:ASSET_PATH`: the host's shell expands $PWD (the SSH user's home). */
export function assetVolumeArg(config: KamalConfig, role: KamalRole, version: string): ShellWord | undefined {
  if (!roleHasAssets(config, role)) return undefined;
  const asset = validateAssetPath(config, role.name, config.file);
  if (!asset) return undefined;
  return new ShellWord(`$PWD/${assetVolumeDirectory(config, role.name, version)}:${asset.path}${asset.options ? `:${asset.options}` : ''}`);
}

/** Kamal's `extract_assets`: the image's asset folder copied out through a throw-away container. */
export function extractAssets(config: KamalConfig, role: KamalRole, version: string): string {
  const asset = validateAssetPath(config, role.name, config.file);
  if (!asset) throw new DeployRollbackError(`Role ${role.name} has no asset_path.`, 'plan');
  const container = `${containerPrefix(config, role.name)}-assets`;
  const extracted = assetExtractedDirectory(config, role.name, version);
  return [
    `mkdir -p ${extracted}`,
    `docker container rm ${container} 2> /dev/null || true`,
    `docker container create --name ${container} ${quote(image(config, version))}`,
    `docker container cp -L ${container}:${asset.path}/. ${extracted}`,
    `docker container rm ${container}`,
  ].join(' && ');
}

/** Kamal's `sync_asset_volumes`: new into the new volume, then both ways with the old version (may fail). */
export function syncAssetVolumes(config: KamalConfig, role: string, version: string, oldVersion?: string): string {
  const newExtracted = assetExtractedDirectory(config, role, version);
  const newVolume = assetVolumeDirectory(config, role, version);
  const commands = [`mkdir -p ${newVolume}`, `cp -rnT ${newExtracted} ${newVolume}`];
  if (oldVersion !== undefined && oldVersion !== '') {
    commands.push(`cp -rnT ${newExtracted} ${assetVolumeDirectory(config, role, oldVersion)} || true`);
    commands.push(`cp -rnT ${assetExtractedDirectory(config, role, oldVersion)} ${newVolume} || true`);
  }
  return commands.join(' ; ');
}

/** Kamal's `clean_up_assets`: every sibling `R-*` but `R-V`, under extracted/ and volumes/. */
export function cleanUpAssets(config: KamalConfig, role: string, version: string): string {
  const siblings = (path: string) => {
    const slash = path.lastIndexOf('/');
    return `find ${path.slice(0, slash)} -maxdepth 1 -name '${role}-*' ! -name ${path.slice(slash + 1)} -exec rm -rf "{}" +`;
  };
  return `${siblings(assetExtractedDirectory(config, role, version))} ; ${siblings(assetVolumeDirectory(config, role, version))}`;
}
