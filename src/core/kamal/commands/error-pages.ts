/**
 * Kamal's error pages (lib/kamal/cli/app/error_pages.rb, commands/app/error_pages.rb): the local
 * `4??.html`/`5??.html` files of `error_pages_path` are uploaded per version to
 * `.kamal/proxy/apps-config/S[-D]/error_pages/V`, which kamal-proxy reads through its mount; other
 * versions' folders are removed after the old version stops.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeployRollbackError } from '../../model';
import type { KamalConfig } from '../config/types';
import { validateVersion } from './app';
import { proxyAppsConfigDirectory } from './proxy';

/** Ruby's `Dir["{4??.html,5??.html}"]`: names only, no subfolders. */
const ERROR_PAGE = /^[45][^/]{2}\.html$/;

/** Kamal's end state on the host: kamal-proxy runs as a non-root user and must read them. */
export const ERROR_PAGES_FOLDER_MODE = 0o755;
export const ERROR_PAGE_FILE_MODE = 0o644;

export interface ErrorPageFile {
  name: string;
  content: Buffer;
}

export function hasErrorPages(config: Pick<KamalConfig, 'raw'>): boolean {
  const value = config.raw.error_pages_path;
  return value !== undefined && value !== null && value !== '';
}

/** `.kamal/proxy/apps-config/S[-D]/error_pages`. */
export function errorPagesDirectory(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return `${proxyAppsConfigDirectory(config)}/error_pages`;
}

export function errorPagesVersionDirectory(config: Pick<KamalConfig, 'service' | 'destination'>, version: string): string {
  return `${errorPagesDirectory(config)}/${validateVersion(version)}`;
}

/** Kamal's `create_error_pages_directory`. */
export function makeErrorPagesDirectory(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return `mkdir -p ${errorPagesDirectory(config)}`;
}

/** Kamal's `clean_up_error_pages`: every version's folder but V's. */
export function cleanUpErrorPages(config: Pick<KamalConfig, 'service' | 'destination'>, version: string): string {
  return `find ${errorPagesDirectory(config)} -mindepth 1 -maxdepth 1 ! -name ${validateVersion(version)} -exec rm -rf {} +`;
}

/** The local error pages, read once when planning (relative paths are from the project root, where Kamal runs). */
export async function readErrorPages(config: KamalConfig, projectRoot: string): Promise<ErrorPageFile[]> {
  if (!hasErrorPages(config)) return [];
  const folder = path.resolve(projectRoot, String(config.raw.error_pages_path));
  let names: string[];
  try {
    names = (await fs.readdir(folder, { withFileTypes: true })).filter((entry) => entry.isFile() && ERROR_PAGE.test(entry.name)).map((entry) => entry.name).sort();
  } catch (error) {
    throw new DeployRollbackError(`Cannot read the error pages in ${folder} (error_pages_path of ${config.destinationFile ?? config.file}): ${(error as Error).message}.`, 'validate');
  }
  return Promise.all(names.map(async (name) => ({ name, content: await fs.readFile(path.join(folder, name)) })));
}
