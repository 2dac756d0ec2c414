/**
 * Benchmark (not a test): a 1,000-node diagram (999 nodes in a grid, 500 edges, and the node
 * dragged) in headless Chromium, one page dragging a node continuously for 5 s while another
 * page watches, for the flow editor (`/flow/`, React Flow) and the vanilla editor (`/`) in the
 * same run against `target/release/objectsync serve --memory`. `npm run bench:flow`.
 *
 * The pointer: a 120 Hz mouse. Every 8 ms the driver sends a mouse move to the dragging page's
 * browser (`Input.dispatchMouseEvent` over the DevTools protocol) without waiting for the page to
 * take the previous one, so the page gets what a real mouse gives it: Chromium queues the moves
 * and hands the page the latest at each animation frame (`getCoalescedEvents` holds the rest).
 *
 * Per page, while the drag lasts (Chromium's trace of the page's main thread, `devtools.timeline`):
 * - frame work: the main thread's busy time for each frame it drew: every task it ran since the
 *   previous frame's rendering ended (input, socket messages, script, React) plus the rendering
 *   task itself (animation frame callbacks, style, layout, paint, commit). Under 16.7 ms the page
 *   keeps up with a 60 Hz screen; this is the "frame time" of the goal. It is wall time: it
 *   includes the time the thread waited for a core;
 * - frame CPU: the CPU time (thread time) of the same tasks, the waits for a core left out;
 * - frame interval: time between the page's animation frames (what the screen shows; headless
 *   Chromium draws at 60 Hz, so 16.7 ms is every frame on time), and the share of frames
 *   dropped (an interval of 33 ms is one dropped);
 * - busy: the share of the drag the main thread was running tasks.
 * Page to page: from the dragging page sending a position (its `action` frame) to the watching
 * page hearing it (its main thread taking the server's message: network, server and the wait
 * for the watcher's main thread), showing the node there in its DOM (`data-x`/`data-y` of the
 * node, a MutationObserver), and painting it (the end of the first frame rendered after that),
 * all on the machine's clock (`performance.timeOrigin + performance.now()`).
 *
 * Each page has a browser of its own, so each is in front (headless Chromium slows the frames
 * of a page behind). Prints a markdown table for docs/benchmarks.md. `BENCH_PROFILE=1` prints
 * where the pages' script time went (a CPU profile; it slows the pages, so not with the table's
 * run in mind; `BENCH_PROFILE_TOP=N` lists N functions instead of 25); `BENCH_TRACE_DIR=DIR`
 * keeps the pages' traces, `BENCH_CATS=a,b` adds trace categories to them (`blink` shows
 * `PaintArtifactCompositor::Update` inside `Layerize`), `BENCH_QUERY=&k=v` appends to the
 * pages' URL, `BENCH_SHOT_DIR=DIR` saves the dragging page's screenshot after the drag and
 * prints how many nodes, edges and `<svg>`s it had in its DOM. `BENCH_RUNS=N` runs each editor
 * N times, taking turns, and adds a row per editor with the N runs' samples pooled (a p99 of one
 * 5 s run is its third-worst sample or so: pooled runs say more).
 */

import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, CDPSession, Page } from "playwright-core";
import { chromium } from "playwright-core";
import NodeWebSocket from "ws";
import { EdgeObject, NodeObject, schema } from "../examples/generated/demo-types.js";
import type { WebSocketConstructor } from "../src/index.js";
import { ObjectSyncClient } from "../src/index.js";

