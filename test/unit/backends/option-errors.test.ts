/**
 * What an option error may quote of the value it refused: values that hold a secret in the wrong
 * place (`endpoint=http://user:secret@host`), very long ones and ones with control characters, for
 * every option of every backend, every option name, the volume name, and through the socket to
 * the Err answer and the log line.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRegistry } from "../../../src/backends/index.ts";
import { shown } from "../../../src/errors.ts";
import { parseCreate } from "../../../src/volumes.ts";
import { type Served, serve } from "../../support/served.ts";

const SECRET = "s3cr3t-Pw";
const FILLER = "A".repeat(5000);
/** Values that must never come back whole in a message. */
const EVIL = [
  `http://user:${SECRET}@host.example`,
  `https://user:${SECRET}@s3.example.com:9000`,
  `admin:${SECRET}@nas.example`,
  `x\u001b[31m${SECRET.slice(0, 3)}\ny\u202e`,
  `${FILLER}${SECRET}`,
];

/** A minimal volume of each backend, every check but the one under test passing. */
const BASES: Readonly<Record<string, Record<string, string>>> = {
  sshfs: { backend: "sshfs", host: "files.example.com", user: "app", credentials: "p" },
  s3fs: { backend: "s3fs", bucket: "media-files", credentials: "p" },
  nfs: { backend: "nfs", server: "nas.example.com", export: "/exports/app" },
};

const backends = createRegistry();
const settings = { allowInlineSecrets: true };

/** The message `parseCreate` refuses `opts` with, or undefined when it accepts them. */
function refusal(name: string, opts: Record<string, string>): string | undefined {
  try {
    parseCreate(backends, name, opts, settings);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Every option a backend allows, as its refusal of an unknown option lists them. */
function allowedOptions(backend: string): string[] {
  const message = refusal("v", { ...BASES[backend], zzz: "1" }) ?? "";
  return (message.split("allowed: ")[1] ?? "").split(", ");
}

function expectClean(message: string | undefined, what: string): void {
  if (message === undefined) return;
  expect(message, what).not.toContain(SECRET);
  expect(message, what).not.toMatch(/[\p{Cc}\p{Cf}]/u);
  expect(message, what).not.toContain("A".repeat(101));
}

describe("option errors quote values safely", () => {
  it("shown() masks userinfo, replaces control characters and truncates", () => {
    expect(shown(`http://user:${SECRET}@host:9000`)).toBe("http://***@host:9000");
    expect(shown(`http://u:p@ss/w@host`)).toBe("http://***@host");
    expect(shown(`addr=admin:${SECRET}@nas,ro`)).toBe("addr=***@nas,ro");
    expect(shown("user@host:/srv/data")).toBe("user@host:/srv/data");
    expect(shown("a\nb\u001bc\u202ed")).toBe("a?b?c?d");
    expect(shown(FILLER)).toBe(`${"A".repeat(100)}... (5000 characters)`);
  });

  it("shown() of a value as long as a request may carry returns at once (its masks were quadratic)", () => {
    // 200,000 letters took 19 s before, and the daemon answered no one meanwhile (the fuzz fault found it).
    for (const unit of ["x", "a://", "a:"]) {
      const value = unit.repeat(200_000 / unit.length);
      const started = performance.now();
      const text = shown(value);
      expect(performance.now() - started, unit).toBeLessThan(500);
      expect(text).toMatch(/\.\.\. \(200000 characters\)$/);
    }
    // Cut before anything userinfo could start: nothing of a long URL's password shows.
    expect(shown(`http://user:${SECRET}${FILLER}@host`)).toBe("http... (5026 characters)");
    expect(shown(`${"\n".repeat(2000)}`)).toBe(`${"?".repeat(100)}... (2000 characters)`);
  });

  for (const backend of Object.keys(BASES)) {
    it(`${backend}: no option error carries a secret, a control character or a whole long value`, () => {
      const options = allowedOptions(backend);
      expect(options.length).toBeGreaterThan(5);
      let refused = 0;
      for (const option of [...options, "backend"]) {
        for (const evil of EVIL) {
          const message = refusal("v", { ...BASES[backend], [option]: evil });
          if (message !== undefined) refused++;
          expectClean(message, `${backend} ${option}=${JSON.stringify(evil.slice(0, 60))}`);
        }
      }
      // Most options refuse such values: the check saw their messages.
      expect(refused).toBeGreaterThan(options.length * 2);
    });
  }

  it("names: an unknown option's name and the volume name are quoted the same way", () => {
    for (const evil of EVIL) {
      for (const backend of Object.keys(BASES)) {
        expectClean(
          refusal("v", { ...BASES[backend], [evil]: "1" }),
          `${backend} option named ${evil.slice(0, 30)}`,
        );
        expectClean(
          refusal("v", { ...BASES[backend], [`-${evil}`]: "1" }),
          `${backend} flag ${evil.slice(0, 30)}`,
        );
      }
      expectClean(refusal(evil, BASES.sshfs ?? {}), `volume name ${evil.slice(0, 30)}`);
    }
  });

  describe("through the socket", () => {
    let s: Served;
    beforeEach(async () => {
      s = await serve({ backends });
    });
    afterEach(() => s.close());

    it("neither the Err answer nor the log line of a refused Create holds the secret", async () => {
      const endpoint = `http://user:${SECRET}@host.example`;
      const answer = await s.call("/VolumeDriver.Create", {
        Name: "v",
        Opts: { ...BASES.s3fs, endpoint },
      });
      expect(answer.status).toBe(500);
      expect(answer.json.Err).toMatch(/^endpoint="http:\/\/\*\*\*@host\.example" must be a URL like/);
      const failed = s.logs.filter((l) => l.msg === "failed");
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ level: 40, op: "/VolumeDriver.Create", err: answer.json.Err });
      expect(JSON.stringify(s.logs)).not.toContain(SECRET);
    });
  });
});
