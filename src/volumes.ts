/**
 * Resolving a stored volume to its backend, typed spec and connection key, cached by its options
 * object (records are replaced on every mount count change; their options stay the same object).
 */
import { join, resolve } from "node:path";
import type { Backend, Registry, Spec } from "./backends/index.ts";
import { invalid, messageOf, shown } from "./errors.ts";
import { isValidName } from "./names.ts";
import type { VolumeRecord } from "./state/records.ts";

export interface Resolved {
  readonly backend: Backend;
  readonly spec: Spec;
  readonly key: string;
  readonly readOnly: boolean;
  readonly target: string;
}

export class Resolver {
  private readonly cache = new WeakMap<object, Resolved>();

  constructor(private readonly backends: Registry) {}

  /** Throws `invalid` when a stored volume no longer parses (e.g. an option was dropped in an upgrade). */
  resolve(record: VolumeRecord): Resolved {
    const hit = this.cache.get(record.options);
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
      readOnly: spec.readOnly,
      target: backend.describe(spec),
    };
    this.cache.set(record.options, resolved);
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

export interface CreateRequest {
  readonly backend: Backend;
  readonly spec: Spec;
  /** The options to keep in state: everything but inline secrets, with `backend`. */
  readonly options: Record<string, string>;
  readonly secrets: Record<string, string>;
}

/** Validate a Create before anything is touched: the name, the backend, its options, inline secrets. */
export function parseCreate(
  backends: Registry,
  name: string,
  opts: Readonly<Record<string, string>>,
  settings: { readonly allowInlineSecrets: boolean; readonly sharedCatalog?: string },
): CreateRequest {
  if (!isValidName(name)) {
    throw invalid(
      `invalid volume name "${shown(name)}": use 1-255 letters, digits, _ . - starting with a letter or digit`,
    );
  }
  const { backend: backendName, ...rest } = opts;
  const known = [...backends.keys()].join(", ");
  if (backendName === undefined) throw invalid(`no backend given: pass -o backend=<${known}>`);
  const backend = backends.get(backendName);
  if (!backend) throw invalid(`unknown backend "${shown(backendName)}": use one of ${known}`);
  const spec = backend.parse(rest);
  const options: Record<string, string> = { backend: backendName };
  const secrets: Record<string, string> = {};
  for (const [k, v] of Object.entries(rest)) (backend.secretOptions.includes(k) ? secrets : options)[k] = v;
  if (Object.keys(secrets).length > 0 && settings.sharedCatalog !== undefined) {
    throw invalid(
      `inline secrets (${Object.keys(secrets).join(", ")}) cannot be used with the shared catalog ${settings.sharedCatalog}: they would be stored there; put them in a credentials profile on every node and pass -o credentials=<profile>`,
    );
  }
  if (Object.keys(secrets).length > 0 && !settings.allowInlineSecrets) {
    throw invalid(
      `inline secrets (${Object.keys(secrets).join(", ")}) are disabled because dockerd stores -o values in plaintext: put them in a credentials profile and pass -o credentials=<profile>`,
    );
  }
  return { backend, spec, options, secrets };
}
