/**
 * Hand-drawn SVG charts for the report: line charts (linear or log y, NaN breaks the line) and
 * grouped bar charts, with axes, ticks, labels and a legend inside the SVG so each chart stands
 * alone (as a PNG too). Every chart root carries data-chart / data-series; every series is a
 * <g class="series" data-label=...>, which is what the browser test counts.
 */
import { escapeHtml, extent } from './format.js';

/** Okabe & Ito's colour-blind-safe palette, reordered for contrast on white (yellow left out). */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#000000'] as const;
/** Past the palette, series are told apart by dash pattern as well. */
const DASHES = ['', '6 3', '2 3', '8 3 2 3'] as const;

export function seriesStyle(i: number): { color: string; dash: string } {
  return { color: PALETTE[i % PALETTE.length]!, dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length]! };
}

export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "DejaVu Sans", sans-serif';

export type Point = readonly [x: number, y: number];

export interface LineSeries {
  label: string;
  color: string;
  dash?: string;
  points: readonly Point[];
  /** Drawn thin and pale under the main line (e.g. the raw loss under its smoothed curve). */
  faint?: readonly Point[];
  /** Draw a marker at each point (default: when there are at most 40 points). */
  markers?: boolean;
}

export interface LineChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  logY?: boolean;
  width?: number;
  height?: number;
}

export interface BarSeries {
  label: string;
  color: string;
  values: readonly (number | undefined)[];
}

export interface BarChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  categories: readonly string[];
  series: readonly BarSeries[];
  /** y range; default [0, max(1, data max)]. */
  yMax?: number;
  width?: number;
  height?: number;
}

const M = { left: 62, right: 18, top: 34, bottom: 44 };

/** 1-2-2.5-5 x 10^k ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 5): { ticks: number[]; step: number; lo: number; hi: number } {
  // A flat series (or one flat up to rounding, e.g. the mean of a constant lr) gets a visible band.
  if (!(hi - lo > 1e-9 * Math.max(Math.abs(lo), Math.abs(hi)))) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag);
  const start = Math.floor(lo / step + 1e-9) * step;
  const end = Math.ceil(hi / step - 1e-9) * step;
  const n = Math.min(100, Math.round((end - start) / step)); // counted, never a float loop
  const ticks = Array.from({ length: n + 1 }, (_, i) => {
    const v = start + i * step;
    return Math.abs(v) < step * 1e-9 ? 0 : v;
  });
  return { ticks, step, lo: start, hi: start + n * step };
}

/** Decade ticks (and 2, 5 within decades when the range is narrow) covering [lo, hi], lo > 0. */
export function logTicks(lo: number, hi: number): { ticks: number[]; lo: number; hi: number } {
  const a = Math.floor(Math.log10(lo));
  let b = Math.ceil(Math.log10(hi));
  if (a === b) b = a + 1;
  const decades = b - a;
  const mult = decades <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = a; e <= b; e++) for (const m of mult) {
    const v = m * 10 ** e;
    if (v <= 10 ** b * (1 + 1e-9)) ticks.push(v);
  }
  // Tighten to the ticks that bracket the data.
  const below = ticks.filter((t) => t <= lo * (1 + 1e-9));
  const above = ticks.filter((t) => t >= hi * (1 - 1e-9));
  const tlo = below.length ? below[below.length - 1]! : 10 ** a;
  const thi = above.length ? above[0]! : 10 ** b;
  return { ticks: ticks.filter((t) => t >= tlo * (1 - 1e-9) && t <= thi * (1 + 1e-9)), lo: tlo, hi: thi };
}

/** A compact tick label: 0.001, 0.25, 12, 1.5k, 2e-5. */
export function formatTick(v: number, step?: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return Number(v.toPrecision(6)).toExponential().replace('e+', 'e');
  if (a >= 1e4) return `${trim((v / 1000).toFixed(a % 1000 === 0 ? 0 : 1))}k`;
  const decimals = step !== undefined && step > 0 ? Math.max(0, Math.ceil(-Math.log10(step) - 1e-9) + (isHalfStep(step) ? 1 : 0)) : 3;
  return trim(v.toFixed(Math.min(decimals, 6)));
}

function isHalfStep(step: number): boolean {
  const m = step / 10 ** Math.floor(Math.log10(step));
  return Math.abs(m - 2.5) < 1e-6;
}

