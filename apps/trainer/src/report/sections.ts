/** The sections of the report page (summary, loss, evaluation, routing, samples, config, machine); renderReport in render.ts puts them together. */
import { AdaptorkitError } from '@adaptorkit/core';
import type { LoadedRun } from './read-run.js';
import {
  escapeHtml as e,
  extent,
  formatCount,
  formatDuration,
  formatMB,
  formatMetric,
  formatMs,
  formatPercent,
  lowerIsBetter,
} from './format.js';
import { barChart, downsample, lineChart, seriesStyle, type LineSeries, type Point } from './svg.js';


export interface ReportOptions {
  /** Page title (default "adaptorkit report: <run names>"). */
  title?: string;
  /** Loss chart y scale shown first: true = log, false = linear, 'auto' (default) = log when the loss spans more than 10x. */
  logY?: boolean | 'auto';
  /** EMA smoothing of the loss curve in [0, 1) (TensorBoard-style, debiased); 0 = raw only. Default 0.6. */
  smoothing?: number;
  /** Sample generations shown per run (default 8). */
  maxSamples?: number;
  /** Time printed in the header (default now); fixed in tests for reproducible output. */
  generatedAt?: Date | string;
  /**
   * A results section shown first (e.g. the demo's claims table, which has rows that are not
   * trainer runs): plain lines, `**bold**` lines and `|`-pipe tables, as the demo writes them.
   */
  preface?: { title: string; markdown: string };
}

/** Debiased exponential moving average, skipping non-finite values (they stay NaN). */
export function smoothEma(values: readonly number[], weight: number): number[] {
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - weight ** n);
  });
}

/** Distinct labels for the page: a repeated run name gets its folder appended. */
export function runLabels(runs: readonly LoadedRun[]): string[] {
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.info.name, (counts.get(r.info.name) ?? 0) + 1);
  const seen = new Map<string, number>();
  return runs.map((r) => {
    if ((counts.get(r.info.name) ?? 0) <= 1) return r.info.name;
    const k = (seen.get(r.info.name) ?? 0) + 1;
    seen.set(r.info.name, k);
    return `${r.info.name} (${r.dir.split(/[\\/]/).filter(Boolean).slice(-2).join('/') || k})`;
  });
}

const STATUS_CLASS: Record<string, string> = { completed: 'ok', running: 'running', failed: 'failed', interrupted: 'interrupted' };

/** Flatten a parsed config into dotted paths -> JSON text. */
function flatten(value: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (!entries.length && prefix) out.set(prefix, '{}');
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, JSON.stringify(value) ?? 'undefined');
  }
  return out;
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'x';
}

export interface Ctx {
  runs: readonly LoadedRun[];
  labels: string[];
  styles: { color: string; dash: string }[];
}

