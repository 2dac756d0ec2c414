/**
 * `src/protocol/generated.ts` is what the server binary generates now (`objectsync codegen
 * protocol-ts`): the client's close codes, error codes and limits are the server's, not a copy
 * that drifted.
 */

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SERVER_BIN } from "./harness.js";

const run = promisify(execFile);
const GENERATED = fileURLToPath(new URL("../protocol/generated.ts", import.meta.url));
const REGENERATE =
  "client-ts/src/protocol/generated.ts is stale: run (in the repository root) " +
  "cargo build --features presets --bin objectsync && target/debug/objectsync codegen protocol-ts --out client-ts/src/protocol/generated.ts";

describe("the generated protocol constants", () => {
  it("are the output of objectsync codegen protocol-ts", async () => {
    if (!existsSync(SERVER_BIN)) throw new Error(`the server binary ${SERVER_BIN} does not exist: cargo build --features presets --bin objectsync`);
    const { stdout } = await run(SERVER_BIN, ["codegen", "protocol-ts"]);
    expect(await readFile(GENERATED, "utf8"), REGENERATE).toBe(stdout);
  });
});
