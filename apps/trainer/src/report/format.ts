/** Text helpers for the report: HTML escaping and human-readable numbers. */

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escape text for HTML element content and (double- or single-quoted) attribute values. */
export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ESC[c]!);
}

/** 1234 -> "1,234"; 1.5e6 -> "1.50M". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  return Math.round(n).toLocaleString('en-US');
}

/** A percentage with enough digits to be non-zero for tiny adaptor fractions: 0.0123%. */
export function formatPercent(p: number): string {
  if (!Number.isFinite(p)) return '–';
  if (p === 0) return '0%';
  if (Math.abs(p) >= 10) return `${p.toFixed(1)}%`;
  if (Math.abs(p) >= 0.1) return `${p.toFixed(2)}%`;
  return `${Number(p.toPrecision(2))}%`;
}

/** Milliseconds: "850 µs", "12.3 ms", "1.24 s". */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Seconds: "42 s", "3 min 05 s", "2 h 10 min". */
export function formatDuration(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '–';
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.round(s - m * 60)).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${String(m - h * 60).padStart(2, '0')} min`;
}

/** Megabytes: "512 MB", "3.2 GB". */
export function formatMB(mb: number | undefined): string {
  if (mb === undefined || !Number.isFinite(mb)) return '–';
  if (mb >= 1024) return `${(mb / 1024).toFixed(1)} GB`;
  return `${Math.round(mb)} MB`;
}

/** A metric value: 0.734, 12.41, 1234.5; NaN as "NaN". */
export function formatMetric(v: number | undefined): string {
  if (v === undefined) return '–';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a < 1) return v.toFixed(3);
  if (a < 100) return v.toFixed(2);
  return v.toFixed(1);
}

/** Metrics where lower is better (perplexity, losses, error rates); the rest are higher-is-better. */
export function lowerIsBetter(metric: string): boolean {
  return /perplexity|ppl|loss|error|\bwer\b|\bcer\b|mse|mae/i.test(metric);
}

/** Smallest and largest value, by a loop (Math.min(...xs) overflows the call stack past ~100k values). */
export function extent(values: readonly number[]): [min: number, max: number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
