/**
 * The backend interface. A backend is a folder, NAME/: index.ts holds its Backend object,
 * options.ts, argv.ts and preflight.ts its parts (the options every backend shares are in
 * ../options.ts). parse (allow-list, typed values, aliases) and connectionKey are pure; preflight
 * checks the remote side at create; mount puts one connection at a target directory through the
 * injected runner.
 */
import type { Deadline } from "../deadline.ts";
import type { BackendContext } from "../host.ts";

export type Options = Readonly<Record<string, string>>;

/** What the core reads from every typed spec. */
export interface Spec {
  /** `-o ro`: the volume's bind mount is read-only (its connection may be shared with writers). */
  readonly readOnly: boolean;
}

export interface Backend<S extends Spec = Spec> {
  readonly name: string;
  /** Options that carry a secret inline: refused unless the operator allows inline secrets. */
  readonly secretOptions: readonly string[];
  /**
   * Names of work-dir files that hold a secret while a mount starts (s3fs's passwd files): the
   * daemon removes any it finds before it listens, so a crash mid-mount leaves none at rest.
   */
  readonly secretWorkFiles?: RegExp;
  /** Validate and type the options; throws `invalid` naming the bad option and what is allowed. */
  parse(opts: Options): S;
  /** Everything that shapes the session; volumes with equal keys share one backend mount. */
  connectionKey(spec: S): string;
  /** Where the data lives, for Status and logs; never a secret. */
  describe(spec: S): string;
  /** Check login, identity and the remote directory; returns the volume's directory inside the connection. */
  preflight(spec: S, ctx: BackendContext, deadline: Deadline): Promise<string>;
  /** Mount the connection at `target`; kill and roll back on deadline. */
  mount(spec: S, target: Target, ctx: BackendContext, deadline: Deadline): Promise<void>;
  /**
   * Ask the server behind a live connection whether it answers, for a helper that answers statfs
   * by itself (s3fs does, with S3 gone): throws what is wrong. The health check calls it, bounded.
   */
  probe?(spec: S, ctx: BackendContext, deadline: Deadline): Promise<void>;
}

/** Where a connection is mounted: an existing empty directory, and the connection's short id. */
export interface Target {
  readonly dir: string;
  /** Given by Connections (it names the directory by it too): a backend names its work files with it. */
  readonly id: string;
}
