/**
 * What the state holds and the changes it records: volume records (read-only once stored), and
 * the ops a journal line carries. Applying an op is pure, so loading (replay) and writing (apply
 * after the line is durable) share one definition of what each change means.
 */
export type Strings = Readonly<Record<string, string>>;

export interface VolumeRecord {
  readonly name: string;
  readonly backend: string;
  /** The -o options as given, secrets excluded. */
  readonly options: Strings;
  /** Inline secret options (only when allowed); kept out of the journal and the snapshot. */
  readonly secrets: Strings;
  readonly createdAt: string;
  /** The volume's directory inside its connection, found at create (e.g. the remote realpath). */
  readonly subdir: string;
  /** Mount ID -> how many times Docker mounted it with that ID. Node-local, never in a catalog. */
  readonly mounts: Readonly<Record<string, number>>;
}

/** A record as the journal and the snapshot store it: without its secrets. */
export type StoredRecord = Omit<VolumeRecord, "secrets">;

/** A volume's definition: a record without what is this node's own (mounts, secrets). */
export type StoredDefinition = Omit<StoredRecord, "mounts">;

export type Op =
  | { readonly op: "put"; readonly v: StoredRecord }
  | { readonly op: "del"; readonly name: string }
  /** Set a definition from a shared catalog, keeping the mounts this node counts. */
  | { readonly op: "define"; readonly v: StoredDefinition }
  /** Drop a volume a shared catalog no longer has, unless this node still mounts it. */
  | { readonly op: "forget"; readonly name: string }
  | { readonly op: "mounts"; readonly name: string; readonly mounts: Readonly<Record<string, number>> }
  | { readonly op: "meta"; readonly key: string; readonly value: string | number | null };

/** The in-memory state the ops change. */
export interface Tables {
  readonly volumes: Map<string, VolumeRecord>;
  readonly meta: Map<string, string | number>;
  readonly secrets: Map<string, Strings>;
}

const NONE: Strings = Object.freeze({});

/** Equal as maps: the same keys with the same values, in any order. */
export function sameStrings(a: Strings, b: Strings): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** A map frozen where it is (the store owns what it is given), empty ones all the same object. */
function frozen<T extends object>(map: T): Readonly<T> {
  return Object.keys(map).length === 0 ? (NONE as T) : Object.freeze(map);
}

/** The record as the store hands it out: read-only, without copying what it was given. */
export function freeze(record: StoredRecord, secrets: Strings = NONE): VolumeRecord {
  return Object.freeze({
    ...record,
    options: frozen(record.options),
    secrets: frozen(secrets),
    mounts: frozen(record.mounts),
  });
}

export function stored(record: VolumeRecord): StoredRecord {
  const { secrets: _secrets, ...rest } = record;
  return rest;
}

/** Apply one op to the tables. Ops naming an unknown volume change nothing (a replay may meet them). */
export function apply(tables: Tables, op: Op): void {
  switch (op.op) {
    case "put":
      tables.volumes.set(op.v.name, freeze(op.v, tables.secrets.get(op.v.name)));
      return;
    case "del":
      tables.volumes.delete(op.name);
      return;
    case "define": {
      const mounts = tables.volumes.get(op.v.name)?.mounts ?? {};
      tables.volumes.set(op.v.name, freeze({ ...op.v, mounts }, tables.secrets.get(op.v.name)));
      return;
    }
    case "forget": {
      const record = tables.volumes.get(op.name);
      if (record && totalMounts(record) === 0) tables.volumes.delete(op.name);
      return;
    }
    case "mounts": {
      const record = tables.volumes.get(op.name);
      if (record) tables.volumes.set(op.name, Object.freeze({ ...record, mounts: frozen({ ...op.mounts }) }));
      return;
    }
    case "meta":
      if (op.value === null) tables.meta.delete(op.key);
      else tables.meta.set(op.key, op.value);
      return;
  }
}

export function totalMounts(v: Pick<VolumeRecord, "mounts">): number {
  let n = 0;
  for (const c of Object.values(v.mounts)) n += c;
  return n;
}

/** Is `value` shaped like a stored record? The loader refuses anything else rather than guessing. */
export function isStoredRecord(value: unknown): value is StoredRecord {
  const v = value as Partial<StoredRecord> | null;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.name === "string" &&
    typeof v.backend === "string" &&
    typeof v.createdAt === "string" &&
    typeof v.subdir === "string" &&
    typeof v.options === "object" &&
    v.options !== null &&
    typeof v.mounts === "object" &&
    v.mounts !== null
  );
}
