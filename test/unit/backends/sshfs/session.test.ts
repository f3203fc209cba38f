/** What the machine offers the sshfs data path (src/backends/sshfs/session.ts). */
import { describe, expect, it } from "vitest";
import { cpuHasAes, readHostFacts, sshfsVersionOf } from "../../../../src/backends/sshfs/session.ts";
import type { CommandRunner } from "../../../../src/command.ts";
import { FakeHost } from "../../../fakes/host.ts";
import { captureLog } from "../../../fakes/log.ts";

const X86 = `processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx
bugs\t\t: spectre_v1
`;
const X86_NO_AES = X86.replace(" aes ", " ");
const ARM64 = `processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
CPU implementer\t: 0x41
`;

describe("cpuHasAes", () => {
  it("reads the x86 flags and the arm64 features", () => {
    expect(cpuHasAes(X86)).toBe(true);
    expect(cpuHasAes(ARM64)).toBe(true);
    expect(cpuHasAes(X86_NO_AES)).toBe(false);
    expect(cpuHasAes(ARM64.replace(" aes ", " "))).toBe(false);
  });

  it("needs the word itself, on a flags line", () => {
    expect(cpuHasAes(X86_NO_AES.replace("avx", "vaes avx512"))).toBe(false);
    expect(cpuHasAes("model name\t: aes-capable box\n")).toBe(false);
    expect(cpuHasAes("")).toBe(false);
  });
});

describe("sshfsVersionOf", () => {
  it("reads what sshfs --version prints", () => {
    expect(
      sshfsVersionOf("fusermount3 version: 3.14.0\nSSHFS version 3.7.3\nFUSE library version 3.14.0\n"),
    ).toBe("3.7.3");
    expect(sshfsVersionOf("SSHFS version 2.10\nFUSE library version: 2.9.9\n")).toBe("2.10");
    expect(sshfsVersionOf("sshfs: command not found")).toBe("");
  });
});

describe("readHostFacts", () => {
  const context = (host: FakeHost) =>
    host.context({ log: captureLog("info").log, secretsDir: "/x", workDir: "/x" });

  it("asks sshfs once per runner", async () => {
    const host = new FakeHost();
    host.sshfsVersion = "SSHFS version 3.7.1\n";
    const ctx = context(host);
    expect((await readHostFacts(ctx)).sshfsVersion).toBe("3.7.1");
    expect((await readHostFacts(ctx)).sshfsVersion).toBe("3.7.1");
    expect(host.callsOf("sshfs")).toEqual([{ file: "sshfs", args: ["--version"] }]);
  });

  it("asks again after a run that failed", async () => {
    const host = new FakeHost();
    const ctx = context(host);
    let fail = true;
    const runner: CommandRunner = {
      ...ctx.runner,
      run: (file, args, options) =>
        fail ? Promise.reject(new Error("spawn EAGAIN")) : ctx.runner.run(file, args, options),
    };
    expect((await readHostFacts({ ...ctx, runner })).sshfsVersion).toBe("");
    fail = false;
    expect((await readHostFacts({ ...ctx, runner })).sshfsVersion).toBe("3.7.3");
    expect(host.callsOf("sshfs")).toHaveLength(1);
  });
});
