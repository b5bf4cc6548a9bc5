/**
 * Loading the compiled addon (build/Release/adaptorkit_native.node). Loading never throws: when the
 * addon is absent or broken, `addonUnavailableReason()` says why and how to get it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The functions the C addon exports (native/*.c, entry points in native/common.h). All work in place on TypedArrays. */
export interface NativeAddon {
  /** C[b] = op(A[aOffs[b]]) x op(B[bOffs[b]]) + beta*C[b]; C is [batch, M, N]. Offsets null: contiguous batches. */
  bmm(
    transA: number,
    transB: number,
    M: number,
    N: number,
    K: number,
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    batch: number,
    aOffs: Int32Array | null,
    bOffs: Int32Array | null,
    beta: number,
  ): void;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, shape: Int32Array, aStrides: Int32Array, bStrides: Int32Array): void;
  unary(op: number, x: Float32Array, out: Float32Array, p0: number, p1: number): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: number): void;
  reduce(op: number, x: Float32Array, out: Float32Array, outer: number, red: number, inner: number): void;
  transpose(x: Float32Array | Int32Array, out: Float32Array | Int32Array, shape: Int32Array, perm: Int32Array): void;
  gather(x: Float32Array | Int32Array, indices: Int32Array, out: Float32Array | Int32Array, outer: number, axisDim: number, inner: number): void;
  segsum(x: Float32Array, ids: Int32Array, out: Float32Array, inner: number, numSegments: number): void;
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, b1: number, b2: number, eps: number, wd: number, bc1: number, bc2: number): void;
  /** AdamW into new arrays: m' = m*b1 + g*omb1; v' = v*b2 + g*g*omb2; p' = p*decay - m'/(sqrt(v')/sbc2 + eps)*step. */
  adamwOut(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, pOut: Float32Array, mOut: Float32Array, vOut: Float32Array,
    b1: number, omb1: number, b2: number, omb2: number, sbc2: number, eps: number, decay: number, step: number): void;
  /** Copy the box of extent `size` at srcBegin in src to dst at dstBegin (4-byte elements). */
  copybox(src: Float32Array | Int32Array, srcShape: Int32Array, srcBegin: Int32Array, dst: Float32Array | Int32Array, dstShape: Int32Array, dstBegin: Int32Array, size: Int32Array): void;
  fill(out: Float32Array, value: number): void;
  /** Sparse softmax cross entropy over rows of x [rows, cols]: lse = logsumexp(row), nll = lse - x[label]. Labels in [0, cols). */
  ce(x: Float32Array, labels: Int32Array, nll: Float32Array, lse: Float32Array, rows: number, cols: number): void;
  /** Its gradient: dx = exp(x - lse) * dy, minus dy at the label. */
  ceGrad(x: Float32Array, lse: Float32Array, labels: Int32Array, dy: Float32Array, dx: Float32Array, rows: number, cols: number): void;
  /** Per row of x [rows, cols]: r = 1/sqrt(mean(x^2) + eps), n = x * r. */
  rmsnorm(x: Float32Array, n: Float32Array, r: Float32Array, rows: number, cols: number, eps: number): void;
  /** dx = r * (dy - n * mean(dy * n)) per row. */
  rmsnormGrad(dy: Float32Array, n: Float32Array, r: Float32Array, dx: Float32Array, rows: number, cols: number): void;
  /** Per row: mu = mean(x), r = 1/sqrt(mean((x - mu)^2) + eps), n = (x - mu) * r. */
  layernorm(x: Float32Array, n: Float32Array, r: Float32Array, rows: number, cols: number, eps: number): void;
  /** dx = r * (dy - mean(dy) - n * mean(dy * n)) per row. */
  layernormGrad(dy: Float32Array, n: Float32Array, r: Float32Array, dx: Float32Array, rows: number, cols: number): void;
  /** y = g * sigmoid(g) * u. */
  swiglu(g: Float32Array, u: Float32Array, y: Float32Array, n: number): void;
  /** du = dy * silu(g), dg = dy * u * s * (1 + g * (1 - s)), s = sigmoid(g). */
  swigluGrad(dy: Float32Array, g: Float32Array, u: Float32Array, dg: Float32Array, du: Float32Array, n: number): void;
  /** Rotate-half RoPE of x [outer, T, hd] with cos/sin [T, hd]; inverse: its transpose (the gradient). */
  rope(x: Float32Array, cos: Float32Array, sin: Float32Array, y: Float32Array, outer: number, T: number, hd: number, inverse: number): void;
  /** y = softmax(scale * x) per row of [rows, S]; causal: row r (query t = r % Tq) sees keys j <= past + t only. */
  attnSoftmax(x: Float32Array, y: Float32Array, rows: number, S: number, Tq: number, past: number, causal: number, scale: number): void;
  /** dx = scale * y * (dy - sum(dy * y)) per row. */
  attnSoftmaxGrad(dy: Float32Array, y: Float32Array, dx: Float32Array, rows: number, S: number, scale: number): void;
  /** Whether kernels run with float32 denormals flushed to zero (ADAPTORKIT_NATIVE_DENORMALS=keep: not). */
  flushesDenormals(): boolean;
  /** Products with a packed-bf16 weight W [R, C] (native/bf16.c): mode 0: y[N, R] = x[N, C] W^T; mode 1: y[N, C] = x[N, R] W. */
  bf16mm(mode: number, N: number, R: number, C: number, x: Float32Array, w: Int32Array, y: Float32Array): void;
  /** y[i] = W[ids[i]] as float32, W packed bf16 [R, C]. */
  bf16gather(R: number, C: number, w: Int32Array, ids: Int32Array, y: Float32Array): void;
  setThreads(n: number): void;
  threads(): number;
  info(): string;
}

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const addonPath = join(pkgDir, 'build', 'Release', 'adaptorkit_native.node');
const statusPath = join(pkgDir, 'build', 'native-status.json');
const HINT = 'to get it: apt-get install g++ libopenblas-dev (Debian/Ubuntu), then npm rebuild @adaptorkit/backend-native';

