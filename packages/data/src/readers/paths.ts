/**
 * Resolving a dataset's relative paths so that no record can reach outside the dataset root:
 * absolute paths, drive letters, '..' escapes, NUL bytes and symlinks leading out are rejected.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { AdaptorkitError } from '@adaptorkit/core';

/** Why `p` cannot be used as a path inside `root`, or undefined if it can; `resolved` is the absolute path. */
export function checkInsideRoot(root: string, p: unknown): { resolved?: string; problem?: string } {
  if (typeof p !== 'string' || p.length === 0) return { problem: `expected a non-empty relative path string, got ${JSON.stringify(p)}` };
  if (p.includes('\0')) return { problem: 'path contains a NUL byte' };
  const unified = p.replace(/\\/g, '/');
  if (isAbsolute(unified) || /^[A-Za-z]:/.test(unified) || unified.startsWith('//')) {
    return { problem: `path '${p}' is absolute; image paths must be relative to the dataset root` };
  }
  const rootAbs = resolve(root);
  const full = resolve(rootAbs, unified);
  const rel = relative(rootAbs, full);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
    return { problem: `path '${p}' escapes the dataset root ${rootAbs}` };
  }
  // A symlink inside the root must not lead outside it.
  let real: string | undefined;
  try {
    real = realpathSync(full);
  } catch {
    real = undefined; // missing files are reported separately by the caller
  }
  if (real !== undefined) {
    let rootReal = rootAbs;
    try {
      rootReal = realpathSync(rootAbs);
    } catch {
      /* root checked by the caller */
    }
    const relReal = relative(rootReal, real);
    if (relReal.startsWith(`..${sep}`) || relReal === '..' || isAbsolute(relReal)) {
      return { problem: `path '${p}' is a link that leads outside the dataset root (to ${real})` };
    }
  }
  return { resolved: full };
}

/** Resolve `p` inside `root` or throw INVALID_ARGUMENT saying why. */
export function resolveInsideRoot(root: string, p: string): string {
  const r = checkInsideRoot(root, p);
  if (r.problem !== undefined || r.resolved === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', r.problem ?? `bad path ${p}`);
  return r.resolved;
}
