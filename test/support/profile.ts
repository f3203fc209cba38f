/** Credentials profiles as an operator lays them out: `<secretsDir>/<name>` (0700) holding secret files (0600). */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SecretFile } from "../../src/credentials.ts";

export async function writeProfile(
  secretsDir: string,
  name: string,
  files: Partial<Record<SecretFile, string>>,
): Promise<string> {
  await mkdir(secretsDir, { recursive: true, mode: 0o700 });
  const dir = join(secretsDir, name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  for (const [file, content] of Object.entries(files)) {
    const path = join(dir, file);
    await writeFile(path, content, { mode: 0o600 });
    await chmod(path, 0o600);
  }
  return dir;
}