let loaded: NativeAddon | undefined;
let reason: string | undefined;
let tried = false;

/**
 * OpenBLAS 0.3.21 (Debian 12) does not know recent Intel/AMD CPUs and then falls back to its
 * generic SSE3 ('Prescott') kernels, ~6x slower here. Unless the user chose a core type, pick the
 * newest kernel family the CPU flags allow. Must run before the library is loaded.
 */
function chooseOpenBlasCore(): void {
  if (process.env.OPENBLAS_CORETYPE || process.arch !== 'x64' || process.platform !== 'linux') return;
  let flags: Set<string>;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    flags = new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return;
  }
  if (flags.has('avx512f') && flags.has('avx512bw') && flags.has('avx512vl')) {
    process.env.OPENBLAS_CORETYPE = flags.has('avx512_bf16') ? 'Cooperlake' : 'SkylakeX';
  } else if (flags.has('avx2') && flags.has('fma')) {
    process.env.OPENBLAS_CORETYPE = 'Haswell';
  }
}

function load(): void {
  if (tried) return;
  tried = true;
  if (!existsSync(addonPath)) {
    let why = 'addon not built';
    try {
      const s = JSON.parse(readFileSync(statusPath, 'utf8')) as { ok?: boolean; reason?: string };
      if (s.ok === false && s.reason) why = `addon not built: ${s.reason}`;
    } catch {
      /* no status file: the install script did not run */
      why = 'addon not built (its install script did not run)';
    }
    reason = `${why}; ${HINT}`;
    return;
  }
  chooseOpenBlasCore();
  try {
    loaded = createRequire(import.meta.url)(addonPath) as NativeAddon;
  } catch (err) {
    reason = `addon failed to load: ${String((err as Error).message ?? err).split('\n')[0]}; ${HINT}`;
  }
}

/** Why the native addon cannot be used, or undefined when it can. */
export function addonUnavailableReason(): string | undefined {
  load();
  return reason;
}

/** The loaded addon, or undefined. */
export function tryAddon(): NativeAddon | undefined {
  load();
  return loaded;
}
