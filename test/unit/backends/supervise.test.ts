/**
 * Waiting for a helper's mount: mountinfo is polled ever less often (a text search that never
 * touches the mount), and the mount is probed (a `stat -f` child) only once it shows there.
 */
import { describe, expect, it } from "vitest";
import { waitForMount } from "../../../src/backends/supervise.ts";
import { Deadline } from "../../../src/deadline.ts";
import type { BackendContext } from "../../../src/host.ts";
import type { Liveness, MountEntry, MountTable } from "../../../src/mountinfo.ts";
import { FakeHost } from "../../fakes/host.ts";
import { captureLog } from "../../fakes/log.ts";
import { failure } from "../../support/expect-error.ts";

const TARGET = "/volgate/conns/c1";
const entry: MountEntry = {
  mountPoint: TARGET,
  fsType: "fuse.sshfs",
  source: "u@h:/",
  options: "rw",
  root: "/",
  dev: "0:50",
};

/** A mount table where `TARGET` shows after `appearMs` and then answers probes with `answer`. */
function countingTable(appearMs: number, answer: Liveness) {
  const since = Date.now();
  const shown = () => Date.now() - since >= appearMs;
  const counts = { finds: 0, probes: 0 };
  const mounts: MountTable = {
    entries: async () => (shown() ? [entry] : []),
    find: async () => {
      counts.finds++;
      return shown() ? entry : undefined;
    },
    probe: async () => {
      counts.probes++;
      return shown() ? answer : "absent";
    },
  };
  const host = new FakeHost();
  const base = host.context({ log: captureLog().log, secretsDir: "/nonexistent", workDir: "/nonexistent" });
  const ctx: BackendContext = { ...base, mounts };
  return { ctx, counts };
}

describe("waitForMount", () => {
  it("polls mountinfo with a backoff and probes the mount once, when it shows", async () => {
    const { ctx, counts } = countingTable(400, "live");
    const started = Date.now();
    await waitForMount(ctx, TARGET, Deadline.after(5000), "test mount");
    const took = Date.now() - started;
    console.log(`mount seen after ${took} ms: ${counts.finds} mountinfo reads, ${counts.probes} probe(s)`);
    expect(counts.probes).toBe(1);
    // 5, 10, 20, 40, 80, then every 100 ms: about 8 reads for 400 ms, where a 25 ms poll made 16.
    expect(counts.finds).toBeLessThanOrEqual(10);
    expect(took).toBeLessThan(400 + 250);
  });

  it("sees a quick mount quickly: the first looks come within milliseconds", async () => {
    const { ctx, counts } = countingTable(8, "live");
    await waitForMount(ctx, TARGET, Deadline.after(5000), "test mount");
    expect(counts.finds).toBeLessThanOrEqual(3);
    expect(counts.probes).toBe(1);
  });

  it("a mount that shows but never answers is probed at most every 100 ms until the deadline", async () => {
    const { ctx, counts } = countingTable(0, "stale");
    const err = await failure(waitForMount(ctx, TARGET, Deadline.after(1000), "test mount"));
    expect(err.kind).toBe("timeout");
    expect(err.message).toMatch(/^test mount timed out after 1s: check that the server is reachable/);
    // A 25 ms poll probed this dead mount 40 times a second.
    expect(counts.probes).toBeLessThanOrEqual(15);
  });
});
