/** Credentials profiles pinned to hosts: the allowed_hosts patterns and what a refusal says. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkAllowedHost, openProfile } from "../../src/credentials.ts";
import { failure } from "../support/expect-error.ts";
import { writeProfile } from "../support/profile.ts";

let secretsDir: string;
beforeAll(async () => {
  secretsDir = await mkdtemp(join(tmpdir(), "volgate-credentials-"));
});
afterAll(() => rm(secretsDir, { recursive: true, force: true }));

/** Whether a profile whose allowed_hosts holds `lines` may be used for each of `targets`. */
async function allows(lines: string[] | undefined, targets: Array<[string, number]>): Promise<boolean[]> {
  const name = `p${Math.random().toString(36).slice(2)}`;
  await writeProfile(secretsDir, name, lines === undefined ? {} : { allowed_hosts: `${lines.join("\n")}\n` });
  const profile = await openProfile(secretsDir, name);
  return Promise.all(
    targets.map(([host, port]) =>
      checkAllowedHost(profile, host, port).then(
        () => true,
        () => false,
      ),
    ),
  );
}

describe("allowed_hosts", () => {
  it("a profile without the file may be used anywhere", async () => {
    expect(await allows(undefined, [["anything.example", 22]])).toEqual([true]);
  });

  it("matches host names case-insensitively, on any port unless one is given", async () => {
    expect(
      await allows(
        ["# the file servers", "", "files.example.com", "  backup.example.com:2222  "],
        [
          ["files.example.com", 22],
          ["FILES.Example.com", 2200],
          ["backup.example.com", 2222],
          ["backup.example.com", 22],
          ["other.example.com", 22],
          ["files.example.com.evil.example", 22],
        ],
      ),
    ).toEqual([true, true, true, false, false, false]);
  });

  it("takes * and ? globs, IPv4 and IPv6 (bracketed with a port, or bare)", async () => {
    expect(
      await allows(
        ["*.corp.example:22", "10.0.0.?", "[fd00::1]:2222", "fd00::2", "fd00:0:0:0:0:0:0:3"],
        [
          ["a.corp.example", 22],
          ["a.b.corp.example", 22],
          ["a.corp.example", 2222],
          ["corp.example", 22],
          ["10.0.0.7", 22],
          ["10.0.0.70", 22],
          ["fd00::1", 2222],
          ["fd00::1", 22],
          ["fd00::2", 9000],
          ["fd00:0:0:0:0:0:0:3", 22],
        ],
      ),
    ).toEqual([true, true, false, false, true, false, true, false, true, true]);
  });

  it("refuses with the host, the file and what it lists", async () => {
    await writeProfile(secretsDir, "pinned", { allowed_hosts: "files.example.com:22\n" });
    const err = await failure(checkAllowedHost(await openProfile(secretsDir, "pinned"), "fd00::9", 22));
    expect(err.kind).toBe("invalid");
    expect(err.message).toBe(
      `credentials profile "pinned" may not be used for [fd00::9]:22: its allowed_hosts (${join(secretsDir, "pinned", "allowed_hosts")}) lists only files.example.com:22; use a profile meant for that host, or add it there`,
    );
  });

  it("a line that is no pattern is an error naming the file, not a pattern that allows nothing", async () => {
    await writeProfile(secretsDir, "broken", { allowed_hosts: "files.example.com port 22\n" });
    const err = await failure(
      checkAllowedHost(await openProfile(secretsDir, "broken"), "files.example.com", 22),
    );
    expect(err.message).toMatch(
      /allowed_hosts: "files.example.com port 22" is not a host or host:port pattern/,
    );
    await writeProfile(secretsDir, "badport", { allowed_hosts: "files.example.com:99999\n" });
    await failure(checkAllowedHost(await openProfile(secretsDir, "badport"), "files.example.com", 22));
  });
});
