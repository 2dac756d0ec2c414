/**
 * The flow editor (`demo/flow/`, React Flow on `objectsync-react` and `objectsync-react-flow`)
 * end to end in headless Chromium against the real server: `target/debug/objectsync serve
 * --memory --static demo/dist` (built by `npm run build:demo`), page `/flow/`.
 *
 * Two people (Ada and Grace, each in a browser context of their own) share one room: Ada adds
 * nodes and Grace sees them; Ada drags one by its header (a burst of moves in one frame is one
 * action) and Grace sees it land; Grace connects two nodes by their handles, and a backwards
 * edge is drawn; a self edge is refused, in words; Ada renames a node in place; a drag off the
 * canvas is refused and the node returns to where it started on both pages, with the reason and
 * no ids; a whole drag undoes in one step and redoes; Ada deletes a node (its edges go too, the
 * server's reaction) and undo brings everything back; box select and duplicate; zoom; the
 * minimap draws the nodes, pans and zooms; Ada's
 * cursor shows on Grace's page in flow coordinates; both pages show the same diagram, which is
 * what a fresh client loads; the vanilla editor in the same room shows the same nodes and the
 * editors see each other's cursors; the toolbar fits at 700 px. Screenshots: `test-artifacts/flow-*.png`.
 */

import type { BrowserContext, Page } from "playwright-core";
import NodeWebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebSocketConstructor } from "../connection.js";
import { actionsOn, centerOf, drag, EditorLab, frames, front, nodeSel, posOf, screenshot, waitFor, waitPos } from "./browser.js";
import { Lab } from "./harness.js";

interface ShownNode {
  readonly id: string;
  readonly title: string;
  readonly x: number;
  readonly y: number;
}

const editors = new EditorLab();
const lab = new Lab();
const errors = editors.errors;

beforeAll(() => editors.start(["flow/main.js", "flow/index.html"]));

afterAll(async () => {
  lab.closeAll();
  await editors.stop();
});

const newContext = (viewport?: { width: number; height: number }) => editors.newContext(viewport);

/** Opens the flow editor in `room` as `name` and waits until it joined. */
const open = (context: BrowserContext, room: string, name: string) => editors.open(context, `/flow/?room=${room}&name=${name}`, name);

/** The nodes `page` shows, by id. */
function shownNodes(page: Page): Promise<ShownNode[]> {
  return page.$$eval('[data-testid="node"]', (els) =>
    els
      .map((e) => {
        const el = e as HTMLElement;
        return { id: el.dataset.id ?? "", title: el.querySelector('[data-testid="node-title"]')?.textContent ?? "", x: Number(el.dataset.x), y: Number(el.dataset.y) };
      })
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
  );
}

/** The edges `page` shows as `from->to`, sorted. */
function shownEdges(page: Page): Promise<string[]> {
  return page.$$eval(".react-flow__edge", (els) => els.map((e) => `${(e as SVGGElement).dataset.from}->${(e as SVGGElement).dataset.to}`).sort());
}

/** Waits until `page` shows exactly the edges `want` (as `from->to`). */
async function waitEdges(page: Page, want: readonly string[]): Promise<void> {
  await waitFor(
    page,
    (w: readonly string[]) =>
      JSON.stringify([...document.querySelectorAll<SVGGElement>(".react-flow__edge")].map((g) => `${g.dataset.from}->${g.dataset.to}`).sort()) ===
      JSON.stringify([...w].sort()),
    want,
  );
}

/** Waits until `page` shows exactly the node ids `want`. */
async function waitNodes(page: Page, want: readonly string[]): Promise<void> {
  await waitFor(
    page,
    (w: readonly string[]) =>
      JSON.stringify([...document.querySelectorAll<HTMLElement>('[data-testid="node"]')].map((e) => e.dataset.id).sort()) === JSON.stringify([...w].sort()),
    want,
  );
}

