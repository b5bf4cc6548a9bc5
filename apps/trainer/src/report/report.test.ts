import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureRuns, writeFixtureRuns } from './fixtures.js';
import { escapeHtml, formatPercent } from './format.js';
import { readRun, readRuns, type LoadedRun } from './read-run.js';
import { renderReport, simpleMarkdownHtml, smoothEma } from './render.js';
import { logTicks, niceTicks } from './svg.js';
import { writeReport } from './write.js';

let root: string;
let dirs: string[];
let runs: LoadedRun[];

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-report-'));
  dirs = await writeFixtureRuns(path.join(root, 'runs'), fixtureRuns({ hostile: true, unfinished: true }));
  runs = await readRuns(dirs);
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** A copy of fixture run 0 that the test may break. */
async function copyRun(name: string): Promise<string> {
  const dst = path.join(root, name);
  await fs.cp(dirs[0]!, dst, { recursive: true });
  return dst;
}

function attr(html: string, chart: string, name: string): string | undefined {
  const m = new RegExp(`<svg[^>]*data-chart="${chart}"[^>]*>`).exec(html);
  return m ? new RegExp(`${name}="([^"]*)"`).exec(m[0])?.[1] : undefined;
}

describe('readRun', () => {
  it('reads every file of a run folder', () => {
    const [iaa, mma, , mwa] = runs;
    expect(iaa!.info.name).toBe('iaa-shapes');
    expect(iaa!.steps).toHaveLength(120);
    expect(iaa!.evals).toHaveLength(6);
    expect(iaa!.final?.samples?.length).toBe(5);
    expect((iaa!.config as { method: { name: string } }).method.name).toBe('iaa');
    expect(mma!.routing?.text).toHaveLength(6);
    expect(mwa!.info.status).toBe('running');
    expect(mwa!.final).toBeUndefined();
  });

  it('names the missing folder and the missing run.json', async () => {
    await expect(readRun(path.join(root, 'nope'))).rejects.toThrow(/nope does not exist/);
    const empty = path.join(root, 'empty');
    await fs.mkdir(empty);
    await expect(readRun(empty)).rejects.toMatchObject({ code: 'BAD_FILE', message: expect.stringMatching(/empty\/run\.json is missing/) });
  });

  it('names the file, line and field of a corrupt metrics line', async () => {
    const dir = await copyRun('corrupt-line');
    const file = path.join(dir, 'metrics.jsonl');
    const lines = (await fs.readFile(file, 'utf8')).split('\n');
    lines[2] = '{"kind":"step","step":3,"loss":"oops"';
    await fs.writeFile(file, lines.join('\n'));
    await expect(readRun(dir)).rejects.toThrow(/metrics\.jsonl:3 is not valid JSON/);
    lines[2] = '{"kind":"step","step":3,"loss":"oops","lr":0.1,"ms":1,"time":"t"}';
    await fs.writeFile(file, lines.join('\n'));
    await expect(readRun(dir)).rejects.toThrow(/metrics\.jsonl:3 is not a step or eval line: loss/);
  });

  it('names the bad field of run.json and eval.json', async () => {
    const dir = await copyRun('bad-fields');
    const info = JSON.parse(await fs.readFile(path.join(dir, 'run.json'), 'utf8')) as Record<string, unknown>;
    await fs.writeFile(path.join(dir, 'run.json'), JSON.stringify({ ...info, status: 'done' }));
    await expect(readRun(dir)).rejects.toThrow(/run\.json is not a valid run record: status/);
    await fs.writeFile(path.join(dir, 'run.json'), JSON.stringify({ ...info, extras: { routing: { text: ['x'] } } }));
    await expect(readRun(dir)).rejects.toThrow(/extras\.routing/);
    await fs.writeFile(path.join(dir, 'run.json'), JSON.stringify(info));
    await fs.writeFile(path.join(dir, 'eval.json'), '{"step": 1,');
    await expect(readRun(dir)).rejects.toThrow(/eval\.json is not valid JSON/);
    await fs.writeFile(path.join(dir, 'eval.json'), '{"step": 1, "split": "val", "task": "vqa", "metrics": {"acc": "high"}}');
    await expect(readRun(dir)).rejects.toThrow(/eval\.json is not a valid eval result: metrics\.acc/);
  });

  it('tolerates a half-written last line of an unfinished run only, and reads a NaN loss as NaN', async () => {
    const dir = await copyRun('half-line');
    const file = path.join(dir, 'metrics.jsonl');
    const half = (await fs.readFile(file, 'utf8')).split('\n').length + 1; // line number of the half-written line
    await fs.appendFile(file, '{"kind":"step","step":121,"loss":null,"lr":0.001,"ms":40,"time":"t"}\n{"kind":"st');
    await expect(readRun(dir)).rejects.toThrow(new RegExp(`metrics\\.jsonl:${half} is not valid JSON`)); // completed: refused
    const info = JSON.parse(await fs.readFile(path.join(dir, 'run.json'), 'utf8')) as Record<string, unknown>;
    await fs.writeFile(path.join(dir, 'run.json'), JSON.stringify({ ...info, status: 'failed', statusDetail: 'loss became NaN at step 121' }));
    const run = await readRun(dir);
    expect(run.info.status).toBe('failed');
    expect(run.warnings.join()).toContain(`metrics.jsonl:${half}: ignored a half-written last line`);
    expect(run.steps.at(-1)!.loss).toBeNaN();
    const html = renderReport([run], { generatedAt: '2025-01-02T00:00:00Z' });
    expect(html).toContain('loss became NaN at step 121');
    expect(html).toContain('status failed');
  });

  it('reads a run that has only just started (run.json alone) and renders it without charts', async () => {
    const dir = path.join(root, 'just-started');
    await fs.mkdir(dir);
    await fs.copyFile(path.join(dirs[3]!, 'run.json'), path.join(dir, 'run.json'));
    const run = await readRun(dir);
    expect(run.warnings.join()).toMatch(/metrics\.jsonl does not exist yet/);
    const html = renderReport([run], { generatedAt: '2025-01-02T00:00:00Z' });
    expect(html).toContain('No training steps recorded yet');
    expect(html).not.toContain('<svg');
  });
});

