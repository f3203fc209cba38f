/**
 * The QEMU guest, for hosts where UML does not boot: `qemu-system-x86_64 -accel tcg` (software
 * emulation; /dev/kvm on these machines is PVM and boots only PVM kernels) running Debian's stock
 * kernel, which .ci/setup unpacks into KERNEL_DIR (vmlinuz, modules, modules.dep).
 *
 * - No network device at all (`-nodefaults -nic none`): the guest's only network is its loopback.
 * - The host's `/` is a read-only 9p share (`-virtfs ...,readonly=on`), the run's temp dir a
 *   read-write one; the initramfs built here (host busybox-static + the virtio/9p modules) mounts
 *   both and switches to the same tmpfs root the UML guest builds (guest-init.ts).
 * - Console on the first serial port, on QEMU's stdout; `-no-reboot` and `panic=-1`: a guest that
 *   fails hard exits instead of rebooting.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { nfsStage, qemuRootStage } from "./guest-init.ts";
import type { GuestKind, GuestOptions, Launch } from "./guest-process.ts";

const exec = promisify(execFile);

/** Host tools the QEMU guest needs besides the NFS ones (busybox from busybox-static: it runs alone). */
export const QEMU_TOOLS = ["qemu-system-x86_64", "busybox"];

const KERNEL_DIR = process.env.VOLGATE_TEST_KERNEL_DIR ?? "/var/cache/volgate-test/kernel";
const BUSYBOX = "/bin/busybox";
/** What the initramfs loads to reach the 9p shares; the rest comes from KERNEL_DIR once mounted. */
const INITRAMFS_MODULES = ["virtio_pci", "9pnet_virtio", "9p"];

interface Kernel {
  readonly release: string;
  readonly vmlinuz: string;
}

/** The unpacked stock kernel, or undefined with what is missing. */
export function qemuKernel(): Kernel | string {
  const modules = join(KERNEL_DIR, "lib/modules");
  const release = existsSync(modules) ? readdirSync(modules)[0] : undefined;
  const vmlinuz = release && join(KERNEL_DIR, "boot", `vmlinuz-${release}`);
  if (!release || !vmlinuz || !existsSync(vmlinuz) || !existsSync(join(modules, release, "modules.dep"))) {
    return `Debian kernel in ${KERNEL_DIR}`;
  }
  return { release, vmlinuz };
}

/** The .ko files, dependencies first, that `modprobe -a` would insert for `names`. */
async function moduleFiles(release: string, names: readonly string[]): Promise<string[]> {
  const { stdout } = await exec("modprobe", [
    "-d",
    KERNEL_DIR,
    "-S",
    release,
    "--show-depends",
    "-a",
    ...names,
  ]);
  const files = stdout.split("\n").flatMap((line) => /^insmod (\S+)/.exec(line)?.[1] ?? []);
  return [...new Set(files)];
}

interface CpioEntry {
  readonly name: string;
  readonly mode: number;
  readonly data?: Buffer;
  /** Character device major:minor. */
  readonly rdev?: readonly [number, number];
}

/** An uncompressed initramfs: the kernel's cpio "newc" format. */
function cpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const all = [...entries, { name: "TRAILER!!!", mode: 0 }];
  all.forEach((e, i) => {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const [major, minor] = e.rdev ?? [0, 0];
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    const fields = [i + 1, e.mode, 0, 0, 1, 0, data.length, 0, 0, major, minor, name.length, 0];
    const header = `070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`;
    parts.push(Buffer.from(header), name, pad(header.length + name.length), data, pad(data.length));
  });
  return Buffer.concat(parts);
}

async function initramfs(dir: string, shares: readonly string[], release: string): Promise<Buffer> {
  const modules = await moduleFiles(release, INITRAMFS_MODULES);
  const dirs = ["bin", "dev", "lib", "proc", "host", "mnt"].map((name) => ({ name, mode: 0o040755 }));
  const names = modules.map((m) => basename(m));
  const init = qemuRootStage(dir, shares, names);
  return cpio([
    ...dirs,
    { name: "dev/console", mode: 0o020600, rdev: [5, 1] },
    { name: "bin/busybox", mode: 0o100755, data: await readFile(BUSYBOX) },
    { name: "init", mode: 0o100755, data: Buffer.from(init) },
    ...(await Promise.all(
      modules.map(async (m) => ({ name: `lib/${basename(m)}`, mode: 0o100644, data: await readFile(m) })),
    )),
  ]);
}

export const qemu: GuestKind = {
  name: "qemu-tcg",
  async prepare(dir: string, id: string, options: GuestOptions): Promise<Launch> {
    const kernel = qemuKernel();
    if (typeof kernel === "string") throw new Error(`qemu-tcg: missing ${kernel} (run .ci/setup)`);
    await writeFile(
      join(dir, "nfs-stage.sh"),
      nfsStage(dir, { modules: "", modroot: KERNEL_DIR, sleep: "/run/busybox sleep" }),
    );
    await writeFile(join(dir, "initramfs.cpio"), await initramfs(dir, options.shares ?? [], kernel.release));
    const share = (tag: string, path: string, extra: string) =>
      `local,path=${path},mount_tag=${tag},security_model=passthrough,multidevs=remap${extra}`;
    const machine = ["-accel", "tcg", "-machine", "pc", "-cpu", "max", "-smp", "2"];
    const devices = [
      "-nodefaults",
      "-no-user-config",
      "-nic",
      "none",
      "-display",
      "none",
      "-serial",
      "stdio",
    ];
    const args = [
      ...["-name", id, ...machine, "-m", String(options.memMb ?? 512), ...devices, "-no-reboot"],
      ...["-kernel", kernel.vmlinuz, "-initrd", join(dir, "initramfs.cpio")],
      ...["-append", "console=ttyS0 panic=-1 quiet"],
      ...["-virtfs", share("hostroot", "/", ",readonly=on"), "-virtfs", share("work", dir, "")],
    ];
    return { command: "qemu-system-x86_64", args };
  },
};
