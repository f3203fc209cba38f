/**
 * The changes the store takes, turned into the ops a journal line carries (and the inline secrets
 * that live apart from it), and what a failed write tells the user.
 */
import { diskReason, VolgateError } from "../errors.ts";
import {
  type Op,
  type StoredDefinition,
  type Strings,
  stored,
  type Tables,
  type VolumeRecord,
} from "./records.ts";

export type Change =
  | { readonly put: VolumeRecord }
  | { readonly remove: string }
  | { readonly define: StoredDefinition }
  | { readonly forget: string }
  | { readonly mounts: { readonly name: string; readonly counts: Readonly<Record<string, number>> } }
  | { readonly meta: { readonly key: string; readonly value: string | number | null } };

export function saveError(dir: string, err: unknown): VolgateError {
  return new VolgateError(
    "internal",
    `cannot save volgate's state in ${dir} (${diskReason(err)}): nothing was changed; free space or make the directory writable, then try again`,
    { cause: err },
  );
}

export function opsOf(change: Change, secrets: Map<string, Strings | undefined>, tables: Tables): Op[] {
  if ("put" in change) {
    const { put } = change;
    const had = tables.secrets.has(put.name) || secrets.get(put.name) !== undefined;
    if (Object.keys(put.secrets).length > 0 || had) {
      secrets.set(put.name, Object.keys(put.secrets).length > 0 ? put.secrets : undefined);
    }
    return [{ op: "put", v: stored(put) }];
  }
  if ("remove" in change) {
    if (tables.secrets.has(change.remove)) secrets.set(change.remove, undefined);
    return [{ op: "del", name: change.remove }];
  }
  if ("define" in change) return [{ op: "define", v: change.define }];
  if ("forget" in change) return [{ op: "forget", name: change.forget }];
  if ("mounts" in change) return [{ op: "mounts", name: change.mounts.name, mounts: change.mounts.counts }];
  return [{ op: "meta", key: change.meta.key, value: change.meta.value }];
}
