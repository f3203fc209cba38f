/** The `mount -t nfs` command line for a connection, never through a shell, with options fixed by the allow-list. */
import { ALWAYS_OPTIONS } from "./mount-options.ts";
import { type NfsSpec, nfsSource } from "./options.ts";

/**
 * The argv of `mount`: nosuid,nodev always, and `retry=0` unless nfs_opts says otherwise (mount.nfs
 * otherwise retries a refused connection for 2 minutes; the mount deadline bounds everything).
 */
export function nfsMountArgs(spec: NfsSpec, target: string): string[] {
  const opts = [...ALWAYS_OPTIONS, `vers=${spec.vers}`, ...spec.opts];
  if (!spec.opts.some((o) => o.startsWith("retry="))) opts.push("retry=0");
  return ["-t", "nfs", "-o", opts.join(","), "--", nfsSource(spec), target];
}
