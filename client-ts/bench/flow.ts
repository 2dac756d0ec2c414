/**
 * Benchmark (not a test): a 1,000-node diagram (999 nodes in a grid, 500 edges, and the node
 * dragged) in headless Chromium, one page dragging a node continuously for 5 s while another
 * page watches, for the flow editor (`/flow/`, React Flow) and the vanilla editor (`/`) in the
 * same run against `target/release/objectsync serve --memory`. `npm run bench:flow`.
 *
 * Per page, while the drag lasts:
 * - frame interval: time between animation frames (what the screen shows; headless Chromium
 *   draws at 60 Hz, so 16.7 ms means no frame was dropped);
 * - the main thread's time (Chromium's own counters, `Performance.getMetrics`): how much of the
 *   drag it was busy (`TaskDuration`), and how much of that was script, per position sent or
 *   shown.
 * Page to page: from the dragging page sending a position (its `action` frame) to the watching
 * page's DOM showing the node there (`data-x`/`data-y` of the node), both read on the machine's
 * clock (`performance.timeOrigin + performance.now()`).
 *
 * Each page has a browser of its own, so each is in front (headless Chromium slows the frames
 * of a page behind). Prints a markdown table for docs/benchmarks.md.
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
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
/** Pointer moves while dragging: one every 8 ms (a 120 Hz mouse). */
const MOVE_EVERY_MS = 8;
/** The dragged node's start (inside the first screen of both editors). */
const TARGET = { x: 420, y: 330 };
const CHANGES_PER_ACTION = 400;
/** Prints where the pages spent their time (a CPU profile), for looking into a slow run. */
const PROFILE = process.env.BENCH_PROFILE === "1";

interface Stats {
  p50: number;
  p99: number;
  max: number;
  n: number;
}

function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? NaN, n: s.length };
}

