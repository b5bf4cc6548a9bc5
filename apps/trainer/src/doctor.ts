/**
 * `adaptorkit doctor`: which backend a training run gets on this machine, why each faster one was
 * skipped, and the exact commands that get it (Debian/Ubuntu, Fedora, macOS).
 */
import { initBackend, type BackendInfo } from '@adaptorkit/core';

export type OsFamily = 'debian' | 'fedora' | 'macos';

interface Route {
  /** The label initBackend('auto') uses in its skipped list. */
  label: string;
  what: string;
  /** The fix per OS; undefined: not available there. */
  fix: Partial<Record<OsFamily, string>>;
  note?: string;
}

const REBUILD_NATIVE = 'npm rebuild @adaptorkit/backend-native';
const REINSTALL = 'npm ci (the optional webgpu packages install with it; not with --omit=optional)';

/** The backends faster than wasm, in the order `auto` tries them. */
export const ROUTES: readonly Route[] = [
  {
    label: 'tfjs-node-gpu',
    what: 'TensorFlow (libtensorflow 2.9.1) on an NVIDIA GPU with CUDA 11.2 / cuDNN 8.1',
    fix: { debian: 'npm install @tensorflow/tfjs-node-gpu@4.22.0', fedora: 'npm install @tensorflow/tfjs-node-gpu@4.22.0' },
    note: 'its install downloads libtensorflow from storage.googleapis.com; current drivers (CUDA 12-13) match it poorly: webgpu is the GPU route that installs from npm alone',
  },
  {
    label: 'webgpu',
    what: 'WebGPU on a real GPU (npm webgpu = Dawn, with @tensorflow/tfjs-backend-webgpu)',
    fix: {
      debian: `sudo apt-get install -y libvulkan1 and the GPU driver (NVIDIA: sudo apt-get install -y nvidia-driver, Debian non-free / sudo ubuntu-drivers install on Ubuntu; AMD/Intel: sudo apt-get install -y mesa-vulkan-drivers), then ${REINSTALL}`,
      fedora: `sudo dnf install -y vulkan-loader mesa-vulkan-drivers (NVIDIA: the RPM Fusion akmod-nvidia driver), then ${REINSTALL}`,
      macos: `${REINSTALL} (Dawn uses Metal)`,
    },
  },
  {
    label: 'tfjs-node',
    what: 'TensorFlow (libtensorflow) on the CPU',
    fix: { debian: 'npm install @tensorflow/tfjs-node@4.22.0', fedora: 'npm install @tensorflow/tfjs-node@4.22.0', macos: 'npm install @tensorflow/tfjs-node@4.22.0' },
    note: 'its install downloads libtensorflow from storage.googleapis.com',
  },
  {
    label: 'native',
    what: "adaptorkit's native CPU backend (OpenBLAS + native kernels): about 10x wasm on training steps",
    fix: {
      debian: `sudo apt-get install -y g++ make libopenblas-dev && ${REBUILD_NATIVE}`,
      fedora: `sudo dnf install -y gcc-c++ make openblas-devel && ${REBUILD_NATIVE}`,
      macos: `xcode-select --install; brew install openblas && ${REBUILD_NATIVE}`,
    },
  },
];

const SLOW = new Set(['wasm', 'cpu']);

/** Whether `info` is a backend a full training run should not be started on. */
export function isSlowBackend(info: Pick<BackendInfo, 'name'>): boolean {
  return SLOW.has(info.name);
}

export function osFamily(platform: NodeJS.Platform = process.platform, osRelease?: string): OsFamily {
  if (platform === 'darwin') return 'macos';
  const id = osRelease ?? '';
  return /^(ID|ID_LIKE)=.*(fedora|rhel|centos)/m.test(id) ? 'fedora' : 'debian';
}

function chosenLabel(info: BackendInfo): string {
  if (info.name === 'tensorflow') return info.gpu ? 'tfjs-node-gpu' : 'tfjs-node';
  return info.name;
}

/** The one command that gets the native backend here (the fix the demo's slow-backend warning prints). */
export function nativeFix(os: OsFamily = osFamily()): string {
  return ROUTES.find((r) => r.label === 'native')!.fix[os]!;
}

/** The doctor's report for `info` (what initBackend('auto') chose), as lines. */
export function doctorLines(info: BackendInfo, os: OsFamily = osFamily()): string[] {
  const lines: string[] = [];
  lines.push(`backend: ${info.name} (${info.package}${info.gpu ? ', GPU' : ''})${info.detail ? ` — ${info.detail}` : ''}`);
  const chosen = ROUTES.findIndex((r) => r.label === chosenLabel(info));
  const faster = chosen < 0 ? ROUTES : ROUTES.slice(0, chosen);
  if (faster.length === 0) {
    lines.push('this is the fastest backend adaptorkit knows: nothing to do');
    return lines;
  }
  if (isSlowBackend(info)) lines.push(`${info.name} is slow for training (the demo takes hours here): get one of the faster backends below`);
  lines.push('', 'faster backends, in the order `auto` tries them:');
  for (const r of faster) {
    const why = info.skipped.find((s) => s.startsWith(`${r.label}:`))?.slice(r.label.length + 1).trim() ?? 'not tried';
    lines.push(`- ${r.label}: ${r.what}`, `    skipped: ${why}`);
    for (const o of ['debian', 'fedora', 'macos'] as const) {
      const name = o === 'debian' ? 'Debian/Ubuntu' : o === 'fedora' ? 'Fedora' : 'macOS';
      lines.push(`    ${o === os ? '*' : ' '} ${name.padEnd(13)} ${r.fix[o] ?? 'not available'}`);
    }
    if (r.note) lines.push(`    note: ${r.note}`);
  }
  lines.push('', `(* this machine; the one command for the native CPU backend here: ${nativeFix(os)})`);
  return lines;
}

async function readOsRelease(): Promise<string | undefined> {
  try {
    return await (await import('node:fs/promises')).readFile('/etc/os-release', 'utf8');
  } catch {
    return undefined;
  }
}

/** Run the doctor: start `auto` as a training run would and print the report. */
export async function runDoctor(log: (line: string) => void = (l) => console.log(l)): Promise<BackendInfo> {
  const info = await initBackend('auto', { log: false });
  for (const l of doctorLines(info, osFamily(process.platform, await readOsRelease()))) log(l);
  return info;
}
