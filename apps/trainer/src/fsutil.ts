/** File helpers over core's atomic writes (temp file + fsync + rename). */
import { promises as fs } from 'node:fs';
import { writeFileAtomic as coreWriteAtomic, writeTextAtomic } from '@adaptorkit/core';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  if (typeof data === 'string') return writeTextAtomic(file, data);
  await coreWriteAtomic(file, async (fh) => {
    await fh.write(data);
  });
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeTextAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

export async function readJson<T = unknown>(file: string): Promise<T> {
  return JSON.parse(await fs.readFile(file, 'utf8')) as T;
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
