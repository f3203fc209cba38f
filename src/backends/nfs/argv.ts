/**
 * The `mount -t nfs` command line for a connection, never through a shell, with options fixed by
 * the allow-list; and the ports that mount needs open, for the reachability check.
 */

import { ALWAYS_OPTIONS } from "./mount-options.ts";
import { type NfsSpec, nfsSource } from "./options.ts";

const NFS_PORT = 2049;
const RPCBIND_PORT = 111;

/**
 * The argv of `mount`: nosuid,nodev always, and `retry=0` unless nfs_opts says otherwise (mount.nfs
 * otherwise retries a refused connection for 2 minutes; the mount deadline bounds everything).
 */
export function nfsMountArgs(spec: NfsSpec, target: string): string[] {
  const opts = [...ALWAYS_OPTIONS, `vers=${spec.vers}`, ...spec.opts];
  if (!spec.opts.some((o) => o.startsWith("retry="))) opts.push("retry=0");
  return ["-t", "nfs", "-o", opts.join(","), "--", nfsSource(spec), target];
}

function optionValue(spec: NfsSpec, key: string): number | undefined {
  const item = spec.opts.find((o) => o.startsWith(`${key}=`));
  return item === undefined ? undefined : Number(item.slice(key.length + 1));
}

/** Ports the mount needs open: NFS (port= or 2049), and rpcbind for v3 unless both ports are fixed. */
export function nfsPorts(spec: NfsSpec): { port: number; role: string }[] {
  const port = optionValue(spec, "port");
  const out = [{ port: port ?? NFS_PORT, role: "NFS" }];
  if (spec.vers === "3" && (port === undefined || optionValue(spec, "mountport") === undefined)) {
    out.push({ port: RPCBIND_PORT, role: "rpcbind, needed for NFSv3" });
  }
  return out;
}
