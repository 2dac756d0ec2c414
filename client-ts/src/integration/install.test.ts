/**
 * The packages install from a path with nothing built: a copy of client-ts's committed files
 * (no node_modules, no dist), installed by path into a fresh project. The client builds itself
 * (`prepare`, which installs its compiler first when npm has not) and imports in Node; the React
 * packages (`objectsync-react`, `objectsync-react-flow`, installed as packed copies beside the
 * client, React and React Flow) build themselves the same way, a component of the project's
 * own type-checks against their types and renders on the server with the project's React.
 */

import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./harness.js";

const run = promisify(execFile);
/** Every npm command of a test gives up after this long (an install builds its packages). */
const STEP_MS = 200_000;
const NPM_QUIET = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];
let work = "";

afterAll(async () => {
  if (work !== "") await rm(work, { recursive: true, force: true });
});

/** A fresh directory with a copy of client-ts's committed files (`<dir>/objectsync-client`) and an empty project (`<dir>/app`). */
async function fresh(): Promise<{ pkg: string; app: string }> {
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
  return { pkg, app };
}

/** Runs `cmd` in `cwd`; on failure, the error carries its output. */
async function sh(cwd: string, cmd: string, args: string[]): Promise<string> {
  try {
    return (await run(cmd, args, { cwd, timeout: STEP_MS, maxBuffer: 64 << 20 })).stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} in ${cwd} failed: ${err.message}\n${err.stdout ?? ""}\n${err.stderr ?? ""}`);
  }
}

/** A component of the project's own: the client's status and an empty diagram. */
const APP_TSX = `import type { SObject } from "objectsync-client";
import { ObjectSyncProvider, useStatus } from "objectsync-react";
import type { FlowMapping } from "objectsync-react-flow";
import { useObjectSyncFlow } from "objectsync-react-flow";
import { ReactFlowProvider } from "@xyflow/react";
import { renderToString } from "react-dom/server";

const mapping: FlowMapping = {
  nodeType: "Node",
  edgeType: "Edge",
  toNode: (obj: SObject) => ({ id: obj.id, position: { x: 0, y: 0 }, data: {} }),
  toEdge: () => null,
  setPosition: () => {},
  connect: () => {},
};

function Probe() {
  const state = useStatus((s) => s.state);
  const flow = useObjectSyncFlow(undefined, mapping);
  return <p>{\`\${state}: \${flow.nodes.length} nodes\`}</p>;
}

console.log(renderToString(<ObjectSyncProvider url="ws://127.0.0.1:9/ws/room"><ReactFlowProvider><Probe /></ReactFlowProvider></ObjectSyncProvider>));
`;

const APP_TSCONFIG = {
  compilerOptions: { target: "ES2022", module: "nodenext", moduleResolution: "nodenext", jsx: "react-jsx", strict: true, skipLibCheck: true, outDir: "out", types: [] },
  include: ["app.tsx"],
};

describe("npm install from a path", () => {
  it("builds the client and imports it", { timeout: 240_000 }, async () => {
    const { pkg, app } = await fresh();
    await sh(app, "npm", ["install", pkg, ...NPM_QUIET]);
    await writeFile(join(app, "check.mjs"), `import { ObjectSyncClient, PROTOCOL_VERSION } from "objectsync-client";\nconsole.log(typeof ObjectSyncClient, PROTOCOL_VERSION);\n`);
    const out = await run("node", ["check.mjs"], { cwd: app });
    expect(out.stdout.trim()).toBe("function 1");
  });

  it("builds the React packages, type-checks a component against them and renders it", { timeout: 480_000 }, async () => {
    await rm(work, { recursive: true, force: true });
    const { pkg, app } = await fresh();
    // Packed copies (not links): their imports of React resolve to the project's one React.
    const packages = [pkg, join(pkg, "packages", "react"), join(pkg, "packages", "react-flow")];
    await sh(app, "npm", ["install", "--install-links", ...packages, "react@^19", "react-dom@^19", "@xyflow/react@^12", "typescript@^7", "@types/react@^19", "@types/react-dom@^19", ...NPM_QUIET]);
    await writeFile(join(app, "app.tsx"), APP_TSX);
    await writeFile(join(app, "tsconfig.json"), JSON.stringify(APP_TSCONFIG));
    await sh(app, "npx", ["tsc", "-p", "tsconfig.json"]);
    const out = await sh(app, "node", ["out/app.js"]);
    expect(out.trim()).toMatch(/^<p>[a-z]+: 0 nodes<\/p>$/);
  });
});