// Paths from where it runs: the bundle esbuild writes, bench/dist/flow.mjs.
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BIN = process.env.OBJECTSYNC_BIN ?? `${ROOT}target/release/objectsync`;
const DIST = fileURLToPath(new URL("../../demo/dist/", import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const NODES = 1000;
const EDGES = 500;
const DRAG_MS = 5000;
/** Pointer moves while dragging: one every 8 ms (a 120 Hz mouse), not waiting for the page. */
const MOVE_EVERY_MS = 8;
/** Headless Chromium's display: 60 Hz. */
const VSYNC_MS = 1000 / 60;
/** The dragged node's start (inside the first screen of both editors). */
const TARGET = { x: 420, y: 330 };
const CHANGES_PER_ACTION = 400;
/** Prints where the pages spent their time (a CPU profile), for looking into a slow run. */
const PROFILE = process.env.BENCH_PROFILE === "1";
/** Prints the dragging page's composited layers (and why), for looking into the compositor's work. */
const LAYERS = process.env.BENCH_LAYERS === "1";
/** Keeps the pages' traces (`<editor>-dragging.json`, `<editor>-watching.json`) in this directory, for chrome://tracing or Perfetto. */
const TRACE_DIR = process.env.BENCH_TRACE_DIR;
/** Editors to run (`BENCH_EDITORS=flow` for one): both by default, the vanilla one first. */
const EDITORS = (process.env.BENCH_EDITORS ?? "vanilla,flow").split(",").filter((e): e is Editor => e === "vanilla" || e === "flow");
/** What Chromium traces: tasks on the main thread and the frames. */
const TRACE_CATEGORIES = [...(process.env.BENCH_CATS ?? "").split(",").filter((c) => c !== ""), "devtools.timeline", "disabled-by-default-devtools.timeline", "disabled-by-default-devtools.timeline.frame"];

type Editor = "flow" | "vanilla";
/** A position and when (ms on the machine's clock). */
type Stamped = [x: number, y: number, t: number];

interface Stats {
  p50: number;
  p99: number;
  max: number;
  n: number;
  /** The values, sorted (to pool runs). */
  values: number[];
}

function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? NaN, n: s.length, values: s };
}

/** The values of several runs as one set. */
function pooled(all: Stats[]): Stats {
  return stats(all.flatMap((x) => x.values));
}

async function startServer(): Promise<{ address: string; stop: () => void }> {
  if (!existsSync(BIN)) throw new Error(`no server binary at ${BIN} (cargo build --release --bin objectsync)`);
  if (!existsSync(`${DIST}flow/main.js`)) throw new Error(`the pages are not built in ${DIST}: npm run build:demo`);
  const serve = [BIN, "serve", "--bind", "127.0.0.1:0", "--memory", "--static", DIST];
  const [cmd, ...args] = PIN ? ["taskset", "-c", "1", ...serve] : serve;
  const child = spawn(cmd as string, args, { stdio: ["ignore", "pipe", "ignore"] });
  const address = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      out += d;
      const m = /listening on http:\/\/(127\.0\.0\.1:\d+)/.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`server exited (${code})`)));
    setTimeout(() => reject(new Error("server did not start")), 15_000);
  });
  return { address, stop: () => child.kill("SIGTERM") };
}

/** Fills `room`'s graph: a grid of nodes, a chain of edges, the dragged node last (on top). */
async function populate(address: string, room: string): Promise<string> {
  const client = new ObjectSyncClient({ schema });
  await client.connect(`ws://${address}/ws/${room}`, { WebSocket: NodeWebSocket as unknown as WebSocketConstructor });
  const graph = client.get("graph");
  if (graph === undefined) throw new Error("no graph");
  const ids: string[] = [];
  const cols = 40;
  let handle = null;
  for (let start = 0; start < NODES - 1; start += CHANGES_PER_ACTION) {
    handle = client.transaction(() => {
      for (let i = start; i < Math.min(NODES - 1, start + CHANGES_PER_ACTION); i++) {
        const pos = { x: (i % cols) * 50, y: Math.floor(i / cols) * 48 };
        ids.push(client.create(NodeObject, graph, { attrs: { title: `n${i}`, pos } }).id);
      }
    });
  }
  for (let start = 0; start < EDGES; start += CHANGES_PER_ACTION) {
    handle = client.transaction(() => {
      for (let i = start; i < Math.min(EDGES, start + CHANGES_PER_ACTION); i++) {
        client.create(EdgeObject, graph, { attrs: { from: ids[2 * i] ?? null, to: ids[2 * i + 1] ?? null } });
      }
    });
  }
  const target = client.create(NodeObject, graph, { attrs: { title: "drag me", pos: TARGET, color: "#cf222e" } });
  await handle?.confirmed();
  await client.transaction(() => {}).confirmed();
  const id = target.id;
  await new Promise((r) => setTimeout(r, 200));
  client.close();
  return id;
}

/**
 * `BENCH_PIN=1`: each page on a core of its own, as two people's machines would be: the dragging
 * page's browser on CPU 0, the watching page's browser, the server and this driver on CPU 1
 * (`taskset`). By default all share the machine's cores.
 */
const PIN = process.env.BENCH_PIN === "1";

