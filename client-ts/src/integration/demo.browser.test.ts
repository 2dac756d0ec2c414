/**
 * The node-graph demo end to end in headless Chromium (Debian's `/usr/bin/chromium`, driven by
 * playwright-core; no browser is downloaded), against the real server:
 * `target/debug/objectsync serve --memory --static demo/dist` (built by `npm run build:demo`).
 *
 * Two pages (Ada and Grace) share one room: Ada adds a node, drags it and renames it, and
 * Grace's page shows it moving and renamed; a burst of pointer moves sends one action per frame;
 * both type into one title at once and keep both edits; Grace connects two nodes and Ada sees
 * the edge; an edge from a node to itself is refused; Ada deletes a node and its edge goes in
 * both pages (the server's reaction); undo (Ctrl+Z) brings both back, redo deletes them again;
 * a drag off the canvas is refused and the node snaps back, and undo takes back the whole drag;
 * Ada's cursor shows on Grace's page; a page of another browser context in another room sees
 * none of it. Screenshots go to `test-artifacts/demo-*.png`; with
 * `OBJECTSYNC_WRITE_DOCS_SCREENSHOT=1` the README's picture (`docs/demo.png`) is written too.
 */

import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Point } from "./browser.js";
import { actionsOn, ARTIFACTS, centerOf, drag, EditorLab, frames, front, nodeSel, posOf, screenshot, waitFor, waitPos } from "./browser.js";
import { Lab, REPO_ROOT } from "./harness.js";

const DOCS_PICTURE = join(REPO_ROOT, "docs", "demo.png");
/** The server's canvas (`src/presets/demo.rs`): a node's corner must stay in 0..2000 x 0..1200. */
const CANVAS = { width: 2000, height: 1200 };

const editors = new EditorLab();
const lab = new Lab();
const errors = editors.errors;

beforeAll(() => editors.start(["main.js", "index.html", "dom/main.js"]));

afterAll(async () => {
  lab.closeAll();
  await editors.stop();
});

const newContext = (viewport?: { width: number; height: number }) => editors.newContext(viewport);

/** Opens the vanilla editor in `room` as `name` and waits until it joined. */
const open = (context: BrowserContext, room: string, name: string) => editors.open(context, `/?room=${room}&name=${name}`, name);

/** The node ids shown on `page`, in document order. */
function nodeIds(page: Page): Promise<string[]> {
  return page.$$eval('[data-testid="node"]', (els) => els.map((e) => (e as HTMLElement).dataset.id ?? ""));
}

/** A point on node `id` that drags it (its empty bottom strip). */
async function grabPoint(page: Page, id: string): Promise<Point> {
  const box = await page.locator(nodeSel(id)).boundingBox();
  if (box === null) throw new Error(`node ${id} is not visible`);
  const p = { x: Math.round(box.x + box.width / 2), y: Math.round(box.y + box.height - 5) };
  const hit = await page.evaluate(({ x, y }) => document.elementFromPoint(x, y)?.closest<HTMLElement>('[data-testid="node"]')?.dataset.id, p);
  if (hit !== id) throw new Error(`node ${id} is covered at (${p.x}, ${p.y}) by ${hit ?? "nothing"}`);
  return p;
}

/** The edges shown on `page` as `from->to` (hidden ones included, marked). */
function edgesOf(page: Page): Promise<string[]> {
  return page.$$eval('[data-testid="edge"]', (els) =>
    els.map((e) => {
      const g = e as SVGGElement;
      return `${g.dataset.from}->${g.dataset.to}${g.style.display === "none" ? " (hidden)" : ""}`;
    }),
  );
}

/** Waits until `page` shows exactly the edges `expected` (as `from->to`), all visible. */
async function waitEdges(page: Page, expected: readonly string[]): Promise<void> {
  await waitFor(page, (want: readonly string[]) => {
    const got = [...document.querySelectorAll<SVGGElement>('[data-testid="edge"]')].map(
      (g) => `${g.dataset.from}->${g.dataset.to}${g.style.display === "none" ? " (hidden)" : ""}`,
    );
    return JSON.stringify(got.sort()) === JSON.stringify([...want].sort());
  }, expected);
}

