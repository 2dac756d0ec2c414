/**
 * Browser harness for the editors' end-to-end tests (test-only, Node): the real server serving
 * the built pages (`demo/dist`, by `npm run build:demo`), one headless Chromium, browser contexts
 * whose pages record the frames they send, pages opened with their errors collected, and what
 * both editors' tests drive pages with: waits that poll on a timer, animation frames, mouse
 * drags, the node positions shown, the actions sent, screenshots.
 */

import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromium } from "playwright-core";
import type { RunningServer } from "./harness.js";
import { CHROMIUM_LAUNCH, requireChromium, SERVER_BIN, startBinary } from "./harness.js";

/** The built pages: the vanilla editor at `/`, the DOM example at `/dom/`, the flow editor at `/flow/`. */
export const DEMO_DIST = fileURLToPath(new URL("../../demo/dist/", import.meta.url));
/** Where screenshots go. */
export const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));

/** A point in a page's viewport (CSS px) or in a diagram. */
export interface Point {
  readonly x: number;
  readonly y: number;
}

/**
 * The server on the built pages and one Chromium for a test file: `start` in `beforeAll`, `stop`
 * in `afterAll`. Every page it opens reports its errors (uncaught or on the console) into
 * `errors`, which a file's last test expects empty.
 */
export class EditorLab {
  private server: RunningServer | undefined;
  private browser: Browser | undefined;
  /** Page errors and console errors of every page opened by {@link open}. */
  readonly errors: string[] = [];