export function summaryTable(c: Ctx): string {
  const metricNames = [...new Set(c.runs.flatMap((r) => Object.keys(r.final?.metrics ?? {})))].sort();
  const hasText = c.runs.some((r) => r.final?.textSkill);
  const best = new Map<string, number>();
  for (const m of metricNames) {
    const vals = c.runs.map((r) => r.final?.metrics[m]).filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (vals.length > 1 && new Set(vals).size > 1) best.set(m, lowerIsBetter(m) ? Math.min(...vals) : Math.max(...vals));
  }
  const textVals = (k: 'perplexity' | 'textTaskAccuracy'): number[] =>
    c.runs.map((r) => r.final?.textSkill?.[k]).filter((v): v is number => v !== undefined && Number.isFinite(v));
  // A best value is marked only where the runs differ (a frozen LM gives every run the same text skill).
  const differ = (v: number[]): boolean => v.length > 1 && new Set(v).size > 1;
  const bestPpl = differ(textVals('perplexity')) ? Math.min(...textVals('perplexity')) : undefined;
  const bestAcc = differ(textVals('textTaskAccuracy')) ? Math.max(...textVals('textTaskAccuracy')) : undefined;
  const cell = (v: number | undefined, isBest: boolean): string => `<td class="num${isBest ? ' best' : ''}">${formatMetric(v)}</td>`;

  const head1 =
    '<tr><th>run</th><th>method</th><th>status</th><th>backend</th><th class="num">steps</th><th class="num">trainable params</th>' +
    '<th class="num">trainable %</th><th class="num">median step</th><th class="num">train time</th><th class="num">peak memory</th></tr>';
  const runCell = (i: number): string =>
    `<td class="run"><span class="swatch" style="background:${c.styles[i]!.color}"></span>${e(c.labels[i])}</td>`;
  const rows1 = c.runs.map((r, i) => {
    const info = r.info;
    return (
      `<tr>${runCell(i)}` +
      `<td>${e(info.method)}</td>` +
      `<td><span class="status ${STATUS_CLASS[info.status] ?? ''}"${info.statusDetail ? ` title="${e(info.statusDetail)}"` : ''}>${e(info.status)}</span></td>` +
      `<td>${e(info.backend.name)}${info.backend.gpu ? ' <span class="tag">GPU</span>' : ''}</td>` +
      `<td class="num">${info.step.toLocaleString('en-US')} / ${info.totalSteps.toLocaleString('en-US')}</td>` +
      `<td class="num">${formatCount(info.trainableParams)} <span class="dim">of ${formatCount(info.totalParams)}</span></td>` +
      `<td class="num">${formatPercent(info.trainablePercent)}</td>` +
      `<td class="num">${formatMs(info.medianStepMs)}</td>` +
      `<td class="num">${formatDuration(info.trainSeconds)}</td>` +
      `<td class="num">${formatMB(info.peakRssMB)}</td></tr>`
    );
  });
  let evalTable = '';
  if (metricNames.length || hasText) {
    const head2 =
      '<tr><th>run</th><th>task</th><th>split</th><th class="num">step</th>' +
      metricNames.map((m) => `<th class="num">${e(m)}${lowerIsBetter(m) ? ' ↓' : ' ↑'}</th>`).join('') +
      (hasText ? '<th class="num text-skill">text perplexity ↓</th><th class="num">text-task accuracy ↑</th>' : '') +
      '</tr>';
    const rows2 = c.runs.map((r, i) => {
      const fin = r.final;
      const ts = fin?.textSkill;
      if (!fin) return `<tr>${runCell(i)}<td colspan="${3 + metricNames.length + (hasText ? 2 : 0)}" class="dim">no eval.json</td></tr>`;
      return (
        `<tr>${runCell(i)}<td>${e(fin.task)}</td><td>${e(fin.split)}</td><td class="num">${fin.step}</td>` +
        metricNames.map((m) => cell(fin.metrics[m], best.get(m) !== undefined && fin.metrics[m] === best.get(m))).join('') +
        (hasText
          ? cell(ts?.perplexity, bestPpl !== undefined && ts?.perplexity === bestPpl) +
            cell(ts?.textTaskAccuracy, bestAcc !== undefined && ts?.textTaskAccuracy === bestAcc)
          : '') +
        '</tr>'
      );
    });
    evalTable =
      '<h3>Final evaluation <span class="dim">(eval.json; text skill = the language path on text-only data)</span></h3>' +
      `<div class="scroll"><table class="final"><thead>${head2}</thead><tbody>${rows2.join('')}</tbody></table></div>`;
  }
  const notes = c.runs
    .map((r, i) => {
      const msgs: string[] = [];
      if (r.info.status !== 'completed') {
        msgs.push(`${r.info.status}${r.info.statusDetail ? `: ${r.info.statusDetail}` : ''} (at step ${r.info.step} of ${r.info.totalSteps})`);
      }
      msgs.push(...r.warnings);
      return msgs.map((m) => `<li><b>${e(c.labels[i])}</b>: ${e(m)}</li>`).join('');
    })
    .join('');
  return (
    '<section id="summary"><h2>Summary</h2><div class="scroll"><table class="summary">' +
    `<thead>${head1}</thead><tbody>${rows1.join('')}</tbody></table></div>` +
    (notes ? `<ul class="notes">${notes}</ul>` : '') +
    evalTable +
    '<p class="hint">Best value per column in bold (↑ higher is better, ↓ lower is better). Trainable share is of all parameters, frozen base included.</p>' +
    '</section>'
  );
}

