/**
 * ShapesWorld's vocabulary of things: shapes, colours, sizes, positions; the scene type; and
 * scene sampling under constraints (so task answers can be balanced by construction).
 */
import { AdaptorkitError, Rng } from '@adaptorkit/core';

export const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'cross', 'ring'] as const;
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'cyan'] as const;
export const SIZES = ['small', 'large'] as const;
/** The 3x3 grid cells in reading order; a scene has at most one object per cell. */
export const POSITIONS = [
  'top left', 'top', 'top right',
  'left', 'centre', 'right',
  'bottom left', 'bottom', 'bottom right',
] as const;

export type Shape = (typeof SHAPES)[number];
export type Colour = (typeof COLOURS)[number];
export type Size = (typeof SIZES)[number];
export type Position = (typeof POSITIONS)[number];

/** Nominal RGB in 0..1 (each object gets a small seeded jitter around it). */
export const COLOUR_RGB: Record<Colour, readonly [number, number, number]> = {
  red: [0.9, 0.12, 0.12],
  green: [0.15, 0.75, 0.2],
  blue: [0.18, 0.35, 0.98],
  yellow: [0.95, 0.88, 0.12],
  purple: [0.62, 0.22, 0.88],
  orange: [1.0, 0.55, 0.05],
  cyan: [0.1, 0.82, 0.88],
};

/** Object radius in unit canvas coordinates (the canvas is [0,1]^2, y down). */
export const SIZE_RADIUS: Record<Size, number> = { small: 0.1, large: 0.15 };

export interface SceneObject {
  shape: Shape;
  colour: Colour;
  size: Size;
  /** Grid cell 0..8 in reading order (POSITIONS[cell]). */
  cell: number;
  /** Centre in unit coordinates [0,1] (x right, y down). */
  x: number;
  y: number;
  /** Radius in unit coordinates. */
  r: number;
  /** Rendered colour (nominal colour plus jitter), 0..1. */
  rgb: [number, number, number];
}

export interface Scene {
  /** Seeds everything rendering does at random (noise, clutter, sound onsets, point sampling). */
  seed: number;
  /** Objects in reading order of their cells. */
  objects: SceneObject[];
  /** Background colour 0..1. */
  background: [number, number, number];
}

/** A partial object description used as a constraint when building scenes. */
export interface ObjectSpec {
  shape?: Shape;
  colour?: Colour;
  size?: Size;
  cell?: number;
}

export interface SceneSpec {
  /** Objects that must be present (each becomes one object). */
  include?: ObjectSpec[];
  /** Total object count (default: uniform in [max(1, include.length), maxObjects]). */
  count?: number;
  /** Predicate every additional (free) object must satisfy. */
  other?: (o: { shape: Shape; colour: Colour; size: Size }) => boolean;
  minObjects?: number;
  maxObjects?: number;
}

export function positionOf(o: Pick<SceneObject, 'cell'>): Position {
  const p = POSITIONS[o.cell];
  if (p === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', `ShapesWorld: cell ${o.cell} is outside 0..8.`);
  return p;
}

/**
 * Sample a scene satisfying `spec`. Free objects are drawn uniformly and resampled until they
 * satisfy `spec.other` (bounded tries; a spec that cannot be met is an INVALID_ARGUMENT error).
 */
export function sampleScene(rng: Rng, spec: SceneSpec = {}): Scene {
  const include = spec.include ?? [];
  const minN = Math.max(1, include.length, spec.minObjects ?? 1);
  const maxN = spec.maxObjects ?? 4;
  const n = spec.count ?? minN + rng.int(maxN - minN + 1);
  if (n < include.length || n > 9 || n < 1) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `ShapesWorld.sampleScene: count ${n} cannot hold ${include.length} required objects (1..9 objects fit on the grid).`);
  }
  const cells = rng.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  const fixedCells = new Set(include.map((s) => s.cell).filter((c): c is number => c !== undefined));
  const freeCells = cells.filter((c) => !fixedCells.has(c));
  const specs: ObjectSpec[] = [...include];
  const attrs: { shape: Shape; colour: Colour; size: Size; cell: number }[] = [];
  for (let i = 0; i < n; i++) {
    const s = specs[i];
    let a: { shape: Shape; colour: Colour; size: Size };
    if (s !== undefined) {
      a = { shape: s.shape ?? rng.pick(SHAPES), colour: s.colour ?? rng.pick(COLOURS), size: s.size ?? rng.pick(SIZES) };
    } else {
      let tries = 0;
      do {
        a = { shape: rng.pick(SHAPES), colour: rng.pick(COLOURS), size: rng.pick(SIZES) };
        if (++tries > 1000) throw new AdaptorkitError('INVALID_ARGUMENT', 'ShapesWorld.sampleScene: no free object satisfies spec.other after 1000 tries.');
      } while (spec.other !== undefined && !spec.other(a));
    }
    const cell = s?.cell ?? freeCells.pop();
    if (cell === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', 'ShapesWorld.sampleScene: ran out of grid cells.');
    attrs.push({ ...a, cell });
  }
  attrs.sort((p, q) => p.cell - q.cell);
  const objects: SceneObject[] = attrs.map((a) => {
    const r = SIZE_RADIUS[a.size] * rng.uniform(0.92, 1.08);
    const jitter = 0.16 - r; // keep the object inside its cell
    const cx = ((a.cell % 3) + 0.5) / 3;
    const cy = (Math.floor(a.cell / 3) + 0.5) / 3;
    const base = COLOUR_RGB[a.colour];
    const rgb = base.map((v) => Math.min(1, Math.max(0, v + rng.uniform(-0.06, 0.06)))) as [number, number, number];
    return { ...a, r, x: cx + rng.uniform(-jitter, jitter) * 0.5, y: cy + rng.uniform(-jitter, jitter) * 0.5, rgb };
  });
  const g = rng.uniform(0.06, 0.3);
  const background: [number, number, number] = [g + rng.uniform(-0.04, 0.04), g + rng.uniform(-0.04, 0.04), g + rng.uniform(-0.04, 0.04)];
  return { seed: rng.nextUint32(), objects, background };
}

/** Derive an independent seed from a base seed and a path of small integers (stable across versions). */
export function deriveSeed(base: number, ...path: number[]): number {
  let h = (base >>> 0) ^ 0x9e3779b9;
  for (const p of path) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h >>> 0;
}
