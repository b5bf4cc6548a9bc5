/**
 * The report page in a real headless Chromium (Debian `apt-get install -y chromium`): it loads with no
 * console error and no request beyond itself, its charts exist with one series per run, the CSS-only
 * log/linear switch works, no text leaves the SVG, and screenshots come out as PNGs.
 * Without Chromium this file is skipped, and says so.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, findChromium, type Page } from './chromium.js';
import { fixtureRuns, writeFixtureRuns } from './fixtures.js';
import { readRuns } from './read-run.js';
import { writeReport, type WrittenReport } from './write.js';

const chromium = findChromium();
if (!chromium) {
  console.warn(
    '[report browser test] SKIPPED: no Chromium found (install: apt-get install -y chromium, or set ADAPTORKIT_CHROMIUM)',
  );
}

/** PNG signature + IHDR width/height. */
function pngSize(buf: Buffer): { width: number; height: number } {
  expect(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

describe.skipIf(!chromium)('report in headless Chromium', () => {
  let root: string;
  let written: WrittenReport;
  let browser: Browser;
  let page: Page;
  let url: string;

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-report-browser-'));
    const dirs = await writeFixtureRuns(path.join(root, 'runs'), fixtureRuns({ hostile: true, unfinished: true }));
    const runs = await readRuns(dirs);
    written = await writeReport(runs, path.join(root, 'report.html'), { png: true, pngScale: 1, generatedAt: '2025-01-02T00:00:00Z' });
    url = pathToFileURL(written.html).href;
    browser = await Browser.launch({ executablePath: chromium });
    page = await browser.newPage({ width: 1200, height: 900, scale: 1 });
    await page.goto(url);
  });
  afterAll(async () => {
    await page?.close();
    await browser?.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('loads with no console error, no exception and no request but the page itself', () => {
    expect(page.errors).toEqual([]);
    expect(page.requests).toEqual([url]);
    expect(written.pageErrors).toEqual([]);
  });

  it('has every chart with one series per run (routing: one per modality)', async () => {
    const charts = await page.evaluate<Record<string, { series: number; declared: string; legend: number; paths: number }>>(`
      Object.fromEntries([...document.querySelectorAll('svg.chart')].map((s) => [s.dataset.chart, {
        series: s.querySelectorAll('g.series').length,
        declared: s.dataset.series,
        legend: s.querySelectorAll('g.legend-item').length,
        paths: s.querySelectorAll('g.series path.line, g.series rect').length,
      }]))`);
    expect(Object.keys(charts).sort()).toEqual(
      ['eval-accuracy', 'eval-perplexity', 'loss-linear', 'loss-log', 'lr', 'routing-mma-shapes-1-b1'].sort(),
    );
    for (const id of ['loss-linear', 'loss-log', 'eval-accuracy', 'eval-perplexity', 'lr']) {
      expect(charts[id], id).toMatchObject({ series: 4, declared: '4', legend: 4 });
      expect(charts[id]!.paths, id).toBeGreaterThanOrEqual(4);
    }
    expect(charts['routing-mma-shapes-1-b1']).toEqual({ series: 2, declared: '2', legend: 2, paths: 12 }); // 2 modalities x 6 layers
  });

  it('draws axes with tick labels and keeps every text inside its chart', async () => {
    const r = await page.evaluate<{ id: string; ticks: number; overflow: string[] }[]>(`
      [...document.querySelectorAll('svg.chart')].filter((s) => s.getBoundingClientRect().width > 0).map((s) => {
        const vb = s.viewBox.baseVal;
        const overflow = [...s.querySelectorAll('text')].filter((t) => {
          if (t.transform.baseVal.numberOfItems) return false; // the rotated y-axis label: its box is in its own frame
          const b = t.getBBox();
          return b.x < -0.5 || b.y < -0.5 || b.x + b.width > vb.width + 0.5 || b.y + b.height > vb.height + 0.5;
        }).map((t) => t.textContent);
        return { id: s.dataset.chart, ticks: s.querySelectorAll('g.axes text').length, overflow };
      })`);
    expect(r.length).toBe(5); // the hidden (linear) loss chart is not rendered
    for (const c of r) {
      expect(c.ticks, c.id).toBeGreaterThanOrEqual(6);
      expect(c.overflow, c.id).toEqual([]);
    }
  });

  it('shows file text as text: no injected element, the hostile run name readable', async () => {
    const r = await page.evaluate<{ scripts: number; imgs: number; title: string; cell: string }>(`({
      scripts: document.scripts.length,
      imgs: document.images.length,
      title: document.title,
      cell: [...document.querySelectorAll('table.summary td.run')][2].textContent,
    })`);
    expect(r).toEqual({
      scripts: 0,
      imgs: 0,
      title: expect.stringContaining('frozen <script>console.error("xss")</script>'),
      cell: 'frozen <script>console.error("xss")</script>',
    });
  });

  it('switches the loss chart between log and linear without scripts', async () => {
    const shown = (): Promise<string[]> =>
      page.evaluate(`['fig-loss-linear', 'fig-loss-log'].filter((id) => document.getElementById(id).getBoundingClientRect().height > 0)`);
    expect(await shown()).toEqual(['fig-loss-log']); // loss spans > 10x: log first
    await page.evaluate(`document.querySelector('label[for=loss-scale-linear]').click()`);
    expect(await shown()).toEqual(['fig-loss-linear']);
    await page.evaluate(`document.querySelector('label[for=loss-scale-log]').click()`);
    expect(await shown()).toEqual(['fig-loss-log']);
  });

  it('writes PNG charts beside the page and takes a full-page screenshot', async () => {
    expect(written.pngs.map((p) => path.basename(p)).sort()).toEqual(
      ['report-eval-accuracy.png', 'report-eval-perplexity.png', 'report-loss-log.png', 'report-lr.png', 'report-routing-mma-shapes-1-b1.png'],
    );
    for (const p of written.pngs) {
      const size = pngSize(await fs.readFile(p));
      expect(size.width, p).toBeGreaterThan(300);
      expect(size.height, p).toBeGreaterThan(150);
    }
    const shot = await page.screenshot({ fullPage: true });
    const out = path.join(os.tmpdir(), 'adaptorkit-report-test.png');
    await fs.writeFile(out, shot);
    const size = pngSize(shot);
    expect(size.width).toBe(1200);
    expect(size.height).toBeGreaterThan(1500);
    expect(shot.length).toBeGreaterThan(50_000);
    console.log(`[report browser test] screenshot: ${out} (${size.width}x${size.height}, ${Math.round(shot.length / 1024)} KB)`);
  });
});
