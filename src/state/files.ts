/** The file operations the state needs to be crash safe: atomic replace, directory fsync, quarantine. */
import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Replace `dir/name` with `text`: tmp + fsync + rename + dir fsync, mode 0600. */
export async function writeAtomic(dir: string, name: string, text: string): Promise<void> {
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
  await syncDir(dir);
}

export async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Move an unreadable file aside (never delete it): `<name>.corrupt-<ms>`. Returns the new path. */
export async function quarantine(dir: string, name: string, stamp: number): Promise<string | undefined> {
  const to = join(dir, `${name}.corrupt-${stamp}`);
  try {
    await rename(join(dir, name), to);
    return to;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
