/**
 * Rendering a Scene into its three modalities, each a fixed-size Float32Array:
 *   image  [H, W, 3]  RGB in 0..1, anti-aliased by signed-distance coverage, optional noise/clutter
 *   sound  [L]        1-D signal: one tone slot per object; pitch <-> colour, rhythm <-> shape,
 *                     loudness <-> size (no position information)
 *   points [N, 2]     (x, y) points sampled on the objects' outlines, in unit coordinates,
 *                     shuffled (a set: shape, size, position and count, but no colour)
 * Rendering is a pure function of (scene, options): scene.seed drives all randomness.
 */
import { Rng } from '@adaptorkit/core';
import { COLOURS, type Scene, type SceneObject, type Shape } from './world.js';

type Pt = readonly [number, number];
/** Closed polygons in local coordinates (radius ~1, y down); several rings use the even-odd rule. */
const SHAPE_POLYGONS: Record<Shape, readonly (readonly Pt[])[]> = {
  circle: [regular(48, 1, 0)],
  square: [[[-0.82, -0.82], [0.82, -0.82], [0.82, 0.82], [-0.82, 0.82]]],
  triangle: [[[0, -1.02], [0.98, 0.72], [-0.98, 0.72]]],
  diamond: [[[0, -1.08], [0.8, 0], [0, 1.08], [-0.8, 0]]],
  cross: [[
    [-0.32, -1], [0.32, -1], [0.32, -0.32], [1, -0.32], [1, 0.32], [0.32, 0.32],
    [0.32, 1], [-0.32, 1], [-0.32, 0.32], [-1, 0.32], [-1, -0.32], [-0.32, -0.32],
  ]],
  ring: [regular(48, 1, 0), regular(48, 0.52, 0)], // outline for points; rendered analytically
};

function regular(n: number, radius: number, phase: number): Pt[] {
  const out: Pt[] = [];
  for (let i = 0; i < n; i++) {
    const a = phase + (2 * Math.PI * i) / n;
    out.push([radius * Math.cos(a), radius * Math.sin(a)]);
  }
  return out;
}

/** Axis-aligned box of an object in unit coordinates: [x1, y1, x2, y2]. */
export function objectBox(o: SceneObject): [number, number, number, number] {
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
  for (const ring of SHAPE_POLYGONS[o.shape]) {
    for (const [px, py] of ring) {
      const x = o.x + px * o.r, y = o.y + py * o.r;
      if (x < x1) x1 = x;
      if (x > x2) x2 = x;
      if (y < y1) y1 = y;
      if (y > y2) y2 = y;
    }
  }
  return [Math.max(0, x1), Math.max(0, y1), Math.min(1, x2), Math.min(1, y2)];
}

/** The polygons as flat Float64Arrays [x0, y0, x1, y1, ...] for the distance loop (one elements kind, no tuples). */
const FLAT_RINGS: Record<Shape, readonly Float64Array[]> = Object.fromEntries(
  Object.entries(SHAPE_POLYGONS).map(([k, rings]) => [k, rings.map((ring) => Float64Array.from(ring.flat()))]),
) as unknown as Record<Shape, readonly Float64Array[]>;

/** Signed distance (negative inside) from local point (x, y) to the shape, in local units. */
function signedDistance(shape: Shape, x: number, y: number): number {
  // Exact analytic forms for the round shapes; polygons (even-odd rule) for the rest.
  if (shape === 'circle') return Math.sqrt(x * x + y * y) - 1;
  if (shape === 'ring') return Math.abs(Math.sqrt(x * x + y * y) - 0.76) - 0.24;
  let best = Infinity;
  let inside = false;
  for (const ring of FLAT_RINGS[shape]) {
    const n = ring.length >> 1;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const ax = ring[2 * j] as number, ay = ring[2 * j + 1] as number;
      const bx = ring[2 * i] as number, by = ring[2 * i + 1] as number;
      const ex = bx - ax, ey = by - ay;
      const wx = x - ax, wy = y - ay;
      let t = (wx * ex + wy * ey) / (ex * ex + ey * ey);
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const dx = wx - ex * t, dy = wy - ey * t;
      const d = dx * dx + dy * dy;
      if (d < best) best = d;
      if ((ay > y) !== (by > y) && x < ax + ((y - ay) * ex) / ey) inside = !inside;
    }
  }
  const d = Math.sqrt(best);
  return inside ? -d : d;
}

export interface ImageOptions {
  /** Canvas side in pixels (default 32). */
  size: number;
  /** Std of Gaussian pixel noise (default 0.03; 0 for none). */
  noise: number;
  /** Background clutter strength 0..1: faint grey strokes and specks (default 0.5; 0 for none). */
  clutter: number;
}

export const DEFAULT_IMAGE_OPTIONS: ImageOptions = { size: 32, noise: 0.03, clutter: 0.5 };

