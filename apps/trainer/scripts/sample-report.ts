/**
 * Regenerates assets/fixture-report.png (the report page drawn from synthetic fixture runs) from synthetic
 * fixture runs (src/report/fixtures.ts: made-up curves, not measurements). Needs Chromium.
 * From the repo root:
 *   npx esbuild apps/trainer/scripts/sample-report.ts --bundle --platform=node --format=esm --conditions=source \
 *     --log-level=warning --outfile=apps/trainer/dist/sample-report.mjs \
 *     "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
 *     && node apps/trainer/dist/sample-report.mjs
 * Also writes the whole page and its chart PNGs to a temp folder, printed at the end.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../src/fsutil.js';
import { Browser } from '../src/report/chromium.js';
import { fixtureRuns, writeFixtureRuns } from '../src/report/fixtures.js';
import { readRuns, writeReport } from '../src/report/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Bundled into dist/, the script sits one level below the package either way.
const pkg = path.resolve(here, '..');
const out = path.join(pkg, 'assets', 'fixture-report.png');

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-sample-report-'));
const runs = await readRuns(await writeFixtureRuns(path.join(tmp, 'runs'), fixtureRuns()));
const written = await writeReport(runs, path.join(tmp, 'report.html'), {
  title: 'adaptorkit report: three adaptors on ShapesWorld VQA (sample data)',
  png: true,
  generatedAt: '2025-01-02T00:00:00Z',
});
if (written.pageErrors.length) throw new Error(`the page reported errors: ${written.pageErrors.join('; ')}`);

// The README picture: the page from its top down to the end of the routing chart, at 1x.
const browser = await Browser.launch();
try {
  const page = await browser.newPage({ width: 1100, height: 900, scale: 1 });
  await page.goto(pathToFileURL(written.html).href);
  const end = await page.evaluate<number>(`document.getElementById('routing').getBoundingClientRect().bottom + window.scrollY + 8`);
  const png = await page.screenshot({ clip: { x: 0, y: 0, width: 1100, height: Math.ceil(end) } });
  await writeFileAtomic(out, png);
  console.log(`wrote ${out} (${Math.round(png.length / 1024)} KB); full page and chart PNGs in ${tmp}`);
} finally {
  await browser.close();
}
