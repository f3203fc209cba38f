/**
 * What the periodic health check finds wrong with a connection, as Status will say it: a mount
 * that does not answer statfs (a dead or hung helper), or, where the backend can ask its server
 * (Backend.probe; s3fs answers statfs by itself with S3 gone), a server that does not answer.
 */
import { Deadline } from "./deadline.ts";
import { messageOf } from "./errors.ts";
import type { Liveness, MountTable } from "./mountinfo.ts";

/** How long the check waits for a server's answer (as long as for a mount's statfs). */
const SERVER_PROBE_MS = 2000;

export type ServerProbe = (deadline: Deadline) => Promise<void>;

export interface Finding {
  readonly liveness: Liveness;
  /** What is wrong; undefined when nothing is. */
  readonly trouble?: string;
}

export async function findTrouble(mounts: MountTable, dir: string, server?: ServerProbe): Promise<Finding> {
  const liveness = await mounts.probe(dir);
  if (liveness !== "live") {
    return {
      liveness,
      trouble: `the backend mount stopped answering (${liveness}); the next Mount of a volume on it remounts it`,
    };
  }
  try {
    await server?.(Deadline.after(SERVER_PROBE_MS));
    return { liveness };
  } catch (err) {
    return {
      liveness,
      trouble: `the server stopped answering (${messageOf(err)}); the mount stays, and works again when the server does`,
    };
  }
}
