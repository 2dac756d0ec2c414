import { defineConfig } from "vitest/config";

/**
 * Three projects: `unit` (node, simulated server), `integration` (node, against the real server
 * binary in ../target/debug) and `browser` (the DOM example in headless Chromium).
 * `npm test` runs all three; `npm run test:unit` only the first.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["src/**/*.test.ts"],
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
