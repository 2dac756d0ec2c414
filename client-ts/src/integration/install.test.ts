/**
 * The client installs from a path with nothing built: a copy of the package's committed files
 * (no node_modules, no dist), installed by path into a fresh project, builds itself (`prepare`,
 * which installs its compiler first when npm has not) and imports in Node.
 */

import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./harness.js";

const run = promisify(execFile);
let work = "";

afterAll(async () => {
  if (work !== "") await rm(work, { recursive: true, force: true });
});

describe("npm install from a path", () => {
  it("builds the package and imports it", { timeout: 240_000 }, async () => {
    work = await mkdtemp(join(tmpdir(), "objectsync-install-"));
    const pkg = join(work, "objectsync-client");
    const { stdout } = await run("git", ["ls-files"], { cwd: join(REPO_ROOT, "client-ts") });
    for (const file of stdout.split("\n").filter((f) => f !== "")) {
      await mkdir(dirname(join(pkg, file)), { recursive: true });
      await cp(join(REPO_ROOT, "client-ts", file), join(pkg, file));
    }
    const app = join(work, "app");
    await mkdir(app);
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    await run("npm", ["install", pkg, "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: app, timeout: 200_000 });
    await writeFile(join(app, "check.mjs"), `import { ObjectSyncClient, PROTOCOL_VERSION } from "objectsync-client";\nconsole.log(typeof ObjectSyncClient, PROTOCOL_VERSION);\n`);
    const out = await run("node", ["check.mjs"], { cwd: app });
    expect(out.stdout.trim()).toBe("function 1");
  });
});
