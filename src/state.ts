/**
 * Versioned JSON state: volumes, their options and per-mount-ID counts.
 * Written atomically (tmp + fsync + rename + dir fsync) with mode 0600; a file
 * that cannot be read is quarantined, never wiped. Inline secrets (only when
 * the operator allows them) live in a separate 0600 file, never in state.json.
 */
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "./logger.ts";

export interface VolumeRecord {
  readonly name: string;
  readonly backend: string;
  /** The -o options as given, secrets excluded. */
  readonly options: Readonly<Record<string, string>>;
  /** Inline secret options (only when allowed); kept out of state.json. */
  readonly secrets: Readonly<Record<string, string>>;
  readonly createdAt: string;
  /** The volume's directory inside its connection, found at create (e.g. the remote realpath). */
  readonly subdir: string;
  /** Mount ID -> how many times Docker mounted it with that ID. */
  mounts: Record<string, number>;
}

const STATE_VERSION = 1;
const STATE_FILE = "state.json";
const SECRETS_FILE = "secrets.json";

interface StateFileV1 {
  version: 1;
  volumes: Array<Omit<VolumeRecord, "secrets">>;
}

async function writeAtomic(dir: string, name: string, text: string): Promise<void> {
  const path = join(dir, name);
  const tmp = `${path}.tmp`;
  const file = await open(tmp, "w", 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Turn whatever format is on disk into the current one; throws on anything unreadable. */
function migrate(raw: unknown): StateFileV1 {
  const data = raw as { version?: unknown; volumes?: unknown };
  if (typeof data !== "object" || data === null) throw new Error("not a JSON object");
  if (data.version === STATE_VERSION && Array.isArray(data.volumes)) return data as StateFileV1;
  if (typeof data.version === "number" && data.version > STATE_VERSION) {
    throw new Error(`written by a newer volgate (format ${data.version}); upgrade volgate`);
  }
  throw new Error(`unknown state format ${String(data.version)}`);
}

export class StateStore {
  readonly volumes = new Map<string, VolumeRecord>();
  private writing: Promise<void> = Promise.resolve();
  private pending = false;
  private secretsOnDisk = false;

  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  static async load(dir: string, log: Logger): Promise<StateStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new StateStore(dir, log);
    const text = await readIfPresent(join(dir, STATE_FILE));
    if (text === undefined) return store;
    let state: StateFileV1;
    try {
      state = migrate(JSON.parse(text));
    } catch (err) {
      const quarantine = join(dir, `${STATE_FILE}.corrupt-${Date.now()}`);
      await rename(join(dir, STATE_FILE), quarantine);
      log.error({ err, quarantine }, "state file unreadable: moved aside, starting with no volumes");
      return store;
    }
    const secrets = JSON.parse((await readIfPresent(join(dir, SECRETS_FILE))) ?? "{}") as Record<
      string,
      Record<string, string>
    >;
    store.secretsOnDisk = Object.keys(secrets).length > 0;
    for (const v of state.volumes) {
      store.volumes.set(v.name, { ...v, secrets: secrets[v.name] ?? {} });
    }
    return store;
  }

  /** Persist the current volumes. Concurrent calls share writes: the last one always lands. */
  save(): Promise<void> {
    if (this.pending) return this.writing;
    this.pending = true;
    // A failed write must not stall the chain: the next save tries again.
    this.writing = this.writing
      .catch(() => {})
      .then(async () => {
        this.pending = false;
        await this.write();
      });
    return this.writing;
  }

  private async write(): Promise<void> {
    const volumes: StateFileV1["volumes"] = [];
    const secrets: Record<string, Readonly<Record<string, string>>> = {};
    let anySecret = false;
    for (const { secrets: s, ...v } of this.volumes.values()) {
      volumes.push(v);
      if (Object.keys(s).length > 0) {
        secrets[v.name] = s;
        anySecret = true;
      }
    }
    if (anySecret || this.secretsOnDisk) {
      await writeAtomic(this.dir, SECRETS_FILE, JSON.stringify(secrets));
      this.secretsOnDisk = anySecret;
    }
    const state: StateFileV1 = { version: STATE_VERSION, volumes };
    await writeAtomic(this.dir, STATE_FILE, JSON.stringify(state));
    this.log.trace({ volumes: volumes.length }, "state saved");
  }
}

export function totalMounts(v: VolumeRecord): number {
  let n = 0;
  for (const c of Object.values(v.mounts)) n += c;
  return n;
}