function trim(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

const f = (n: number): string => (Math.round(n * 10) / 10).toString();

/** Estimated rendered width of a 12px label (SVG has no layout engine server-side). */
const textWidth = (s: string, px = 12): number => s.length * px * 0.58;

function legend(items: readonly { label: string; color: string; dash?: string; bar?: boolean }[], x0: number, y0: number, width: number): { svg: string; height: number } {
  let x = x0;
  let y = y0;
  const rowH = 18;
  const parts: string[] = [];
  for (const it of items) {
    const w = 26 + textWidth(it.label) + 16;
    if (x > x0 && x + w > x0 + width) {
      x = x0;
      y += rowH;
    }
    const swatch = it.bar
      ? `<rect x="${f(x)}" y="${f(y - 9)}" width="18" height="10" fill="${it.color}"/>`
      : `<line x1="${f(x)}" y1="${f(y - 4)}" x2="${f(x + 20)}" y2="${f(y - 4)}" stroke="${it.color}" stroke-width="2.5"${it.dash ? ` stroke-dasharray="${it.dash}"` : ''}/>`;
    parts.push(`<g class="legend-item">${swatch}<text x="${f(x + 26)}" y="${f(y)}">${escapeHtml(it.label)}</text></g>`);
    x += w;
  }
  return { svg: `<g class="legend" font-size="12" fill="#222">${parts.join('')}</g>`, height: y - y0 + rowH };
}

function legendHeight(labels: readonly string[], width: number): number {
  return legend(labels.map((label) => ({ label, color: '#000' })), 0, 0, width).height;
}

function frame(id: string, title: string, width: number, height: number, seriesCount: number, kind: string, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${escapeHtml(id)}" data-kind="${kind}" data-series="${seriesCount}" ` +
    `viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" style="max-width:${width}px" role="img" aria-label="${escapeHtml(title)}" ` +
    `font-family="${escapeHtml(FONT)}">` +
    `<title>${escapeHtml(title)}</title>` +
    `<rect width="${width}" height="${height}" fill="#fff"/>` +
    // Shrink a long title to fit (there is no text measuring here: an estimate per character).
    `<text x="${M.left}" y="20" font-size="${Math.max(10, Math.min(14, Math.floor((width - M.left - 8) / (title.length * 0.6))))}" font-weight="600" fill="#111">${escapeHtml(title)}</text>` +
    body +
    '</svg>'
  );
}

function axes(
  plot: { x: number; y: number; w: number; h: number },
  xt: { ticks: readonly number[]; pos: (v: number) => number; label: (v: number) => string } | { categories: readonly string[]; pos: (i: number) => number },
  yt: { ticks: readonly number[]; pos: (v: number) => number; label: (v: number) => string },
  xLabel: string,
  yLabel: string,
): string {
  const out: string[] = [];
  // Grid and y ticks.
  for (const t of yt.ticks) {
    const y = yt.pos(t);
    out.push(`<line x1="${f(plot.x)}" x2="${f(plot.x + plot.w)}" y1="${f(y)}" y2="${f(y)}" stroke="#e3e3e3"/>`);
    out.push(`<line x1="${f(plot.x - 5)}" x2="${f(plot.x)}" y1="${f(y)}" y2="${f(y)}" stroke="#444"/>`);
    out.push(`<text x="${f(plot.x - 8)}" y="${f(y + 4)}" text-anchor="end">${escapeHtml(yt.label(t))}</text>`);
  }
  const bottom = plot.y + plot.h;
  if ('categories' in xt) {
    const every = Math.max(1, Math.ceil((xt.categories.length * 28) / plot.w));
    xt.categories.forEach((c, i) => {
      if (i % every !== 0) return;
      const x = xt.pos(i);
      out.push(`<line x1="${f(x)}" x2="${f(x)}" y1="${f(bottom)}" y2="${f(bottom + 5)}" stroke="#444"/>`);
      out.push(`<text x="${f(x)}" y="${f(bottom + 18)}" text-anchor="middle">${escapeHtml(c)}</text>`);
    });
  } else {
    for (const t of xt.ticks) {
      const x = xt.pos(t);
      out.push(`<line x1="${f(x)}" x2="${f(x)}" y1="${f(bottom)}" y2="${f(bottom + 5)}" stroke="#444"/>`);
      out.push(`<text x="${f(x)}" y="${f(bottom + 18)}" text-anchor="middle">${escapeHtml(xt.label(t))}</text>`);
    }
  }
  out.push(`<line x1="${f(plot.x)}" x2="${f(plot.x)}" y1="${f(plot.y)}" y2="${f(bottom)}" stroke="#444"/>`);
  out.push(`<line x1="${f(plot.x)}" x2="${f(plot.x + plot.w)}" y1="${f(bottom)}" y2="${f(bottom)}" stroke="#444"/>`);
  out.push(`<text class="axis-label" x="${f(plot.x + plot.w / 2)}" y="${f(bottom + 36)}" text-anchor="middle" font-size="12.5">${escapeHtml(xLabel)}</text>`);
  out.push(
    `<text class="axis-label" transform="translate(14 ${f(plot.y + plot.h / 2)}) rotate(-90)" text-anchor="middle" font-size="12.5">${escapeHtml(yLabel)}</text>`,
  );
  return `<g class="axes" font-size="11.5" fill="#333">${out.join('')}</g>`;
}

