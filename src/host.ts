/**
 * What touches this machine, in one injected seam: the process runner, the mount table and the
 * log; tests fake it. A backend runs with the host and the operator's policy: its BackendContext.
 */
import type { CommandRunner } from "./command.ts";
import type { Logger } from "./logger.ts";
import type { MountTable } from "./mountinfo.ts";

export interface Host {
  readonly runner: CommandRunner;
  readonly mounts: MountTable;
  readonly log: Logger;
}

/** What a backend runs with: the host, and the policy the operator set. */
export interface BackendContext extends Host {
  /** Where credentials profiles live: secrets by reference. */
  readonly secretsDir: string;
  /** A private directory (0700) for files a backend writes: known_hosts, passwd files, helper logs. */
  readonly workDir: string;
  readonly verifyHostKeys: boolean;
}
