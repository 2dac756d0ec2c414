/**
 * The DOM example end to end in headless Chromium (Debian's `/usr/bin/chromium`, driven by
 * playwright-core; no browser is downloaded): the Rust example `dom_text` serves the bundle
 * from `examples/dom/dist` (`npm run build:examples`) and changes `hello` every second; two
 * pages join room `dom`. Typing in page A shows in page B, a style change made in A shows on
 * B's element, and the Rust timer's changes show in B. Leaves a screenshot in
 * `test-artifacts/dom-example.png`.
 */

import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "./harness.js";
import { CHROMIUM_LAUNCH, DOM_EXAMPLE_BIN, requireChromium, startBinary } from "./harness.js";

const DIST = fileURLToPath(new URL("../../examples/dom/dist/", import.meta.url));
const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));
const COLORS = ["crimson", "teal", "darkorange", "slateblue"];

let server: RunningServer | undefined;
let context: BrowserContext | undefined;
let profile: string | undefined;

beforeAll(async () => {
  requireChromium();
  if (!existsSync(join(DIST, "main.js")) || !existsSync(join(DIST, "index.html"))) {
    throw new Error(`the DOM example is not built in ${DIST}: run \`npm run build:examples\``);
  }
  server = await startBinary(DOM_EXAMPLE_BIN, ["--bind", "127.0.0.1:0", "--static", DIST]);
  profile = await mkdtemp(join(tmpdir(), "objectsync-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    ...CHROMIUM_LAUNCH,
    args: [...CHROMIUM_LAUNCH.args],
    viewport: { width: 900, height: 360 },
  });
});

afterAll(async () => {
  await context?.close();
  if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  await server?.stop();
});

/** What page B's `#hello` showed, recorded by a MutationObserver installed in the page. */
interface Recorder {
  seen: string[];
}

describe("the DOM example in Chromium", () => {
  it("syncs typing, style and the server's changes between two pages", async () => {
    if (context === undefined || server === undefined) throw new Error("setup failed");
    const errors: string[] = [];
    const open = async (name: string): Promise<Page> => {
      const page = await (context as BrowserContext).newPage();
      page.setDefaultTimeout(10_000);
      page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(`${name} console: ${m.text()}`);
      });
      await page.goto(`http://${(server as RunningServer).address}/`);
      await page.waitForSelector('body[data-state="open"]');
      await page.waitForSelector("#hello");
      await page.waitForSelector("#edit:not([disabled])");
      return page;
    };
    const a = await open("A");
    const b = await open("B");

    // The room's Div and Text render with their styles.
    expect(await b.$eval('[data-id="page"]', (el) => (el as HTMLElement).style.padding)).toBe("16px");
    expect(await b.$eval('[data-id="page"] > #hello', (el) => (el as HTMLElement).style.fontSize)).toBe("24px");

    await b.evaluate(() => {
      const el = document.getElementById("hello");
      if (el === null) throw new Error("no #hello");
      const w = window as unknown as Recorder;
      w.seen = [el.textContent ?? ""];
      new MutationObserver(() => w.seen.push(el.textContent ?? "")).observe(el, { childList: true, characterData: true, subtree: true });
    });

    // 1. Typing in A's input shows in B's text. The Rust timer replaces the whole text every
    // second (dropping edits made before it), so type right after a tick, and retry if a tick
    // still overtook the keystrokes.
    let typed = "";
    for (let attempt = 1; attempt <= 3 && typed === ""; attempt++) {
      const token = ` typed-in-A-${attempt}`;
      const before = await a.inputValue("#edit");
      await a.waitForFunction((t) => (document.getElementById("edit") as HTMLInputElement).value !== t, before);
      await a.click("#edit");
      await a.keyboard.press("End");
      await a.keyboard.type(token);
      try {
        await b.waitForFunction((t) => (window as unknown as Recorder).seen.some((s) => s.endsWith(t)), token, { timeout: 3_000 });
        typed = token;
      } catch (e) {
        if (attempt === 3) throw e;
      }
    }
    expect(typed).not.toBe("");

    // 2. A style change made in A (the Bold button sets hello.style["font-weight"]) shows on B.
    await a.click("#bold");
    await b.waitForFunction(() => document.getElementById("hello")?.style.fontWeight === "bold");
    expect(await a.$eval("#hello", (el) => (el as HTMLElement).style.fontWeight)).toBe("bold");

    // 3. The Rust server's timer changes the text and its color: B shows a newer tick.
    const tickNow = await b.$eval("#hello", (el) => Number(/tick (\d+)$/.exec(el.textContent ?? "")?.[1] ?? -1));
    await b.waitForFunction(
      ({ after, colors }) => {
        const el = document.getElementById("hello");
        const m = /^Hello from Rust, tick (\d+)$/.exec(el?.textContent ?? "");
        return m !== null && Number(m[1]) > after && colors.includes(el?.style.color ?? "");
      },
      { after: tickNow, colors: COLORS },
    );
    expect(await b.$eval("#hello", (el) => (el as HTMLElement).style.fontWeight)).toBe("bold"); // the timer sets only the color
    await a.waitForFunction(() => /^Hello from Rust, tick \d+$/.test((document.getElementById("edit") as HTMLInputElement).value));

    await mkdir(ARTIFACTS, { recursive: true });
    await b.screenshot({ path: join(ARTIFACTS, "dom-example.png") });

    // A removed key is removed from B's element.style.
    await a.click("#bold");
    await b.waitForFunction(() => document.getElementById("hello")?.style.fontWeight === "");

    expect(errors).toEqual([]);
    // Only keystrokes overtaken by the timer's whole-text set may have been refused.
    expect(await a.textContent("#log")).toMatch(/^(|refused: text_base_too_old: .*)$/);
  });
});
