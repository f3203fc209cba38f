/** The volume's directory over SFTP (src/backends/sshfs/remote-dir.ts), against an in-memory SFTP server. */
import { describe, expect, it } from "vitest";
import { resolveRemoteDir } from "../../../../src/backends/sshfs/remote-dir.ts";

/** An in-memory SFTP server: `dirs` and `files` are absolute paths; home is /home/u. */
function fakeSftp(dirs: string[], files: string[] = [], readOnly: string[] = []) {
  const d = new Set(["/", ...dirs]);
  const f = new Set(files);
  const made: string[] = [];
  /** Every request, as `op path`: each one is a round trip to the server. */
  const requests: string[] = [];
  const noSuch = () => Object.assign(new Error("No such file"), { code: 2 });
  const norm = (p: string) => (p === "" || p === "." ? "/home/u" : p.startsWith("/") ? p : `/home/u/${p}`);
  const parent = (p: string) => p.slice(0, p.lastIndexOf("/")) || "/";
  const sftp = {
    realpath(p: string, cb: (err: Error | undefined, abs: string) => void) {
      requests.push(`realpath ${p}`);
      const abs = norm(p);
      // OpenSSH resolves a missing last component, not a missing parent.
      if (!d.has(parent(abs)) && abs !== "/") cb(noSuch(), "");
      else cb(undefined, abs);
    },
    stat(p: string, cb: (err: Error | undefined, s: { isDirectory(): boolean }) => void) {
      requests.push(`stat ${p}`);
      const abs = norm(p);
      if (d.has(abs) || f.has(abs)) cb(undefined, { isDirectory: () => d.has(abs) });
      else cb(noSuch(), { isDirectory: () => false });
    },
    mkdir(p: string, cb: (err: Error | undefined) => void) {
      requests.push(`mkdir ${p}`);
      if (readOnly.some((r) => p.startsWith(`${r}/`))) {
        cb(Object.assign(new Error("Permission denied"), { code: 3 }));
        return;
      }
      d.add(p);
      made.push(p);
      cb(undefined);
    },
  };
  return { sftp: sftp as never, made, dirs: d, requests };
}

describe("resolveRemoteDir", () => {
  const where = "nas:22";
  it("resolves absolute, home-relative and empty paths", async () => {
    const { sftp } = fakeSftp(["/home", "/home/u", "/home/u/data", "/srv", "/srv/x"]);
    expect(await resolveRemoteDir(sftp, { path: "/srv/x/", create: false }, where)).toBe("/srv/x");
    expect(await resolveRemoteDir(sftp, { path: "data", create: false }, where)).toBe("/home/u/data");
    expect(await resolveRemoteDir(sftp, { path: "", create: false }, where)).toBe("/home/u");
  });

  it("asks no more than it needs: an existing directory is one realpath and one stat (plus home for a relative path)", async () => {
    const absolute = fakeSftp(["/home", "/home/u", "/home/u/data", "/srv", "/srv/x"]);
    await resolveRemoteDir(absolute.sftp, { path: "/srv/x", create: true }, where);
    expect(absolute.requests).toEqual(["realpath /srv/x", "stat /srv/x"]);
    const relative = fakeSftp(["/home", "/home/u", "/home/u/data"]);
    await resolveRemoteDir(relative.sftp, { path: "data", create: false }, where);
    expect(relative.requests).toEqual(["realpath .", "realpath /home/u/data", "stat /home/u/data"]);
  });

  it("refuses a missing directory unless create=true, then makes each missing component", async () => {
    const { sftp, made } = fakeSftp(["/home", "/home/u", "/srv"]);
    await expect(resolveRemoteDir(sftp, { path: "/srv/a/b", create: false }, where)).rejects.toThrow(
      "remote directory /srv/a/b does not exist on nas:22: create it or pass -o create=true",
    );
    expect(made).toEqual([]);
    expect(await resolveRemoteDir(sftp, { path: "/srv/a/b", create: true }, where)).toBe("/srv/a/b");
    expect(made).toEqual(["/srv/a", "/srv/a/b"]);
    expect(await resolveRemoteDir(sftp, { path: "new", create: true }, where)).toBe("/home/u/new");
  });

  it("refuses a file, and says when the server refuses mkdir", async () => {
    const { sftp } = fakeSftp(["/home", "/home/u", "/srv", "/ro"], ["/srv/file"], ["/ro"]);
    await expect(resolveRemoteDir(sftp, { path: "/srv/file", create: true }, where)).rejects.toThrow(
      "remote path /srv/file on nas:22 is not a directory: point path at a directory",
    );
    await expect(resolveRemoteDir(sftp, { path: "/ro/x", create: true }, where)).rejects.toThrow(
      "cannot create remote directory /ro/x on nas:22: permission denied",
    );
  });
});