/** Waits until every action of `page` is answered. */
async function settled(page: Page): Promise<void> {
  await waitFor(page, () => document.querySelector('[data-testid="status-pending"]')?.textContent === "all saved", null);
}

async function shot(page: Page, name: string): Promise<void> {
  await screenshot(page, `demo-${name}`);
}

describe("the node-graph demo in Chromium", () => {
  const room = `e2e-${Date.now().toString(36)}`;
  let a: Page; // Ada
  let b: Page; // Grace
  let first = "";
  let second = "";

  it("A adds a node, drags it and renames it; B sees it move and get the new title", async () => {
    const context = await newContext();
    a = await open(context, room, "Ada");
    b = await open(context, room, "Grace");
    expect(await b.textContent('[data-testid="status-room"]')).toBe(room);
    await front(a);
    expect(await nodeIds(a)).toEqual([]);
    expect(await a.isVisible('[data-testid="hint"]')).toBe(true);

    await a.click('[data-testid="add-node"]');
    await a.waitForSelector('[data-testid="node"]');
    [first = ""] = await nodeIds(a);
    expect(first).toMatch(/^[A-Za-z0-9]+:\d+$/); // `<clientId>:<n>`
    expect(await a.isVisible('[data-testid="hint"]')).toBe(false);
    const start = await posOf(a, first);
    await waitPos(b, first, start);

    // B records every position it shows while A drags.
    await b.evaluate((sel) => {
      const el = document.querySelector<HTMLElement>(sel);
      if (el === null) throw new Error(`no ${sel}`);
      const w = window as unknown as { seenX: string[] };
      w.seenX = [el.dataset.x ?? ""];
      new MutationObserver(() => w.seenX.push(el.dataset.x ?? "")).observe(el, { attributes: true, attributeFilter: ["data-x"] });
    }, nodeSel(first));

    const grab = await grabPoint(a, first);
    const delta = { x: -200, y: -100 };
    await drag(a, grab, { x: grab.x + delta.x, y: grab.y + delta.y }, 6);
    const end = { x: start.x + delta.x, y: start.y + delta.y };
    await waitPos(a, first, end);
    await waitPos(b, first, end);
    const seen = await b.evaluate(() => new Set((window as unknown as { seenX: string[] }).seenX).size);
    expect(seen).toBeGreaterThanOrEqual(4); // B saw it move, not only land
    const moves = await actionsOn(a, first, "pos");
    expect(moves).toBeGreaterThanOrEqual(3);
    expect(moves).toBeLessThanOrEqual(7); // one per frame with a move, at most

    await a.click(`${nodeSel(first)} [data-testid="node-title"]`);
    await a.keyboard.press("Control+A");
    await a.keyboard.type("Source");
    await waitFor(b, (sel) => document.querySelector<HTMLInputElement>(`${sel} [data-testid="node-title"]`)?.value === "Source", nodeSel(first));
    await a.keyboard.press("Escape");
    await settled(a);
    await shot(b, "moved-and-renamed");
  });

  it("sends one position per animation frame however fast the pointer moves", async () => {
    await front(a);
    const grab = await grabPoint(a, first);
    const before = await actionsOn(a, first, "pos");
    const start = await posOf(a, first);
    await a.mouse.move(grab.x, grab.y);
    await a.mouse.down();
    // 40 pointer moves in one task: one frame, so one action with the last position.
    await a.evaluate(
      ({ sel, x, y }) => {
        const el = document.querySelector(sel);
        if (el === null) throw new Error(`no ${sel}`);
        const pointerId = (window as unknown as { __pointerId: number }).__pointerId;
        for (let i = 1; i <= 40; i++) {
          el.dispatchEvent(new PointerEvent("pointermove", { pointerId, clientX: x + i, clientY: y + i, bubbles: true, isPrimary: true }));
        }
      },
      { sel: nodeSel(first), x: grab.x, y: grab.y },
    );
    await frames(a, 3);
    expect((await actionsOn(a, first, "pos")) - before).toBe(1);
    await a.mouse.move(grab.x + 40, grab.y + 40); // where the synthetic moves ended: nothing new
    await a.mouse.up();
    await frames(a, 3);
    expect((await actionsOn(a, first, "pos")) - before).toBe(1);
    const end = { x: start.x + 40, y: start.y + 40 };
    await waitPos(a, first, end);
    await waitPos(b, first, end);
  });

  it("keeps both edits when two people type into one title at once", async () => {
    const input = `${nodeSel(first)} [data-testid="node-title"]`;
    await front(b);
    await b.click(input);
    await b.keyboard.press("Home");
    await front(a);
    await a.click(input);
    await a.keyboard.press("End");
    await Promise.all([a.keyboard.type("-ada"), b.keyboard.type("grace-")]);
    for (const p of [a, b]) {
      await waitFor(p, (sel) => document.querySelector<HTMLInputElement>(sel)?.value === "grace-Source-ada", input);
    }
    expect([await a.inputValue(input), await b.inputValue(input)]).toEqual(["grace-Source-ada", "grace-Source-ada"]);
    for (const p of [a, b]) {
      await p.keyboard.press("Escape");
      await settled(p);
    }
  });

  it("B connects two nodes by dragging from an output to an input; A sees the edge", async () => {
    await front(a);
    await a.click('[data-testid="add-node"]');
    await waitFor(a, () => document.querySelectorAll('[data-testid="node"]').length === 2, null);
    second = (await nodeIds(a)).find((id) => id !== first) ?? "";
    // Put it to the right of the first node, lower down.
    const p1 = await posOf(a, first);
    const p2 = await posOf(a, second);
    const target = { x: p1.x + 300, y: p1.y + 140 };
    const grab = await grabPoint(a, second);
    await drag(a, grab, { x: grab.x + target.x - p2.x, y: grab.y + target.y - p2.y }, 4);
    await waitPos(b, second, target);

    await front(b);
    const out = await centerOf(b, `${nodeSel(first)} [data-port="out"]`);
    const inPort = await centerOf(b, `${nodeSel(second)} [data-port="in"]`);
    await drag(b, out, inPort, 5, async () => {
      // While connecting, the input under the pointer is highlighted and the preview drawn.
      expect(await b.getAttribute(`${nodeSel(second)} [data-port="in"]`, "class")).toContain("drop-target");
      expect(await b.isVisible("#preview")).toBe(true);
    });
    expect(await b.isVisible("#preview")).toBe(false);
    await waitEdges(b, [`${first}->${second}`]);
    await waitEdges(a, [`${first}->${second}`]);
    expect(await a.getAttribute('[data-testid="edge"] .edge-line', "d")).toMatch(/^M [\d.]+ [\d.]+ C /);
    await settled(b);
    await shot(a, "edge");
  });

  it("an edge from a node to itself is refused by the server and rolled back", async () => {
    await front(b);
    const out = await centerOf(b, `${nodeSel(second)} [data-port="out"]`);
    const inPort = await centerOf(b, `${nodeSel(second)} [data-port="in"]`);
    await drag(b, out, inPort, 4);
    await waitFor(
      b,
      () => {
        const text = document.querySelector('[data-testid="status-reject"]')?.textContent ?? "";
        return /^last reject: invalid: .*an edge cannot connect a node to itself/.test(text);
      },
      null,
    );
    await settled(b);
    await waitEdges(b, [`${first}->${second}`]);
    expect(await edgesOf(a)).toEqual([`${first}->${second}`]);
  });

  it("A deletes a node and its edge disappears in both pages; undo brings both back", async () => {
    await front(a);
    const edgesBefore = await edgesOf(a);
    await a.click(`${nodeSel(second)} .node-ports`); // select it (not a port, not the title)
    expect(await a.getAttribute(nodeSel(second), "class")).toContain("selected");
    await a.keyboard.press("Delete");
    const gone = (p: Page) => waitFor(p, (sel) => document.querySelector(sel) === null, nodeSel(second));
    const back = (p: Page) => waitFor(p, (sel) => document.querySelector(sel) !== null, nodeSel(second));
    for (const p of [a, b]) {
      await gone(p);
      await waitEdges(p, []);
    }
    await settled(a);

    await a.keyboard.press("Control+Z");
    for (const p of [a, b]) {
      await back(p);
      await waitEdges(p, edgesBefore);
    }
    await settled(a);
    // Redo (the button) deletes them again, undo (the button) restores them again.
    await a.click('[data-testid="redo"]');
    for (const p of [a, b]) {
      await gone(p);
      await waitEdges(p, []);
    }
    expect(await nodeIds(b)).toEqual([first]);
    await settled(a);
    await a.click('[data-testid="undo"]');
    for (const p of [a, b]) {
      await back(p);
      await waitEdges(p, edgesBefore);
    }
    expect((await nodeIds(b)).sort()).toEqual([first, second].sort());
    await settled(a);
  });

  it("shows A's cursor, labelled with A's name, on B's page", async () => {
    await front(a);
    const world = await a.$eval("#world", (el) => {
      const r = el.getBoundingClientRect();
      return { x: r.left, y: r.top };
    });
    const at = { x: 700, y: 420 };
    await a.mouse.move(at.x, at.y);
    const expected = { x: Math.round(at.x - world.x), y: Math.round(at.y - world.y) };
    await waitFor(
      b,
      ({ x, y }) =>
        [...document.querySelectorAll<HTMLElement>('[data-testid="cursor"]')].some(
          (c) => c.textContent === "Ada" && c.dataset.x === String(x) && c.dataset.y === String(y),
        ),
      expected,
    );
    expect(await b.$$eval('[data-testid="person"]', (els) => els.map((e) => e.textContent))).toEqual(["Ada"]);
    expect(await b.textContent('[data-testid="me"]')).toBe("Grace (you)");
    await shot(b, "cursor");
  });

  it("a drag off the canvas is refused by the server and the node snaps back", async () => {
    await front(a);
    // Scroll A so that the canvas's right edge is in view, and add a node near it.
    await a.$eval(
      '[data-testid="viewport"]',
      (v, width) => {
        v.scrollLeft = 40 + width - 800;
      },
      CANVAS.width,
    );
    await frames(a);
    const before = new Set(await nodeIds(a));
    await a.click('[data-testid="add-node"]');
    await waitFor(a, (n) => document.querySelectorAll('[data-testid="node"]').length === n, before.size + 1);
    const near = (await nodeIds(a)).find((id) => !before.has(id)) ?? "";
    await settled(a);
    const start = await posOf(a, near);
    expect(start.x).toBeGreaterThan(CANVAS.width - 600);
    expect(start.x).toBeLessThanOrEqual(CANVAS.width);
    const rejectBefore = (await a.textContent('[data-testid="status-reject"]')) ?? "";

    // A records every position it shows the node at.
    await a.evaluate((sel) => {
      const el = document.querySelector<HTMLElement>(sel);
      if (el === null) throw new Error(`no ${sel}`);
      const w = window as unknown as { shownX: number[] };
      w.shownX = [];
      new MutationObserver(() => w.shownX.push(Number(el.dataset.x))).observe(el, { attributes: true, attributeFilter: ["data-x"] });
    }, nodeSel(near));
    const grab = await grabPoint(a, near);
    const dx = CANVAS.width - start.x + 150; // ends 150 px past the edge
    await drag(a, grab, { x: grab.x + dx, y: grab.y }, 6, async () => {
      await a.screenshot({ path: join(ARTIFACTS, "demo-off-canvas-dragging.png") });
    });
    await waitFor(
      a,
      (prev) => {
        const t = document.querySelector('[data-testid="status-reject"]')?.textContent ?? "";
        return t !== prev && /^last reject: invalid: .*x = \d+ is outside the canvas \(0\.\.2000\)/.test(t);
      },
      rejectBefore,
    );
    await settled(a);
    const back = await posOf(a, near);
    expect(back.x).toBeLessThanOrEqual(CANVAS.width);
    expect(back.x).toBeLessThan(start.x + dx); // not where the pointer left it
    expect(back.y).toBe(start.y);
    expect(await a.getAttribute(nodeSel(near), "class")).not.toContain("outside");
    // It was shown out there (optimistically, before the server's answer), then rolled back.
    const shown = await a.evaluate(() => (window as unknown as { shownX: number[] }).shownX);
    expect(Math.max(...shown)).toBeGreaterThan(CANVAS.width);
    expect(shown.at(-1)).toBe(back.x);
    await waitPos(b, near, back); // the server's position, the same in both pages
    await shot(a, "off-canvas-snapped-back");

    // The accepted part of the drag is one undo step: Ctrl+Z puts the node back where it started.
    await a.keyboard.press("Control+Z");
    await waitPos(a, near, start);
    await waitPos(b, near, start);
    await settled(a);
  });

  it("a page of another browser context in another room sees none of it", async () => {
    const other = await newContext();
    const c = await open(other, `${room}-other`, "Linus");
    await front(c);
    expect(await nodeIds(c)).toEqual([]);
    expect(await c.$$('[data-testid="edge"]')).toHaveLength(0);
    expect(await c.$$('[data-testid="cursor"]')).toHaveLength(0);
    expect(await c.$$('[data-testid="person"]')).toHaveLength(0);
    expect(await c.isVisible('[data-testid="hint"]')).toBe(true);
    // And what it does stays there.
    const countA = (await nodeIds(a)).length;
    await c.click('[data-testid="add-node"]');
    await c.waitForSelector('[data-testid="node"]');
    await settled(c);
    await c.mouse.move(400, 300);
    await shot(c, "other-room");
    await front(a);
    await a.mouse.move(420, 320);
    await settled(a);
    expect((await nodeIds(a)).length).toBe(countA);
    expect(await a.$$eval('[data-testid="person"]', (els) => els.map((e) => e.textContent))).toEqual(["Grace"]);
    await other.close();
  });

  it("no page reported an error", () => {
    expect(errors).toEqual([]);
  });
});

