/**
 * Test tiers that need real peers (sshd, dockerd, s3, UML) declare them here.
 * Missing prerequisites skip the tier on a developer's machine, and fail it
 * under CI=true: CI must never pass by silently running nothing.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export function which(tool: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    const path = join(dir, tool);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Returns true when the tier can run; throws under CI when it cannot. */
export function tierCanRun(tier: string, tools: readonly string[], extra: string[] = []): boolean {
  const missing = tools.filter((t) => which(t) === undefined).concat(extra);
  if (missing.length === 0) return true;
  const message = `${tier} tier: missing ${missing.join(", ")} (run .ci/setup or see README)`;
  if (process.env.CI === "true") throw new Error(message);
  console.warn(`skipping ${message}`);
  return false;
}
