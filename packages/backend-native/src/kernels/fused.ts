/**
 * The kernels with no tfjs op: the sparse softmax cross entropy, the fused transformer pieces and the
 * AdamW step. Their names, inputs and attributes are defined once in @adaptorkit/kernel-names, which
 * @adaptorkit/core calls them by.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import {
  ADAMW, ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD, LAYER_NORM, LAYER_NORM_GRAD, RMS_NORM, RMS_NORM_GRAD, ROPE, SPARSE_SOFTMAX_CE, SPARSE_SOFTMAX_CE_GRAD, SWIGLU, SWIGLU_GRAD,
  type AdamWAttrs,
} from '@adaptorkit/kernel-names';
import { f32, out, sizeOf, vals, type Backend, type KernelContext } from './util.js';


/** Register this family's kernels. */
export function registerFusedKernels({ n, add }: KernelContext): void {
  // --- fused sparse softmax cross entropy (no tfjs op: @adaptorkit/core's maskedCrossEntropy runs
  // these by name when the active backend has them, and composes tfjs ops otherwise) ---
  const ceArgs = (logits: TensorInfo, labels: TensorInfo): [number, number] => {
    if (logits.dtype !== 'float32' || logits.shape.length !== 2 || labels.dtype !== 'int32' || labels.shape.length !== 1 || labels.shape[0] !== logits.shape[0]) {
      throw new Error(`${SPARSE_SOFTMAX_CE}: logits must be float32 [N, V] and labels int32 [N], got ${logits.dtype} [${logits.shape}] and ${labels.dtype} [${labels.shape}]`);
    }
    return [logits.shape[0] as number, logits.shape[1] as number];
  };
  const checkLabels = (lv: Int32Array, cols: number): void => {
    for (let i = 0; i < lv.length; i++) {
      const k = lv[i] as number;
      if (k < 0 || k >= cols) throw new Error(`${SPARSE_SOFTMAX_CE}: label ${k} at row ${i} is outside [0, ${cols})`);
    }
  };
  add(SPARSE_SOFTMAX_CE, (args) => {
    const { logits, labels } = args.inputs as { logits: TensorInfo; labels: TensorInfo };
    const be = args.backend as Backend;
    const [rows, cols] = ceArgs(logits, labels);
    const lv = vals(be, labels) as Int32Array;
    checkLabels(lv, cols);
    const nll = f32(be, rows);
    const lse = f32(be, rows);
    if (rows > 0) n.ce(vals(be, logits) as Float32Array, lv, nll, lse, rows, cols); // cols > 0: checkLabels
    return [out(be, [rows], 'float32', nll), out(be, [rows], 'float32', lse)];
  });
  add(SPARSE_SOFTMAX_CE_GRAD, (args) => {
    const { logits, lse, labels, dy } = args.inputs as { logits: TensorInfo; lse: TensorInfo; labels: TensorInfo; dy: TensorInfo };
    const be = args.backend as Backend;
    const [rows, cols] = ceArgs(logits, labels);
    if (lse.dtype !== 'float32' || dy.dtype !== 'float32' || sizeOf(lse.shape) !== rows || sizeOf(dy.shape) !== rows) {
      throw new Error(`${SPARSE_SOFTMAX_CE_GRAD}: lse and dy must be float32 [${rows}]`);
    }
    const lv = vals(be, labels) as Int32Array;
    checkLabels(lv, cols);
    const dx = f32(be, rows * cols);
    if (dx.length > 0) n.ceGrad(vals(be, logits) as Float32Array, vals(be, lse) as Float32Array, lv, vals(be, dy) as Float32Array, dx, rows, cols);
    return out(be, [rows, cols], 'float32', dx);
  });

  // --- fused transformer pieces ---
  const need = (kernel: string, ok: boolean, what: string): void => {
    if (!ok) throw new Error(`${kernel}: ${what}`);
  };
  const shapeEq = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  const lastDim = (t: TensorInfo) => (t.shape.length ? (t.shape[t.shape.length - 1] as number) : 1);

  const norm = (kernel: string, fwd: 'rmsnorm' | 'layernorm') => (args: Parameters<KernelFunc>[0]) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { eps } = args.attrs as unknown as { eps: number };
    need(kernel, x.dtype === 'float32' && x.shape.length >= 1, `x must be float32 of rank >= 1, got ${x.dtype} [${x.shape}]`);
    const be = args.backend as Backend;
    const size = sizeOf(x.shape);
    const cols = lastDim(x);
    const rows = cols > 0 ? size / cols : 0;
    const nv = f32(be, size);
    const rv = f32(be, rows);
    if (size > 0) n[fwd](vals(be, x) as Float32Array, nv, rv, rows, cols, eps);
    return [out(be, [...x.shape], 'float32', nv), out(be, [...x.shape.slice(0, -1), 1], 'float32', rv)];
  };
  const normGrad = (kernel: string, bwd: 'rmsnormGrad' | 'layernormGrad') => (args: Parameters<KernelFunc>[0]) => {
    const { dy, n: nn, r } = args.inputs as { dy: TensorInfo; n: TensorInfo; r: TensorInfo };
    const be = args.backend as Backend;
    const size = sizeOf(nn.shape);
    const cols = lastDim(nn);
    const rows = cols > 0 ? size / cols : 0;
    need(kernel, dy.dtype === 'float32' && nn.dtype === 'float32' && r.dtype === 'float32' && shapeEq(dy.shape, nn.shape) && sizeOf(r.shape) === rows,
      `dy and n must be float32 of one shape and r one value per row, got [${dy.shape}], [${nn.shape}], [${r.shape}]`);
    const dx = f32(be, size);
    if (size > 0) n[bwd](vals(be, dy) as Float32Array, vals(be, nn) as Float32Array, vals(be, r) as Float32Array, dx, rows, cols);
    return out(be, [...nn.shape], 'float32', dx);
  };
  add(RMS_NORM, norm(RMS_NORM, 'rmsnorm'));
  add(RMS_NORM_GRAD, normGrad(RMS_NORM_GRAD, 'rmsnormGrad'));
  add(LAYER_NORM, norm(LAYER_NORM, 'layernorm'));
  add(LAYER_NORM_GRAD, normGrad(LAYER_NORM_GRAD, 'layernormGrad'));

  add(SWIGLU, (args) => {
    const { gate, up } = args.inputs as { gate: TensorInfo; up: TensorInfo };
    need(SWIGLU, gate.dtype === 'float32' && up.dtype === 'float32' && shapeEq(gate.shape, up.shape), `gate and up must be float32 of one shape, got [${gate.shape}] and [${up.shape}]`);
    const be = args.backend as Backend;
    const size = sizeOf(gate.shape);
    const y = f32(be, size);
    if (size > 0) n.swiglu(vals(be, gate) as Float32Array, vals(be, up) as Float32Array, y, size);
    return out(be, [...gate.shape], 'float32', y);
  });
  add(SWIGLU_GRAD, (args) => {
    const { dy, gate, up } = args.inputs as { dy: TensorInfo; gate: TensorInfo; up: TensorInfo };
    need(SWIGLU_GRAD, [dy, gate, up].every((t) => t.dtype === 'float32' && shapeEq(t.shape, gate.shape)), `dy, gate and up must be float32 of one shape, got [${dy.shape}], [${gate.shape}], [${up.shape}]`);
    const be = args.backend as Backend;
    const size = sizeOf(gate.shape);
    const dg = f32(be, size);
    const du = f32(be, size);
    if (size > 0) n.swigluGrad(vals(be, dy) as Float32Array, vals(be, gate) as Float32Array, vals(be, up) as Float32Array, dg, du, size);
    return [out(be, [...gate.shape], 'float32', dg), out(be, [...gate.shape], 'float32', du)];
  });

  add(ROPE, (args) => {
    const { x, cos, sin } = args.inputs as { x: TensorInfo; cos: TensorInfo; sin: TensorInfo };
    const { inverse } = args.attrs as unknown as { inverse: boolean };
    const r = x.shape.length;
    const T = (x.shape[r - 2] ?? 0) as number;
    const hd = lastDim(x);
    need(ROPE, [x, cos, sin].every((t) => t.dtype === 'float32') && r >= 2 && hd % 2 === 0 && shapeEq(cos.shape, [T, hd]) && shapeEq(sin.shape, [T, hd]),
      `x must be float32 [..., T, hd] (hd even) and cos, sin [T, hd], got [${x.shape}], [${cos.shape}], [${sin.shape}]`);
    const be = args.backend as Backend;
    const size = sizeOf(x.shape);
    const y = f32(be, size);
    if (size > 0) n.rope(vals(be, x) as Float32Array, vals(be, cos) as Float32Array, vals(be, sin) as Float32Array, y, size / (T * hd), T, hd, inverse ? 1 : 0);
    return out(be, [...x.shape], 'float32', y);
  });

  add(ATTN_SOFTMAX, (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { scale, causal, past } = args.attrs as unknown as { scale: number; causal: boolean; past: number };
    const r = x.shape.length;
    need(ATTN_SOFTMAX, x.dtype === 'float32' && r >= 2 && scale > 0 && Number.isInteger(past) && past >= 0, `x must be float32 [..., Tq, S], scale > 0 and past a count, got [${x.shape}], scale ${scale}, past ${past}`);
    const be = args.backend as Backend;
    const S = x.shape[r - 1] as number;
    const Tq = x.shape[r - 2] as number;
    const size = sizeOf(x.shape);
    const y = f32(be, size);
    if (size > 0) n.attnSoftmax(vals(be, x) as Float32Array, y, size / S, S, Tq, past, causal ? 1 : 0, scale);
    return out(be, [...x.shape], 'float32', y);
  });
  add(ATTN_SOFTMAX_GRAD, (args) => {
    const { dy, y } = args.inputs as { dy: TensorInfo; y: TensorInfo };
    const { scale } = args.attrs as unknown as { scale: number };
    need(ATTN_SOFTMAX_GRAD, dy.dtype === 'float32' && y.dtype === 'float32' && shapeEq(dy.shape, y.shape) && y.shape.length >= 1, `dy and y must be float32 of one shape, got [${dy.shape}] and [${y.shape}]`);
    const be = args.backend as Backend;
    const S = lastDim(y);
    const size = sizeOf(y.shape);
    const dx = f32(be, size);
    if (size > 0) n.attnSoftmaxGrad(vals(be, dy) as Float32Array, vals(be, y) as Float32Array, dx, size / S, S, scale);
    return out(be, [...y.shape], 'float32', dx);
  });

  add(ADAMW, (args) => {
    const { param, grad, m, v } = args.inputs as { param: TensorInfo; grad: TensorInfo; m: TensorInfo; v: TensorInfo };
    const a = args.attrs as unknown as AdamWAttrs;
    const be = args.backend as Backend;
    const size = sizeOf(param.shape);
    for (const t of [param, grad, m, v]) {
      if (t.dtype !== 'float32' || sizeOf(t.shape) !== size) throw new Error(`${ADAMW}: param, grad, m and v must be float32 of one size, got ${t.dtype} [${t.shape}] for [${param.shape}]`);
    }
    const po = f32(be, size);
    const mo = f32(be, size);
    const vo = f32(be, size);
    if (size > 0) {
      n.adamwOut(vals(be, param) as Float32Array, vals(be, grad) as Float32Array, vals(be, m) as Float32Array, vals(be, v) as Float32Array, po, mo, vo,
        a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.sqrtBc2, a.eps, a.decay, a.stepSize);
    }
    return [out(be, [...param.shape], 'float32', po), out(be, [...param.shape], 'float32', mo), out(be, [...param.shape], 'float32', vo)];
  });
}