/** Split at non-finite y (a NaN loss ends a segment) and build one path per segment. */
function pathData(points: readonly Point[], px: (x: number) => number, py: (y: number) => number): string {
  const segs: string[] = [];
  let cur = '';
  for (const [x, y] of points) {
    if (!Number.isFinite(y) || !Number.isFinite(x)) {
      if (cur) segs.push(cur);
      cur = '';
      continue;
    }
    cur += `${cur ? 'L' : 'M'}${f(px(x))} ${f(py(y))}`;
  }
  if (cur) segs.push(cur);
  return segs.join('');
}

/** Average consecutive points into at most `max` buckets so a 100k-step run stays a light SVG. */
export function downsample(points: readonly Point[], max = 600): Point[] {
  if (points.length <= max) return points.slice();
  const out: Point[] = [];
  const per = points.length / max;
  for (let b = 0; b < max; b++) {
    const slice = points.slice(Math.floor(b * per), Math.floor((b + 1) * per));
    const ok = slice.filter(([, y]) => Number.isFinite(y));
    if (!ok.length) {
      out.push([slice[0]![0], Number.NaN]);
      continue;
    }
    out.push([ok.reduce((s, p) => s + p[0], 0) / ok.length, ok.reduce((s, p) => s + p[1], 0) / ok.length]);
  }
  return out;
}

