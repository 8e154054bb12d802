/**
 * Headless Chromium (Debian's `chromium` package) for two jobs:
 * - `renderPng`: a page -> PNG screenshot through Chromium's own `--screenshot` switch;
 * - `checkPageInBrowser`: loads a page through the Chrome DevTools Protocol (CDP, over the `ws`
 *   package) and reports console errors and exceptions, failed resource loads, how many traces
 *   each plotly plot drew, whether every <img>/<video> loaded, and writes a full-page screenshot.
 * Every Chromium started here gets its own temporary profile and is killed by pid when done,
 * on success and on failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { writeFileAtomic } from '../io/atomic';

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'chrome'];

export const CHROMIUM_INSTALL_HINT =
  "install it with 'sudo apt-get install -y --no-install-recommends chromium fonts-dejavu-core' (Debian/Ubuntu; scripts/setup.sh does this), or point LVDM_CHROMIUM at a Chrome/Chromium binary";

/** The Chromium binary: $LVDM_CHROMIUM, else the first of chromium, chromium-browser, google-chrome... on PATH. */
export function findChromium(): { path: string } | { missing: string } {
  const env = process.env.LVDM_CHROMIUM;
  if (env) {
    if (isExecutable(env)) return { path: env };
    return { missing: `LVDM_CHROMIUM=${env} is not an executable file; ${CHROMIUM_INSTALL_HINT}` };
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const name of CANDIDATES) {
    for (const d of dirs) {
      const f = path.join(d, name);
      if (isExecutable(f)) return { path: f };
    }
  }
  return { missing: `headless Chromium was not found (looked for ${CANDIDATES.join(', ')} on PATH, and $LVDM_CHROMIUM); ${CHROMIUM_INSTALL_HINT}` };
}

function isExecutable(f: string): boolean {
  try {
    fs.accessSync(f, fs.constants.X_OK);
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
}

const BASE_FLAGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--mute-audio', '--force-device-scale-factor=1'];

interface Launched {
  child: ChildProcess;
  profile: string;
  stderr: () => string;
  exited: Promise<void>;
}

function launch(bin: string, args: string[]): Launched {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lvdm-chromium-'));
  // its own process group, so the renderer and utility processes go with it when it is killed
  const child = spawn(bin, [...BASE_FLAGS, `--user-data-dir=${profile}`, ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (err.length < 200_000) err += d.toString();
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  return { child, profile, stderr: () => err, exited };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills the Chromium we started (its process group, by its pid) and removes its temporary profile. */
async function shutdown(l: Launched): Promise<void> {
  const pid = l.child.pid;
  if (pid !== undefined) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await settlesWithin(l.exited, 5000);
  // the group's other processes take a moment to die after SIGKILL
  for (let i = 0; pid !== undefined && i < 50 && groupAlive(pid); i++) await sleep(100);
  try {
    fs.rmSync(l.profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  } catch {
    // a helper process may still hold a file for a moment; the folder is in the OS temp dir
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when `p` settles within `ms`, false otherwise; the timer never outlives the race. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function fileUrl(file: string): string {
  return pathToFileURL(path.resolve(file)).href;
}

// ---------------------------------------------------------------------------------------------
// PNG through --screenshot

export interface PngOptions {
  width: number;
  height: number;
  /** Virtual time Chromium lets scripts run before the screenshot (default 5000 ms). */
  virtualTimeMs?: number;
  /** Wall-clock limit (default 60 s); Chromium is killed after it. */
  timeoutMs?: number;
}

export type PngResult = { ok: true; file: string; seconds: number } | { ok: false; message: string };

/**
 * Renders `htmlFile` to `pngFile` (width x height pixels) with headless Chromium. Never throws
 * for a missing or failing Chromium: the result says what is missing and how to install it.
 */
export async function renderPng(htmlFile: string, pngFile: string, o: PngOptions): Promise<PngResult> {
  const found = findChromium();
  if ('missing' in found) return { ok: false, message: `PNG not written (${pngFile}): ${found.missing}` };
  if (!fs.existsSync(htmlFile)) return { ok: false, message: `PNG not written: ${htmlFile} does not exist` };
  const dir = path.dirname(path.resolve(pngFile));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(pngFile)}.${process.pid}.${Date.now()}.tmp.png`);
  const t0 = Date.now();
  const l = launch(found.path, [`--window-size=${o.width},${o.height}`, `--virtual-time-budget=${o.virtualTimeMs ?? 5000}`, `--screenshot=${tmp}`, fileUrl(htmlFile)]);
  try {
    const timeout = o.timeoutMs ?? 60_000;
    const done = await settlesWithin(l.exited, timeout);
    if (!done) return { ok: false, message: `PNG not written (${pngFile}): Chromium did not finish within ${timeout / 1000} s` };
    if (!fs.existsSync(tmp) || fs.statSync(tmp).size === 0) {
      const tail = l.stderr().trim().split('\n').slice(-5).join('\n');
      return { ok: false, message: `PNG not written (${pngFile}): Chromium exited with code ${l.child.exitCode} without a screenshot${tail ? `:\n${tail}` : ''}` };
    }
    fs.renameSync(tmp, pngFile);
    return { ok: true, file: pngFile, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await shutdown(l);
    fs.rmSync(tmp, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// A minimal DevTools protocol client

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string; code?: number };
  sessionId?: string;
}

class Cdp {
  private next = 1;
  private pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }>();
  private handlers = new Map<string, ((params: Record<string, unknown>, sessionId?: string) => void)[]>();

  constructor(private ws: WebSocket) {
    ws.on('message', (raw: WebSocket.RawData) => {
      const msg = JSON.parse(raw.toString()) as CdpMessage;
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.error) p.reject(new Error(`CDP ${p.method}: ${msg.error.message}`));
        else p.resolve(msg.result ?? {});
      } else if (msg.method) {
        for (const h of this.handlers.get(msg.method) ?? []) h(msg.params ?? {}, msg.sessionId);
      }
    });
    ws.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error(`CDP ${p.method}: connection closed`));
      this.pending.clear();
    });
  }

  static connect(url: string, timeoutMs: number): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024 });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`could not connect to Chromium's DevTools at ${url} within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(new Cdp(ws));
      });
      ws.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }));
    });
  }

  on(method: string, h: (params: Record<string, unknown>, sessionId?: string) => void): void {
    this.handlers.set(method, [...(this.handlers.get(method) ?? []), h]);
  }

  close(): void {
    this.ws.terminate();
  }
}

