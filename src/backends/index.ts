/** The backend registry: `-o backend=<name>` picks one of these. */
import type { Backend } from "./backend.ts";
import { nfsBackend } from "./nfs/index.ts";
import { s3fsBackend } from "./s3fs/index.ts";
import { sshfsBackend } from "./sshfs/index.ts";

export type { Backend, Options, Spec } from "./backend.ts";

export type Registry = ReadonlyMap<string, Backend>;

export function createRegistry(): Registry {
  const all: Backend[] = [sshfsBackend as Backend, s3fsBackend as Backend, nfsBackend as Backend];
  return new Map(all.map((b) => [b.name, b]));
}
