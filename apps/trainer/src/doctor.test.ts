import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendInfo } from '@adaptorkit/core';
import { loadDemoSpec } from './demo.js';
import { slowBackendGuard } from './demo-guard.js';
import { doctorLines, osFamily, runDoctor } from './doctor.js';
import { writeTinyBases } from './test-bases.js';

const info = (name: BackendInfo['name'], skipped: string[], extra: Partial<BackendInfo> = {}): BackendInfo => ({ name, package: `pkg-${name}`, gpu: false, skipped, ...extra });

describe('adaptorkit doctor', () => {
  it('on wasm: says it is slow, why each faster backend was skipped, and the commands per OS', () => {
    const lines = doctorLines(info('wasm', ['tfjs-node-gpu: not installed', 'webgpu: libvulkan.so.1 (the Vulkan loader) not found', 'tfjs-node: not installed', 'native: OpenBLAS not found']), 'debian').join('\n');
    expect(lines).toMatch(/^backend: wasm \(pkg-wasm\)/);
    expect(lines).toMatch(/wasm is slow for training/);
    for (const label of ['tfjs-node-gpu', 'webgpu', 'tfjs-node', 'native']) expect(lines).toContain(`- ${label}: `);
    expect(lines).toContain('skipped: OpenBLAS not found');
    expect(lines).toContain('skipped: libvulkan.so.1 (the Vulkan loader) not found');
    expect(lines).toContain('* Debian/Ubuntu sudo apt-get install -y g++ make libopenblas-dev && npm rebuild @adaptorkit/backend-native');
    expect(lines).toContain('Fedora        sudo dnf install -y gcc-c++ make openblas-devel');
    expect(lines).toMatch(/macOS +xcode-select --install; brew install openblas/);
  });

  it('on webgpu lists only the one faster route; on tfjs-node-gpu nothing to do', () => {
    const gpu = doctorLines(info('webgpu', ['tfjs-node-gpu: not installed'], { gpu: true, detail: 'adapter NVIDIA H200 via Dawn default' }), 'macos').join('\n');
    expect(gpu).toContain('- tfjs-node-gpu');
    expect(gpu).not.toContain('- native');
    expect(gpu).not.toMatch(/slow for training/);
    expect(doctorLines(info('tensorflow', [], { gpu: true }), 'debian').join('\n')).toMatch(/fastest backend adaptorkit knows/);
  });

  it('tells the OS family from os-release', () => {
    expect(osFamily('darwin')).toBe('macos');
    expect(osFamily('linux', 'NAME="Fedora Linux"\nID=fedora\n')).toBe('fedora');
    expect(osFamily('linux', 'ID=ubuntu\nID_LIKE=debian\n')).toBe('debian');
  });

  it('runs here and reports what auto picks', async () => {
    const out: string[] = [];
    const got = await runDoctor((l) => out.push(l));
    expect(out[0]).toMatch(new RegExp(`^backend: ${got.name} `));
    if (got.name !== 'tensorflow') expect(out.join('\n')).toMatch(/- tfjs-node-gpu: [^]*skipped: /);
  });
});

describe("the demo's slow-backend guard (backend forced to cpu)", () => {
  let tmp = '';
  let specFile = '';
  beforeAll(async () => {
    const b = await writeTinyBases('adaptorkit-guard-');
    tmp = b.tmp;
    const cfg = (steps: number) => ['backend: cpu', `base: { lm: ${JSON.stringify(b.lmDir)}, vision: ${JSON.stringify(b.visionDir)} }`, "method: { name: iaa, config: { depths: [1] } }", 'data: { task: vqa, evalExamples: 4 }', `train: { steps: ${steps}, batchSize: 2, saveEvery: 0 }`, ''].join('\n');
    await fs.writeFile(path.join(tmp, 'row.yaml'), cfg(300));
    specFile = path.join(tmp, 'demo.yaml');
    await fs.writeFile(specFile, ['groups:', '  - id: g', '    claim: c', '    metric: accuracy', '    rows:', '      - { id: base, label: base, config: row.yaml, baseline: true, smokeSet: [train.steps=30] }', '      - { id: big, label: big, config: row.yaml, smoke: false, set: [train.batchSize=4] }', ''].join('\n'));
  });
  afterAll(async () => {
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it('says so, measures a first step, estimates the demo from it, gives the fix, and runs smoke-sized', async () => {
    const lines: string[] = [];
    const spec = await loadDemoSpec(specFile);
    const r = await slowBackendGuard(spec, tmp, { log: (l) => lines.push(l) });
    const text = lines.join('\n');
    expect(r.backend?.name).toBe('cpu');
    expect(r.smoke).toBe(true);
    expect(text).toMatch(/^slow backend: cpu/);
    expect(text).toMatch(/apt-get install -y g\+\+ make libopenblas-dev|dnf install|brew install openblas/);
    expect(r.firstStepMs).toBeGreaterThan(0);
    // full: 300 steps at batch 2 + 300 at batch 4 (twice the step) = 900 first-step times; smoke: 30
    expect(r.estimate!.full).toBeCloseTo((900 * r.firstStepMs!) / 1000, 6);
    expect(r.estimate!.smoke).toBeCloseTo((30 * r.firstStepMs!) / 1000, 6);
    expect(text).toMatch(/first step of base: [\d.]+ s measured; training alone would take about .+ for the full demo/);
    expect(text).toContain('running the smoke-sized demo (--full runs the full one anyway)');
  });

  it('--full keeps the full demo; --smoke skips the measurement', async () => {
    const spec = await loadDemoSpec(specFile);
    const lines: string[] = [];
    const full = await slowBackendGuard(spec, tmp, { full: true, log: (l) => lines.push(l) });
    expect(full.smoke).toBe(false);
    expect(lines.join('\n')).toContain('--full: running the full demo anyway');
    const smoke = await slowBackendGuard(spec, tmp, { smoke: true, log: () => {} });
    expect(smoke.smoke).toBe(true);
    expect(smoke.firstStepMs).toBeUndefined();
  });
});