  /** Starts the server and Chromium; fails clearly if a page in `needs` (paths under `demo/dist`) is not built. */
  async start(needs: readonly string[]): Promise<void> {
    requireChromium();
    const missing = needs.filter((f) => !existsSync(join(DEMO_DIST, f)));
    if (missing.length > 0) throw new Error(`${missing.join(", ")} not built in ${DEMO_DIST}: run \`npm run build:demo\``);
    this.server = await startBinary(SERVER_BIN, ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", DEMO_DIST]);
    this.browser = await chromium.launch({ ...CHROMIUM_LAUNCH, args: [...CHROMIUM_LAUNCH.args] });
  }

  /** Closes Chromium and stops the server. */
  async stop(): Promise<void> {
    await this.browser?.close();
    await this.server?.stop();
  }

  /** The running server (after {@link start}). */
  get running(): RunningServer {
    if (this.server === undefined) throw new Error("setup failed: no server");
    return this.server;
  }

  /**
   * A browser context whose pages record every frame they send in `window.__sent`, and the id of
   * the last pointer pressed in `window.__pointerId`.
   */
  async newContext(viewport = { width: 1100, height: 700 }): Promise<BrowserContext> {
    if (this.browser === undefined) throw new Error("setup failed: no browser");
    const context = await this.browser.newContext({ viewport });
    await context.addInitScript(() => {
      const w = window as unknown as { __sent: string[]; __pointerId: number };
      w.__sent = [];
      w.__pointerId = -1;
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (this: WebSocket, ...args: Parameters<WebSocket["send"]>) {
        if (typeof args[0] === "string") w.__sent.push(args[0]);
        send.apply(this, args);
      };
      document.addEventListener("pointerdown", (e) => (w.__pointerId = e.pointerId), true);
    });
    return context;
  }

  /**
   * Opens `path` (e.g. `/flow/?room=r&name=Ada`) in `context` as `name` (for its errors) and
   * waits until the editor joined its room and can edit.
   */
  async open(context: BrowserContext, path: string, name: string): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (e) => this.errors.push(`${name}: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") this.errors.push(`${name} console: ${m.text()}`);
    });
    await page.goto(`http://${this.running.address}${path}`);
    await page.waitForSelector('body[data-state="open"]');
    await page.waitForSelector('[data-testid="add-node"]:not([disabled])');
    return page;
  }
}

/**
 * Puts `page` in front before driving it. Headless Chromium runs animation frames at about one
 * per second in a page behind once it repaints, and the editors send positions and draw on
 * animation frames; a page behind still gets every update (on socket events), so checks on the
 * other page poll on a timer ({@link waitFor}).
 */
export async function front(page: Page): Promise<Page> {
  await page.bringToFront();
  return page;
}

/** `page.waitForFunction` polling every 50 ms (not on animation frames: see {@link front}). */
export async function waitFor<A>(page: Page, fn: (arg: A) => boolean, arg: A): Promise<void> {
  // (Playwright types the argument as `Unboxed<A>`, which a generic `A` does not reduce to.)
  const check = fn as (arg: unknown) => boolean;
  await page.waitForFunction(check, arg as unknown, { polling: 50 });
}

/** Resolves after `n` animation frames of `page`. */
export async function frames(page: Page, n = 2): Promise<void> {
  await page.evaluate(
    (count) =>
      new Promise<void>((resolve) => {
        let left = count;
        const tick = () => (--left <= 0 ? resolve() : requestAnimationFrame(tick));
        requestAnimationFrame(tick);
      }),
    n,
  );
}

/** The element of node `id` (both editors: `data-testid="node"`, `data-id`, `data-x`, `data-y`). */
export const nodeSel = (id: string): string => `[data-testid="node"][data-id="${id}"]`;

/** The position node `id` is shown at on `page` (its `data-x`/`data-y`). */
export async function posOf(page: Page, id: string): Promise<Point> {
  return page.$eval(nodeSel(id), (el) => ({ x: Number((el as HTMLElement).dataset.x), y: Number((el as HTMLElement).dataset.y) }));
}

/** Waits until node `id` is shown at `p` on `page`; fails saying where it is instead. */
export async function waitPos(page: Page, id: string, p: Point): Promise<void> {
  try {
    await waitFor(
      page,
      ({ sel, x, y }) => {
        const el = document.querySelector<HTMLElement>(sel);
        return el !== null && el.dataset.x === String(x) && el.dataset.y === String(y);
      },
      { sel: nodeSel(id), x: p.x, y: p.y },
    );
  } catch (e) {
    const at = await posOf(page, id).catch(() => null);
    throw new Error(`node ${id} is not shown at (${p.x}, ${p.y}) but at ${JSON.stringify(at)}`, { cause: e });
  }
}

/** The center of (the first element matching) `sel` in viewport coordinates, rounded. */
export async function centerOf(page: Page, sel: string): Promise<Point> {
  const box = await page.locator(sel).first().boundingBox();
  if (box === null) throw new Error(`${sel} is not visible`);
  return { x: Math.round(box.x + box.width / 2), y: Math.round(box.y + box.height / 2) };
}

/** Drags with the mouse from `from` to `to` in `steps` moves, each in frames of its own; `beforeUp` runs before the button goes up. */
export async function drag(page: Page, from: Point, to: Point, steps: number, beforeUp?: () => Promise<void>): Promise<void> {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  for (let i = 1; i <= steps; i++) {
    await page.mouse.move(Math.round(from.x + ((to.x - from.x) * i) / steps), Math.round(from.y + ((to.y - from.y) * i) / steps));
    await frames(page);
  }
  await beforeUp?.();
  await page.mouse.up();
  await frames(page);
}

/** How many `action` messages `page` sent that change attribute `attr` of `obj`. */
export async function actionsOn(page: Page, obj: string, attr: string): Promise<number> {
  const sent = await page.evaluate(() => (window as unknown as { __sent: string[] }).__sent);
  return sent
    .map((s) => JSON.parse(s) as { t: string; changes?: { obj?: string; attr?: string }[] })
    .filter((m) => m.t === "action" && (m.changes ?? []).some((c) => c.obj === obj && c.attr === attr)).length;
}

/** Screenshots `page` (in front, after its frames) into `test-artifacts/<file>.png`; the path. */
export async function screenshot(page: Page, file: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  await front(page);
  await frames(page);
  const path = join(ARTIFACTS, `${file}.png`);
  await page.screenshot({ path });
  return path;
}
