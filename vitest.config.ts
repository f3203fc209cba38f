import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";

// The suite runs on the Node the plugin ships (rootfs-build/node.sh pins it; .ci/run puts it first on PATH).
const pinned = /^VERSION=(\d+)\./m.exec(readFileSync("rootfs-build/node.sh", "utf8"))?.[1];
const running = process.versions.node.split(".")[0];
if (running !== pinned) {
  throw new Error(
    `the tests run on Node ${pinned} (the plugin's runtime), not ${process.versions.node}: ` +
      `PATH="$(bash rootfs-build/node.sh)/bin:$PATH" npm test (bash .ci/setup installs it)`,
  );
}

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 10_000 } },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // Timed fault scenarios that print figures (test/faults/lib/figures.ts): one file at a
          // time, never beside a file of integration or e2e (the projects without file parallelism
          // share one queue, in the order vitest's sequencer picks), a summary table at the end
          // of the run (summary.ts).
          name: "faults",
          include: ["test/faults/**/*.test.ts"],
          globalSetup: ["test/faults/lib/summary.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
