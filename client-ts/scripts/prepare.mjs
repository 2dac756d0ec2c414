// `prepare`: builds dist/ when a package of client-ts is packed or installed: the client
// (objectsync-client, this directory) or one of its workspaces (packages/react,
// packages/react-flow, whose `prepare` runs this file; npm runs it in the package's directory).
// npm runs it for a git or a path dependency too; for a path dependency it does not install the
// package's own dev dependencies, so the compiler may be missing: then this installs the
// workspace's first (from npm's cache when it can). A workspace package builds against the
// types of the packages it depends on (the client; objectsync-react), so those are built first
// when they have no dist/.
//
// One at a time: `npm install ./client-ts ./client-ts/packages/react` prepares both at once, in
// one directory tree; a lock directory (`.prepare.lock`) makes the second wait for the first.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const here = resolve(process.cwd());
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const run = (args, cwd) => execFileSync(npm, args, { cwd, stdio: "inherit" });
/** How long to wait for another prepare of this tree (an install of the build tools takes a while). */
const LOCK_WAIT_MS_MAX = 10 * 60_000;
const LOCK_POLL_MS = 200;

/** Runs `fn` holding the lock directory `dir`; a lock whose process is gone is taken over. */
function withLock(dir, fn) {
  const start = Date.now();
  for (;;) {
    try {
      mkdirSync(dir);
      break;
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
      let owner = NaN;
      try {
        owner = Number(readFileSync(join(dir, "pid"), "utf8"));
      } catch {
        // Not written yet: its owner has just taken it.
      }
      if (Number.isInteger(owner) && !alive(owner)) rmSync(dir, { recursive: true, force: true });
      else if (Date.now() - start > LOCK_WAIT_MS_MAX) throw new Error(`another prepare holds ${dir} (process ${owner}); remove it if that is gone`);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, LOCK_POLL_MS);
    }
  }
  try {
    writeFileSync(join(dir, "pid"), String(process.pid));
    fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

withLock(join(root, ".prepare.lock"), () => {
  if (!existsSync(join(root, "node_modules", "typescript"))) {
    console.log("objectsync-client: installing its build tools (typescript) to build dist/");
    run(["install", "--include=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], root);
  }
  // The packages this one builds against (its `file:` dev dependencies, the client and
  // objectsync-react) first, when they have no dist/ yet; then this one.
  for (const dir of localDependencies(here)) buildOnce(dir);
  run(["run", "--silent", "build"], here);
});

/** Builds the package in `dir` unless it has a dist/, after the ones it builds against. */
function buildOnce(dir) {
  if (existsSync(join(dir, "dist", "index.d.ts"))) return;
  for (const dep of localDependencies(dir)) buildOnce(dep);
  run(["run", "--silent", "build"], dir);
}

/** The directories of the `file:` dev dependencies of the package in `dir`. */
function localDependencies(dir) {
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  return Object.values(pkg.devDependencies ?? {})
    .filter((spec) => spec.startsWith("file:"))
    .map((spec) => resolve(dir, spec.slice("file:".length)));
}
