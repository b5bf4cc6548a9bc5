#!/usr/bin/env node
// The `adaptorkit` command. A committed shim, so npm links it at install time, before the build.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  console.error('adaptorkit: the trainer is not built yet; run `npm run build` at the repository root first.');
  process.exit(1);
}
await import(cli.href);
