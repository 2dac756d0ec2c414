import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/** The workspace's packages by name, from their sources (no build needed to test them). */
const alias = {
  "objectsync-client": fileURLToPath(new URL("./src/index.ts", import.meta.url)),
  "objectsync-react": fileURLToPath(new URL("./packages/react/src/index.ts", import.meta.url)),
  "objectsync-react-flow": fileURLToPath(new URL("./packages/react-flow/src/index.ts", import.meta.url)),
};

/**
 * Three projects: `unit` (node, simulated server; the React packages' tests in `packages/` too,
 * each in jsdom by its `@vitest-environment` line), `integration` (node, against the real server
 * binary in ../target/debug) and `browser` (the DOM example, the demos in headless Chromium).
 * `npm test` runs all three; `npm run test:unit` only the first.
 */
export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: "unit",
          include: ["src/**/*.test.ts", "packages/*/src/**/*.test.{ts,tsx}"],
          exclude: ["src/integration/**"],
          environment: "node",
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["src/integration/**/*.test.ts"],
          exclude: ["src/integration/**/*.browser.test.ts"],
          environment: "node",
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: "browser",
          include: ["src/integration/**/*.browser.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