function waitForDevToolsUrl(l: Launched, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const poll = (): void => {
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(l.stderr());
      if (m) return resolve(m[1]);
      if (l.child.exitCode !== null || l.child.signalCode !== null) return reject(new Error(`Chromium exited (code ${l.child.exitCode}) before DevTools started:\n${l.stderr().trim().split('\n').slice(-5).join('\n')}`));
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`Chromium printed no DevTools URL within ${timeoutMs} ms`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

// ---------------------------------------------------------------------------------------------
// The page check

export interface PlotState {
  id: string;
  /** Traces in the figure (gd._fullData, visible ones). */
  traces: number;
  /** Trace groups plotly drew (`g.trace` elements). */
  drawn: number;
}

export interface ImageState {
  src: string;
  /** The browser is done with it (loaded or failed). */
  complete: boolean;
  loaded: boolean;
  width: number;
  height: number;
}

export interface VideoState {
  src: string;
  readyState: number;
  /** MediaError code, 0 for none. */
  error: number;
  /** A frame is decoded (readyState >= 2). */
  decoded: boolean;
  /** videoWidth x videoHeight, 0 before the metadata is read. */
  width: number;
  height: number;
  /** Decoded, or at least the metadata read with a video track (a busy headless Chromium may hold a
   * valid file at readyState 1 for a long time). */
  loaded: boolean;
}

export interface PageCheck {
  /** No console errors, every plot drew all its traces, every image and video loaded. */
  ok: boolean;
  url: string;
  /** console.error / console.assert calls, uncaught exceptions, failed loads (Log domain errors). */
  consoleErrors: string[];
  plots: PlotState[];
  /** Plot containers from lib/plots/html.ts (`.lvdm-plot`), drawn or not. */
  plotContainers: number;
  images: ImageState[];
  videos: VideoState[];
  /** What failed, one line each (empty when ok). */
  problems: string[];
  screenshot?: { file: string; width: number; height: number };
  seconds: number;
}

export interface CheckOptions {
  /** Write a full-page PNG screenshot here. */
  screenshot?: string;
  /** Viewport (default 1280 x 900). */
  width?: number;
  height?: number;
  /** Limit for the page to finish drawing and loading (default 30 s). */
  timeoutMs?: number;
  /** Longest full-page screenshot in CSS pixels (default 12000). */
  maxScreenshotHeight?: number;
}

interface PageState {
  plots: PlotState[];
  plotContainers: number;
  images: ImageState[];
  videos: VideoState[];
  ready: string;
  size: { width: number; height: number };
}

// Runs in the page (a string: this project compiles without DOM types).
const PAGE_STATE_JS = `(() => {
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot')).map((gd, i) => ({
    id: gd.id || ('plot' + i),
    traces: Array.isArray(gd._fullData) ? gd._fullData.filter((t) => t.visible !== false).length : (Array.isArray(gd.data) ? gd.data.length : 0),
    drawn: gd.querySelectorAll('g.trace').length,
  }));
  const images = Array.from(document.images).map((im) => ({ src: im.getAttribute('src') || '', complete: im.complete, loaded: im.complete && im.naturalWidth > 0, width: im.naturalWidth, height: im.naturalHeight }));
  const videos = Array.from(document.querySelectorAll('video')).map((v) => {
    const s = v.querySelector('source');
    return { src: v.getAttribute('src') || (s ? s.getAttribute('src') : '') || v.currentSrc || '', readyState: v.readyState, error: v.error ? v.error.code : 0, decoded: v.readyState >= 2, width: v.videoWidth, height: v.videoHeight, loaded: !v.error && (v.readyState >= 2 || (v.readyState >= 1 && v.videoWidth > 0)) };
  });
  const el = document.documentElement;
  return { plots, plotContainers: document.querySelectorAll('.lvdm-plot').length, images, videos, ready: document.readyState,
    size: { width: Math.max(el.scrollWidth, document.body ? document.body.scrollWidth : 0), height: Math.max(el.scrollHeight, document.body ? document.body.scrollHeight : 0) } };
})()`;

function settled(s: PageState): boolean {
  return (
    s.ready === 'complete' &&
    s.plots.length >= s.plotContainers &&
    s.plots.every((p) => p.traces > 0 && p.drawn >= p.traces) &&
    s.images.every((i) => i.loaded) &&
    s.videos.every((v) => v.decoded || v.error !== 0)
  );
}

function finished(s: PageState): boolean {
  return s.ready === 'complete' && s.images.every((i) => i.complete) && s.videos.every((v) => v.loaded || v.error !== 0);
}

function problemsOf(s: PageState, errors: string[]): string[] {
  const out: string[] = [];
  for (const e of errors) out.push(`console: ${e}`);
  if (s.plots.length < s.plotContainers) out.push(`${s.plotContainers - s.plots.length} of ${s.plotContainers} plot containers were never drawn by plotly`);
  for (const p of s.plots) if (p.traces === 0 || p.drawn < p.traces) out.push(`plot ${p.id}: drew ${p.drawn} of ${p.traces} traces`);
  for (const i of s.images) if (!i.loaded) out.push(`image not loaded: ${i.src}`);
  for (const v of s.videos) if (!v.loaded) out.push(`video not loaded: ${v.src} (readyState ${v.readyState}${v.error ? `, MediaError ${v.error}` : ''})`);
  return out;
}

function stringify(v: unknown): string {
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    if (typeof o.description === 'string') return o.description;
    if ('value' in o) return String(o.value);
  }
  return String(v);
}

/** One headless Chromium driven over CDP; pages are opened in it one after another. */
export class BrowserSession {
  private constructor(
    private l: Launched,
    private cdp: Cdp,
  ) {}

  /** The Chromium process id (killed by `close`). */
  get pid(): number | undefined {
    return this.l.child.pid;
  }

  /** Starts Chromium with DevTools on a free loopback port (throws when Chromium is missing). */
  static async launch(): Promise<BrowserSession> {
    const found = findChromium();
    if ('missing' in found) throw new Error(found.missing);
    const l = launch(found.path, ['--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', '--autoplay-policy=no-user-gesture-required', 'about:blank']);
    try {
      const cdp = await Cdp.connect(await waitForDevToolsUrl(l, 30_000), 10_000);
      return new BrowserSession(l, cdp);
    } catch (e) {
      await shutdown(l);
      throw e;
    }
  }

  /** Opens `htmlFile` in a new tab of the given viewport and waits until it settled (or timeoutMs). */
  async open(htmlFile: string, o: { width: number; height: number; timeoutMs: number }): Promise<BrowserPage> {
    const c = this.cdp;
    const { targetId } = (await c.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await c.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    const page = new BrowserPage(c, sessionId, targetId, fileUrl(htmlFile));
    await page.load(o);
    return page;
  }

  async close(): Promise<void> {
    this.cdp.close();
    await shutdown(this.l);
  }
}

/** A tab of a BrowserSession: its console errors, its state, screenshots. */
export class BrowserPage {
  readonly errors: string[] = [];
  private loaded = false;

  constructor(
    private c: Cdp,
    private sessionId: string,
    private targetId: string,
    readonly url: string,
  ) {
    c.on('Runtime.consoleAPICalled', (p, sid) => {
      if (sid === sessionId && (p.type === 'error' || p.type === 'assert')) this.errors.push(((p.args as unknown[]) ?? []).map(stringify).join(' '));
    });
    c.on('Runtime.exceptionThrown', (p, sid) => {
      if (sid !== sessionId) return;
      const d = p.exceptionDetails as { text?: string; exception?: unknown; url?: string; lineNumber?: number };
      this.errors.push(`uncaught ${d.exception !== undefined ? stringify(d.exception) : (d.text ?? 'exception')}${d.url ? ` (${d.url}:${(d.lineNumber ?? 0) + 1})` : ''}`);
    });
    c.on('Log.entryAdded', (p, sid) => {
      if (sid !== sessionId) return;
      const e = p.entry as { level?: string; text?: string; url?: string };
      if (e.level === 'error') this.errors.push(`${e.text ?? ''}${e.url ? ` (${e.url})` : ''}`);
    });
    c.on('Page.loadEventFired', (_p, sid) => {
      if (sid === sessionId) this.loaded = true;
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.c.send(method, params, this.sessionId);
  }

  async load(o: { width: number; height: number; timeoutMs: number }): Promise<void> {
    const t0 = Date.now();
    await this.send('Runtime.enable');
    await this.send('Log.enable');
    await this.send('Page.enable');
    await this.viewport(o.width, o.height);
    const nav = (await this.send('Page.navigate', { url: this.url })) as { errorText?: string };
    if (nav.errorText) throw new Error(`Chromium could not open ${this.url}: ${nav.errorText}`);
    // done: everything drew and loaded; or, for a broken page, every image and video has finished
    // (loaded or failed) and nothing changed for a while after the load event
    let s = await this.state();
    let last = '';
    let since = Date.now();
    while (Date.now() - t0 < o.timeoutMs) {
      if (this.loaded && s !== null) {
        if (settled(s)) break;
        const key = JSON.stringify(s);
        if (key !== last) {
          last = key;
          since = Date.now();
        } else if (finished(s) && Date.now() - since > 1500) break;
      }
      await sleep(150);
      s = await this.state();
    }
    await sleep(250); // late console errors (e.g. from a plot's redraw)
  }

  async viewport(width: number, height: number): Promise<void> {
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
  }

  /** The page's plots, images, videos and size; null while the page is between documents. */
  async state(): Promise<PageState | null> {
    const r = (await this.send('Runtime.evaluate', { expression: PAGE_STATE_JS, returnByValue: true })) as { result?: { value?: PageState } };
    return r.result?.value ?? null;
  }

  /**
   * PNG of the viewport, of the whole page (up to maxHeight CSS pixels) with fullPage, or of a
   * rectangle of the page with clip.
   */
  async screenshot(
    file: string,
    o: { fullPage: boolean; width: number; height: number; maxHeight?: number; clip?: { x: number; y: number; width: number; height: number } },
  ): Promise<{ width: number; height: number }> {
    let w = o.clip?.width ?? o.width;
    let h = o.clip?.height ?? o.height;
    if (o.fullPage) {
      const s = await this.state();
      h = Math.min(Math.max(o.height, Math.ceil(s?.size.height ?? 0)), o.maxHeight ?? 12_000);
      w = Math.max(o.width, Math.ceil(s?.size.width ?? 0));
      await this.viewport(w, h);
      await sleep(400); // responsive plots redraw at the new size
    }
    const params: Record<string, unknown> = { format: 'png', captureBeyondViewport: o.clip !== undefined };
    if (o.clip) params.clip = { ...o.clip, scale: 1 };
    const png = (await this.send('Page.captureScreenshot', params)) as { data: string };
    writeFileAtomic(file, Buffer.from(png.data, 'base64'));
    return { width: w, height: h };
  }

  async close(): Promise<void> {
    await this.c.send('Target.closeTarget', { targetId: this.targetId });
  }
}

/** Runs `fn` with a fresh headless Chromium and kills it (by pid) afterwards, whatever happens. */
export async function withBrowser<T>(fn: (b: BrowserSession) => Promise<T>): Promise<T> {
  const b = await BrowserSession.launch();
  try {
    return await fn(b);
  } finally {
    await b.close();
  }
}

/**
 * Loads `htmlFile` from disk in headless Chromium and checks it (see PageCheck). Throws only when
 * Chromium is missing or cannot be driven; a page that fails the check returns ok = false with
 * its problems listed. Pass `browser` to reuse a running session.
 */
export async function checkPageInBrowser(htmlFile: string, o: CheckOptions & { browser?: BrowserSession } = {}): Promise<PageCheck> {
  if (!fs.existsSync(htmlFile)) throw new Error(`cannot check ${htmlFile}: no such file`);
  const run = async (b: BrowserSession): Promise<PageCheck> => {
    const t0 = Date.now();
    const width = o.width ?? 1280;
    const height = o.height ?? 900;
    const page = await b.open(htmlFile, { width, height, timeoutMs: o.timeoutMs ?? 30_000 });
    try {
      const shot = o.screenshot ? { file: o.screenshot, ...(await page.screenshot(o.screenshot, { fullPage: true, width, height, maxHeight: o.maxScreenshotHeight })) } : undefined;
      const s = (await page.state()) ?? { plots: [], plotContainers: 0, images: [], videos: [], ready: 'unknown', size: { width: 0, height: 0 } };
      const problems = problemsOf(s, page.errors);
      if (s.ready !== 'complete') problems.push(`the page did not finish loading (document.readyState ${s.ready})`);
      return { ok: problems.length === 0, url: page.url, consoleErrors: [...page.errors], plots: s.plots, plotContainers: s.plotContainers, images: s.images, videos: s.videos, problems, screenshot: shot, seconds: (Date.now() - t0) / 1000 };
    } finally {
      await page.close();
    }
  };
  return o.browser ? run(o.browser) : withBrowser(run);
}

/**
 * Screenshots rectangles of one page (e.g. a sheet of figures laid out at known positions) with
 * one Chromium and one page load: the viewport is `width` x `height` (large enough to hold every
 * rectangle). Never throws for a missing Chromium: each result then says what is missing.
 */
export async function renderPageClips(
  htmlFile: string,
  clips: readonly { png: string; x: number; y: number; width: number; height: number }[],
  o: { width: number; height: number; timeoutMs?: number },
): Promise<PngResult[]> {
  if (clips.length === 0) return [];
  const found = findChromium();
  if ('missing' in found) return clips.map((c) => ({ ok: false, message: `PNG not written (${c.png}): ${found.missing}` }));
  const t0 = Date.now();
  try {
    return await withBrowser(async (b) => {
      const page = await b.open(htmlFile, { width: o.width, height: o.height, timeoutMs: o.timeoutMs ?? 60_000 });
      const out: PngResult[] = [];
      for (const c of clips) {
        await page.screenshot(c.png, { fullPage: false, width: o.width, height: o.height, clip: { x: c.x, y: c.y, width: c.width, height: c.height } });
        out.push({ ok: true, file: c.png, seconds: (Date.now() - t0) / 1000 });
      }
      return out;
    });
  } catch (e) {
    return clips.map((c) => ({ ok: false, message: `PNG not written (${c.png}): ${(e as Error).message}` }));
  }
}

/**
 * Screenshots several pages with one Chromium (much faster than one `renderPng` each): every
 * page is loaded at width x height, waited for until its plots drew, and captured. Never throws
 * for a missing Chromium: each result then says what is missing.
 */
export async function renderPngs(jobs: readonly { html: string; png: string; width: number; height: number }[], o: { timeoutMs?: number } = {}): Promise<PngResult[]> {
  if (jobs.length === 0) return [];
  const found = findChromium();
  if ('missing' in found) return jobs.map((j) => ({ ok: false, message: `PNG not written (${j.png}): ${found.missing}` }));
  let b: BrowserSession;
  try {
    b = await BrowserSession.launch();
  } catch (e) {
    return jobs.map((j) => ({ ok: false, message: `PNG not written (${j.png}): ${(e as Error).message}` }));
  }
  try {
    const out: PngResult[] = [];
    for (const j of jobs) {
      const t0 = Date.now();
      try {
        const page = await b.open(j.html, { width: j.width, height: j.height, timeoutMs: o.timeoutMs ?? 30_000 });
        try {
          await page.screenshot(j.png, { fullPage: false, width: j.width, height: j.height });
        } finally {
          await page.close();
        }
        out.push({ ok: true, file: j.png, seconds: (Date.now() - t0) / 1000 });
      } catch (e) {
        out.push({ ok: false, message: `PNG not written (${j.png}): ${(e as Error).message}` });
      }
    }
    return out;
  } finally {
    await b.close();
  }
}
