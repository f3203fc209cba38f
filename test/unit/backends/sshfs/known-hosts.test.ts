/** known_hosts matching and fingerprints (src/backends/sshfs/known-hosts.ts), as OpenSSH reads them. */
import { describe, expect, it } from "vitest";
import { fingerprint, matchKnownHosts } from "../../../../src/backends/sshfs/known-hosts.ts";
import {
  HASHED_EXAMPLE_COM,
  HASHED_LOCAL_2222,
  KEY,
  KEY_FP,
  OTHER,
  RSA,
  RSA_FP,
} from "../../../fixtures/host-keys.ts";

describe("known_hosts matching", () => {
  it("matches plain names on port 22 and [host]:port elsewhere", () => {
    const text = `nas.lan ${KEY}\n[nas.lan]:2222 ${OTHER}\n`;
    expect(matchKnownHosts(text, "nas.lan", 22)).toEqual({ accepted: [KEY], revoked: [] });
    expect(matchKnownHosts(text, "nas.lan", 2222)).toEqual({ accepted: [OTHER], revoked: [] });
    expect(matchKnownHosts(text, "nas.lan", 2200).accepted).toEqual([]);
    expect(matchKnownHosts(text, "NAS.lan", 22).accepted).toEqual([KEY]);
    expect(matchKnownHosts(text, "other.lan", 22).accepted).toEqual([]);
  });

  it("matches hashed entries (ssh-keygen -H)", () => {
    const text = `${HASHED_EXAMPLE_COM}\n${HASHED_LOCAL_2222}\n`;
    expect(matchKnownHosts(text, "example.com", 22).accepted).toEqual([KEY]);
    expect(matchKnownHosts(text, "127.0.0.1", 2222).accepted).toEqual([KEY]);
    expect(matchKnownHosts(text, "127.0.0.1", 22).accepted).toEqual([]);
    expect(matchKnownHosts(text, "example.org", 22).accepted).toEqual([]);
    expect(
      matchKnownHosts("|1|bm90|YmFk ssh-ed25519 AAAA\n|2|x|y a b\n", "example.com", 22).accepted,
    ).toEqual([]);
  });

  it("honours pattern lists, wildcards, negation, comments and markers", () => {
    const text = [
      "# comment",
      "",
      `nas,nas.lan,10.0.0.5 ${KEY} a comment`,
      `*.example.com,!bad.example.com ${OTHER}`,
      `@revoked * ${RSA}`,
      `@cert-authority *.lan ${OTHER}`,
      "broken-line-without-key",
    ].join("\n");
    expect(matchKnownHosts(text, "10.0.0.5", 22)).toEqual({ accepted: [KEY], revoked: [RSA] });
    expect(matchKnownHosts(text, "web.example.com", 22).accepted).toEqual([OTHER]);
    expect(matchKnownHosts(text, "bad.example.com", 22).accepted).toEqual([]);
    expect(matchKnownHosts(text, "x.lan", 22).accepted).toEqual([]); // CA lines are not host keys
  });

  it("fingerprints like ssh-keygen -l", () => {
    const blob = (line: string) => Buffer.from(line.split(" ")[1] ?? "", "base64");
    expect(fingerprint(blob(KEY))).toBe(KEY_FP);
    expect(fingerprint(blob(RSA))).toBe(RSA_FP);
  });
});
