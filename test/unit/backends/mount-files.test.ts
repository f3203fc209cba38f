/** File calls through a mount as coreutils children: what each answers, errno names, and the deadline. */
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileCallError, MountFiles } from "../../../src/backends/mount-files.ts";
import { type CommandRunner, createRunner } from "../../../src/command.ts";
import { Deadline } from "../../../src/deadline.ts";
import { failure } from "../../support/expect-error.ts";

let dir: string;
let files: MountFiles;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "volgate-mount-files-"));
  await mkdir(join(dir, "real"));
  await writeFile(join(dir, "file"), "x");
  await symlink("real", join(dir, "link"));
  await mkdir(join(dir, "odd\nname"));
  await symlink("odd\nname", join(dir, "odd-link"));
  files = new MountFiles(createRunner(dir), Deadline.after(5000), "test walk");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The FileCallError `p` rejects with. */
async function fileError(p: Promise<unknown>): Promise<FileCallError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FileCallError);
  return err as FileCallError;
}

describe("MountFiles", () => {
  it("tells directories, symlinks (not followed), other files and missing paths apart", async () => {
    expect(await files.kind(join(dir, "real"))).toBe("directory");
    expect(await files.kind(join(dir, "link"))).toBe("symlink");
    expect(await files.kind(join(dir, "file"))).toBe("other");
    expect(await files.kind(join(dir, "missing"))).toBeUndefined();
    expect((await fileError(files.kind(join(dir, "file", "below")))).code).toBe("ENOTDIR");
  });

  it("resolves symlinks exactly, even to a name with a newline", async () => {
    expect(await files.realPath(join(dir, "link"))).toBe(join(dir, "real"));
    expect(await files.realPath(join(dir, "odd-link"))).toBe(join(dir, "odd\nname"));
    expect((await fileError(files.realPath(join(dir, "missing")))).code).toBe("ENOENT");
  });

  it("makes one directory, and says EEXIST or ENOENT as the kernel did", async () => {
    await files.makeDir(join(dir, "made"));
    expect(await files.kind(join(dir, "made"))).toBe("directory");
    expect((await fileError(files.makeDir(join(dir, "made")))).code).toBe("EEXIST");
    expect((await fileError(files.makeDir(join(dir, "no", "parents")))).code).toBe("ENOENT");
  });

  it("lists a directory, and fails on one that is not there", async () => {
    await files.list(dir);
    const err = await fileError(files.list(join(dir, "missing")));
    expect(err.code).toBe("ENOENT");
    expect(err.message).toBe("No such file or directory");
  });

  it("a call that never answers ends at the deadline as the step timing out, with the hint", async () => {
    // A runner whose children hang, as a lookup through a frozen mount does, until they are killed.
    const hung: CommandRunner = {
      run: (file, _args, { deadline }) =>
        new Promise((_resolve, reject) => deadline.onEnd(() => reject(deadline.error(file)))),
      start: () => {
        throw new Error("not used");
      },
    };
    const started = Date.now();
    const slow = new MountFiles(hung, Deadline.after(300), "checking x", "check the server");
    const err = await failure(slow.kind("/anywhere"));
    expect(err.kind).toBe("timeout");
    expect(err.message).toBe("checking x timed out after 0.3s: check the server");
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
