/** Helper logs in the work dir stay under their limit, however much a helper writes, keeping its last lines. */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRunner } from "../../src/command.ts";
import { capHelperLogs } from "../../src/helper-logs.ts";
import { captureLog } from "../fakes/log.ts";

const limits = { maxBytes: 256 * 1024, keepBytes: 32 * 1024 };
/** A helper that writes numbered 1 KiB lines, 8 of them every 2 ms (~4 MB/s, sshfs -d at full tilt), and says how many. */
const CHATTY = `
const pad = "x".repeat(1000);
let n = 0;
setInterval(() => { for (let i = 0; i < 8; i++) process.stdout.write(\`line \${++n} \${pad}\\n\`); }, 2);
process.on("SIGTERM", () => { process.stderr.write(\`wrote \${n}\\n\`); process.exit(0); });
`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "volgate-helper-logs-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("helper logs", () => {
  it("a chatty helper's log stays under its limit and keeps its last lines", async () => {
    const capped = capHelperLogs(dir, captureLog().log, limits);
    const logFile = join(dir, "chatty-1.log");
    const helper = createRunner(dir).start(process.execPath, ["-e", CHATTY], { logFile });
    let largest = 0;
    const until = Date.now() + 2000;
    try {
      while (Date.now() < until) {
        largest = Math.max(largest, (await stat(logFile).catch(() => ({ size: 0 }))).size);
        await sleep(5);
      }
    } finally {
      process.kill(-helper.pid, "SIGTERM");
      await helper.exited;
      capped.close();
    }
    const text = await readFile(logFile, "utf8");
    const wrote = Number(/wrote (\d+)/.exec(text)?.[1]);
    const last = Math.max(...[...text.matchAll(/^line (\d+) /gm)].map((m) => Number(m[1])));
    const info = await stat(logFile);
    console.log(
      `chatty helper: wrote ${wrote} KiB in 2 s; its log peaked at ${Math.round(largest / 1024)} KiB (limit ${limits.maxBytes / 1024} KiB)`,
    );
    expect(wrote * 1024).toBeGreaterThan(10 * limits.maxBytes);
    // Checked on every change: what the helper writes while a cut runs can pass the limit, by more on a
    // busy machine (the event loop that cuts shares it); never anything like the 10x written.
    expect(largest).toBeLessThan(4 * limits.maxBytes);
    expect(info.size).toBeLessThan(2 * limits.maxBytes);
    // The last lines are kept, whole, and the file has no hole (the helper appends after a cut).
    expect(last).toBe(wrote);
    // The log starts with a whole line: the cut's note, or a line the helper wrote during the cut.
    expect(text).toMatch(/^(\[volgate: log cut to its last \d+ bytes\]|line \d+ x+)\n/);
    expect(text).toContain("[volgate: log cut to its last ");
    expect(info.blocks * 512).toBeGreaterThanOrEqual(info.size - 4096);
  });

  it("cuts a log that grew while nobody watched (a helper adopted after a restart) as it starts", async () => {
    const old = join(dir, "adopted-1.log");
    await writeFile(old, "old line\n".repeat(100_000));
    const capped = capHelperLogs(dir, captureLog().log, limits);
    try {
      for (let i = 0; i < 100 && (await stat(old)).size > limits.maxBytes; i++) await sleep(10);
      expect((await stat(old)).size).toBeLessThanOrEqual(limits.keepBytes + 100);
      expect(await readFile(join(dir, "adopted-1.log"), "utf8")).toMatch(/old line\n$/);
    } finally {
      capped.close();
    }
  });
});