/** A line chart; with logY, non-positive values are left out (and said so under the title). */
export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 560;
  const plotW = width - M.left - M.right;
  const legendH = legendHeight(spec.series.map((s) => s.label), plotW);
  const plotH = (spec.height ?? 300) - M.top - M.bottom;
  const height = M.top + plotH + M.bottom + legendH + 6;
  const plot = { x: M.left, y: M.top, w: plotW, h: plotH };

  const all = spec.series.flatMap((s) => [...s.points, ...(s.faint ?? [])]);
  const xs = all.map((p) => p[0]).filter(Number.isFinite);
  let dropped = 0;
  const ys = all
    .map((p) => p[1])
    .filter((y) => {
      if (!Number.isFinite(y)) return false;
      if (spec.logY && y <= 0) {
        dropped++;
        return false;
      }
      return true;
    });
  if (!xs.length || !ys.length) {
    return frame(spec.id, spec.title, width, 120, 0, 'line', `<text x="${M.left}" y="60" font-size="13" fill="#666">no data to plot</text>`);
  }
  const [x0, x1] = extent(xs);
  const [y0, y1] = extent(ys);
  const xr = niceTicks(x0, x1, Math.max(3, Math.round(plotW / 90)));
  const px = (x: number): number => plot.x + ((x - xr.lo) / (xr.hi - xr.lo)) * plot.w;
  let py: (y: number) => number;
  let yTicks: number[];
  let yLabel: (v: number) => string;
  if (spec.logY) {
    const lr = logTicks(y0, y1);
    const l0 = Math.log10(lr.lo);
    const l1 = Math.log10(lr.hi);
    py = (y) => (y > 0 ? plot.y + plot.h - ((Math.log10(y) - l0) / (l1 - l0)) * plot.h : Number.NaN);
    yTicks = lr.ticks;
    yLabel = (v) => formatTick(v);
  } else {
    const yr = niceTicks(y0, y1, 5);
    py = (y) => plot.y + plot.h - ((y - yr.lo) / (yr.hi - yr.lo)) * plot.h;
    yTicks = yr.ticks;
    yLabel = (v) => formatTick(v, yr.step);
  }
  const pyl = (y: number): number => py(y); // NaN for y <= 0 in log: pathData breaks there

  const clipId = `${spec.id}-clip`;
  const body: string[] = [];
  body.push(`<defs><clipPath id="${escapeHtml(clipId)}"><rect x="${plot.x}" y="${plot.y - 4}" width="${plot.w}" height="${plot.h + 8}"/></clipPath></defs>`);
  if (dropped) body.push(`<text x="${width - M.right}" y="20" font-size="11" fill="#8a4b00" text-anchor="end">${dropped} value(s) ≤ 0 not shown on log scale</text>`);
  body.push(axes(plot, { ticks: xr.ticks, pos: px, label: (v) => formatTick(v, xr.step) }, { ticks: yTicks, pos: py, label: yLabel }, spec.xLabel, spec.yLabel));
  body.push(`<g clip-path="url(#${escapeHtml(clipId)})">`);
  for (const s of spec.series) {
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    const parts: string[] = [];
    if (s.faint?.length) {
      const d = pathData(s.faint.map(([x, y]) => [x, spec.logY && y <= 0 ? Number.NaN : y] as const), px, pyl);
      if (d) parts.push(`<path class="faint" d="${d}" fill="none" stroke="${s.color}" stroke-opacity="0.22" stroke-width="1"/>`);
    }
    const pts = s.points.map(([x, y]) => [x, spec.logY && y <= 0 ? Number.NaN : y] as const);
    const d = pathData(pts, px, pyl);
    if (d) parts.push(`<path class="line" d="${d}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"${dash}/>`);
    if (s.markers ?? s.points.length <= 40) {
      for (const [x, y] of pts) {
        if (Number.isFinite(y)) parts.push(`<circle cx="${f(px(x))}" cy="${f(pyl(y))}" r="3" fill="${s.color}"/>`);
      }
    }
    body.push(`<g class="series" data-label="${escapeHtml(s.label)}">${parts.join('')}</g>`);
  }
  body.push('</g>');
  const lg = legend(spec.series.map((s) => ({ label: s.label, color: s.color, dash: s.dash })), plot.x, M.top + plotH + M.bottom + 12, plotW);
  body.push(lg.svg);
  return frame(spec.id, spec.title, width, height, spec.series.length, 'line', body.join(''));
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(spec: BarChartSpec): string {
  const width = spec.width ?? 560;
  const plotW = width - M.left - M.right;
  const legendH = legendHeight(spec.series.map((s) => s.label), plotW);
  const plotH = (spec.height ?? 260) - M.top - M.bottom;
  const height = M.top + plotH + M.bottom + legendH + 6;
  const plot = { x: M.left, y: M.top, w: plotW, h: plotH };
  const vals = spec.series.flatMap((s) => s.values).filter((v): v is number => v !== undefined && Number.isFinite(v));
  const yr = niceTicks(Math.min(0, ...vals), spec.yMax ?? Math.max(1, ...vals), 4);
  const py = (y: number): number => plot.y + plot.h - ((y - yr.lo) / (yr.hi - yr.lo)) * plot.h;
  const n = Math.max(1, spec.categories.length);
  const groupW = plot.w / n;
  const barW = (groupW * 0.8) / Math.max(1, spec.series.length);
  const cx = (i: number): number => plot.x + groupW * (i + 0.5);
  const body: string[] = [];
  body.push(axes(plot, { categories: spec.categories, pos: cx }, { ticks: yr.ticks, pos: py, label: (v) => formatTick(v, yr.step) }, spec.xLabel, spec.yLabel));
  spec.series.forEach((s, si) => {
    const rects: string[] = [];
    s.values.forEach((v, i) => {
      if (v === undefined || !Number.isFinite(v)) return;
      const x = plot.x + groupW * i + groupW * 0.1 + barW * si;
      const y0 = py(0);
      const y1 = py(v);
      rects.push(
        `<rect x="${f(x)}" y="${f(Math.min(y0, y1))}" width="${f(Math.max(1, barW - 1))}" height="${f(Math.abs(y1 - y0))}" fill="${s.color}">` +
          `<title>${escapeHtml(`${s.label}, ${spec.xLabel} ${spec.categories[i] ?? i}: ${v.toFixed(3)}`)}</title></rect>`,
      );
    });
    body.push(`<g class="series" data-label="${escapeHtml(s.label)}">${rects.join('')}</g>`);
  });
  const lg = legend(spec.series.map((s) => ({ label: s.label, color: s.color, bar: true })), plot.x, M.top + plotH + M.bottom + 12, plotW);
  body.push(lg.svg);
  return frame(spec.id, spec.title, width, height, spec.series.length, 'bar', body.join(''));
}