/** The pan and zoom of `page`'s diagram (React Flow's viewport transform). */
function viewOf(page: Page): Promise<{ x: number; y: number; zoom: number }> {
  return page.$eval(".react-flow__viewport", (el) => {
    const m = new DOMMatrix(getComputedStyle(el).transform);
    return { x: m.e, y: m.f, zoom: m.a };
  });
}

/** Waits until every action of `page` is answered. */
async function settled(page: Page): Promise<void> {
  await waitFor(page, () => document.querySelector('[data-testid="status-pending"]')?.textContent === "saved", null);
}

/** The edges' stroke (`main.tsx`: #57606a). */
const EDGE_RGB = [0x57, 0x60, 0x6a] as const;
/** A selected edge's stroke (`main.tsx`: #1f6feb). */
const SELECTED_RGB = [0x1f, 0x6f, 0xeb] as const;

/** How many pixels of the screen over the box of `sel` are (within a little) of color `rgb`. */
async function pixelsOf(page: Page, sel: string, rgb: readonly [number, number, number]): Promise<number> {
  const box = await page.locator(sel).first().boundingBox();
  if (box === null) throw new Error(`${sel} is not visible`);
  const png = await page.screenshot({ clip: { x: Math.floor(box.x) - 2, y: Math.floor(box.y) - 2, width: Math.ceil(box.width) + 4, height: Math.ceil(box.height) + 4 } });
  // Decoded by the page itself (an image on a canvas): no PNG decoder here.
  return page.evaluate(
    async ({ data, want }) => {
      const img = new Image();
      img.src = `data:image/png;base64,${data}`;
      await img.decode();
      const canvas = document.createElement("canvas");
      canvas.width = img.width;
      canvas.height = img.height;
      const ctx = canvas.getContext("2d");
      if (ctx === null) return -1;
      ctx.drawImage(img, 0, 0);
      const px = ctx.getImageData(0, 0, img.width, img.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) {
        if (Math.abs((px[i] ?? 0) - want[0]) + Math.abs((px[i + 1] ?? 0) - want[1]) + Math.abs((px[i + 2] ?? 0) - want[2]) < 24) n++;
      }
      return n;
    },
    { data: png.toString("base64"), want: rgb },
  );
}

async function shot(page: Page, name: string): Promise<void> {
  await screenshot(page, `flow-${name}`);
}

async function press(page: Page, keys: string): Promise<void> {
  await front(page);
  await page.locator('[data-testid="stage"]').hover({ position: { x: 5, y: 5 } });
  await page.keyboard.press(keys);
}

