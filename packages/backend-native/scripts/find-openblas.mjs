// Finds the OpenBLAS shared library for binding.gyp (configure time).
//   node scripts/find-openblas.mjs        -> prints the library path (exit 1 when none)
//   node scripts/find-openblas.mjs --dir  -> prints its folder (for the rpath)
// ADAPTORKIT_OPENBLAS_LIB=/path/to/libopenblas.so overrides the search.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

export function findOpenBlas() {
  const override = process.env.ADAPTORKIT_OPENBLAS_LIB;
  if (override) return existsSync(override) ? override : undefined;
  const dirs = [
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
    '/opt/homebrew/opt/openblas/lib',
    '/usr/local/opt/openblas/lib',
  ];
  const names = ['libopenblas.so', 'libopenblas.so.0', 'libopenblas.dylib'];
  for (const d of dirs) for (const n of names) if (existsSync(`${d}/${n}`)) return `${d}/${n}`;
  return undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const lib = findOpenBlas();
  if (!lib) process.exit(1);
  process.stdout.write(process.argv.includes('--dir') ? dirname(lib) : lib);
}
