/**
 * Opening model files without trusting what the path is. A FIFO named model.safetensors would block
 * every reader on open() or read() for ever, a directory is a raw EISDIR, a device can be endless:
 * only regular files (symlinks to regular files included, as in the HF cache) are opened. The path
 * is stat'ed first, opened with O_NONBLOCK (so even a FIFO swapped in after the stat cannot block
 * the open), and the opened descriptor is fstat'ed again before anything is read.
 */
import { constants, promises as fsp, type Stats } from 'node:fs';
import { AdaptorkitError } from '../errors.js';

function kind(s: Stats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function notRegular(file: string, what: string, s: Stats): never {
  throw new AdaptorkitError('BAD_FILE', `${what} ${file} is ${kind(s)}, not a regular file; point at the real file`);
}

/** Open a regular file for reading (never blocks on a FIFO). Throws AdaptorkitError IO_ERROR / BAD_FILE. */
export async function openRegular(file: string, what = 'file'): Promise<{ fh: fsp.FileHandle; size: number }> {
  let st: Stats;
  try {
    st = await fsp.stat(file);
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `cannot open ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isFile()) notRegular(file, what, st);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `cannot open ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const fst = await fh.stat();
    if (!fst.isFile()) notRegular(file, what, fst);
    return { fh, size: fst.size };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Read a whole regular text file of at most maxBytes (UTF-8). */
export async function readRegularText(file: string, what = 'file', maxBytes = MAX_JSON_BYTES): Promise<string> {
  const { fh, size } = await openRegular(file, what);
  try {
    if (size > maxBytes) {
      throw new AdaptorkitError('BAD_FILE', `${what} ${file} is ${size} bytes, over the ${maxBytes}-byte limit for this kind of file`);
    }
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return buf.toString('utf8', 0, off);
  } catch (e) {
    if (e instanceof AdaptorkitError) throw e;
    throw new AdaptorkitError('IO_ERROR', `cannot read ${what} ${file}: ${(e as Error).message}`, { cause: e });
  } finally {
    await fh.close();
  }
}

/** JSON files of a model folder (config.json, tokenizer.json, index files) larger than this are refused. */
export const MAX_JSON_BYTES = 512 * 1024 * 1024;