/** Render a scene. Returns a Float32Array of shape [H, W, 3] (H = W = opts.size), values in 0..1. */
export function renderImage(scene: Scene, opts: Partial<ImageOptions> = {}): Float32Array {
  const { size, noise, clutter } = { ...DEFAULT_IMAGE_OPTIONS, ...opts };
  const W = size, H = size;
  const img = new Float32Array(H * W * 3); // [H, W, 3]
  const rng = new Rng(scene.seed ^ 0x1a2b3c4d);
  // Background: base colour with a gentle linear gradient.
  const [br, bg, bb] = scene.background;
  const gx = rng.uniform(-0.08, 0.08), gy = rng.uniform(-0.08, 0.08);
  for (let yy = 0; yy < H; yy++) {
    for (let xx = 0; xx < W; xx++) {
      const s = gx * ((xx + 0.5) / W - 0.5) + gy * ((yy + 0.5) / H - 0.5);
      const k = (yy * W + xx) * 3;
      img[k] = br + s;
      img[k + 1] = bg + s;
      img[k + 2] = bb + s;
    }
  }
  // Clutter: thin grey line segments and specks (neutral, so they never change an object's colour).
  if (clutter > 0) {
    const strokes = Math.round(clutter * (2 + rng.int(4)));
    for (let s = 0; s < strokes; s++) {
      const x0 = rng.next(), y0 = rng.next();
      const ang = rng.uniform(0, Math.PI);
      const len = rng.uniform(0.1, 0.35);
      const grey = rng.uniform(0.3, 0.7);
      const alpha = clutter * rng.uniform(0.15, 0.35);
      const x1 = x0 + Math.cos(ang) * len, y1 = y0 + Math.sin(ang) * len;
      const halfWidth = 0.5 / W + rng.uniform(0, 0.01);
      paintCoverage(img, W, H, Math.min(x0, x1) - 0.02, Math.min(y0, y1) - 0.02, Math.max(x0, x1) + 0.02, Math.max(y0, y1) + 0.02, (ux, uy) => {
        const ex = x1 - x0, ey = y1 - y0;
        const t = Math.min(1, Math.max(0, ((ux - x0) * ex + (uy - y0) * ey) / (ex * ex + ey * ey)));
        return Math.hypot(ux - x0 - ex * t, uy - y0 - ey * t) - halfWidth;
      }, [grey, grey, grey], alpha);
    }
  }
  // Objects, each composited with its anti-aliased coverage.
  for (const o of scene.objects) {
    const pad = 0.1 * o.r + 2 / W;
    paintCoverage(img, W, H, o.x - 1.1 * o.r - pad, o.y - 1.1 * o.r - pad, o.x + 1.1 * o.r + pad, o.y + 1.1 * o.r + pad,
      (ux, uy) => signedDistance(o.shape, (ux - o.x) / o.r, (uy - o.y) / o.r) * o.r, o.rgb, 1);
  }
  if (noise > 0) {
    // Walk a fixed table of standard normals with a seeded start and odd stride: cheap, deterministic.
    const table = normalTable();
    let k = rng.int(NORMAL_TABLE_SIZE);
    const stride = 1 + 2 * rng.int(NORMAL_TABLE_SIZE / 2);
    for (let i = 0; i < img.length; i++) {
      img[i] = (img[i] as number) + noise * (table[k] as number);
      k = (k + stride) & (NORMAL_TABLE_SIZE - 1);
    }
  }
  for (let i = 0; i < img.length; i++) {
    const v = img[i] as number;
    img[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return img;
}

const NORMAL_TABLE_SIZE = 1 << 16;
let NORMALS: Float32Array | undefined;
function normalTable(): Float32Array {
  NORMALS ??= new Rng(0x6e6f6973).normalArray(NORMAL_TABLE_SIZE);
  return NORMALS;
}

/** Composite colour over the pixels of a unit-coordinate box with coverage from a signed distance (unit coords). */
function paintCoverage(
  img: Float32Array, W: number, H: number,
  ux0: number, uy0: number, ux1: number, uy1: number,
  sdf: (ux: number, uy: number) => number,
  rgb: readonly number[], alpha: number,
): void {
  const xa = Math.max(0, Math.floor(ux0 * W)), xb = Math.min(W - 1, Math.ceil(ux1 * W));
  const ya = Math.max(0, Math.floor(uy0 * H)), yb = Math.min(H - 1, Math.ceil(uy1 * H));
  const [r, g, b] = rgb as [number, number, number];
  for (let yy = ya; yy <= yb; yy++) {
    for (let xx = xa; xx <= xb; xx++) {
      const dPx = sdf((xx + 0.5) / W, (yy + 0.5) / H) * W; // distance in pixels
      let a = 0.5 - dPx;
      if (a <= 0) continue;
      if (a > 1) a = 1;
      a *= alpha;
      const k = (yy * W + xx) * 3;
      img[k] = (img[k] as number) * (1 - a) + r * a;
      img[k + 1] = (img[k + 1] as number) * (1 - a) + g * a;
      img[k + 2] = (img[k + 2] as number) * (1 - a) + b * a;
    }
  }
}

export interface SoundOptions {
  /** Samples in the signal (default 256): 4 slots of length/4, one per object in reading order. */
  length: number;
  /** Std of additive noise (default 0.05). */
  noise: number;
}

export const DEFAULT_SOUND_OPTIONS: SoundOptions = { length: 256, noise: 0.05 };

/** Pitch of each colour in cycles per sample (well below Nyquist, well apart). */
export const COLOUR_PITCH: readonly number[] = COLOURS.map((_, k) => 0.04 + 0.045 * k);

/** Rhythm of each shape: on-intervals as fractions of a slot. */
const SHAPE_RHYTHM: Record<Shape, readonly (readonly [number, number])[]> = {
  circle: [[0.05, 0.85]],
  square: [[0.05, 0.4], [0.5, 0.85]],
  triangle: [[0.05, 0.25], [0.35, 0.55], [0.65, 0.85]],
  diamond: [[0.05, 0.15], [0.25, 0.35], [0.45, 0.55], [0.65, 0.75]],
  cross: [[0.05, 0.6], [0.7, 0.85]],
  ring: [[0.05, 0.2], [0.3, 0.85]],
};

/** Render the scene's sound. Returns Float32Array of shape [L] (L = opts.length), roughly in -1..1. */
export function renderSound(scene: Scene, opts: Partial<SoundOptions> = {}): Float32Array {
  const { length: L, noise } = { ...DEFAULT_SOUND_OPTIONS, ...opts };
  const out = new Float32Array(L); // [L]
  const rng = new Rng(scene.seed ^ 0x5eed5eed);
  const slot = Math.floor(L / 4);
  scene.objects.slice(0, 4).forEach((o, i) => {
    const f = COLOUR_PITCH[COLOURS.indexOf(o.colour)] as number;
    const amp = o.size === 'large' ? 0.9 : 0.45;
    const phase = rng.uniform(0, 2 * Math.PI);
    const shift = rng.int(3) - 1;
    for (const [a, b] of SHAPE_RHYTHM[o.shape]) {
      const t0 = i * slot + Math.round(a * slot) + shift, t1 = i * slot + Math.round(b * slot) + shift;
      for (let t = Math.max(0, t0); t < Math.min(L, t1); t++) {
        const edge = Math.min(1, (t - t0 + 1) / 2, (t1 - t) / 2); // short attack/release
        out[t] = (out[t] as number) + amp * edge * Math.sin(2 * Math.PI * f * t + phase);
      }
    }
  });
  if (noise > 0) for (let t = 0; t < L; t++) out[t] = (out[t] as number) + rng.normal(0, noise);
  return out;
}

export interface PointsOptions {
  /** Number of points (default 64), shared evenly among the objects. */
  count: number;
  /** Std of positional jitter in unit coordinates (default 0.004). */
  jitter: number;
}

export const DEFAULT_POINTS_OPTIONS: PointsOptions = { count: 64, jitter: 0.004 };

/** Render the outline point set. Returns Float32Array of shape [N, 2]: (x, y) in unit coordinates. */
export function renderPoints(scene: Scene, opts: Partial<PointsOptions> = {}): Float32Array {
  const { count: N, jitter } = { ...DEFAULT_POINTS_OPTIONS, ...opts };
  const rng = new Rng(scene.seed ^ 0x0badcafe);
  const pts: [number, number][] = [];
  const n = scene.objects.length;
  scene.objects.forEach((o, i) => {
    const share = Math.floor(N / n) + (i < N % n ? 1 : 0);
    const rings = SHAPE_POLYGONS[o.shape];
    // Perimeter-weighted sampling over all edges of all rings.
    const edges: [Pt, Pt, number][] = [];
    let total = 0;
    for (const ring of rings) {
      for (let k = 0; k < ring.length; k++) {
        const a = ring[k] as Pt, b = ring[(k + 1) % ring.length] as Pt;
        const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
        edges.push([a, b, len]);
        total += len;
      }
    }
    const start = rng.uniform(0, total / share);
    for (let s = 0; s < share; s++) {
      let d = (start + (s * total) / share) % total;
      for (let e = 0; e < edges.length; e++) {
        const [a, b, len] = edges[e] as [Pt, Pt, number];
        if (d <= len || e === edges.length - 1) {
          const t = Math.min(1, d / len);
          pts.push([
            o.x + (a[0] + (b[0] - a[0]) * t) * o.r + rng.normal(0, jitter),
            o.y + (a[1] + (b[1] - a[1]) * t) * o.r + rng.normal(0, jitter),
          ]);
          break;
        }
        d -= len;
      }
    }
  });
  rng.shuffle(pts);
  const out = new Float32Array(N * 2); // [N, 2]
  pts.forEach(([x, y], i) => {
    out[2 * i] = x;
    out[2 * i + 1] = y;
  });
  return out;
}
