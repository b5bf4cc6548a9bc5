/**
 * Parameter: one named weight of a Module, with a trainable flag.
 *
 * A Parameter owns a tf.Variable (unless built in shape-only mode, where it owns nothing and only
 * knows its shape: that is how `plan` counts a 7B model without allocating it). Its variable name
 * is unique per process (tfjs variable names are global), so two models never collide.
 *
 * `layout` records how the stored tensor differs from the checkpoint (PyTorch/HF) tensor:
 *  - 'same':        identical;
 *  - 'transpose':   a Linear weight, stored [in, out] for fast matMul, HF stores [out, in];
 *  - 'patch-conv':  a ViT patch embedding stored [p*p*C, d] (row order: py, px, c), HF stores the
 *                   Conv2d weight [d, C, p, p].
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import { Rng } from '../train/rng.js';

export type ParamLayout = 'same' | 'transpose' | 'patch-conv';

export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'uniform'; low: number; high: number }
  | { kind: 'truncnormal'; std: number }
  | { kind: 'values'; values: Float32Array };

let nextId = 0;
let shapeOnlyDepth = 0;
let initRng = new Rng(0);

/** Seed the RNG that initialises new parameters (like torch.manual_seed). */
export function manualSeed(seed: number): void {
  initRng = new Rng(seed);
}

/** Build modules inside `fn` without allocating any weights (for planning huge configs). */
export function shapeOnly<T>(fn: () => T): T {
  shapeOnlyDepth++;
  try {
    return fn();
  } finally {
    shapeOnlyDepth--;
  }
}

export function isShapeOnly(): boolean {
  return shapeOnlyDepth > 0;
}

let skipInitDepth = 0;

/** Build modules inside `fn` with zero-filled weights (no random init): for loaders that overwrite every weight. */
export function skipInit<T>(fn: () => T): T {
  skipInitDepth++;
  try {
    return fn();
  } finally {
    skipInitDepth--;
  }
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function initValues(shape: readonly number[], init: Init): Float32Array {
  const n = sizeOf(shape);
  switch (init.kind) {
    case 'zeros':
      return new Float32Array(n);
    case 'ones':
      return new Float32Array(n).fill(1);
    case 'constant':
      return new Float32Array(n).fill(init.value);
    case 'normal': {
      const a = initRng.normalArray(n, init.std);
      if (init.mean) for (let i = 0; i < n; i++) a[i]! += init.mean;
      return a;
    }
    case 'truncnormal': {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        let v: number;
        do v = initRng.normal(0, 1);
        while (Math.abs(v) > 2);
        a[i] = v * init.std;
      }
      return a;
    }
    case 'uniform':
      return initRng.uniformArray(n, init.low, init.high);
    case 'values':
      if (init.values.length !== n) {
        throw new AdaptorkitError('SHAPE_MISMATCH', `init values have ${init.values.length} elements, shape ${formatShape(shape)} needs ${n}`);
      }
      return init.values;
  }
}

export class Parameter {
  readonly shape: readonly number[];
  readonly layout: ParamLayout;
  readonly size: number;
  private _trainable: boolean;
  private _var: tf.Variable | undefined;
  private _disposed = false;

  constructor(shape: readonly number[], init: Init, opts: { trainable?: boolean; layout?: ParamLayout } = {}) {
    this.shape = [...shape];
    this.size = sizeOf(shape);
    this.layout = opts.layout ?? 'same';
    this._trainable = opts.trainable ?? true;
    if (!isShapeOnly()) {
      const values = skipInitDepth > 0 ? new Float32Array(this.size) : initValues(shape, init);
      // tf.variable shares the initial tensor's data; dispose the initial tensor so that the
      // variable alone owns it (otherwise dispose() leaves the weights alive)
      const initial = tf.tensor(values, [...shape], 'float32');
      this._var = tf.variable(initial, this._trainable, `adaptorkit/p${nextId++}`);
      initial.dispose();
    }
  }

  /** The live variable. Throws in shape-only mode or after dispose. */
  get value(): tf.Variable {
    if (this._var === undefined) {
      throw new AdaptorkitError(
        this._disposed ? 'DISPOSED' : 'UNSUPPORTED',
        this._disposed ? 'parameter was disposed' : 'this parameter was built in shape-only mode and holds no weights',
      );
    }
    return this._var;
  }

  get allocated(): boolean {
    return this._var !== undefined;
  }

  get trainable(): boolean {
    return this._trainable;
  }

  set trainable(on: boolean) {
    this._trainable = on;
    if (this._var) this._var.trainable = on;
  }

  /** Copy `t` into this parameter (same shape, stored layout). The caller keeps ownership of `t`. */
  assign(t: tf.Tensor, name = 'parameter'): void {
    if (!shapesEqual(t.shape, this.shape)) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `${name}: expected shape ${formatShape(this.shape)}, got ${formatShape(t.shape)}`);
    }
    this.value.assign(t.dtype === 'float32' ? t : tf.tidy(() => tf.cast(t, 'float32')));
  }

  /** Shape of this tensor in the checkpoint (HF / PyTorch) layout. */
  get externalShape(): number[] {
    return externalShapeOf(this.shape, this.layout);
  }

  /** Convert a checkpoint-layout tensor to this parameter's stored layout (new tensor). */
  fromExternal(t: tf.Tensor): tf.Tensor {
    return fromExternalLayout(t, this.layout, this.shape);
  }

  /** This parameter's value in checkpoint layout (new tensor). */
  toExternal(): tf.Tensor {
    return toExternalLayout(this.value, this.layout, this.shape);
  }

  dispose(): void {
    this._var?.dispose();
    this._var = undefined;
    this._disposed = true;
  }
}

export function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function externalShapeOf(shape: readonly number[], layout: ParamLayout): number[] {
  if (layout === 'transpose') return [shape[1]!, shape[0]!];
  if (layout === 'patch-conv') {
    // stored [p*p*C, d]; C is 3 for images (other modalities use Linear patches)
    const [rows, d] = shape as [number, number];
    const c = 3;
    const p = Math.round(Math.sqrt(rows / c));
    return [d, c, p, p];
  }
  return [...shape];
}

export function fromExternalLayout(t: tf.Tensor, layout: ParamLayout, storedShape: readonly number[]): tf.Tensor {
  return tf.tidy(() => {
    if (layout === 'transpose') return tf.transpose(t);
    if (layout === 'patch-conv') {
      // [d, C, p, p] -> [p(y), p(x), C, d] -> [p*p*C, d]
      return tf.reshape(tf.transpose(t, [2, 3, 1, 0]), [...storedShape]);
    }
    return t.clone();
  });
}

export function toExternalLayout(t: tf.Tensor, layout: ParamLayout, storedShape: readonly number[]): tf.Tensor {
  return tf.tidy(() => {
    if (layout === 'transpose') return tf.transpose(t);
    if (layout === 'patch-conv') {
      const [d, c, p] = externalShapeOf(storedShape, layout) as [number, number, number];
      // [p*p*C, d] -> [p, p, C, d] -> [d, C, p, p]
      return tf.transpose(tf.reshape(t, [p, p, c, d]), [3, 2, 0, 1]);
    }
    return t.clone();
  });
}
