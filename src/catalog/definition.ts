/**
 * What the shared catalog holds of a volume: its definition (backend, options, where its directory
 * is, when and where it was created), never a secret and never a mount count; and the key layout.
 *
 *   <prefix>volumes/<name>        the definition (JSON)
 *   <prefix>inuse/<name>/<node>   a node holds mounts of the volume (leased: gone with the node)
 *   <prefix>guard/<name>          rewritten with every in-use marker, so a Remove that read no
 *                                 markers can prove none appeared before it deleted the definition
 */
import { isValidName } from "../names.ts";
import { type StoredDefinition, type Strings, sameStrings, type VolumeRecord } from "../state/records.ts";
import type { KV } from "./kv.ts";

export type Definition = StoredDefinition;

export const keys = (prefix: string) => ({
  volumes: `${prefix}volumes/`,
  volume: (name: string) => `${prefix}volumes/${name}`,
  inUse: (name: string) => `${prefix}inuse/${name}/`,
  marker: (name: string, node: string) => `${prefix}inuse/${name}/${node}`,
  allInUse: `${prefix}inuse/`,
  guard: (name: string) => `${prefix}guard/${name}`,
});

export function definitionOf(record: VolumeRecord): Definition {
  const { name, backend, options, createdAt, subdir } = record;
  return { name, backend, options, createdAt, subdir };
}

function encode(def: Definition): string {
  const { name: _name, ...rest } = def;
  return JSON.stringify(rest);
}

/**
 * A stored definition, or undefined for anything malformed (logged by the caller, never trusted):
 * a key's name becomes a mountpoint under the root, so it must be a volume name like any Create's.
 */
export function decode(name: string, text: string): Definition | undefined {
  if (!isValidName(name)) return undefined;
  try {
    const v = JSON.parse(text) as Partial<Definition>;
    const options = v.options as Record<string, unknown> | undefined;
    const ok =
      typeof v.backend === "string" &&
      typeof v.createdAt === "string" &&
      typeof v.subdir === "string" &&
      typeof options === "object" &&
      options !== null &&
      Object.values(options).every((o) => typeof o === "string");
    return ok
      ? {
          name,
          backend: v.backend as string,
          options: options as Strings,
          createdAt: v.createdAt as string,
          subdir: v.subdir as string,
        }
      : undefined;
  } catch {
    return undefined;
  }
}

/** The same volume: same backend and options (swarm creates it on every node; CreatedAt differs). */
export function sameVolume(
  a: Pick<Definition, "backend" | "options">,
  b: Pick<Definition, "backend" | "options">,
): boolean {
  return a.backend === b.backend && sameStrings(a.options, b.options);
}

/**
 * Put `def` at its key unless a definition is there: resolves with the definition that now stands
 * (`def`, or the one found there; undefined when what is there is malformed).
 */
export async function createIfAbsent(
  kv: KV,
  prefix: string,
  def: Definition,
): Promise<Definition | undefined> {
  const key = keys(prefix).volume(def.name);
  const { ok, read } = await kv.txn(
    [{ key, target: "version", is: "==", value: 0 }],
    [{ put: key, value: encode(def) }],
    [key],
  );
  return ok ? def : read[0] && decode(def.name, read[0].value);
}
