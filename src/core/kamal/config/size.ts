/**
 * The size limit on a config file, checked as the file is read, before any ERB or YAML: a
 * generated or corrupted 50 MB deploy.yml is refused in milliseconds with its size, instead of
 * gigabytes of parser memory and a misleading error from deep inside the parser.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Kamal configs are a few KB; the largest real ones (dozens of roles, long env lists) stay far under this. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export class ConfigTooLarge extends Error {}

function megabytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** The file's text, reading at most MAX_CONFIG_BYTES + 1 bytes whatever the file is (a growing file, a device). */
export async function readConfigFile(file: string, limit = MAX_CONFIG_BYTES): Promise<string> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const tooLarge = (bytes: string) =>
      new ConfigTooLarge(`${path.basename(file)} is ${bytes}; Kamal configs are a few KB, so it is not read (the limit is ${megabytes(limit)})`);
    if (size > limit) throw tooLarge(megabytes(size));
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > limit) throw tooLarge(`over ${megabytes(limit)}`);
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}