export function lossSection(c: Ctx, opts: ReportOptions): string {
  const smoothing = opts.smoothing ?? 0.6;
  if (!(smoothing >= 0 && smoothing < 1)) throw new AdaptorkitError('INVALID_ARGUMENT', `report smoothing must be in [0, 1), got ${smoothing}`);
  const series: LineSeries[] = [];
  c.runs.forEach((r, i) => {
    if (!r.steps.length) return;
    const raw: Point[] = r.steps.map((s) => [s.step, s.loss]);
    const smooth = smoothing > 0 && raw.length > 10;
    const sm: Point[] = smooth ? (smoothEma(raw.map((p) => p[1]), smoothing).map((y, k) => [raw[k]![0], y] as const)) : raw;
    series.push({
      label: c.labels[i]!,
      ...c.styles[i]!,
      points: downsample(sm),
      ...(smooth ? { faint: downsample(raw) } : {}),
      markers: raw.length <= 40,
    });
  });
  if (!series.length) return '<section id="loss"><h2>Training loss</h2><p class="dim">No training steps recorded yet.</p></section>';
  const finite = c.runs.flatMap((r) => r.steps.map((s) => s.loss)).filter((v) => Number.isFinite(v));
  const positive = finite.length > 0 && finite.every((v) => v > 0);
  const [minLoss, maxLoss] = extent(finite);
  const spread = positive ? maxLoss / minLoss : 1;
  const wantLog = opts.logY === 'auto' || opts.logY === undefined ? spread > 10 : opts.logY;
  const subtitle = smoothing > 0 ? ` (EMA ${smoothing}; raw loss pale)` : '';
  // Drawn at the width the page shows it (760 CSS px), so its text has the size of the other charts'.
  const size = { width: 760, height: 340 };
  const linear = lineChart({ id: 'loss-linear', title: `Training loss${subtitle}`, xLabel: 'step', yLabel: 'loss', series, ...size });
  if (!positive) {
    return `<section id="loss"><h2>Training loss</h2><div class="charts one"><figure class="chart-fig" id="fig-loss-linear">${linear}</figure></div>` +
      '<p class="hint">Log scale unavailable: some losses are ≤ 0.</p></section>';
  }
  const log = lineChart({ id: 'loss-log', title: `Training loss, log scale${subtitle}`, xLabel: 'step', yLabel: 'loss (log)', series, logY: true, ...size });
  return (
    '<section id="loss"><h2>Training loss</h2>' +
    `<input type="radio" name="loss-scale" id="loss-scale-linear" class="toggle"${wantLog ? '' : ' checked'}>` +
    `<label for="loss-scale-linear" class="toggle-label">linear</label>` +
    `<input type="radio" name="loss-scale" id="loss-scale-log" class="toggle"${wantLog ? ' checked' : ''}>` +
    `<label for="loss-scale-log" class="toggle-label">log y</label>` +
    `<div class="charts one scale-linear"><figure class="chart-fig" id="fig-loss-linear">${linear}</figure></div>` +
    `<div class="charts one scale-log"><figure class="chart-fig" id="fig-loss-log">${log}</figure></div>` +
    '</section>'
  );
}

export function lrSection(c: Ctx): string {
  const series: LineSeries[] = c.runs.flatMap((r, i) =>
    r.steps.length ? [{ label: c.labels[i]!, ...c.styles[i]!, points: downsample(r.steps.map((s) => [s.step, s.lr] as const)), markers: false }] : [],
  );
  if (!series.length) return '';
  return lineChart({ id: 'lr', title: 'Learning rate', xLabel: 'step', yLabel: 'learning rate', series, height: 240 });
}

