// Install step of @adaptorkit/backend-native: compiles the addon with node-gyp when a compiler and
// OpenBLAS are present. It NEVER fails the install: on any problem it writes the reason to
// build/native-status.json (read by nativeUnavailableReason()) and prints a one-line hint.
// ADAPTORKIT_NATIVE_SKIP=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findOpenBlas } from './find-openblas.mjs';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const statusFile = join(pkgDir, 'build', 'native-status.json');
const HINT = 'Debian/Ubuntu: apt-get install g++ make python3 libopenblas-dev, then npm rebuild @adaptorkit/backend-native';

function finish(ok, reason) {
  mkdirSync(dirname(statusFile), { recursive: true });
  writeFileSync(statusFile, JSON.stringify({ ok, reason, at: new Date().toISOString() }, null, 2) + '\n');
  if (ok) console.log('[adaptorkit] native backend built (OpenBLAS)');
  else console.log(`[adaptorkit] native backend not built: ${reason}. The wasm backend will be used. To get the fast one: ${HINT}`);
  process.exit(0);
}

if (process.env.ADAPTORKIT_NATIVE_SKIP === '1') finish(false, 'skipped (ADAPTORKIT_NATIVE_SKIP=1)');
if (!findOpenBlas()) finish(false, 'OpenBLAS library not found');

function nodeGyp() {
  const cands = [];
  if (process.env.npm_config_node_gyp) cands.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) cands.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  cands.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return cands.find((c) => existsSync(c));
}
const gyp = nodeGyp();
if (!gyp) finish(false, 'node-gyp not found (it ships with npm)');

const args = [gyp, 'rebuild'];
// Build against the local Node headers when present, so no header download is needed.
const prefix = resolve(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: pkgDir, encoding: 'utf8', env: process.env });
if (r.status !== 0) {
  const log = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  mkdirSync(join(pkgDir, 'build'), { recursive: true });
  writeFileSync(join(pkgDir, 'build', 'native-build.log'), log);
  const err = log.split('\n').find((l) => /error|not found|No such file/i.test(l)) ?? `node-gyp exited with ${r.status}`;
  finish(false, `compile failed (${err.trim().slice(0, 160)}; full log: build/native-build.log)`);
}
// Load it once in a child process, so a broken link is reported now and not at first use.
const addon = join(pkgDir, 'build', 'Release', 'adaptorkit_native.node');
const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)}).info()`], { encoding: 'utf8' });
if (check.status !== 0) finish(false, `built but cannot load (${(check.stderr ?? '').split('\n')[0]?.slice(0, 160)})`);
finish(true, undefined);
