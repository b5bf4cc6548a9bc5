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
import { bf16ToF32 } from '../io/dtypes.js';
import { packBf16, unpackBf16 } from './bf16.js';

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
  /** Whether a frozen copy may be stored as bf16 (Linear and Embedding weights: their products have bf16 kernels). */
  readonly bf16Capable: boolean;
  private _var: tf.Variable | undefined;
  /** bf16 storage: int32 [ceil(size/2)] holding the checkpoint's bf16 bits in checkpoint (external) layout. */
  private _packed: tf.Tensor | undefined;
  private _disposed = false;

  constructor(shape: readonly number[], init: Init, opts: { trainable?: boolean; layout?: ParamLayout; bf16Capable?: boolean } = {}) {
    this.shape = [...shape];
    this.size = sizeOf(shape);
    this.layout = opts.layout ?? 'same';
    this.bf16Capable = opts.bf16Capable ?? false;
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

  /** The live variable. Throws in shape-only mode, after dispose, or when stored as bf16 (see `packed`). */
  get value(): tf.Variable {
    if (this._var === undefined) {
      if (this._packed) {
        throw new AdaptorkitError('UNSUPPORTED', 'this frozen parameter is stored as bf16 (base.weightsDtype: bf16) and has no float32 variable; its layer reads `packed`, toExternal() gives its values');
      }
      throw new AdaptorkitError(
        this._disposed ? 'DISPOSED' : 'UNSUPPORTED',
        this._disposed ? 'parameter was disposed' : 'this parameter was built in shape-only mode and holds no weights',
      );
    }
    return this._var;
  }

  get allocated(): boolean {
    return this._var !== undefined || this._packed !== undefined;
  }

  /** 'bf16' once storeBf16 replaced the float32 variable by the checkpoint's bf16 bits. */
  get storage(): 'f32' | 'bf16' {
    return this._packed ? 'bf16' : 'f32';
  }

  /** The packed bf16 bits (int32 [ceil(size/2)], checkpoint layout `externalShape`). Throws unless storage is bf16. */
  get packed(): tf.Tensor {
    if (!this._packed) throw new AdaptorkitError('INVALID_ARGUMENT', 'this parameter is stored as float32, not bf16');
    return this._packed;
  }

  /**
   * Keep this frozen parameter as bf16 bits (checkpoint layout, exactly as given) instead of a
   * float32 variable, which is disposed. Only for bf16-capable, frozen parameters.
   */
  storeBf16(bits: Uint16Array, name = 'parameter'): void {
    if (!this.bf16Capable) throw new AdaptorkitError('UNSUPPORTED', `${name}: only Linear and Embedding weights can be stored as bf16`);
    if (this._trainable) throw new AdaptorkitError('NOT_TRAINABLE', `${name}: a trainable parameter stays float32; freeze it before storing it as bf16`);
    if (bits.length !== this.size) throw new AdaptorkitError('SHAPE_MISMATCH', `${name}: ${bits.length} bf16 values for shape ${formatShape(this.externalShape)} (${this.size})`);
    const packed = tf.tensor1d(packBf16(bits), 'int32');
    this._var?.dispose();
    this._var = undefined;
    this._packed?.dispose();
    this._packed = packed;
  }

  /** The stored bf16 bits (a copy, checkpoint layout). Throws unless storage is bf16. */
  bf16Bits(): Uint16Array {
    return unpackBf16(this.packed.dataSync() as Int32Array, this.size);
  }

  get trainable(): boolean {
    return this._trainable;
  }

  set trainable(on: boolean) {
    if (on && this._packed) throw new AdaptorkitError('NOT_TRAINABLE', 'a parameter stored as bf16 is frozen (base.weightsDtype: bf16); load the base with weightsDtype: f32 to train it');
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
    if (this._packed) return tf.tensor(bf16ToF32(this.bf16Bits()), this.externalShape, 'float32'); // exact upcast
    return toExternalLayout(this.value, this.layout, this.shape);
  }

  dispose(): void {
    this._var?.dispose();
    this._var = undefined;
    this._packed?.dispose();
    this._packed = undefined;
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
