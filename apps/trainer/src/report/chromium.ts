/**
 * A minimal headless-Chromium driver over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
 * the browser reads NUL-terminated JSON commands on fd 3 and writes replies/events on fd 4). No npm
 * dependency and no browser download: it drives the system Chromium (Debian `apt-get install chromium`).
 * Used by `writeReport({ png: true })` for chart PNGs and by the browser test of the report page.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { AdaptorkitError } from '@adaptorkit/core';

/** Where Chromium is looked for when no path is given: $ADAPTORKIT_CHROMIUM, $CHROME_PATH, then the usual Linux paths. */
export function findChromium(): string | undefined {
  const candidates = [
    process.env.ADAPTORKIT_CHROMIUM,
    process.env.CHROME_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome',
    '/usr/bin/google-chrome-stable',
  ];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

/**
 * Flags for a headless, offline, throw-away browser. Without the background-networking flags Chromium
 * tries to reach Google services at start, which sandboxed machines refuse.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--disable-dev-shm-usage',
  '--hide-scrollbars',
  '--mute-audio',
];

export interface BrowserOptions {
  /** Chromium binary; default findChromium(). */
  executablePath?: string;
  /** Per-command timeout, ms (default 30 s). */
  timeoutMs?: number;
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  method: string;
  timer: NodeJS.Timeout;
}

type Listener = (params: Record<string, unknown>, sessionId: string | undefined) => void;