describe('simpleMarkdownHtml (the demo table as the report preface)', () => {
  it('turns pipe tables into tables, **bold** lines into strong, and escapes everything else', () => {
    const html = simpleMarkdownHtml('title <x>\n**claim & more**\n\n| row | acc % |\n|---|---:|\n| a<b | 12.5 |\n| c | – |\nnote');
    expect(html).toBe(
      '<p>title &lt;x&gt;</p>\n<p><strong>claim &amp; more</strong></p>\n' +
        '<div class="scroll"><table class="summary"><tr><th>row</th><th>acc %</th></tr><tr><td>a&lt;b</td><td>12.5</td></tr><tr><td>c</td><td>–</td></tr></table></div>\n<p>note</p>',
    );
  });
  it('renderReport shows the preface first, escaped, before the run summary', () => {
    const html = renderReport(runs, { generatedAt: '2025-01-02T00:00:00Z', preface: { title: 'Claims <b>', markdown: '| row | x |\n|---|---|\n| composed | 81.3 |' } });
    const at = html.indexOf('<section id="results"><h2>Claims &lt;b&gt;</h2>');
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(html.indexOf('<section id="summary">'));
    expect(html).toContain('<td>composed</td><td>81.3</td>');
    expect(renderReport(runs, { generatedAt: '2025-01-02T00:00:00Z' })).not.toContain('id="results"');
  });
});

