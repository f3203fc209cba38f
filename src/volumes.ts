/** Resolving a stored volume to its backend, typed spec and connection key, cached per record. */
import { join, resolve } from "node:path";
import { type Backend, parseBool } from "./backends/backend.ts";
import type { Registry } from "./backends/index.ts";
import { invalid, messageOf } from "./errors.ts";
import type { VolumeRecord } from "./state.ts";

export interface Resolved {
  readonly backend: Backend;
  readonly spec: unknown;
  readonly key: string;
  readonly readOnly: boolean;
  readonly target: string;
}

export class Resolver {
  private readonly cache = new WeakMap<VolumeRecord, Resolved>();

  constructor(private readonly backends: Registry) {}

  /** Throws `invalid` when a stored volume no longer parses (e.g. an option was dropped in an upgrade). */
  resolve(record: VolumeRecord): Resolved {
    const hit = this.cache.get(record);
    if (hit) return hit;
    const backend = this.backends.get(record.backend);
    if (!backend)
      throw invalid(`volume ${record.name} uses backend "${record.backend}", which this volgate lacks`);
    const { backend: _chosen, ...options } = record.options;
    const spec = backend.parse({ ...options, ...record.secrets });
    const resolved = {
      backend,
      spec,
      key: backend.connectionKey(spec),
      readOnly: parseBool("ro", record.options.ro, false),
      target: backend.describe(spec),
    };
    this.cache.set(record, resolved);
    return resolved;
  }

  /** Like resolve, but never throws: Get and List must answer for every known volume. */
  tryResolve(record: VolumeRecord): Resolved | { error: string } {
    try {
      return this.resolve(record);
    } catch (err) {
      return { error: messageOf(err) };
    }
  }
}

/** `<conn>/<subdir>`, refusing anything that would leave the connection directory. */
export function sourceIn(connDir: string, subdir: string): string {
  const source = resolve(connDir, subdir);
  if (source !== connDir && !source.startsWith(`${connDir}/`)) {
    throw invalid(`volume directory "${subdir}" escapes its connection`);
  }
  return subdir === "" ? connDir : join(connDir, subdir);
}