export function evalSection(c: Ctx): string {
  const names = [...new Set(c.runs.flatMap((r) => r.evals.flatMap((l) => Object.keys(l.metrics))))].sort();
  const charts = names.map((m) => {
    const series: LineSeries[] = [];
    c.runs.forEach((r, i) => {
      const lines = r.evals.filter((l) => m in l.metrics);
      const splits = [...new Set(lines.map((l) => l.split))];
      for (const split of splits) {
        const pts = lines.filter((l) => l.split === split).map((l) => [l.step, l.metrics[m]!] as const);
        const st = c.styles[i]!;
        series.push({
          label: splits.length > 1 ? `${c.labels[i]} (${split})` : c.labels[i]!,
          color: st.color,
          dash: split === 'test' && splits.length > 1 ? '5 3' : st.dash,
          points: downsample(pts),
          markers: pts.length <= 60,
        });
      }
    });
    return `<figure class="chart-fig" id="fig-eval-${slug(m)}">${lineChart({
      id: `eval-${slug(m)}`,
      title: `${m} ${lowerIsBetter(m) ? '(lower is better)' : '(higher is better)'}`,
      xLabel: 'step',
      yLabel: m,
      series,
      height: 280,
    })}</figure>`;
  });
  const lr = lrSection(c);
  if (!charts.length && !lr) return '';
  return (
    '<section id="eval"><h2>Evaluation during training</h2>' +
    (charts.length ? '' : '<p class="dim">No evaluation lines in metrics.jsonl.</p>') +
    `<div class="charts">${charts.join('')}${lr ? `<figure class="chart-fig" id="fig-lr">${lr}</figure>` : ''}</div></section>`
  );
}

/** Per-layer router weights: one chart per run (and per branch when there are more than two). */
export function routingSection(c: Ctx): string {
  const figs: string[] = [];
  c.runs.forEach((r, i) => {
    if (!r.routing) return;
    const modalities = Object.keys(r.routing);
    const layers = Math.max(0, ...modalities.map((m) => r.routing![m]!.length));
    const rows = (m: string): (number | number[])[] => r.routing![m]!;
    const branches = Math.max(1, ...modalities.flatMap((m) => rows(m).map((v) => (Array.isArray(v) ? v.length : 1))));
    // Two softmax branches: the second is 1 - the first, so one chart says it all.
    const sumsToOne = modalities.every((m) => rows(m).every((v) => !Array.isArray(v) || Math.abs(v.reduce((s, x) => s + x, 0) - 1) < 1e-3));
    const shown = branches === 2 && sumsToOne ? [0] : [...Array(branches).keys()];
    for (const b of shown) {
      const title =
        branches === 1
          ? `${c.labels[i]}: router weight per layer`
          : branches === 2 && sumsToOne
            ? `${c.labels[i]}: router weight of branch 1 (branch 2 = 1 − it)`
            : `${c.labels[i]}: router weight of branch ${b + 1} of ${branches}`;
      const id = `routing-${slug(c.labels[i]!)}-${i}-b${b + 1}`;
      figs.push(
        `<figure class="chart-fig" id="fig-${id}">${barChart({
          id,
          title,
          xLabel: 'adapted layer',
          yLabel: 'weight',
          categories: [...Array(layers).keys()].map(String),
          series: modalities.map((m, k) => ({
            label: m,
            color: seriesStyle(k).color,
            values: rows(m).map((v) => (Array.isArray(v) ? v[b] : v)),
          })),
          yMax: 1,
        })}</figure>`,
      );
    }
  });
  if (!figs.length) return '';
  return `<section id="routing"><h2>Routing</h2><div class="charts">${figs.join('')}</div></section>`;
}

function norm(s: string): string {
  return s.trim().toLowerCase().replace(/\s+/g, ' ');
}

