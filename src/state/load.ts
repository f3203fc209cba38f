/**
 * Reading the state dir at start: the snapshot, then the journal that continues it. A snapshot
 * that cannot be read (or that a newer volgate wrote) is quarantined with its journal, never wiped;
 * a torn journal tail is dropped; a corrupt secrets.json is quarantined on its own, so the volumes
 * still load (those that needed an inline secret then say so in Status).
 */
import { join } from "node:path";
import type { Logger } from "../logger.ts";
import { quarantine, readIfPresent } from "./files.ts";
import { JOURNAL_FILE, parseJournal, type Replay } from "./journal.ts";
import { apply, type StoredRecord, stored, type Tables } from "./records.ts";
import { EMPTY, parseSecrets, parseSnapshot, SECRETS_FILE, type Snapshot, STATE_FILE } from "./snapshot.ts";

export interface Loaded {
  readonly snapshot: Snapshot;
  readonly replay: Replay | undefined;
  readonly secrets: Map<string, Readonly<Record<string, string>>>;
}

async function loadSecrets(dir: string, log: Logger, stamp: number): Promise<Loaded["secrets"]> {
  const text = await readIfPresent(join(dir, SECRETS_FILE));
  if (text === undefined) return new Map();
  try {
    return parseSecrets(text);
  } catch (err) {
    const moved = await quarantine(dir, SECRETS_FILE, stamp);
    log.error(
      { err, quarantine: moved },
      "secrets file unreadable: moved aside; volumes with inline secrets need them again (docker volume rm, then create)",
    );
    return new Map();
  }
}

async function loadSnapshot(dir: string, log: Logger, stamp: number): Promise<Snapshot | undefined> {
  const text = await readIfPresent(join(dir, STATE_FILE));
  if (text === undefined) return EMPTY;
  try {
    return parseSnapshot(text);
  } catch (err) {
    const moved = await quarantine(dir, STATE_FILE, stamp);
    // The journal continues the snapshot and the secrets belong to its volumes: keep all three together.
    const journal = await quarantine(dir, JOURNAL_FILE, stamp);
    const secrets = await quarantine(dir, SECRETS_FILE, stamp);
    log.error(
      { err, quarantine: moved, journal, secrets },
      "state file unreadable: moved aside, starting with no volumes",
    );
    return undefined;
  }
}

async function loadJournal(dir: string, generation: number, log: Logger, stamp: number) {
  const text = await readIfPresent(join(dir, JOURNAL_FILE));
  if (text === undefined) return undefined;
  const replay = parseJournal(text, generation);
  if (replay) {
    if (replay.droppedBytes > 0) {
      log.warn(
        { bytes: replay.droppedBytes },
        "state journal had a torn or corrupt tail (a crash mid-write): dropped it",
      );
    }
    return replay;
  }
  const header = text.slice(0, Math.max(0, text.indexOf("\n")));
  if (/^\{"journal":1,"generation":\d+\}$/.test(header)) return undefined; // left from before a compaction
  const moved = await quarantine(dir, JOURNAL_FILE, stamp);
  log.error(
    { quarantine: moved },
    "state journal unreadable: moved aside, changes since the last snapshot are lost",
  );
  return undefined;
}

export async function loadStateDir(dir: string, log: Logger): Promise<Loaded> {
  const stamp = Date.now();
  const snapshot = await loadSnapshot(dir, log, stamp);
  if (!snapshot) return { snapshot: EMPTY, replay: undefined, secrets: new Map() };
  const replay = await loadJournal(dir, snapshot.generation, log, stamp);
  return { snapshot, replay, secrets: await loadSecrets(dir, log, stamp) };
}

/** The records a state dir holds (snapshot, then its journal), read without changing anything. */
export async function readState(dir: string): Promise<Map<string, StoredRecord>> {
  const text = await readIfPresent(join(dir, STATE_FILE));
  const snapshot = text === undefined ? EMPTY : parseSnapshot(text);
  const tables: Tables = { volumes: new Map(), meta: new Map(), secrets: new Map() };
  for (const v of snapshot.volumes) apply(tables, { op: "put", v });
  const journal = await readIfPresent(join(dir, JOURNAL_FILE));
  const replay = journal === undefined ? undefined : parseJournal(journal, snapshot.generation);
  for (const t of replay?.ops ?? []) for (const op of t) apply(tables, op);
  return new Map([...tables.volumes].map(([name, record]) => [name, stored(record)]));
}
