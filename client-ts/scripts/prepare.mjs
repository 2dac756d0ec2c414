// `prepare`: builds dist/ when the package is packed or installed. npm runs it for a git or a
// path dependency too; for a path dependency it does not install the package's own dev
// dependencies, so the compiler may be missing: then this installs them first (from npm's
// cache when it can).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const run = (args) => execFileSync(npm, args, { cwd: root, stdio: "inherit" });

if (!existsSync(join(root, "node_modules", "typescript"))) {
  console.log("objectsync-client: installing its build tools (typescript) to build dist/");
  run(["install", "--include=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"]);
}
run(["run", "--silent", "build"]);
