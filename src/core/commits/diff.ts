/** The files that differ between two commits, for a multi-file diff of two releases' code. */
import { gitBuffer } from '../gitops/git';
import { DeployRollbackError } from '../model';

export type ChangeStatus = 'added' | 'modified' | 'deleted' | 'renamed' | 'copied' | 'type-changed';

export interface ChangedFile {
  status: ChangeStatus;
  /** Path relative to the repository root, at `toSha` (for a delete: where it was). */
  path: string;
  /** Renamed or copied from this path (at `fromSha`). */
  oldPath?: string;
}

const STATUS: Record<string, ChangeStatus> = { A: 'added', M: 'modified', D: 'deleted', R: 'renamed', C: 'copied', T: 'type-changed' };

/** Reads `git diff --name-status -z` output (NUL-separated, so any file name is safe). */
export function parseNameStatus(output: string): ChangedFile[] {
  const fields = output.split('\0');
  const files: ChangedFile[] = [];
  for (let index = 0; index < fields.length; ) {
    const code = fields[index++];
    if (!code) continue;
    const status = STATUS[code[0]] ?? 'modified';
    if (status === 'renamed' || status === 'copied') {
      const oldPath = fields[index++];
      const path = fields[index++];
      files.push({ status, path, oldPath });
    } else {
      files.push({ status, path: fields[index++] });
    }
  }
  return files;
}

/** What changes from `fromSha` to `toSha` in `repository`, renames detected, one git process. */
export async function changedFiles(repository: string, fromSha: string, toSha: string, signal?: AbortSignal): Promise<ChangedFile[]> {
  for (const sha of [fromSha, toSha]) if (!/^[0-9a-f]{4,40}$/.test(sha)) throw new DeployRollbackError(`Not a commit sha: ${JSON.stringify(sha)}`, 'comparing releases');
  const out = await gitBuffer(['diff', '--name-status', '-z', '--find-renames', '--no-ext-diff', fromSha, toSha, '--'], {
    cwd: repository,
    signal,
    step: 'listing the files changed between two releases',
  });
  return parseNameStatus(out.toString('utf8'));
}
