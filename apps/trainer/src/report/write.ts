/**
 * writeReport: the HTML page written atomically, and optionally PNGs of its charts (and of the whole
 * page) rendered by headless Chromium, written beside it: report.html -> report-loss-linear.png, ...
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AdaptorkitError } from '@adaptorkit/core';
import { writeFileAtomic } from '../fsutil.js';
import { Browser, findChromium } from './chromium.js';
import type { LoadedRun } from './read-run.js';
import { renderReport, type ReportOptions } from './render.js';

export interface WriteReportOptions extends ReportOptions {
  /** Also write one PNG per visible chart beside the page (needs Chromium). */
  png?: boolean;
  /** Also write a PNG of the whole page (`<name>.png`). */
  pagePng?: boolean;
  /** Chromium binary (default: findChromium()). */
  chromiumPath?: string;
  /** Device pixels per CSS pixel for the PNGs (default 2: sharp on high-DPI screens and in READMEs). */
  pngScale?: number;
}

export interface WrittenReport {
  html: string;
  pngs: string[];
  /** Console errors / failed loads Chromium reported for the page (empty when fine or when no PNG was made). */
  pageErrors: string[];
}

/** Write the report page (and PNGs when asked). PNG export fails before writing anything when Chromium is missing. */
export async function writeReport(runs: readonly LoadedRun[], outFile: string, opts: WriteReportOptions = {}): Promise<WrittenReport> {
  const wantPng = !!(opts.png || opts.pagePng);
  const exe = opts.chromiumPath ?? findChromium();
  if (wantPng && (!exe || !existsSync(exe))) {
    throw new AdaptorkitError(
      'UNSUPPORTED',
      `PNG export needs Chromium${exe ? ` (not found at ${exe})` : ''}: install it (Debian: apt-get install -y chromium), set ADAPTORKIT_CHROMIUM to its path, or leave out --png`,
    );
  }
  const html = renderReport(runs, opts);
  const file = path.resolve(outFile);
  await writeFileAtomic(file, html);
  if (opts.png) await removeReportPngs(file); // charts come and go between reports: no stale ones
  const result: WrittenReport = { html: file, pngs: [], pageErrors: [] };
  if (!wantPng) return result;

  const dir = path.dirname(file);
  const base = path.basename(file).replace(/\.html?$/i, '');
  const browser = await Browser.launch({ executablePath: exe });
  try {
    const page = await browser.newPage({ width: 1200, height: 900, scale: opts.pngScale ?? 2 });
    await page.goto(pathToFileURL(file).href);
    result.pageErrors.push(...page.errors);
    if (opts.png) {
      const ids = await page.evaluate<string[]>(
        `[...document.querySelectorAll('figure.chart-fig')].filter((f) => f.getBoundingClientRect().width > 0).map((f) => f.id)`,
      );
      for (const id of ids) {
        const box = await page.box(`#${id}`);
        if (!box) continue;
        const out = path.join(dir, `${base}-${id.replace(/^fig-/, '')}.png`);
        await writeFileAtomic(out, await page.screenshot({ clip: box }));
        result.pngs.push(out);
      }
    }
    if (opts.pagePng) {
      const out = path.join(dir, `${base}.png`);
      await writeFileAtomic(out, await page.screenshot({ fullPage: true }));
      result.pngs.push(out);
    }
    await page.close();
  } finally {
    await browser.close();
  }
  return result;
}

/** Remove PNGs a previous writeReport left for this page (charts come and go between runs). */
export async function removeReportPngs(outFile: string): Promise<void> {
  const dir = path.dirname(path.resolve(outFile));
  const base = path.basename(outFile).replace(/\.html?$/i, '');
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(`${base}-`) && n.endsWith('.png')).map((n) => fs.rm(path.join(dir, n), { force: true })));
}