async function startServer(): Promise<{ address: string; stop: () => void }> {
  if (!existsSync(BIN)) throw new Error(`no server binary at ${BIN} (cargo build --release --bin objectsync)`);
  if (!existsSync(`${DIST}flow/main.js`)) throw new Error(`the pages are not built in ${DIST}: npm run build:demo`);
  const child = spawn(BIN, ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", DIST], { stdio: ["ignore", "pipe", "ignore"] });
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

/** Instruments a page: frames and the positions of node `id` it shows. */
async function instrument(page: Page, id: string): Promise<void> {
  await page.evaluate((nodeId) => {
    const w = window as unknown as Record<string, unknown>;
    const clock = () => performance.timeOrigin + performance.now();
    const frames: number[] = [];
    const shown: [number, number, number][] = [];
    w.__frames = frames;
    w.__shown = shown;
    w.__rec = false;
    const raf = () => {
      if (w.__rec === true) frames.push(performance.now());
      requestAnimationFrame(raf);
    };
    requestAnimationFrame(raf);
    const el = document.querySelector<HTMLElement>(`[data-testid="node"][data-id="${nodeId}"]`);
    if (el === null) throw new Error(`no node ${nodeId}`);
    new MutationObserver(() => {
      if (w.__rec === true) shown.push([Number(el.dataset.x), Number(el.dataset.y), clock()]);
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

interface PageResult {
  frameInterval: Stats;
}

async function collect(page: Page): Promise<PageResult & { shown: [number, number, number][]; sent: [number, number, number][] }> {
  const data = await page.evaluate(() => {
    const w = window as unknown as Record<string, unknown>;
    return {
      frames: w.__frames as number[],
      shown: w.__shown as [number, number, number][],
      sent: (w.__sentPos as [number, number, number][] | undefined) ?? [],
    };
  });
  const intervals: number[] = [];
  for (let i = 1; i < data.frames.length; i++) intervals.push((data.frames[i] as number) - (data.frames[i - 1] as number));
  return { frameInterval: stats(intervals), shown: data.shown, sent: data.sent };
}

/** Latency of each whole-pixel position sent to the first time the watcher showed it after. */
function latencies(sent: [number, number, number][], shown: [number, number, number][]): { stats: Stats; matched: number; sent: number } {
  const out: number[] = [];
  const whole = sent.filter(([x, y]) => Number.isInteger(x) && Number.isInteger(y));
  for (const [x, y, t] of whole) {
    const seen = shown.find(([sx, sy, st]) => sx === x && sy === y && st >= t);
    if (seen !== undefined) out.push(seen[2] - t);
  }
  return { stats: stats(out), matched: out.length, sent: whole.length };
}

async function openEditor(browser: Browser, url: string, editor: "flow" | "vanilla", record: boolean): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30_000);
  if (record) await recordSends(page);
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

async function grabPoint(page: Page, id: string, editor: "flow" | "vanilla"): Promise<{ x: number; y: number }> {
  const sel = editor === "flow" ? `[data-testid="node"][data-id="${id}"] [data-testid="node-title"]` : `[data-testid="node"][data-id="${id}"]`;
  const box = await page.locator(sel).boundingBox();
  if (box === null) throw new Error(`node ${id} is not visible`);
  // Flow: the title (the header drags). Vanilla: the bottom strip (its title is an input).
  return editor === "flow" ? { x: box.x + box.width / 2, y: box.y + box.height / 2 } : { x: box.x + box.width / 2, y: box.y + box.height - 5 };
}

interface MainThread {
  /** Share of the drag the main thread was busy. */
  busy: number;
  scriptMs: number;
  layoutMs: number;
}

async function run(
  address: string,
  editor: "flow" | "vanilla",
): Promise<{ drag: PageResult; watch: PageResult; latency: ReturnType<typeof latencies>; actions: number; main: readonly [MainThread, MainThread]; moves: number }> {
  const room = `bench-${editor}-${Date.now().toString(36)}`;
  const id = await populate(address, room);
  const url = `http://${address}${editor === "flow" ? "/flow/" : "/"}?room=${room}`;
  const dragBrowser = await chromium.launch(LAUNCH);
  const watchBrowser = await chromium.launch(LAUNCH);
  try {
    const dragger = await openEditor(dragBrowser, `${url}&name=Dragger`, editor, true);
    const watcher = await openEditor(watchBrowser, `${url}&name=Watcher`, editor, false);
    await instrument(dragger, id);
    await instrument(watcher, id);
    const start = await grabPoint(dragger, id, editor);
    await dragger.mouse.move(start.x, start.y);
    await dragger.mouse.down();
    await dragger.mouse.move(start.x + 4, start.y + 4);
    await dragger.waitForTimeout(200);
    const cdp = await Promise.all([dragger, watcher].map((p) => p.context().newCDPSession(p)));
    await Promise.all(cdp.map((c) => c.send("Performance.enable")));
    const m0 = await Promise.all(cdp.map((c) => c.send("Performance.getMetrics")));
    if (PROFILE) await Promise.all(cdp.map(async (c) => (await c.send("Profiler.enable"), await c.send("Profiler.start"))));
    await Promise.all([dragger, watcher].map((p) => p.evaluate(() => ((window as unknown as Record<string, unknown>).__rec = true))));
    const t0 = Date.now();
    let i = 0;
    while (Date.now() - t0 < DRAG_MS) {
      const t = (Date.now() - t0) / 1000;
      // A Lissajous path: every position new, staying inside the canvas.
      await dragger.mouse.move(Math.round(start.x + 4 + 160 * Math.sin(t * 1.9)), Math.round(start.y + 4 + 110 * Math.sin(t * 2.7)));
      i++;
      const next = t0 + i * MOVE_EVERY_MS;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await dragger.waitForTimeout(300);
    await Promise.all([dragger, watcher].map((p) => p.evaluate(() => ((window as unknown as Record<string, unknown>).__rec = false))));
    const m1 = await Promise.all(cdp.map((c) => c.send("Performance.getMetrics")));
    if (PROFILE) {
      for (const [k, c] of cdp.entries()) {
        const { profile } = await c.send("Profiler.stop");
        const self = new Map<string, number>();
        const dt = profile.timeDeltas ?? [];
        const byId = new Map(profile.nodes.map((n) => [n.id, n]));
        (profile.samples ?? []).forEach((id, j) => {
          const n = byId.get(id);
          if (n === undefined) return;
          const key = `${n.callFrame.functionName || "(anon)"} ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber}`;
          self.set(key, (self.get(key) ?? 0) + (dt[j] ?? 0) / 1000);
        });
        const top = [...self].sort((p, q) => q[1] - p[1]).slice(0, 15);
        console.error(`${editor} ${k === 0 ? "dragging" : "watching"} page, self time (ms):\n${top.map(([n, t]) => `  ${t.toFixed(0)} ${n}`).join("\n")}`);
      }
    }
    const elapsedMs = Date.now() - t0;
    const spent = (k: number) => {
      const get = (m: { metrics: { name: string; value: number }[] }, name: string) => m.metrics.find((x) => x.name === name)?.value ?? 0;
      const ms = (name: string) => (get(m1[k] as never, name) - get(m0[k] as never, name)) * 1000;
      return { busy: ms("TaskDuration") / elapsedMs, scriptMs: ms("ScriptDuration"), layoutMs: ms("LayoutDuration") + ms("RecalcStyleDuration") };
    };
    const main = [spent(0), spent(1)] as const;
    console.error(`${editor}: ${i} pointer moves; main thread ${JSON.stringify(main)}`);
    await dragger.mouse.up();
    const d = await collect(dragger);
    const w = await collect(watcher);
    return { drag: d, watch: w, latency: latencies(d.sent, w.shown), actions: d.sent.length, main, moves: i };
  } finally {
    await dragBrowser.close();
    await watchBrowser.close();
  }
}

const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "–");

async function main(): Promise<void> {
  const server = await startServer();
  const rows: string[] = [];
  try {
    for (const editor of ["vanilla", "flow"] as const) {
      const r = await run(server.address, editor);
      const name = editor === "flow" ? "flow editor (`/flow/`, React Flow)" : "vanilla editor (`/`)";
      const [md, mw] = r.main;
      const pct = (m: MainThread) => `${Math.round(m.busy * 100)} %`;
      const per = (m: MainThread, n: number) => f(m.scriptMs / Math.max(1, n));
      rows.push(
        `| ${name} | ${f(r.drag.frameInterval.p50)} / ${f(r.drag.frameInterval.p99)} | ${f(r.watch.frameInterval.p50)} / ${f(r.watch.frameInterval.p99)} | ${f(r.latency.stats.p50)} / ${f(r.latency.stats.p99)} | ${r.moves} / ${r.actions} / ${r.latency.matched} | ${pct(md)}, ${per(md, r.actions)} | ${pct(mw)}, ${per(mw, r.latency.matched)} |`,
      );
      console.error(`${editor}: done (${r.drag.frameInterval.n} frames dragging, ${r.watch.frameInterval.n} watching)`);
    }
  } finally {
    server.stop();
  }
  console.log(`1,000 nodes and ${EDGES} edges, one node dragged for ${DRAG_MS / 1000} s (pointer every ${MOVE_EVERY_MS} ms), times in ms (p50 / p99):\n`);
  console.log(
    "| editor | dragging page: frame interval | watching page: frame interval | page to page | pointer moves / positions sent / seen | dragging page: main thread busy, script ms per position | watching page: same |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
}

await main();