describe("the README's picture", () => {
  it("shows nodes, edges and a remote cursor", async () => {
    const server = editors.running;
    const room = "demo"; // a fresh server (in memory): the status line reads as after `scripts/run`
    // Another person, joined from node: four nodes, three edges, a cursor.
    const ada = await lab.join(server.wsUrl(room), {}, {}, "ada");
    const node = (title: string, x: number, y: number, color: string) =>
      ada.create("Node", "graph", { attrs: { title, pos: { x, y }, color } });
    const sensor = node("Temperature", 40, 150, "#0e9aa7");
    const smooth = node("Smooth (5 min)", 300, 60, "#8250df");
    const chart = node("Chart", 580, 30, "#2da44e");
    const alert = node("Alert if > 30°", 580, 260, "#e5534b");
    for (const [from, to] of [
      [sensor, smooth],
      [smooth, chart],
      [smooth, alert],
    ] as const) {
      ada.create("Edge", "graph", { attrs: { from: from.id, to: to.id } });
    }
    await lab.settled([ada], 7);
    ada.setPresence({ name: "Ada", x: 470, y: 214 });

    const context = await newContext({ width: 900, height: 600 });
    const grace = await open(context, room, "Grace");
    await front(grace);
    await waitFor(grace, () => document.querySelectorAll('[data-testid="edge"] .edge-line[d]').length === 3, null);
    await waitFor(grace, () => document.querySelector('[data-testid="cursor"][data-x="470"]') !== null, null);
    await grace.click(`${nodeSel(alert.id)} .node-ports`); // one node selected
    await grace.mouse.move(880, 560);
    await frames(grace, 8); // the cursor's short CSS transition
    const artifact = await screenshot(grace, "demo-picture");
    if (process.env.OBJECTSYNC_WRITE_DOCS_SCREENSHOT === "1") await copyFile(artifact, DOCS_PICTURE);
    await context.close();
    expect(errors).toEqual([]);
  });
});
