/**
 * renderReport: one self-contained HTML page comparing runs. No scripts, fonts, images or network:
 * inline CSS and inline SVG only, and a Content-Security-Policy that forbids loading anything, so
 * the page renders the same from a mail attachment as from the run folder. The linear/log switch
 * of the loss chart is CSS-only (radio buttons).
 */
import { AdaptorkitError } from '@adaptorkit/core';
import type { LoadedRun } from './read-run.js';
import { configSection, evalSection, lossSection, machineSection, routingSection, runLabels, samplesSection, summaryTable, type Ctx, type ReportOptions } from './sections.js';
import { escapeHtml as e } from './format.js';
import { FONT, seriesStyle } from './svg.js';


export { smoothEma, type ReportOptions } from './sections.js';

/** The small markdown subset the demo writes -> HTML (everything escaped; `**x**` bold; pipe tables). */
export function simpleMarkdownHtml(md: string): string {
  const out: string[] = [];
  const inline = (t: string): string => e(t).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>');
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; ) {
    const line = lines[i]!.trim();
    if (line.startsWith('|')) {
      const block: string[] = [];
      while (i < lines.length && lines[i]!.trim().startsWith('|')) block.push(lines[i++]!.trim());
      const cells = (l: string): string[] => l.replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
      const isRule = (l: string): boolean => /^\|[\s:|-]+\|$/.test(l);
      const [head, ...rest] = block;
      const body = rest.filter((l) => !isRule(l));
      out.push(
        '<div class="scroll"><table class="summary"><tr>' + cells(head!).map((c) => `<th>${inline(c)}</th>`).join('') + '</tr>' +
          body.map((l) => '<tr>' + cells(l).map((c) => `<td>${inline(c)}</td>`).join('') + '</tr>').join('') + '</table></div>',
      );
      continue;
    }
    if (line) out.push(`<p>${inline(line)}</p>`);
    i++;
  }
  return out.join('\n');
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: #1d1f23; font: 14px/1.45 ${FONT}; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 40px; }
header h1 { font-size: 22px; margin: 0 0 2px; }
header p { margin: 0; color: #555; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 14px 18px; margin: 16px 0; }
h2 { font-size: 16px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 16px 0 8px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 4px 7px; border-bottom: 1px solid #e6e8eb; text-align: left; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; vertical-align: bottom; }
th.group { text-align: center; border-bottom: 2px solid #c9ced6; background: #fff; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.best { font-weight: 700; }
td.run { white-space: nowrap; font-weight: 600; }
.dim { color: #6b7280; font-weight: normal; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.tag { font-size: 11px; border: 1px solid #999; border-radius: 3px; padding: 0 3px; }
.status { padding: 1px 7px; border-radius: 10px; font-size: 12px; font-weight: 600; border: 1px solid; }
.status.ok { color: #005a3c; border-color: #009E73; background: #e3f5ee; }
.status.running { color: #004d80; border-color: #0072B2; background: #e3f0f9; }
.status.failed { color: #8f2f00; border-color: #D55E00; background: #fbeae1; }
.status.interrupted { color: #7a5200; border-color: #E69F00; background: #fdf3dd; }
.notes { margin: 8px 0 0; padding-left: 20px; color: #5c3a00; }
.hint { color: #6b7280; font-size: 12px; margin: 6px 0 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 12px 20px; }
.charts.one { grid-template-columns: minmax(0, 760px); }
figure.chart-fig { margin: 0; }
figure.chart-fig svg { width: 100%; height: auto; display: block; }
.toggle { position: absolute; opacity: 0; }
.toggle-label { display: inline-block; padding: 2px 10px; border: 1px solid #c9ced6; cursor: pointer; font-size: 12px; margin-bottom: 8px; }
.toggle-label + .toggle + .toggle-label { margin-left: -1px; }
.toggle:checked + .toggle-label { background: #0072B2; border-color: #0072B2; color: #fff; }
.toggle:focus-visible + .toggle-label { outline: 2px solid #E69F00; }
#loss-scale-linear:checked ~ .scale-log, #loss-scale-log:checked ~ .scale-linear { display: none; }
table.samples td { max-width: 340px; overflow-wrap: anywhere; }
td.prompt { white-space: pre-wrap; color: #333; }
td.right .mark { color: #009E73; font-weight: 700; }
td.wrong .mark { color: #D55E00; font-weight: 700; }
table.config td.key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: nowrap; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; overflow-wrap: anywhere; }
td.path { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
details summary { cursor: pointer; color: #0059a0; margin-top: 6px; }
`;

/** Render the comparison page for the given runs (in the order given). */
export function renderReport(runs: readonly LoadedRun[], opts: ReportOptions = {}): string {
  if (!runs.length) throw new AdaptorkitError('INVALID_ARGUMENT', 'renderReport needs at least one run');
  const labels = runLabels(runs);
  const c: Ctx = { runs, labels, styles: runs.map((_, i) => seriesStyle(i)) };
  const title = opts.title ?? `adaptorkit report: ${labels.join(', ')}`;
  const at = opts.generatedAt === undefined ? new Date() : new Date(opts.generatedAt);
  const body = [
    ...(opts.preface ? [`<section id="results"><h2>${e(opts.preface.title)}</h2>${simpleMarkdownHtml(opts.preface.markdown)}</section>`] : []),
    summaryTable(c),
    lossSection(c, opts),
    evalSection(c),
    routingSection(c),
    samplesSection(c, opts.maxSamples ?? 8),
    configSection(c),
    machineSection(c),
  ].join('\n');
  return (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    // Nothing may be loaded: the page is complete as it is.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<meta name="generator" content="adaptorkit report">' +
    `<title>${e(title)}</title><style>${CSS}</style></head><body><main>` +
    `<header><h1>${e(title)}</h1><p>${runs.length} run${runs.length > 1 ? 's' : ''} · generated ${e(at.toISOString())}</p></header>\n` +
    body +
    '\n</main></body></html>\n'
  );
}
