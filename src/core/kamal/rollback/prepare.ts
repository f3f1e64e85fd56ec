/**
 * What `kamal app boot` does on every app host before the first boot group, and after each old
 * version stops: asset extraction and bridging, error pages, and their clean-up.
 */
import type { Reporter } from '../../model';
import type { ExecResult } from '../../ssh/types';
import type { UploadFile } from '../../ssh/sftp';
import { syncAssetVolumes } from '../commands/assets';
import { ERROR_PAGE_FILE_MODE, ERROR_PAGES_FOLDER_MODE } from '../commands/error-pages';
import { versionFromName } from '../commands/app';
import { ENV_FILE_MODE } from '../commands/env-file';
import type { KamalPlanDetail, KamalRoleStep } from './types';

export type RunOnHost = (host: string, command: string, what: string) => Promise<ExecResult>;
export type UploadToHost = (host: string, directory: { path: string; mode?: number }, files: UploadFile[]) => Promise<void>;

function lastLine(text: string): string {
  return text.trim().split('\n').slice(-1)[0] ?? '';
}

/**
 * Kamal's `Assets#run` for every role with assets, all hosts in parallel: extract V's assets, read
 * the version serving now, and bridge both ways. Throws with every failing host named; nothing
 * has been switched then.
 */
export async function prepareHosts(detail: KamalPlanDetail, run: RunOnHost, reporter: Reporter, upload?: UploadToHost): Promise<void> {
  const failures: string[] = [];
  await Promise.all(
    detail.hostPlans.map(async (host) => {
      try {
        await writeEnvFiles(detail, host.host, run, reporter, upload);
      } catch (error) {
        failures.push(`${host.host}: env files: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
      const pages = detail.errorPages;
      const directories = [...new Set(host.steps.map((step) => step.commands.errorPagesDirectory).filter((entry): entry is string => entry !== undefined))];
      if (pages && pages.files.length > 0) {
        for (const directory of directories) {
          try {
            reporter.step(`[ssh ${host.host}] uploading ${pages.files.length} error page(s) to ${directory}`);
            const made = await run(host.host, pages.makeDirectory, 'create the error pages folder');
            if (made.code !== 0) throw new Error(`creating the error pages folder failed (exit ${made.code}${made.stderr.trim() ? `: ${lastLine(made.stderr)}` : ''})`);
            if (!upload) throw new Error('no way to upload files to the host');
            await upload(host.host, { path: directory, mode: ERROR_PAGES_FOLDER_MODE }, pages.files.map((file) => ({ remotePath: `${directory}/${file.name}`, content: file.content, mode: ERROR_PAGE_FILE_MODE })));
          } catch (error) {
            failures.push(`${host.host}: error pages: ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      }
      for (const step of host.steps) {
        if (!step.commands.extractAssets) continue;
        const prefix = `[ssh ${step.host}] ${step.role}:`;
        try {
          reporter.step(`${prefix} extracting the assets of ${step.to}`);
          const extracted = await run(step.host, step.commands.extractAssets, `extract the assets of ${step.to}`);
          if (extracted.code !== 0) throw new Error(`extracting the assets of ${step.to} failed (exit ${extracted.code}${extracted.stderr.trim() ? `: ${lastLine(extracted.stderr)}` : ''})`);
          const current = await run(step.host, step.commands.currentVersion, 'read the current version');
          const currentName = current.stdout.trim().split('\n')[0]?.trim();
          const old = currentName ? versionFromName(detail.config, step.role, currentName) : undefined;
          const sync = old === step.from && step.commands.syncAssets ? step.commands.syncAssets : syncAssetVolumes(detail.config, step.role, step.to, old);
          reporter.step(`${prefix} bridging the assets of ${step.to}${old ? ` and ${old}` : ''}`);
          const synced = await run(step.host, sync, `bridge the assets of ${step.to}`);
          if (synced.code !== 0) throw new Error(`copying the assets of ${step.to} failed (exit ${synced.code}${synced.stderr.trim() ? `: ${lastLine(synced.stderr)}` : ''})`);
        } catch (error) {
          failures.push(`${step.host} (${step.role}): ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }),
  );
  if (failures.length > 0) throw new Error(`Nothing was switched: preparing the hosts failed: ${failures.join('; ')}`);
}

/**
 * The differing role env files, written as Kamal's boot does (`mkdir -p` of the env folder, then
 * the file with mode 0600) when the user agreed. The content is only ever handed to the upload.
 */
async function writeEnvFiles(detail: KamalPlanDetail, host: string, run: RunOnHost, reporter: Reporter, upload?: UploadToHost): Promise<void> {
  const env = detail.envFiles;
  if (!env?.write) return;
  const files = env.differences.filter((entry) => entry.host === host && entry.content !== undefined);
  if (files.length === 0) return;
  const made = await run(host, env.makeDirectory, 'create the env folder');
  if (made.code !== 0) throw new Error(`creating the env folder failed (exit ${made.code}${made.stderr.trim() ? `: ${lastLine(made.stderr)}` : ''})`);
  if (!upload) throw new Error('no way to upload files to the host');
  for (const file of files) {
    reporter.step(`[sftp ${host}] ${file.role}: writing ${file.path} as Kamal does (mode 0600); keys that differed: ${file.keys.join(', ')}`);
    await upload(host, { path: file.path.slice(0, file.path.lastIndexOf('/')) }, [{ remotePath: file.path, content: Buffer.from(file.content!.reveal(), 'utf8'), mode: ENV_FILE_MODE }]);
  }
}

/** Kamal's clean-up after an old version stopped; a failure is reported, the new version already serves. */
export async function cleanUpAfterStop(step: KamalRoleStep, run: RunOnHost, reporter: Reporter): Promise<void> {
  const prefix = `[ssh ${step.host}] ${step.role}:`;
  const cleanUps: [string | undefined, string][] = [
    [step.commands.cleanUpAssets, 'remove the assets of other versions'],
    [step.commands.cleanUpErrorPages, 'remove the error pages of other versions'],
  ];
  for (const [command, what] of cleanUps) {
    if (!command) continue;
    try {
      const result = await run(step.host, command, what);
      if (result.code !== 0) reporter.warn(`${prefix} could not ${what}: ${lastLine(result.stderr) || `exit ${result.code}`}`);
    } catch (error) {
      reporter.warn(`${prefix} could not ${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
