/**
 * Reading a dataset file at the moment it is used, checked again then: the path was checked when
 * the records were read, but a file can be swapped for a link to somewhere else while a run goes
 * on. The file is opened without following a final symlink (O_NOFOLLOW) and without blocking on
 * a FIFO (O_NONBLOCK), and the path of the opened descriptor itself (/proc/self/fd on Linux; on
 * other systems the realpath, compared by device and inode with the descriptor) must lie inside
 * the root: what is read is what was checked.
 */
import { constants, promises as fsp } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { AdaptorkitError } from '@adaptorkit/core';

/** Largest file read into memory by readInsideRoot (an image far above this is refused, not decoded). */
export const MAX_DATA_FILE_BYTES = 256 * 2 ** 20;

const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const NONBLOCK = constants.O_NONBLOCK ?? 0;

async function descriptorPath(fh: fsp.FileHandle, file: string): Promise<string> {
  if (process.platform === 'linux') {
    try {
      return await fsp.realpath(`/proc/self/fd/${fh.fd}`);
    } catch {
      /* no /proc: fall back below */
    }
  }
  const real = await fsp.realpath(file);
  const [a, b] = await Promise.all([fh.stat(), fsp.stat(real)]);
  if (a.dev !== b.dev || a.ino !== b.ino) throw new AdaptorkitError('BAD_FILE', `${file} changed while it was opened; refusing it`);
  return real;
}

/** The bytes of `file`, which must be a regular file whose real location is inside `root`. */
export async function readInsideRoot(root: string, file: string, maxBytes = MAX_DATA_FILE_BYTES): Promise<Buffer> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, constants.O_RDONLY | NOFOLLOW | NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK') throw new AdaptorkitError('BAD_FILE', `${file} is a symbolic link; dataset files are read only as regular files inside the dataset root ${root}`, { cause: e });
    throw new AdaptorkitError('IO_ERROR', `${file}: cannot open (${(e as Error).message}).`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new AdaptorkitError('BAD_FILE', `${file} is not a regular file (a directory, FIFO or device); dataset files must be regular files`);
    if (st.size > maxBytes) throw new AdaptorkitError('BAD_FILE', `${file} is ${st.size} bytes, over the ${maxBytes}-byte limit for one dataset file`);
    const real = await descriptorPath(fh, file);
    const rootReal = await fsp.realpath(root);
    const rel = relative(rootReal, real);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      throw new AdaptorkitError('BAD_FILE', `${file} resolves to ${real}, outside the dataset root ${rootReal} (a link swapped in after the data was checked?); refusing it`);
    }
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