/** A launcher of Chromium on `cpu` (a script around `taskset`), or Chromium itself unpinned. */
async function chromiumOn(cpu: number | null): Promise<string> {
  if (cpu === null) return CHROMIUM;
  const made = launchers.get(cpu);
  if (made !== undefined) return made;
  launcherDir ??= await mkdtemp(join(tmpdir(), "bench-flow-"));
  const path = join(launcherDir, `chromium-cpu${cpu}`);
  await writeFile(path, `#!/bin/sh\nexec taskset -c ${cpu} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  launchers.set(cpu, path);
  return path;
}
const launchers = new Map<number, string>();
let launcherDir: string | undefined;

const LAUNCH = {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
  ],
};

/**
 * Instruments a page: its animation frames (and the end of each frame's rendering: a message
 * posted from the frame's callback runs after the frame's style, layout and paint), the pointer
 * moves it gets, and the positions of node `id` it shows.
 */
async function instrument(page: Page, id: string): Promise<void> {
  await page.evaluate((nodeId) => {
    const w = window as unknown as Record<string, unknown>;
    const clock = () => performance.timeOrigin + performance.now();
    const frames: number[] = [];
    /** Positions shown: [x, y, in the DOM at, painted at (0 until then)]. */
    const shown: [number, number, number, number][] = [];
    let unpainted: [number, number, number, number][] = [];
    const pointer = { events: 0, moves: 0 };
    w.__frames = frames;
    w.__shown = shown;
    w.__pointer = pointer;
    w.__rec = false;
    const afterRender = new MessageChannel();
    afterRender.port1.onmessage = () => {
      const t = clock();
      for (const s of unpainted) s[3] = t;
      unpainted = [];
    };
    const raf = (t: number) => {
      if (w.__rec === true) frames.push(t);
      afterRender.port2.postMessage(null);
      requestAnimationFrame(raf);
    };
    requestAnimationFrame(raf);
    window.addEventListener(
      "pointermove",
      (e) => {
        if (w.__rec !== true) return;
        pointer.events++;
        pointer.moves += Math.max(1, e.getCoalescedEvents().length);
      },
      { capture: true, passive: true },
    );
    const el = document.querySelector<HTMLElement>(`[data-testid="node"][data-id="${nodeId}"]`);
    if (el === null) throw new Error(`no node ${nodeId}`);
    new MutationObserver(() => {
      if (w.__rec !== true) return;
      const s: [number, number, number, number] = [Number(el.dataset.x), Number(el.dataset.y), clock(), 0];
      shown.push(s);
      unpainted.push(s);
    }).observe(el, { attributes: true, attributeFilter: ["data-x", "data-y"] });
  }, id);
}

/** Records the positions of node `id` the page sends (its `action` frames). */
async function recordSends(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as Record<string, unknown>;
    const sent: [number, number, number][] = [];
    w.__sentPos = sent;
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (this: WebSocket, ...args: Parameters<WebSocket["send"]>) {
      if (typeof args[0] === "string" && w.__rec === true && args[0].includes('"pos"')) {
        const m = JSON.parse(args[0]) as { t: string; changes?: { attr?: string; value?: { x?: number; y?: number } }[] };
        for (const c of m.changes ?? []) {
          if (c.attr === "pos" && typeof c.value?.x === "number" && typeof c.value.y === "number") sent.push([c.value.x, c.value.y, performance.timeOrigin + performance.now()]);
        }
      }
      send.apply(this, args);
    };
  });
}

/** What one page did while the drag lasted. */
/** Records the positions the page hears (`pos` changes in the server's messages), when its main thread takes each message. */
async function recordReceives(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as Record<string, unknown>;
    const heard: [number, number, number][] = [];
    w.__heardPos = heard;
    const find = (v: unknown, t: number): void => {
      if (typeof v !== "object" || v === null) return;
      if (Array.isArray(v)) return v.forEach((x) => find(x, t));
      const o = v as { attr?: unknown; value?: { x?: unknown; y?: unknown } };
      if (o.attr === "pos" && typeof o.value?.x === "number" && typeof o.value.y === "number") heard.push([o.value.x, o.value.y, t]);
      for (const x of Object.values(v)) find(x, t);
    };
    const Native = WebSocket;
    // A listener of its own, added before the client's: it runs first for every message.
    class Heard extends Native {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        this.addEventListener("message", (e: MessageEvent) => {
          if (w.__rec === true && typeof e.data === "string" && e.data.includes('"pos"')) find(JSON.parse(e.data), performance.timeOrigin + performance.now());
        });
      }
    }
    window.WebSocket = Heard;
  });
}

/** What one page did while the drag lasted. */
interface PageResult {
  frameInterval: Stats;
  /** Share of the frames a 60 Hz screen would have shown that the page did not draw. */
  dropped: number;
  /** Main-thread work per frame drawn, from the trace. */
  frameWork: Stats;
  /** The CPU time of that work. */
  frameCpu: Stats;
  /** Share of the drag the main thread was running tasks, from the trace. */
  busy: number;
  /** Pointer events the page got, and the moves they carried (coalesced ones included). */
  pointer: { events: number; moves: number };
  shown: [number, number, number, number][];
  sent: Stamped[];
  heard: Stamped[];
}

async function collect(page: Page, trace: TraceReading): Promise<PageResult> {
  const data = await page.evaluate(() => {
    const w = window as unknown as Record<string, unknown>;
    return {
      frames: w.__frames as number[],
      shown: w.__shown as [number, number, number, number][],
      sent: (w.__sentPos as Stamped[] | undefined) ?? [],
      heard: (w.__heardPos as Stamped[] | undefined) ?? [],
      pointer: w.__pointer as { events: number; moves: number },
    };
  });
  const intervals: number[] = [];
  let missed = 0;
  for (let i = 1; i < data.frames.length; i++) {
    const dt = (data.frames[i] as number) - (data.frames[i - 1] as number);
    intervals.push(dt);
    missed += Math.max(0, Math.round(dt / VSYNC_MS) - 1);
  }
  return {
    frameInterval: stats(intervals),
    dropped: missed / Math.max(1, missed + intervals.length),
    frameWork: stats(trace.frameWorkMs),
    frameCpu: stats(trace.frameCpuMs),
    busy: trace.busy,
    pointer: data.pointer,
    shown: data.shown,
    sent: data.sent,
    heard: data.heard,
  };
}

// ------------------------------------------------------------------------------------ trace

/** One event of Chromium's trace (the fields read here). */
interface TraceEvent {
  readonly name: string;
  readonly ph: string;
  readonly pid: number;
  readonly tid: number;
  readonly ts: number;
  readonly dur?: number;
  /** Thread time: the CPU the event's thread spent in it (wall time is `dur`). */
  readonly tdur?: number;
  readonly args?: { name?: string };
}

/** The page's main thread while the drag lasted, from its trace. */
interface TraceReading {
  /** For each frame rendered: the busy time since the previous frame's rendering, that one's included (ms). */
  frameWorkMs: number[];
  /** For each frame rendered: the same tasks' CPU time (thread time), without the waits for a core (ms). */
  frameCpuMs: number[];
  busy: number;
}

/** The mark of a rendering task (the main thread's part of a frame: animation frame callbacks, style, layout, paint, commit). */
const FRAME_MARK = "BeginMainThreadFrame";

/**
 * Reads a trace: the renderer's main thread (the `CrRendererMain` with the most tasks), its
 * top-level tasks (`RunTask`) inside `[fromUs, toUs]` (trace clock), and which of them rendered a
 * frame (one holding `BeginMainThreadFrame`; style or layout forced by script in another task
 * is that task's work). A frame's work is the
 * time spent in tasks since the end of the previous rendering task up to the end of its own.
 */
function readTrace(events: readonly TraceEvent[], span: { fromUs: number; toUs: number }): TraceReading {
  const mains = events.filter((e) => e.ph === "M" && e.name === "thread_name" && e.args?.name === "CrRendererMain").map((e) => `${e.pid}:${e.tid}`);
  const tasksBy = new Map<string, TraceEvent[]>();
  const marksBy = new Map<string, TraceEvent[]>();
  for (const e of events) {
    const key = `${e.pid}:${e.tid}`;
    if (!mains.includes(key)) continue;
    if (e.name === "RunTask" && e.ph === "X" && e.dur !== undefined) (tasksBy.get(key) ?? tasksBy.set(key, []).get(key))?.push(e);
    else if (e.name === FRAME_MARK) (marksBy.get(key) ?? marksBy.set(key, []).get(key))?.push(e);
  }
  const main = [...tasksBy].sort((a, b) => b[1].length - a[1].length)[0];
  if (main === undefined) throw new Error("the trace has no tasks of a renderer's main thread");
  // Top-level tasks only (a nested run loop's tasks are inside another).
  const tasks: TraceEvent[] = [];
  for (const t of main[1].sort((a, b) => a.ts - b.ts)) {
    const last = tasks[tasks.length - 1];
    if (last !== undefined && t.ts < last.ts + (last.dur ?? 0)) continue;
    if (t.ts >= span.fromUs && t.ts + (t.dur ?? 0) <= span.toUs) tasks.push(t);
  }
  const marks = (marksBy.get(main[0]) ?? []).map((m) => m.ts).sort((a, b) => a - b);
  const frameWorkMs: number[] = [];
  const frameCpuMs: number[] = [];
  let busyUs = 0;
  let sinceFrameUs = 0;
  let cpuSinceFrameUs = 0;
  let m = 0;
  for (const t of tasks) {
    const end = t.ts + (t.dur ?? 0);
    busyUs += t.dur ?? 0;
    sinceFrameUs += t.dur ?? 0;
    cpuSinceFrameUs += t.tdur ?? t.dur ?? 0;
    while (m < marks.length && (marks[m] as number) < t.ts) m++;
    const rendered = m < marks.length && (marks[m] as number) <= end;
    if (rendered) {
      frameWorkMs.push(sinceFrameUs / 1000);
      frameCpuMs.push(cpuSinceFrameUs / 1000);
      sinceFrameUs = 0;
      cpuSinceFrameUs = 0;
    }
  }
  return { frameWorkMs, frameCpuMs, busy: busyUs / Math.max(1, span.toUs - span.fromUs) };
}

/** The trace clock (µs) now, in the page: a mark read back from the trace. */
async function traceMark(page: Page, name: string): Promise<void> {
  await page.evaluate((n) => console.timeStamp(n), name);
}

function markTs(events: readonly TraceEvent[], name: string): number {
  const e = events.find((x) => x.name === "TimeStamp" && (x.args as { data?: { message?: string } } | undefined)?.data?.message === name);
  if (e === undefined) throw new Error(`no mark ${name} in the trace`);
  return e.ts;
}

// --------------------------------------------------------------------------------- latency

/**
 * Latency of each whole-pixel position sent to the first time after that the watcher heard it
 * (its main thread took the server's message), showed it in its DOM, and painted it.
 */
function latencies(sent: Stamped[], heard: Stamped[], shown: [number, number, number, number][]): { socket: Stats; dom: Stats; painted: Stats; matched: number; sent: number } {
  const socket: number[] = [];
  const dom: number[] = [];
  const painted: number[] = [];
  const whole = sent.filter(([x, y]) => Number.isInteger(x) && Number.isInteger(y));
  for (const [x, y, t] of whole) {
    const got = heard.find(([hx, hy, ht]) => hx === x && hy === y && ht >= t);
    if (got !== undefined) socket.push(got[2] - t);
    const seen = shown.find(([sx, sy, st]) => sx === x && sy === y && st >= t);
    if (seen === undefined) continue;
    dom.push(seen[2] - t);
    if (seen[3] > 0) painted.push(seen[3] - t);
  }
  return { socket: stats(socket), dom: stats(dom), painted: stats(painted), matched: dom.length, sent: whole.length };
}

async function openEditor(browser: Browser, url: string, editor: Editor, dragging: boolean): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30_000);
  if (dragging) await recordSends(page);
  else await recordReceives(page);
  await page.goto(url);
  await page.waitForSelector('body[data-state="open"]');
  // The flow editor draws only the nodes in view (`onlyRenderVisibleElements`): its status line counts them all.
  await page.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="node"]').length >= n || document.querySelector('[data-testid="status-count"]')?.textContent?.startsWith(`${n} nodes`) === true,
    NODES,
    { polling: 100 },
  );
  if (editor === "vanilla") await page.waitForSelector('[data-testid="add-node"]:not([disabled])');
  return page;
}

async function grabPoint(page: Page, id: string, editor: Editor): Promise<{ x: number; y: number }> {
  const sel = editor === "flow" ? `[data-testid="node"][data-id="${id}"] [data-testid="node-title"]` : `[data-testid="node"][data-id="${id}"]`;
  const box = await page.locator(sel).boundingBox();
  if (box === null) throw new Error(`node ${id} is not visible`);
  // Flow: the title (the header drags). Vanilla: the bottom strip (its title is an input).
  return editor === "flow" ? { x: box.x + box.width / 2, y: box.y + box.height / 2 } : { x: box.x + box.width / 2, y: box.y + box.height - 5 };
}

/**
 * A mouse on the DevTools protocol: each call sends one event and does not wait for the page
 * (the answers are counted, and awaited at the end).
 */
class Mouse {
  private inFlight: Promise<unknown>[] = [];
  /** Events sent, and those the browser answered. */
  sent = 0;
  answered = 0;
  constructor(private readonly cdp: CDPSession) {}
  private send(type: "mouseMoved" | "mousePressed" | "mouseReleased", x: number, y: number, pressed: boolean): void {
    this.sent++;
    const p = this.cdp
      .send("Input.dispatchMouseEvent", { type, x, y, button: type === "mouseMoved" && !pressed ? "none" : "left", buttons: pressed ? 1 : 0, clickCount: type === "mouseMoved" ? 0 : 1 })
      .then(() => void this.answered++);
    this.inFlight.push(p);
  }
  move(x: number, y: number, pressed: boolean): void {
    this.send("mouseMoved", x, y, pressed);
  }
  down(x: number, y: number): void {
    this.send("mousePressed", x, y, true);
  }
  up(x: number, y: number): void {
    this.send("mouseReleased", x, y, false);
  }
  /** Waits until the browser answered every event sent. */
  async settle(): Promise<void> {
    await Promise.all(this.inFlight.splice(0));
  }
}

/** Moves the pressed mouse along a Lissajous path (every position new, inside the canvas) for `ms`, a move every `everyMs`, never waiting. */
async function dragFor(mouse: Mouse, start: { x: number; y: number }, ms: number, everyMs: number): Promise<{ x: number; y: number }> {
  const t0 = performance.now();
  let at = start;
  for (let i = 0; ; i++) {
    const next = t0 + i * everyMs;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t = (performance.now() - t0) / 1000;
    if (t * 1000 >= ms) return at;
    at = { x: Math.round(start.x + 160 * Math.sin(t * 1.9)), y: Math.round(start.y + 110 * Math.sin(t * 2.7)) };
    mouse.move(at.x, at.y, true);
  }
}

/** Prints the composited layers of a page and why each is one (`BENCH_LAYERS=1`). */
async function printLayers(editor: Editor, cdp: CDPSession): Promise<void> {
  const tree = new Promise<{ layers?: { layerId: string; width: number; height: number; drawsContent: boolean }[] }>((resolve) => cdp.once("LayerTree.layerTreeDidChange", resolve));
  await cdp.send("LayerTree.enable");
  const layers = (await tree).layers ?? [];
  const why = new Map<string, number>();
  for (const l of layers) {
    const { compositingReasonIds } = await cdp.send("LayerTree.compositingReasons", { layerId: l.layerId });
    const key = (compositingReasonIds ?? []).join(",") || "(none)";
    why.set(key, (why.get(key) ?? 0) + 1);
  }
  console.error(`${editor} dragging page: ${layers.length} layers, by reason: ${JSON.stringify([...why])}`);
  await cdp.send("LayerTree.disable");
}

/** One editor's run: the drag and what both pages did. */
interface RunResult {
  drag: PageResult;
  watch: PageResult;
  latency: ReturnType<typeof latencies>;
  /** Mouse events the driver sent while dragging. */
  moves: number;
}

async function run(address: string, editor: Editor): Promise<RunResult> {
  const room = `bench-${editor}-${Date.now().toString(36)}`;
  const id = await populate(address, room);
  const url = `http://${address}${editor === "flow" ? "/flow/" : "/"}?room=${room}${process.env.BENCH_QUERY ?? ""}`;
  const dragBrowser = await chromium.launch({ ...LAUNCH, executablePath: await chromiumOn(PIN ? 0 : null) });
  const watchBrowser = await chromium.launch({ ...LAUNCH, executablePath: await chromiumOn(PIN ? 1 : null) });
  try {
    const dragger = await openEditor(dragBrowser, `${url}&name=Dragger`, editor, true);
    const watcher = await openEditor(watchBrowser, `${url}&name=Watcher`, editor, false);
    await instrument(dragger, id);
    await instrument(watcher, id);
    const grab = await grabPoint(dragger, id, editor);
    const mouse = new Mouse(await dragger.context().newCDPSession(dragger));
    mouse.move(grab.x, grab.y, false);
    mouse.down(grab.x, grab.y);
    mouse.move(grab.x + 4, grab.y + 4, true);
    await mouse.settle();
    await dragger.waitForTimeout(200);
    const cdp = await Promise.all([dragger, watcher].map((p) => p.context().newCDPSession(p)));
    if (LAYERS) await printLayers(editor, cdp[0] as CDPSession);
    if (PROFILE) await Promise.all(cdp.map(async (c) => (await c.send("Profiler.enable"), await c.send("Profiler.start"))));
    await dragBrowser.startTracing(dragger, { categories: TRACE_CATEGORIES });
    await watchBrowser.startTracing(watcher, { categories: TRACE_CATEGORIES });
    await Promise.all([dragger, watcher].map((p) => traceMark(p, "bench-start")));
    await Promise.all([dragger, watcher].map((p) => p.evaluate(() => ((window as unknown as Record<string, unknown>).__rec = true))));
    const sentBefore = mouse.sent;
    const end = await dragFor(mouse, { x: grab.x + 4, y: grab.y + 4 }, DRAG_MS, MOVE_EVERY_MS);
    const moves = mouse.sent - sentBefore;
    await mouse.settle();
    await dragger.waitForTimeout(300);
    await Promise.all([dragger, watcher].map((p) => p.evaluate(() => ((window as unknown as Record<string, unknown>).__rec = false))));
    await Promise.all([dragger, watcher].map((p) => traceMark(p, "bench-end")));
    const traces = await Promise.all([dragBrowser.stopTracing(), watchBrowser.stopTracing()]);
    if (TRACE_DIR !== undefined) {
      await mkdir(TRACE_DIR, { recursive: true });
      await writeFile(join(TRACE_DIR, `${editor}-dragging.json`), traces[0]);
      await writeFile(join(TRACE_DIR, `${editor}-watching.json`), traces[1]);
    }
    const readings = traces.map((buf) => {
      const events = (JSON.parse(buf.toString("utf8")) as { traceEvents: TraceEvent[] }).traceEvents;
      return readTrace(events, { fromUs: markTs(events, "bench-start"), toUs: markTs(events, "bench-end") });
    });
    if (PROFILE) {
      for (const [k, c] of cdp.entries()) {
        const { profile } = await c.send("Profiler.stop");
        // Self time per function, and total time (a function counted once per sample it is on the stack of).
        const self = new Map<string, number>();
        const total = new Map<string, number>();
        const dt = profile.timeDeltas ?? [];
        const byId = new Map(profile.nodes.map((n) => [n.id, n]));
        const parent = new Map<number, number>();
        for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
        const keyOf = (n: (typeof profile.nodes)[number]) => `${n.callFrame.functionName || "(anon)"} ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber}`;
        (profile.samples ?? []).forEach((sid, j) => {
          const n = byId.get(sid);
          if (n === undefined) return;
          const ms = (dt[j] ?? 0) / 1000;
          self.set(keyOf(n), (self.get(keyOf(n)) ?? 0) + ms);
          const seen = new Set<string>();
          for (let at: number | undefined = sid; at !== undefined; at = parent.get(at)) {
            const m = byId.get(at);
            if (m === undefined || m.callFrame.url === "") continue;
            const key = keyOf(m);
            if (seen.has(key)) continue;
            seen.add(key);
            total.set(key, (total.get(key) ?? 0) + ms);
          }
        });
        const list = (m: Map<string, number>) =>
          [...m]
            .sort((p, q) => q[1] - p[1])
            .slice(0, Number(process.env.BENCH_PROFILE_TOP ?? 25))
            .map(([n, t]) => `  ${t.toFixed(0)} ${n}`)
            .join("\n");
        const page = k === 0 ? "dragging" : "watching";
        console.error(`${editor} ${page} page, self time (ms):\n${list(self)}\n${editor} ${page} page, total time in script (ms):\n${list(total)}`);
      }
    }
    mouse.up(end.x, end.y);
    await mouse.settle();
    if (process.env.BENCH_SHOT_DIR !== undefined) {
      await dragger.screenshot({ path: join(process.env.BENCH_SHOT_DIR, `${editor}-dragging.png`) });
      console.error(await dragger.evaluate(() => `edges ${document.querySelectorAll(".react-flow__edge").length}, nodes ${document.querySelectorAll(".react-flow__node").length}, svgs ${document.querySelectorAll("svg").length}`));
    }
    const d = await collect(dragger, readings[0] as TraceReading);
    const w = await collect(watcher, readings[1] as TraceReading);
    return { drag: d, watch: w, latency: latencies(d.sent, w.heard, w.shown), moves };
  } finally {
    await dragBrowser.close();
    await watchBrowser.close();
  }
}

const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "–");
const pair = (s: Stats) => `${f(s.p50)} / ${f(s.p99)}`;
const pct = (v: number) => `${Math.round(v * 100)} %`;

