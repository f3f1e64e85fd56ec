/**
 * Uploading files over the SSH connection a host session already holds (SFTP, as Kamal's
 * `upload!` does), for the few things Kamal copies to hosts: error pages.
 */
import type { Client, SFTPWrapper } from 'ssh2';
import type { HostSession } from './types';

/** A session that can also open an SFTP channel on its connection. */
export interface SftpCapable {
  sftp(): Promise<SftpChannel>;
}

/** The part of ssh2's SFTPWrapper the uploads use. */
export interface SftpChannel {
  mkdir(path: string, attributes: { mode: number }, callback: (error?: Error | null) => void): void;
  writeFile(path: string, data: Buffer, options: { mode: number }, callback: (error?: Error | null) => void): void;
  chmod(path: string, mode: number, callback: (error?: Error | null) => void): void;
  end(): void;
}

export interface UploadFile {
  /** Relative to the SSH user's home, like every Kamal path. */
  remotePath: string;
  content: Buffer;
  mode: number;
}

/** Opens an SFTP channel on an ssh2 client (the pool's hook). */
export function openSftp(client: Client, timeoutMs = 30_000): Promise<SftpChannel> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the SFTP channel did not open within ${timeoutMs / 1000}s`)), timeoutMs);
    timer.unref();
    client.sftp((error: Error | undefined, sftp: SFTPWrapper) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(sftp);
    });
  });
}

function call(what: string, run: (callback: (error?: Error | null) => void) => void, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not finish within ${timeoutMs / 1000}s`)), timeoutMs);
    timer.unref();
    run((error) => {
      clearTimeout(timer);
      if (error) reject(new Error(`${what}: ${error.message}`));
      else resolve();
    });
  });
}

export function canUpload(session: HostSession): session is HostSession & SftpCapable {
  return typeof (session as Partial<SftpCapable>).sftp === 'function';
}

/**
 * Creates `directory` (an existing one is fine) and writes the files into it, then sets each mode
 * explicitly: a create's mode passes through the server's umask and an existing file keeps its own.
 * Without a directory mode the directory is taken as made (`mkdir -p` before) and left as it is.
 */
export async function uploadFiles(session: HostSession, directory: { path: string; mode?: number }, files: UploadFile[], timeoutMs = 60_000): Promise<void> {
  if (!canUpload(session)) throw new Error(`the connection to ${session.host} cannot upload files (no SFTP)`);
  const sftp = await session.sftp();
  try {
    const folderMode = directory.mode;
    if (folderMode !== undefined) await call(`creating ${directory.path}`, (done) => sftp.mkdir(directory.path, { mode: folderMode }, (error) => done(error && !/exist|failure/i.test(error.message) ? error : null)), timeoutMs);
    for (const file of files) await call(`uploading ${file.remotePath}`, (done) => sftp.writeFile(file.remotePath, file.content, { mode: file.mode }, done), timeoutMs);
    // Sent together: one round trip for every mode.
    await Promise.all([
      ...(folderMode !== undefined ? [call(`setting the mode of ${directory.path}`, (done) => sftp.chmod(directory.path, folderMode, done), timeoutMs)] : []),
      ...files.map((file) => call(`setting the mode of ${file.remotePath}`, (done) => sftp.chmod(file.remotePath, file.mode, done), timeoutMs)),
    ]);
  } finally {
    sftp.end();
  }
}
