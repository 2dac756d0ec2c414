/**
 * The starter as a new user takes it: `examples/starter` copied to a temporary directory outside
 * the repository, its crate dependency pointed at this checkout by path and its client
 * dependency at the tarball `npm pack` makes of `client-ts`. The test installs, generates the
 * typed schema with the app's own binary, type-checks (and checks that a misspelt attribute does
 * not compile), bundles the page, starts the app's server on SQLite and drives two pages in
 * headless Chromium: a note added in one shows in the other, typing and recoloring sync, a drag
 * off the board is refused by the server's validator and snaps back, and the notes survive a
 * restart of the server.
 */

import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { BrowserContext, Page } from "playwright-core";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "./harness.js";
import { CHROMIUM_LAUNCH, REPO_ROOT, requireChromium, startBinary } from "./harness.js";

const run = promisify(execFile);
/** Every command of the setup gives up after this long. */
const STEP_MS = 8 * 60_000;

let work = "";
let app = "";
let server: RunningServer | undefined;
let context: BrowserContext | undefined;

/** Runs `cmd` in `cwd`; on failure, the error carries its output. */
async function sh(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, env: { ...process.env, ...env }, timeout: STEP_MS, maxBuffer: 64 << 20 });
    return stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} in ${cwd} failed: ${err.message}\n${err.stdout ?? ""}\n${err.stderr ?? ""}`);
  }
}

const serve = () =>
  startBinary(join(app, "target-link", "notes"), ["serve", "--bind", "127.0.0.1:0", "--data", join(work, "data"), "--static", join(app, "dist")], 30_000);

beforeAll(async () => {
  requireChromium();
  work = await mkdtemp(join(tmpdir(), "objectsync-starter-"));
  app = join(work, "notes");
  // The client as a package: `npm pack` runs its `prepare` build.
  const packed = (await sh(join(REPO_ROOT, "client-ts"), "npm", ["pack", "--silent", "--pack-destination", work])).trim().split("\n").at(-1) ?? "";
  const tarball = join(work, packed);
  await cp(join(REPO_ROOT, "examples", "starter"), app, {
    recursive: true,
    filter: (src) => !/[/\\](target|node_modules|dist|objectsync-data)$/.test(src),
  });
  const cargo = await readFile(join(app, "Cargo.toml"), "utf8");
  await writeFile(join(app, "Cargo.toml"), cargo.replace(/objectsync = \{ path = "[^"]*" \}/, `objectsync = { path = ${JSON.stringify(REPO_ROOT)} }`));
  const pkg = JSON.parse(await readFile(join(app, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  pkg.dependencies["objectsync-client"] = `file:${tarball}`;
  await writeFile(join(app, "package.json"), JSON.stringify(pkg, null, 2));
  // The crate by path, with the repository's own lock file (the same versions, already built in
  // its target directory, and nothing to fetch: cargo trims the lock to the app's needs).
  await cp(join(REPO_ROOT, "Cargo.lock"), join(app, "Cargo.lock"));
  const target = join(REPO_ROOT, "target");
  await sh(app, "cargo", ["build", "--offline"], { CARGO_TARGET_DIR: target });
  await sh(app, "ln", ["-s", join(target, "debug"), "target-link"]);
  await sh(app, "npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"]);
  // The committed schema is what the app's own binary generates.
  const committed = await readFile(join(app, "web", "schema.ts"), "utf8");
  await sh(app, join(app, "target-link", "notes"), ["codegen", "ts", "--out", "web/schema.ts"]);
  expect(await readFile(join(app, "web", "schema.ts"), "utf8")).toBe(committed);
  await sh(app, "npm", ["run", "--silent", "typecheck"]);
  await sh(app, "npm", ["run", "--silent", "build"]);
  server = await serve();
  context = await chromium.launchPersistentContext(join(work, "profile"), { ...CHROMIUM_LAUNCH, args: [...CHROMIUM_LAUNCH.args], viewport: { width: 1600, height: 900 } });
}, STEP_MS * 2);

afterAll(async () => {
  await context?.close();
  await server?.stop();
  if (work !== "") await rm(work, { recursive: true, force: true });
});

describe("the starter, outside the repository", () => {
  it("a misspelt attribute or a value of the wrong kind does not compile", async () => {
    const wrong = join(app, "web", "wrong.ts");
    await writeFile(
      wrong,
      [
        `import { ObjectSyncClient } from "objectsync-client";`,
        `import { BoardObject, NoteObject, schema } from "./schema.js";`,
        `const client = new ObjectSyncClient({ schema });`,
        `declare const board: BoardObject;`,
        `client.create(NoteObject, board, { attrs: { colour: "pink" } });`,
        `client.create(NoteObject, board, { attrs: { x: "left" } });`,
        `client.create("Notes", board);`,
        "",
      ].join("\n"),
    );
    try {
      const failed = await sh(app, "npx", ["tsc", "--noEmit"]).then(
        () => "",
        (e: unknown) => String(e),
      );
      expect(failed).toMatch(/wrong\.ts\(5,\d+\).*colour/);
      expect(failed).toMatch(/wrong\.ts\(6,\d+\)/);
      expect(failed).toMatch(/wrong\.ts\(7,\d+\)/);
    } finally {
      await rm(wrong);
    }
  });

  it("two pages share the board; the server refuses a drag off it; notes survive a restart", async () => {
    if (context === undefined || server === undefined) throw new Error("setup failed");
    const errors: string[] = [];
    const open = async (name: string, room: string): Promise<Page> => {
      const page = await (context as BrowserContext).newPage();
      page.setDefaultTimeout(15_000);
      page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
      await page.goto(`http://${(server as RunningServer).address}/#${room}`);
      await page.waitForSelector('body[data-state="open"]');
      await page.waitForSelector(".note");
      return page;
    };
    const a = await open("A", "trial");
    const b = await open("B", "trial");
    expect(await b.$$eval(".note textarea", (els) => els.map((e) => (e as HTMLTextAreaElement).value))).toEqual(["Double-click the board to add a note"]);

    // A adds a note: it is there at once, and B gets it from the server.
    const board = await a.$("#board");
    const box = await board?.boundingBox();
    if (box == null) throw new Error("no board");
    await a.mouse.dblclick(box.x + 400, box.y + 300);
    await a.waitForFunction(() => document.querySelectorAll(".note").length === 2);
    await b.waitForFunction(() => document.querySelectorAll(".note").length === 2);
    const id = await a.$$eval(".note", (els) => (els[1] as HTMLElement).dataset.id ?? "");
    const note = (p: Page) => p.locator(`.note[data-id="${id}"]`);

    // Typing and recoloring in A show in B.
    await note(a).locator("textarea").fill("hello from A");
    await b.waitForFunction((i) => (document.querySelector(`.note[data-id="${i}"] textarea`) as HTMLTextAreaElement | null)?.value === "hello from A", id);
    await note(a).getByRole("button", { name: "color" }).click();
    await b.waitForFunction((i) => document.querySelector(`.note[data-id="${i}"]`)?.classList.contains("pink") === true, id);

    // A drags the note far right, off the board: the moves past the edge are refused by the
    // server's validator, the note stays on the board, and the page says why.
    const bar = await note(a).locator(".bar").boundingBox();
    if (bar === null) throw new Error("no bar");
    await a.mouse.move(bar.x + 150, bar.y + bar.height / 2);
    await a.mouse.down();
    for (let dx = 100; dx <= 1100; dx += 100) await a.mouse.move(bar.x + 150 + dx, bar.y + bar.height / 2);
    await a.mouse.up();
    await a.waitForFunction(() => document.getElementById("log")?.textContent?.includes("off the board") === true);
    const left = async (p: Page) => Number.parseInt(await note(p).evaluate((el) => (el as HTMLElement).style.left), 10);
    const settled = await left(a);
    expect(settled).toBeLessThanOrEqual(1200);
    expect(settled).toBeGreaterThan(400);
    await b.waitForFunction(([i, l]) => document.querySelector<HTMLElement>(`.note[data-id="${i}"]`)?.style.left === l, [id, `${settled}px`] as const);

    // The server restarts on the same SQLite data: the board is as it was.
    await server.stop();
    server = await serve();
    const c = await open("C", "trial");
    await c.waitForFunction((i) => (document.querySelector(`.note[data-id="${i}"] textarea`) as HTMLTextAreaElement | null)?.value === "hello from A", id);
    expect(await note(c).evaluate((el) => el.classList.contains("pink"))).toBe(true);
    expect(errors).toEqual([]);
  });
});