/** One headless Chromium process, talked to over the DevTools pipe. */
export class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private buffer = '';
  private exited: Error | undefined;
  private stderrTail = '';

  private constructor(
    private readonly proc: ChildProcess,
    private readonly userDataDir: string,
    private readonly timeoutMs: number,
  ) {
    const out = proc.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => this.onData(chunk));
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (s: string) => {
      this.stderrTail = (this.stderrTail + s).slice(-2000);
    });
    proc.on('exit', (code, signal) => {
      this.exited = new AdaptorkitError(
        'BACKEND_FAILED',
        `chromium exited (code ${code}, signal ${signal}); its last output:\n${this.stderrTail}`,
      );
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(this.exited);
      }
      this.pending.clear();
    });
  }

  /** Start Chromium. Throws UNSUPPORTED (with the install command) when none is found. */
  static async launch(opts: BrowserOptions = {}): Promise<Browser> {
    const exe = opts.executablePath ?? findChromium();
    if (!exe) {
      throw new AdaptorkitError(
        'UNSUPPORTED',
        'no Chromium found for rendering PNGs: install it (Debian: `apt-get install -y chromium`) or set ADAPTORKIT_CHROMIUM to its path',
      );
    }
    const userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-chromium-'));
    const proc = spawn(exe, [...CHROMIUM_FLAGS, `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe', 'about:blank'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    const started = new Promise<void>((resolve, reject) => {
      proc.once('error', (e) => reject(new AdaptorkitError('BACKEND_FAILED', `cannot start chromium at ${exe}: ${e.message}`)));
      proc.once('spawn', () => resolve());
    });
    await started;
    const browser = new Browser(proc, userDataDir, opts.timeoutMs ?? 30_000);
    try {
      await browser.send('Browser.getVersion');
    } catch (e) {
      await browser.close();
      throw e;
    }
    return browser;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\0')) >= 0) {
      const text = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      let msg: { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string }; sessionId?: string };
      try {
        msg = JSON.parse(text) as typeof msg;
      } catch {
        continue;
      }
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        if (!p) continue;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.error) p.reject(new AdaptorkitError('BACKEND_FAILED', `chromium ${p.method}: ${msg.error.message}`));
        else p.resolve(msg.result ?? {});
      } else if (msg.method) {
        for (const l of this.listeners.get(msg.method) ?? []) l(msg.params ?? {}, msg.sessionId);
      }
    }
  }

  /** Send one DevTools command (to the browser, or to a page session) and await its result. */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    const msg = JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AdaptorkitError('BACKEND_FAILED', `chromium did not answer ${method} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, method, timer });
      (this.proc.stdio[3] as Writable).write(`${msg}\0`);
    });
  }

  /** Subscribe to a DevTools event; returns the unsubscribe function. */
  on(method: string, listener: Listener): () => void {
    let set = this.listeners.get(method);
    if (!set) this.listeners.set(method, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Open a new tab with the given viewport (CSS px) and device scale factor. */
  async newPage(viewport: { width: number; height: number; scale?: number } = { width: 1200, height: 900 }): Promise<Page> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    const page = new Page(this, targetId, sessionId);
    await page.init(viewport);
    return page;
  }

  /** Stop the browser (by its own pid) and remove its profile folder. */
  async close(): Promise<void> {
    if (!this.exited) {
      const gone = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
      try {
        await Promise.race([this.send('Browser.close'), new Promise((r) => setTimeout(r, 2000))]);
      } catch {
        // already closing
      }
      if (!this.exited) {
        const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
        await gone;
        clearTimeout(t);
      }
    }
    await fs.rm(this.userDataDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** What a page reported while loading: console errors, uncaught exceptions, log errors, requested URLs. */
export interface PageProblems {
  /** console.error / console.assert messages, uncaught exceptions, and browser log entries of level error. */
  errors: string[];
  /** Every URL the page requested (the document itself included). */
  requests: string[];
}

export class Page implements PageProblems {
  readonly errors: string[] = [];
  readonly requests: string[] = [];
  private readonly off: (() => void)[] = [];

  constructor(
    private readonly browser: Browser,
    private readonly targetId: string,
    private readonly sessionId: string,
  ) {
    const mine = (fn: (p: Record<string, unknown>) => void): Listener => (p, sid) => {
      if (sid === this.sessionId) fn(p);
    };
    this.off.push(
      browser.on('Runtime.consoleAPICalled', mine((p) => {
        const type = p.type as string;
        if (type !== 'error' && type !== 'assert') return;
        const args = (p.args as { value?: unknown; description?: string }[] | undefined) ?? [];
        this.errors.push(`console.${type}: ${args.map((a) => String(a.value ?? a.description ?? '')).join(' ')}`);
      })),
      browser.on('Runtime.exceptionThrown', mine((p) => {
        const d = p.exceptionDetails as { text?: string; exception?: { description?: string } };
        this.errors.push(`exception: ${d.exception?.description ?? d.text ?? 'unknown'}`);
      })),
      browser.on('Log.entryAdded', mine((p) => {
        const e = p.entry as { level: string; text: string; url?: string };
        if (e.level === 'error') this.errors.push(`log: ${e.text}${e.url ? ` (${e.url})` : ''}`);
      })),
      browser.on('Network.requestWillBeSent', mine((p) => {
        this.requests.push((p.request as { url: string }).url);
      })),
    );
  }

  private send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.browser.send(method, params, this.sessionId);
  }

  /** @internal */
  async init(viewport: { width: number; height: number; scale?: number }): Promise<void> {
    await Promise.all([this.send('Page.enable'), this.send('Runtime.enable'), this.send('Log.enable'), this.send('Network.enable')]);
    await this.send('Emulation.setDeviceMetricsOverride', {
      width: viewport.width,
      height: viewport.height,
      deviceScaleFactor: viewport.scale ?? 1,
      mobile: false,
    });
  }

  /** Navigate and wait for the load event. */
  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => {
      const off = this.browser.on('Page.loadEventFired', (_p, sid) => {
        if (sid === this.sessionId) {
          off();
          resolve();
        }
      });
    });
    const r = (await this.send('Page.navigate', { url })) as { errorText?: string };
    if (r.errorText) throw new AdaptorkitError('IO_ERROR', `chromium could not open ${url}: ${r.errorText}`);
    await loaded;
  }

  /** Evaluate a JavaScript expression in the page and return its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as {
      result: { value?: unknown };
      exceptionDetails?: { text?: string; exception?: { description?: string } };
    };
    if (r.exceptionDetails) {
      const d = r.exceptionDetails;
      throw new AdaptorkitError('BACKEND_FAILED', `page evaluation failed: ${d.exception?.description ?? d.text}`);
    }
    return r.result.value as T;
  }

  /**
   * PNG screenshot: of `clip` (CSS px, page coordinates), of the whole page (`fullPage`), or of the
   * viewport. The device scale factor set at newPage applies.
   */
  async screenshot(opts: { clip?: { x: number; y: number; width: number; height: number }; fullPage?: boolean } = {}): Promise<Buffer> {
    let clip = opts.clip;
    if (!clip && opts.fullPage) {
      const size = await this.evaluate<{ w: number; h: number }>(
        '({ w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight })',
      );
      clip = { x: 0, y: 0, width: size.w, height: size.h };
    }
    const r = (await this.send('Page.captureScreenshot', {
      format: 'png',
      captureBeyondViewport: !!clip,
      ...(clip ? { clip: { ...clip, scale: 1 } } : {}),
    })) as { data: string };
    return Buffer.from(r.data, 'base64');
  }

  /** Bounding box (page coordinates, CSS px) of the first element matching `selector`, or undefined. */
  async box(selector: string): Promise<{ x: number; y: number; width: number; height: number } | undefined> {
    return this.evaluate(`(() => {
      const el = document.querySelector(${JSON.stringify(selector)});
      if (!el) return undefined;
      const r = el.getBoundingClientRect();
      return { x: r.left + window.scrollX, y: r.top + window.scrollY, width: Math.ceil(r.width), height: Math.ceil(r.height) };
    })()`);
  }

  async close(): Promise<void> {
    for (const off of this.off) off();
    await this.browser.send('Target.closeTarget', { targetId: this.targetId }).catch(() => undefined);
  }
}