describe('renderReport', () => {
  let html: string;
  beforeAll(() => {
    html = renderReport(runs, { generatedAt: '2025-01-02T00:00:00Z' });
  });

  it('escapes every text that came from the files', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<img/i);
    expect(html).not.toContain('<b>bold</b>');
    expect(html).toContain(escapeHtml('frozen <script>console.error("xss")</script>'));
    expect(escapeHtml(`<a href="x" title='y'>&`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;');
  });

  it('loads nothing from outside the page', () => {
    expect(html).toContain(`default-src 'none'`);
    expect(html).not.toMatch(/<[^>]*\s(src|href)\s*=/i); // (escaped text may say src=, no tag may)
    const urls = html.match(/https?:\/\/[^\s"'<>)]+/g) ?? [];
    expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg']));
  });

  it('draws one series per run on the loss charts, per metric eval charts and a routing chart', () => {
    expect(attr(html, 'loss-linear', 'data-series')).toBe('4');
    expect(attr(html, 'loss-log', 'data-series')).toBe('4');
    expect(attr(html, 'eval-accuracy', 'data-series')).toBe('4');
    expect(attr(html, 'eval-perplexity', 'data-series')).toBe('4');
    expect(attr(html, 'lr', 'data-series')).toBe('4');
    expect(attr(html, 'routing-mma-shapes-1-b1', 'data-series')).toBe('2');
    // The loss falls from ~4 to ~0.4 (more than 10x): the log chart is the one shown first.
    expect(html).toMatch(/id="loss-scale-log" class="toggle" checked/);
    expect(renderReport(runs, { logY: false })).toMatch(/id="loss-scale-linear" class="toggle" checked/);
  });

  it('shows the summary numbers and the config difference', () => {
    expect(html).toContain(formatPercent(runs[0]!.info.trainablePercent));
    expect(html).toContain('98,304');
    expect(html).toContain('50 / 120');
    expect(html).toMatch(/<td class="num best">0\.850<\/td>/); // best accuracy is bold
    expect(html).not.toMatch(/<td class="num best">8\.31<\/td>/); // identical text skill is not
    expect(html).toMatch(/<td class="key">optimizer\.lr<\/td>/);
    const diff = html.slice(html.indexOf('<section id="config">'), html.indexOf('<details>', html.indexOf('<section id="config">')));
    expect(diff).toContain('>optimizer.lr<');
    expect(diff).not.toContain('>data.task<'); // the same in every run: only under "all keys"
  });

  it('keeps a 200k-step run a light page (downsampled, no stack overflow on long arrays)', () => {
    const steps = Array.from({ length: 200_000 }, (_, k) => ({ kind: 'step' as const, step: k + 1, loss: 3 / Math.sqrt(k + 1), lr: 1e-4, ms: 10, time: 't' }));
    const long = renderReport([{ ...runs[0]!, steps }], { generatedAt: '2025-01-02T00:00:00Z' });
    expect(long.length).toBeLessThan(300_000);
    const line = /data-chart="loss-log".*?<path class="line" d="([^"]*)"/s.exec(long)![1]!;
    expect(line.split('L').length).toBeLessThanOrEqual(600);
  });

  it('smooths with a debiased EMA and picks readable ticks', () => {
    expect(smoothEma([2, 2, 2], 0.9)).toEqual([2, 2, 2].map((v) => expect.closeTo(v, 12)));
    expect(smoothEma([1, Number.NaN, 3], 0.5)[1]).toBeNaN();
    expect(niceTicks(0.31, 4.2).ticks).toEqual([0, 1, 2, 3, 4, 5]);
    expect(niceTicks(0, 120, 6).ticks).toEqual([0, 20, 40, 60, 80, 100, 120]);
    expect(logTicks(0.3, 4.5).ticks).toEqual([0.2, 0.5, 1, 2, 5]);
    // Flat up to rounding (the mean of a constant learning rate): a band around it, not 10^15 ticks.
    const flat = niceTicks(0.00009999999999999977, 0.00009999999999999979);
    expect(flat.ticks.length).toBeLessThan(10);
    expect(flat.lo).toBeLessThan(1e-4);
    expect(flat.hi).toBeGreaterThan(1e-4);
  });
});

describe('writeReport', () => {
  it('writes the page atomically and leaves no temp file', async () => {
    const out = path.join(root, 'out', 'report.html');
    const r = await writeReport(runs, out);
    expect(r.html).toBe(out);
    expect(r.pngs).toEqual([]);
    expect(await fs.readFile(out, 'utf8')).toMatch(/^<!DOCTYPE html>/);
    expect((await fs.readdir(path.dirname(out))).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('refuses PNG export without Chromium before writing anything', async () => {
    const out = path.join(root, 'nopng', 'report.html');
    await expect(writeReport(runs, out, { png: true, chromiumPath: path.join(root, 'no-chromium') })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringMatching(/apt-get install -y chromium/),
    });
    await expect(fs.access(out)).rejects.toThrow();
  });
});
