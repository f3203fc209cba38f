/** The nfs mount options' meaning (src/backends/nfs/mount-options.ts): which server ports a mount needs. */
import { describe, expect, it } from "vitest";
import { mountItems, serverPorts, sessionOptions } from "../../../../src/backends/nfs/mount-options.ts";

/** nfs_opts as the allow-list leaves them. */
const allowed = (nfsOpts: string) => sessionOptions(mountItems(nfsOpts, "nfs_opts"), false);

describe("server ports", () => {
  it("knows which ports must answer", () => {
    expect(serverPorts("4", allowed(""))).toEqual([{ port: 2049, role: "NFS" }]);
    expect(serverPorts("4", allowed("port=20490"))).toEqual([{ port: 20490, role: "NFS" }]);
    expect(serverPorts("3", allowed("")).map((p) => p.port)).toEqual([2049, 111]);
    expect(serverPorts("3", allowed("port=2049,mountport=20048"))).toHaveLength(1);
  });
});