/** Runs per editor (`BENCH_RUNS=N`, default 1): the editors take turns, and a row pools them. */
const RUNS = Math.max(1, Math.floor(Number(process.env.BENCH_RUNS ?? 1)) || 1);

async function main(): Promise<void> {
  if (PIN) execFileSync("taskset", ["-a", "-cp", "1", String(process.pid)], { stdio: "ignore" });
  const server = await startServer();
  const results = new Map<Editor, RunResult[]>();
  try {
    for (let round = 0; round < RUNS; round++) {
      for (const editor of EDITORS) {
        const r = await run(server.address, editor);
        (results.get(editor) ?? results.set(editor, []).get(editor))?.push(r);
        console.error(
          `${editor}: ${r.drag.frameWork.n} frames dragging (work max ${f(r.drag.frameWork.max)} ms), ${r.watch.frameWork.n} watching (max ${f(r.watch.frameWork.max)} ms); page to page max ${f(r.latency.painted.max)} ms`,
        );
      }
    }
  } finally {
    server.stop();
    if (launcherDir !== undefined) await rm(launcherDir, { recursive: true, force: true });
  }
  const page = (p: PageResult) => `${pair(p.frameWork)} | ${pair(p.frameCpu)} | ${pair(p.frameInterval)}, ${pct(p.dropped)} | ${pct(p.busy)}`;
  const row = (name: string, r: RunResult) =>
    `| ${name} | ${page(r.drag)} | ${page(r.watch)} | ${pair(r.latency.socket)} | ${pair(r.latency.dom)} | ${pair(r.latency.painted)} | ${r.moves} / ${r.drag.pointer.moves} in ${r.drag.pointer.events} / ${r.latency.sent} / ${r.latency.matched} |`;
  console.log(`1,000 nodes and ${EDGES} edges, one node dragged for ${DRAG_MS / 1000} s (a mouse move every ${MOVE_EVERY_MS} ms, not waiting), times in ms (p50 / p99):\n`);
  console.log(
    "| editor | dragging page: frame work | dragging page: frame CPU | dragging page: frame interval, dropped | dragging page: busy | watching page: frame work | watching page: frame CPU | watching page: frame interval, dropped | watching page: busy | page to page: heard | page to page: DOM | page to page: painted | mouse moves sent / got in pointer events / positions sent / seen |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const [editor, runs] of results) {
    const name = editor === "flow" ? "flow editor (`/flow/`, React Flow)" : "vanilla editor (`/`)";
    runs.forEach((r, i) => console.log(row(RUNS === 1 ? name : `${name}, run ${i + 1}`, r)));
    if (runs.length > 1) console.log(row(`${name}, ${runs.length} runs pooled`, pool(runs)));
  }
}

