/**
 * The append-only journal: one line per transaction (`{"t":[op,...]}`), appended and fdatasync'ed
 * before the change counts, so a write costs O(1) in the number of volumes. Concurrent appends share
 * one write and one fdatasync (group commit). A failed append is cut off again (ftruncate) so the
 * file never holds half a line in its middle; if even that fails the journal is marked broken and
 * the store rewrites everything (compaction) before the next change. The first line names the
 * snapshot generation the journal continues, so a journal left from before a compaction is ignored.
 */
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { writeAtomic } from "./files.ts";
import type { Op } from "./records.ts";

export const JOURNAL_FILE = "state.journal";

interface Header {
  readonly journal: 1;
  readonly generation: number;
}

export interface Replay {
  readonly ops: Op[][];
  /** Bytes of complete, valid lines: anything after them is a torn or corrupt tail. */
  readonly validBytes: number;
  readonly droppedBytes: number;
}

/** Parse a journal that continues snapshot `generation`; undefined when it continues another one. */
export function parseJournal(text: string, generation: number): Replay | undefined {
  const firstEnd = text.indexOf("\n");
  if (firstEnd < 0) return undefined;
  const header = tryParse(text.slice(0, firstEnd)) as Partial<Header> | undefined;
  if (header?.journal !== 1 || header.generation !== generation) return undefined;
  const ops: Op[][] = [];
  let at = firstEnd + 1;
  for (;;) {
    const end = text.indexOf("\n", at);
    if (end < 0) break;
    const line = tryParse(text.slice(at, end)) as { t?: unknown } | undefined;
    if (!line || !Array.isArray(line.t)) break;
    ops.push(line.t as Op[]);
    at = end + 1;
  }
  const validBytes = Buffer.byteLength(text.slice(0, at));
  return { ops, validBytes, droppedBytes: Buffer.byteLength(text) - validBytes };
}

function tryParse(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

export class Journal {
  /** Transactions appended since the journal began (the compaction trigger). */
  entries = 0;
  /** An append failed and could not be cut off: the file must be rewritten before it is trusted. */
  broken = false;

  private constructor(
    private readonly file: FileHandle | undefined,
    private bytes: number,
  ) {
    this.broken = file === undefined;
  }

  /**
   * Open the journal continuing `generation`, cut to `validBytes` (a torn tail dropped). On a state
   * dir that cannot be written (read-only, full) the journal opens broken: volgate still starts and
   * answers from what it read, and every change fails with the reason until the disk is fixed.
   */
  static async open(dir: string, generation: number, replay?: Replay): Promise<Journal> {
    try {
      if (!replay) return await Journal.fresh(dir, generation);
      const file = await open(join(dir, JOURNAL_FILE), "r+");
      const journal = new Journal(file, replay.validBytes);
      journal.entries = replay.ops.length;
      if (replay.droppedBytes > 0) {
        await file.truncate(replay.validBytes).then(
          () => file.datasync(),
          () => {
            journal.broken = true;
          },
        );
      }
      return journal;
    } catch {
      return new Journal(undefined, 0);
    }
  }

  /** A new, empty journal continuing `generation`, replacing whatever file was there. */
  static async fresh(dir: string, generation: number): Promise<Journal> {
    const header = `${JSON.stringify({ journal: 1, generation } satisfies Header)}\n`;
    await writeAtomic(dir, JOURNAL_FILE, header);
    const file = await open(join(dir, JOURNAL_FILE), "r+");
    return new Journal(file, Buffer.byteLength(header));
  }

  /** Append transactions durably, in order; on failure nothing of them stays in the file. */
  async append(transactions: readonly (readonly Op[])[]): Promise<void> {
    if (this.broken || !this.file) throw new Error("the journal needs a rewrite after a failed write");
    const file = this.file;
    const text = transactions.map((t) => `${JSON.stringify({ t })}\n`).join("");
    const data = Buffer.from(text);
    try {
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await file.write(data, written, data.length - written, this.bytes + written);
        written += bytesWritten;
      }
      await file.datasync();
    } catch (err) {
      await file
        .truncate(this.bytes)
        .then(() => file.datasync())
        .catch(() => {
          this.broken = true;
        });
      throw err;
    }
    this.bytes += data.length;
    this.entries += transactions.length;
  }

  async close(): Promise<void> {
    await this.file?.close();
  }
}
