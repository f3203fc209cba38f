/**
 * The managed plugin's root filesystem for the e2e tiers: rootfs-build/build.sh into a build dir
 * of the test's own (the Debian base layer is cached in .cache/rootfs), and running programs
 * inside a built rootfs the way its own dynamic loader sees it: chroot, and for a foreign
 * architecture qemu-user copied in as /.qemu (no binfmt_misc needed).
 */
import { copyFile, open, readdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type DockerResult, run } from "./dockerd.ts";
import { which } from "./prereq.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BUILD_SCRIPT = join(REPO, "rootfs-build", "build.sh");

export type Arch = "amd64" | "arm64";

/** ELF e_machine and the loader, per architecture. */
const TARGETS = {
  amd64: { machine: 62, loader: "/lib64/ld-linux-x86-64.so.2", qemu: undefined },
  arm64: { machine: 183, loader: "/lib/ld-linux-aarch64.so.1", qemu: "qemu-aarch64-static" },
} as const;

/** What the build and the checks need on this (amd64) machine. */
export const ROOTFS_TOOLS = ["chroot", "apt-get", "dpkg-deb", "readelf", "icupkg", "qemu-aarch64-static"];

export interface BuiltPlugin {
  readonly dir: string;
  readonly rootfs: string;
  /** What build.sh reported: du -sm of rootfs/. */
  readonly sizeMb: number;
  readonly ms: number;
  readonly cached: boolean;
  readonly output: string;
}

/** rootfs-build/build.sh ARCH with VOLGATE_BUILD_DIR=buildDir: buildDir/plugin-ARCH. */
export async function buildPlugin(arch: Arch, buildDir: string): Promise<BuiltPlugin> {
  const built = await run("bash", [BUILD_SCRIPT, arch], {
    timeoutMs: 540_000, // inside the e2e hookTimeout (600 s); a cold build takes ~40 s
    env: { ...process.env, VOLGATE_BUILD_DIR: buildDir },
  });
  if (built.code !== 0)
    throw new Error(`build.sh ${arch} failed (${built.code}):\n${built.stdout}\n${built.stderr}`);
  const dir = join(buildDir, `plugin-${arch}`);
  const size = /rootfs \(\w+\): (\d+) MB/.exec(built.stdout)?.[1];
  if (size === undefined) throw new Error(`build.sh printed no size:\n${built.stdout}`);
  return {
    dir,
    rootfs: join(dir, "rootfs"),
    sizeMb: Number(size),
    ms: built.ms,
    cached: /base layer \S+: cached/.test(built.stdout),
    output: built.stdout,
  };
}

/** Runs argv inside rootfs (chroot, under qemu for arm64) with the host's /dev bound in. */
export async function inRoot(rootfs: string, arch: Arch, argv: readonly string[]): Promise<DockerResult> {
  const qemuName = TARGETS[arch].qemu;
  const prefix: string[] = [];
  if (qemuName !== undefined) {
    const qemu = which(qemuName);
    if (qemu === undefined) throw new Error(`${qemuName} not found (apt-get install qemu-user-static)`);
    await copyFile(qemu, join(rootfs, ".qemu"));
    prefix.push("/.qemu");
  }
  const dev = join(rootfs, "dev");
  const bound = await run("mount", ["--bind", "/dev", dev]);
  if (bound.code !== 0) throw new Error(`mount --bind /dev ${dev}: ${bound.stderr}`);
  try {
    return await run("chroot", [rootfs, ...prefix, ...argv], { timeoutMs: 120_000 });
  } finally {
    await run("umount", [dev]);
    if (qemuName !== undefined) await rm(join(rootfs, ".qemu"), { force: true });
  }
}

/** `ld.so --list FILE` inside the rootfs: what ldd prints, from the rootfs's own loader. */
export const listLibraries = (rootfs: string, arch: Arch, file: string) =>
  inRoot(rootfs, arch, [TARGETS[arch].loader, "--list", file]);

export interface ElfFile {
  /** Path inside the rootfs (/usr/bin/node). */
  readonly path: string;
  readonly machine: number;
  /** Has a dynamic section that names libraries (readelf -d shows NEEDED). */
  readonly dynamic: boolean;
}

/** Every ELF file in the rootfs (symlinks not followed), with its machine and whether it links libraries. */
export async function elfFiles(rootfs: string): Promise<ElfFile[]> {
  const out: ElfFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      if (!entry.isFile()) continue;
      const head = await fileHead(path, 20);
      if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) continue; // \x7fELF
      const dynamic = (await run("readelf", ["-d", path])).stdout.includes("(NEEDED)");
      out.push({ path: path.slice(rootfs.length), machine: head.readUInt16LE(18), dynamic });
    }
  };
  await walk(rootfs);
  return out;
}

async function fileHead(path: string, bytes: number): Promise<Buffer> {
  const file = await open(path, "r");
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await file.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

export const elfMachine = (arch: Arch): number => TARGETS[arch].machine;