/** Several runs of one editor as one: their samples together, shares averaged, counts summed. */
function pool(runs: RunResult[]): RunResult {
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const pagePool = (ps: PageResult[]): PageResult => ({
    frameInterval: pooled(ps.map((p) => p.frameInterval)),
    dropped: avg(ps.map((p) => p.dropped)),
    frameWork: pooled(ps.map((p) => p.frameWork)),
    frameCpu: pooled(ps.map((p) => p.frameCpu)),
    busy: avg(ps.map((p) => p.busy)),
    pointer: { events: ps.reduce((a, p) => a + p.pointer.events, 0), moves: ps.reduce((a, p) => a + p.pointer.moves, 0) },
    shown: [],
    sent: [],
    heard: [],
  });
  return {
    drag: pagePool(runs.map((r) => r.drag)),
    watch: pagePool(runs.map((r) => r.watch)),
    latency: {
      socket: pooled(runs.map((r) => r.latency.socket)),
      dom: pooled(runs.map((r) => r.latency.dom)),
      painted: pooled(runs.map((r) => r.latency.painted)),
      matched: runs.reduce((a, r) => a + r.latency.matched, 0),
      sent: runs.reduce((a, r) => a + r.latency.sent, 0),
    },
    moves: runs.reduce((a, r) => a + r.moves, 0),
  };
}

await main();
