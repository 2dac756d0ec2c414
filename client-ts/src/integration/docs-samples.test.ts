/**
 * Every TypeScript sample in the docs runs: each ```ts (or ```tsx) block of README.md, docs/*.md
 * and client-ts/README.md must be preceded by `<!-- sample: PATH -->` and appear verbatim in PATH,
 * a file of the repository that is type-checked (`npm run typecheck`) and executed by a test (the
 * starter, the DOM example and the flow editor run in Chromium: starter.browser.test.ts,
 * dom-example.browser.test.ts, flow.browser.test.ts).
 * A sample edited in the doc alone, or a file changed under a sample, fails here.
 */

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DOCS = ["README.md", "client-ts/README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
/** Files a sample may come from: what the type-check and the browser tests cover. */
const EXECUTED = [
  "examples/starter/web/main.ts",
  "client-ts/examples/dom/main.ts",
  "client-ts/demo/main.ts",
  "client-ts/demo/flow/main.tsx",
  "client-ts/demo/flow/node.tsx",
];

interface Sample {
  doc: string;
  line: number;
  source: string | null;
  code: string;
}

function samples(doc: string): Sample[] {
  const lines = readFileSync(join(ROOT, doc), "utf8").split("\n");
  const out: Sample[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|tsx|typescript)\b/.test(lines[i] ?? "")) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith("```"));
    let k = i - 1;
    while (k >= 0 && lines[k]?.trim() === "") k--;
    const marker = /^<!-- sample: (\S+) -->$/.exec(lines[k]?.trim() ?? "");
    out.push({ doc, line: i + 1, source: marker?.[1] ?? null, code: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return out;
}

describe("TypeScript samples in the docs", () => {
  const all = DOCS.flatMap(samples);

  it("there are samples to check", () => {
    expect(all.length).toBeGreaterThan(2);
  });

  for (const s of all) {
    it(`${s.doc}:${s.line} is verbatim in a file that is type-checked and executed`, () => {
      expect(s.source, `${s.doc}:${s.line}: put <!-- sample: PATH --> before the block`).not.toBeNull();
      const source = s.source as string;
      expect(EXECUTED, `${source} is not one of the executed files`).toContain(source);
      const text = readFileSync(join(ROOT, source), "utf8");
      expect(text.includes(s.code), `${s.doc}:${s.line}: the block is not a verbatim part of ${source}`).toBe(true);
    });
  }
});