describe("the flow editor in Chromium", () => {
  const room = `flow-${Date.now().toString(36)}`;
  let a: Page; // Ada
  let b: Page; // Grace
  let n1 = "";
  let n2 = "";

  it("Ada adds nodes, Grace sees them", async () => {
    a = await open(await newContext(), room, "Ada");
    b = await open(await newContext(), room, "Grace");
    await front(a);
    expect(await shownNodes(a)).toEqual([]);
    expect(await a.isVisible('[data-testid="hint"]')).toBe(true);
    await a.click('[data-testid="add-node"]');
    await a.waitForSelector('[data-testid="node"]');
    await a.click('[data-testid="add-node"]');
    await waitFor(a, () => document.querySelectorAll('[data-testid="node"]').length === 2, null);
    [n1 = "", n2 = ""] = (await shownNodes(a)).map((n) => n.id);
    expect(n1).toMatch(/^[A-Za-z0-9]+:\d+$/);
    await waitNodes(b, [n1, n2]);
    expect(await shownNodes(b)).toEqual(await shownNodes(a));
    expect(await a.isVisible('[data-testid="hint"]')).toBe(false);
    await settled(a);
  });

  it("a drag by the node's header moves it on both pages; a burst of moves in one frame is one action", async () => {
    await front(a);
    const start = await posOf(a, n1);
    const grab = await centerOf(a, `${nodeSel(n1)} [data-testid="node-title"]`);
    const before = await actionsOn(a, n1, "pos");
    await a.mouse.move(grab.x, grab.y);
    await a.mouse.down();
    await a.mouse.move(grab.x + 5, grab.y + 5);
    await frames(a);
    await settled(a);
    const burstBefore = await actionsOn(a, n1, "pos");
    // Thirty moves in one task, so in one animation frame: React Flow moves the node thirty
    // times, the binding sends the last position once.
    await a.evaluate(
      ({ x, y }) => {
        for (let i = 1; i <= 30; i++) {
          window.dispatchEvent(new MouseEvent("mousemove", { clientX: x + 5 + i * 3, clientY: y + 5 + i, bubbles: true, view: window, buttons: 1 }));
        }
      },
      grab,
    );
    await frames(a, 3);
    expect((await actionsOn(a, n1, "pos")) - burstBefore).toBe(1);
    for (let i = 1; i <= 5; i++) {
      await a.mouse.move(grab.x + 95 + i * 11, grab.y + 35 + i * 5);
      await frames(a, 1);
    }
    await a.mouse.up();
    await frames(a);
    // React Flow starts a drag on the first move past its threshold: that move is not counted.
    const end = await posOf(a, n1);
    expect(Math.abs(end.x - (start.x + 150))).toBeLessThanOrEqual(6);
    expect(Math.abs(end.y - (start.y + 60))).toBeLessThanOrEqual(6);
    await waitPos(b, n1, end);
    expect((await actionsOn(a, n1, "pos")) - before).toBeGreaterThanOrEqual(3);
    await settled(a);
  });

  it("Grace connects two nodes by their handles; a backwards edge is drawn; a self edge is refused in words", async () => {
    await front(b);
    const [left, right] = (await shownNodes(b)).sort((p, q) => p.x - q.x);
    if (left === undefined || right === undefined) throw new Error("two nodes expected");
    // Forwards: the left node's out to the right node's in.
    await drag(b, await centerOf(b, `${nodeSel(left.id)} [data-testid="handle-out"]`), await centerOf(b, `${nodeSel(right.id)} [data-testid="handle-in"]`), 8);
    await waitEdges(b, [`${left.id}->${right.id}`]);
    await waitEdges(a, [`${left.id}->${right.id}`]);
    // Backwards: the right node's out to the left node's in.
    await drag(b, await centerOf(b, `${nodeSel(right.id)} [data-testid="handle-out"]`), await centerOf(b, `${nodeSel(left.id)} [data-testid="handle-in"]`), 8);
    const both = [`${left.id}->${right.id}`, `${right.id}->${left.id}`];
    await waitEdges(b, both);
    await waitEdges(a, both);
    // The edge's path in React Flow's <svg> is the invisible one that takes the pointer; its line
    // is drawn along the same path on the edge layer's canvas (objectsync-react-flow's EdgeLayer).
    const back = await b.$eval(`.react-flow__edge[data-from="${right.id}"] path.react-flow__edge-interaction`, (p) => {
      const box = (p as SVGPathElement).getBBox();
      return { length: (p as SVGPathElement).getTotalLength(), width: box.width, height: box.height };
    });
    expect(back.length).toBeGreaterThan(100);
    expect(back.width).toBeGreaterThan(20);
    // Drawn: the screen shows the edges' color over the path's box.
    expect(await pixelsOf(b, `.react-flow__edge[data-from="${right.id}"] path.react-flow__edge-interaction`, EDGE_RGB)).toBeGreaterThan(20);
    // Still React Flow's edge: a click on its line selects it (drawn in the selected color),
    // Delete deletes it on both pages, undo brings it back.
    // (A point of the line no node covers: the two nodes overlap, the edge runs partly under them.)
    const spot = await b.$eval(`.react-flow__edge[data-from="${left.id}"] path.react-flow__edge-interaction`, (p) => {
      const path = p as SVGPathElement;
      const m = path.getScreenCTM();
      if (m === null) throw new Error("the edge is not on screen");
      const length = path.getTotalLength();
      for (let i = 1; i < 50; i++) {
        const at = path.getPointAtLength((length * i) / 50);
        const x = at.x * m.a + at.y * m.c + m.e;
        const y = at.x * m.b + at.y * m.d + m.f;
        if (document.elementFromPoint(x, y) === path) return { x, y };
      }
      throw new Error("no point of the edge is clear of the nodes");
    });
    await b.mouse.click(spot.x, spot.y);
    await b.waitForSelector(`.react-flow__edge.selected[data-from="${left.id}"]`);
    expect(await pixelsOf(b, `.react-flow__edge[data-from="${left.id}"] path.react-flow__edge-interaction`, SELECTED_RGB)).toBeGreaterThan(20);
    await press(b, "Delete");
    await waitEdges(b, [`${right.id}->${left.id}`]);
    await waitEdges(a, [`${right.id}->${left.id}`]);
    await press(b, "Control+z");
    await waitEdges(b, both);
    await waitEdges(a, both);
    // An edge from a node to itself: the server refuses it, the page says why without ids.
    await drag(b, await centerOf(b, `${nodeSel(left.id)} [data-testid="handle-out"]`), await centerOf(b, `${nodeSel(left.id)} [data-testid="handle-in"]`), 8);
    await b.waitForSelector('[data-testid="reject"]');
    const text = (await b.textContent('[data-testid="reject"] span')) ?? "";
    expect(text).toBe("Connection refused: an edge cannot connect a node to itself");
    await settled(b);
    expect(await shownEdges(b)).toEqual([...both].sort());
    await b.click('[data-testid="reject"] button');
    expect(await b.isVisible('[data-testid="reject"]')).toBe(false);
    await shot(b, "grace-edges");
  });

  it("Ada renames a node in place; Grace sees the title", async () => {
    await front(a);
    await a.dblclick(`${nodeSel(n1)} [data-testid="node-title"]`);
    const input = a.locator(`${nodeSel(n1)} [data-testid="node-title-input"]`);
    await input.waitFor();
    await a.keyboard.type("Alpha");
    await a.keyboard.press("Enter");
    await a.waitForSelector(`${nodeSel(n1)} [data-testid="node-title"]`);
    await waitFor(b, (sel) => document.querySelector(sel)?.textContent === "Alpha", `${nodeSel(n1)} [data-testid="node-title"]`);
    await settled(a);
  });

  it("a drag off the canvas is refused: the node returns to where it started on both pages, with the reason", async () => {
    await front(a);
    const start = await posOf(a, n2);
    const grab = await centerOf(a, `${nodeSel(n2)} [data-testid="node-title"]`);
    // Left past x = 0 (the view's origin is 40 px in, zoom 1): the server refuses x < 0.
    await drag(a, grab, { x: grab.x - start.x - 120, y: grab.y }, 10, async () => {
      await waitFor(a, () => document.querySelector('[data-testid="reject"]') !== null, null);
      await shot(a, "refused-while-dragging");
    });
    await waitPos(a, n2, start);
    await waitPos(b, n2, start);
    await settled(a);
    const text = (await a.textContent('[data-testid="reject"] span')) ?? "";
    expect(text).toMatch(/^Move refused: x = -\d+ is outside the canvas \(0\.\.2000\)$/);
    expect(text).not.toMatch(/[\w-]+:\d+/);
    await shot(a, "refused");
    await a.click('[data-testid="reject"] button');
  });

  it("a whole drag undoes in one step and redoes (Ctrl+Z, Ctrl+Shift+Z)", async () => {
    await front(a);
    // Apart from the rename by more than the server's merge window (500 ms), so a step of its own.
    await a.waitForTimeout(700);
    const start = await posOf(a, n1);
    const grab = await centerOf(a, `${nodeSel(n1)} [data-testid="node-title"]`);
    const before = await actionsOn(a, n1, "pos");
    await drag(a, grab, { x: grab.x + 40, y: grab.y + 120 }, 12);
    const end = await posOf(a, n1);
    expect(end.y - start.y).toBeGreaterThan(100);
    await waitPos(b, n1, end);
    await settled(a);
    expect((await actionsOn(a, n1, "pos")) - before).toBeGreaterThan(3);
    await press(a, "Control+z");
    await waitPos(a, n1, start);
    await waitPos(b, n1, start);
    // The title stays: the rename is another step.
    expect(await a.textContent(`${nodeSel(n1)} [data-testid="node-title"]`)).toBe("Alpha");
    await press(a, "Control+Shift+z");
    await waitPos(a, n1, end);
    await waitPos(b, n1, end);
    await settled(a);
  });

  it("Ada deletes a node: its edges go too on both pages; undo brings them back, redo deletes again", async () => {
    await front(a);
    const edges = await shownEdges(a);
    expect(edges.length).toBe(2);
    await a.click(`${nodeSel(n2)} [data-testid="node-title"]`);
    await press(a, "Delete");
    await waitNodes(a, [n1]);
    await waitNodes(b, [n1]);
    await waitEdges(b, []);
    await waitEdges(a, []);
    await settled(a);
    await press(a, "Control+z");
    await waitNodes(b, [n1, n2]);
    await waitEdges(b, edges);
    await waitEdges(a, edges);
    await press(a, "Control+y");
    await waitNodes(b, [n1]);
    await waitEdges(b, []);
    await press(a, "Control+z");
    await waitNodes(b, [n1, n2]);
    await waitEdges(a, edges);
    await settled(a);
  });

  it("box select and duplicate copy nodes with the edges between them; zoom", async () => {
    await front(a);
    const stage = await a.locator('[data-testid="stage"]').boundingBox();
    if (stage === null) throw new Error("no stage");
    // Shift-drag over empty space around every node: a selection box.
    const shown = await shownNodes(a);
    // (Well clear of the nodes: a backwards edge loops around them. The view has moved: the
    // refused drag panned it.)
    const view = await viewOf(a);
    const minX = Math.min(...shown.map((n) => n.x)) + view.x + stage.x - 70;
    const minY = Math.min(...shown.map((n) => n.y)) + view.y + stage.y - 70;
    const maxX = Math.max(...shown.map((n) => n.x)) + view.x + stage.x + 260;
    const maxY = Math.max(...shown.map((n) => n.y)) + view.y + stage.y + 150;
    const hit = await a.evaluate(({ x, y }) => document.elementFromPoint(x, y)?.className, { x: Math.round(minX), y: Math.round(minY) });
    expect(String(hit)).toMatch(/react-flow__pane/);
    await a.keyboard.down("Shift");
    await drag(a, { x: Math.round(minX), y: Math.round(minY) }, { x: Math.round(maxX), y: Math.round(maxY) }, 6, () => shot(a, "box-select"));
    await a.keyboard.up("Shift");
    await waitFor(a, () => document.querySelectorAll(".react-flow__node.selected").length === 2, null);
    // The selection goes to Grace through presence: an outline in Ada's color.
    await waitFor(b, () => document.querySelectorAll('[data-testid="node"].remote').length === 2, null).catch(async (e: unknown) => {
      const classes = await b.$$eval('[data-testid="node"]', (els) => els.map((el) => `${el.className} ${el.getAttribute("style") ?? ""}`));
      const sent = await a.evaluate(() => (window as unknown as { __sent: string[] }).__sent.filter((m) => m.includes('"presence"')).slice(-3));
      throw new Error(`Grace shows ${JSON.stringify(classes)}; Ada sent ${JSON.stringify(sent)}`, { cause: e });
    });
    await a.click('[data-testid="duplicate"]');
    await waitFor(b, () => document.querySelectorAll('[data-testid="node"]').length === 4, null);
    await waitFor(b, () => document.querySelectorAll(".react-flow__edge").length === 4, null);
    const titles = (await shownNodes(b)).map((n) => n.title).sort();
    expect(titles).toEqual(["Alpha", "Alpha copy", "Node 2", "Node 2 copy"]);
    await settled(a);
    // Zoom in with the controls: the nodes get bigger on screen.
    const w0 = (await a.locator(nodeSel(n1)).boundingBox())?.width ?? 0;
    await a.click(".react-flow__controls-zoomin");
    await waitFor(a, (w) => (document.querySelector('[data-testid="node"]')?.getBoundingClientRect().width ?? 0) > w + 5, w0);
    await a.click(".react-flow__controls-zoomout");
    await waitFor(a, (w) => Math.abs((document.querySelector('[data-testid="node"]')?.getBoundingClientRect().width ?? 0) - w) < 1, w0);
    await shot(a, "ada");
  });

  it("the minimap draws the nodes; dragging in it pans the view, the wheel over it zooms", async () => {
    await front(a);
    const canvas = '[data-testid="minimap"] canvas';
    const color = await a.$eval(nodeSel(n1), (el) => getComputedStyle(el).getPropertyValue("--node-color").trim());
    const rgb = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16)) as [number, number, number];
    expect(await pixelsOf(a, canvas, rgb)).toBeGreaterThan(4);
    const at = await centerOf(a, canvas);
    const before = await viewOf(a);
    await drag(a, at, { x: at.x + 20, y: at.y + 10 }, 4);
    const panned = await viewOf(a);
    // The view went right and down over the diagram: the diagram moved left and up.
    expect(panned.x).toBeLessThan(before.x - 10);
    expect(panned.y).toBeLessThan(before.y - 5);
    expect(panned.zoom).toBe(before.zoom);
    await a.mouse.move(at.x, at.y);
    await a.mouse.wheel(0, -200);
    await waitFor(a, (z) => new DOMMatrix(getComputedStyle(document.querySelector(".react-flow__viewport") ?? document.body).transform).a > z + 0.1, panned.zoom);
    await a.mouse.wheel(0, 200);
    await waitFor(a, (z) => Math.abs(new DOMMatrix(getComputedStyle(document.querySelector(".react-flow__viewport") ?? document.body).transform).a - z) < 0.01, panned.zoom);
    await shot(a, "minimap");
  });

  it("Ada's cursor shows on Grace's page where Ada points, in flow coordinates", async () => {
    await front(a);
    const stage = await a.locator('[data-testid="stage"]').boundingBox();
    if (stage === null) throw new Error("no stage");
    const at = { x: Math.round(stage.x + 700), y: Math.round(stage.y + 500) };
    await a.mouse.move(at.x - 10, at.y - 10);
    await a.mouse.move(at.x, at.y);
    // Where that is in flow coordinates, by Ada's view (panned by now).
    const view = await viewOf(a);
    const flow = { x: Math.round((at.x - stage.x - view.x) / view.zoom), y: Math.round((at.y - stage.y - view.y) / view.zoom) };
    await waitFor(
      b,
      (p) => [...document.querySelectorAll<HTMLElement>('[data-testid="cursor"]')].some((c) => c.dataset.x === String(p.x) && c.dataset.y === String(p.y)),
      flow,
    );
    expect(await b.locator('[data-testid="person"]').count()).toBe(1);
    await shot(b, "grace");
  });

  it("both pages show the same diagram, and a fresh client loads it", async () => {
    const server = editors.running;
    await settled(a);
    await settled(b);
    const nodesA = await shownNodes(a);
    const edgesA = await shownEdges(a);
    await waitFor(b, (want) => JSON.stringify([...document.querySelectorAll<HTMLElement>('[data-testid="node"]')].map((e) => `${e.dataset.id} ${e.dataset.x},${e.dataset.y}`).sort()) === JSON.stringify(want), nodesA.map((n) => `${n.id} ${n.x},${n.y}`).sort());
    expect(await shownNodes(b)).toEqual(nodesA);
    expect(await shownEdges(b)).toEqual(edgesA);
    const fresh = await lab.join(server.wsUrl(room), { WebSocket: NodeWebSocket as unknown as WebSocketConstructor });
    const graph = fresh.get("graph");
    if (graph === undefined) throw new Error("no graph");
    const loaded = graph.children
      .filter((c) => c.type === "Node")
      .map((c) => {
        const pos = c.dict("pos").value as { x: number; y: number };
        return { id: c.id, title: c.string("title").value, x: pos.x, y: pos.y };
      })
      .sort((p, q) => (p.id < q.id ? -1 : 1));
    expect(loaded).toEqual(nodesA);
    const loadedEdges = graph.children.filter((c) => c.type === "Edge").map((c) => `${c.ref("from").value}->${c.ref("to").value}`).sort();
    expect(loadedEdges).toEqual(edgesA);
  });

  it("the vanilla editor in the same room shows the same nodes, and the two editors see each other's cursors", async () => {
    const vanilla = await editors.open(await newContext(), `/?room=${room}&name=Vic`, "Vic");
    const ids = (await shownNodes(a)).map((n) => n.id);
    await waitFor(
      vanilla,
      (want: string[]) => JSON.stringify([...document.querySelectorAll<HTMLElement>('[data-testid="node"]')].map((e) => e.dataset.id).sort()) === JSON.stringify(want),
      ids,
    );
    // Ada's pointer (flow editor) on the vanilla page, at the same diagram coordinates.
    await front(a);
    const stage = await a.locator('[data-testid="stage"]').boundingBox();
    if (stage === null) throw new Error("no stage");
    const at = { x: Math.round(stage.x + 600), y: Math.round(stage.y + 420) };
    await a.mouse.move(at.x - 8, at.y - 8);
    await a.mouse.move(at.x, at.y);
    const view = await viewOf(a);
    const flow = { x: Math.round((at.x - stage.x - view.x) / view.zoom), y: Math.round((at.y - stage.y - view.y) / view.zoom) };
    await waitFor(
      vanilla,
      (p) => [...document.querySelectorAll<HTMLElement>('[data-testid="cursor"]')].some((c) => c.dataset.x === String(p.x) && c.dataset.y === String(p.y)),
      flow,
    );
    // Vic's pointer (vanilla editor) on Grace's flow page.
    const before = await b.$$eval('[data-testid="cursor"]', (els) => els.map((e) => (e as HTMLElement).dataset.client ?? ""));
    await front(vanilla);
    const canvas = await vanilla.locator('[data-testid="viewport"]').boundingBox();
    if (canvas === null) throw new Error("no canvas");
    await vanilla.mouse.move(canvas.x + 300, canvas.y + 200);
    await vanilla.mouse.move(canvas.x + 310, canvas.y + 210);
    await waitFor(
      b,
      (known: string[]) => [...document.querySelectorAll<HTMLElement>('[data-testid="cursor"]')].some((c) => !known.includes(c.dataset.client ?? "")),
      before,
    );
    await shot(b, "grace-sees-vic");
    await vanilla.close();
  });

  it("the toolbar fits at 700 px", async () => {
    const narrow = await open(await newContext({ width: 700, height: 560 }), room, "Narrow");
    const fit = await narrow.evaluate(() => {
      const bar = document.querySelector<HTMLElement>('[data-testid="toolbar"]');
      if (bar === null) return { overflow: -1, outside: ["no toolbar"] };
      const outside = [...bar.querySelectorAll<HTMLElement>("button, a, h1")]
        .filter((el) => {
          const r = el.getBoundingClientRect();
          return r.left < 0 || r.right > window.innerWidth || r.top < 0 || r.bottom > bar.getBoundingClientRect().bottom;
        })
        .map((el) => el.textContent ?? "");
      return { overflow: bar.scrollWidth - bar.clientWidth, outside };
    });
    expect(fit).toEqual({ overflow: 0, outside: [] });
    await shot(narrow, "700px");
    expect(errors).toEqual([]);
  });
});