/** Generations side by side: one row per (prompt, answer), one column per run that has samples. */
export function samplesSection(c: Ctx, max: number): string {
  const withSamples = c.runs.map((r, i) => ({ r, i })).filter(({ r }) => r.final?.samples?.length);
  if (!withSamples.length) return '';
  const keyOf = (s: { prompt: string; answer: string }): string => JSON.stringify([s.prompt, s.answer]);
  const keys: string[] = [];
  const preds = new Map<string, Map<number, string>>();
  for (const { r, i } of withSamples) {
    for (const s of r.final!.samples!.slice(0, max)) {
      const k = keyOf(s);
      if (!preds.has(k)) {
        preds.set(k, new Map());
        keys.push(k);
      }
      preds.get(k)!.set(i, s.prediction);
    }
  }
  const head = `<tr><th>prompt</th><th>expected</th>${withSamples.map(({ i }) => `<th><span class="swatch" style="background:${c.styles[i]!.color}"></span>${e(c.labels[i])}</th>`).join('')}</tr>`;
  const rows = keys.map((k) => {
    const [prompt, answer] = JSON.parse(k) as [string, string];
    const cells = withSamples.map(({ i }) => {
      const p = preds.get(k)!.get(i);
      if (p === undefined) return '<td class="dim">–</td>';
      const ok = norm(p) === norm(answer);
      return `<td class="${ok ? 'right' : 'wrong'}"><span class="mark">${ok ? '✓' : '✗'}</span> ${e(p)}</td>`;
    });
    return `<tr><td class="prompt">${e(prompt)}</td><td>${e(answer)}</td>${cells.join('')}</tr>`;
  });
  return (
    '<section id="samples"><h2>Sample generations</h2><div class="scroll"><table class="samples">' +
    `<thead>${head}</thead><tbody>${rows.join('')}</tbody></table></div>` +
    '<p class="hint">✓ = exact match with the expected answer (ignoring case and spacing).</p></section>'
  );
}

export function configSection(c: Ctx): string {
  const withCfg = c.runs.map((r, i) => ({ r, i })).filter(({ r }) => r.config !== undefined);
  if (!withCfg.length) return '';
  const flat = withCfg.map(({ r }) => flatten(r.config));
  const keys = [...new Set(flat.flatMap((m) => [...m.keys()]))].sort();
  const differing = withCfg.length > 1 ? keys.filter((k) => new Set(flat.map((m) => m.get(k) ?? '∅')).size > 1) : [];
  const head = `<tr><th>key</th>${withCfg.map(({ i }) => `<th>${e(c.labels[i])}</th>`).join('')}</tr>`;
  const row = (k: string): string => `<tr><td class="key">${e(k)}</td>${flat.map((m) => `<td><code>${m.has(k) ? e(m.get(k)) : '<span class="dim">(absent)</span>'}</code></td>`).join('')}</tr>`;
  const diff =
    withCfg.length > 1
      ? differing.length
        ? `<div class="scroll"><table class="config">${head}${differing.map(row).join('')}</table></div>`
        : '<p>The configs are identical.</p>'
      : '';
  return (
    `<section id="config"><h2>Config${withCfg.length > 1 ? ' differences' : ''}</h2>${diff}` +
    `<details><summary>All ${keys.length} config keys</summary><div class="scroll"><table class="config">${head}${keys.map(row).join('')}</table></div></details>` +
    '</section>'
  );
}

export function machineSection(c: Ctx): string {
  const rows = c.runs.map((r, i) => {
    const m = r.info.machine;
    const b = r.info.backend;
    return (
      `<tr><td>${e(c.labels[i])}</td><td>${e(b.name)} <span class="dim">(${e(b.package)}${b.detail ? `; ${e(b.detail)}` : ''})</span></td>` +
      `<td>${e(m.hostname)}</td><td>${e(m.cpuModel)} × ${m.cpus}</td><td class="num">${m.memoryGB.toFixed(0)} GB</td>` +
      `<td>${e(m.platform)}/${e(m.arch)}, node ${e(m.node)}</td><td class="num">${r.info.seed}</td>` +
      `<td>${e(r.info.startedAt)}</td><td>${e(r.info.finishedAt ?? '–')}</td><td class="path">${e(r.dir)}</td></tr>`
    );
  });
  return (
    '<section id="machines"><h2>Where the runs ran</h2><div class="scroll"><table class="machines">' +
    '<thead><tr><th>run</th><th>backend</th><th>host</th><th>CPU</th><th class="num">memory</th><th>platform</th><th class="num">seed</th><th>started</th><th>finished</th><th>folder</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table></div></section>`
  );
}

