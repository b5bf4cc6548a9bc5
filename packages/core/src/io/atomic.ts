/**
 * Atomic writes: write to a temp file in the same folder, fsync, rename over the final name.
 * A crash mid-write leaves at most a stray `.tmp-*` file, never a half file under the final name.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AdaptorkitError } from '../errors.js';

export async function writeFileAtomic(file: string, write: (fh: fsp.FileHandle) => Promise<void>): Promise<void> {
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx');
    await write(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    if (e instanceof AdaptorkitError) throw e;
    throw new AdaptorkitError('IO_ERROR', `writing ${file} failed: ${(e as Error).message}`, { cause: e });
  }
}

/** Write a string (e.g. JSON) atomically. */
export async function writeTextAtomic(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, async (fh) => {
    await fh.write(text, null, 'utf8');
  });
}
