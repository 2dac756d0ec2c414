/**
 * The shared cases of `tests/corpus/` (run by the Rust tests too): loaded at run time with
 * Node's `fs`, whose types the unit tests' tsconfig does not have (a specifier in a variable
 * keeps tsc from looking for them).
 */

/** Reads and parses `tests/corpus/<name>` of the repository. */
export async function loadCorpus(name: string): Promise<unknown> {
  const load = (specifier: string): Promise<{ readFileSync(path: URL, encoding: "utf8"): string }> =>
    import(specifier);
  const fs = await load("node:fs");
  return JSON.parse(fs.readFileSync(new URL(`../../../tests/corpus/${name}`, import.meta.url), "utf8"));
}
