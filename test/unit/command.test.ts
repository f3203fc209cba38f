/** The one place processes are spawned: no shell, a minimal environment, stdin for secrets, deadlines. */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRunner } from "../../src/command.ts";
import { Deadline } from "../../src/deadline.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "volgate-command-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("command runner", () => {
  it("gives helpers only PATH, LANG and HOME", async () => {
    process.env.VOLGATE_TEST_TOKEN = "must-not-leak";
    const result = await createRunner(dir).run("env", [], { deadline: Deadline.after(5000) });
    delete process.env.VOLGATE_TEST_TOKEN;
    const names = result.stdout
      .trim()
      .split("\n")
      .map((l) => l.split("=")[0])
      .sort();
    expect(names).toEqual(["HOME", "LANG", "PATH"]);
    expect(result.stdout).toContain(`HOME=${dir}`);
  });

  it("never uses a shell: metacharacters arrive as plain arguments", async () => {
    const result = await createRunner(dir).run("echo", ["a; touch /tmp/volgate-pwned", "$(id)"], {
      deadline: Deadline.after(5000),
    });
    expect(result.stdout).toBe("a; touch /tmp/volgate-pwned $(id)\n");
    await expect(stat("/tmp/volgate-pwned")).rejects.toThrow();
  });

  it("passes secrets through stdin", async () => {
    const result = await createRunner(dir).run("cat", [], {
      deadline: Deadline.after(5000),
      stdin: "s3cret\n",
    });
    expect(result.stdout).toBe("s3cret\n");
  });

  it("kills a helper at its deadline, with its children, and answers once they are gone", async () => {
    const started = performance.now();
    await expect(
      createRunner(dir).run("sh", ["-c", "sleep 30.517 & sleep 30.517"], { deadline: Deadline.after(300) }),
    ).rejects.toThrow(/^sh timed out after 0\.3s$/);
    expect(performance.now() - started).toBeLessThan(2000);
    const left = await createRunner(dir).run("pgrep", ["-f", "sleep 30.517"], {
      deadline: Deadline.after(5000),
    });
    expect(left.stdout).toBe("");
  });

  it("says when a child is gone, also after the answer", async () => {
    let gone = 0;
    await createRunner(dir).run("true", [], { deadline: Deadline.after(5000), onGone: () => gone++ });
    expect(gone).toBe(1);
    await expect(
      createRunner(dir).run("sleep", ["30"], { deadline: Deadline.after(100), onGone: () => gone++ }),
    ).rejects.toThrow(/timed out/);
    expect(gone).toBe(2);
  });

  it("kills a helper when the request is aborted", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(
      createRunner(dir).run("sleep", ["30"], { deadline: Deadline.after(10_000, controller.signal) }),
    ).rejects.toThrow(/cancelled/);
  });

  it("supervises a long-running helper whose output goes to a 0600 log file", async () => {
    const logFile = join(dir, "helper.log");
    const helper = createRunner(dir).start("sh", ["-c", "read x; echo got $x; sleep 30"], {
      stdin: "pw\n",
      logFile,
    });
    for (let i = 0; i < 40 && !helper.output().includes("got"); i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(helper.output()).toBe("got pw\n");
    expect((await stat(logFile)).mode & 0o777).toBe(0o600);
    helper.kill();
    expect(await helper.exited).toBeNull();
  });
});
