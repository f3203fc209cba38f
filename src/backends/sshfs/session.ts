/**
 * The sshfs data path: which ciphers ssh offers and how many SSH connections sshfs opens. By
 * default AES-GCM comes first when the CPU has AES instructions (it then moves data faster than
 * chacha20-poly1305, which stays in the list for servers without GCM), and a key login gets
 * several connections when this sshfs has max_conns (3.7 and later); sshfs sends a password to
 * one connection only, so a password login keeps one. The ciphers and max_conns options override
 * both; what the machine offers is read once per runner.
 */
import { readFile } from "node:fs/promises";
import { Deadline } from "../../deadline.ts";
import { invalid, shown } from "../../errors.ts";
import type { BackendContext } from "../../host.ts";

/** The ciphers the `ciphers` option may name: OpenSSH's default set (6.5 and later), nothing weaker. */
const CIPHERS = [
  "aes128-gcm@openssh.com",
  "aes256-gcm@openssh.com",
  "chacha20-poly1305@openssh.com",
  "aes128-ctr",
  "aes192-ctr",
  "aes256-ctr",
] as const;

/** OpenSSH's default set, AES-GCM first: no server that accepted the default is refused. */
const AES_FIRST: readonly string[] = CIPHERS;

/** Connections a key login gets by default: 4 moved 100 MiB fastest here, with few ssh processes. */
const DEFAULT_MAX_CONNS = 4;

/** `ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com`: names from CIPHERS, in preference order. */
export function parseCiphers(value: string): string[] {
  const names = value.split(",").map((n) => n.trim());
  const unknown = names.filter((n) => !(CIPHERS as readonly string[]).includes(n));
  if (value.trim() === "" || unknown.length > 0) {
    throw invalid(
      `ciphers=${shown(value)} must list ssh ciphers from: ${CIPHERS.join(", ")} (comma-separated, preferred first)`,
    );
  }
  if (new Set(names).size !== names.length) throw invalid(`ciphers=${shown(value)} names a cipher twice`);
  return names;
}

/** What this machine offers the data path. */
export interface HostFacts {
  /** The CPU has AES instructions (x86 `aes` flag, arm64 `aes` feature). */
  readonly aes: boolean;
  /** What `sshfs --version` says, e.g. "3.7.3"; "" when it says nothing we read. */
  readonly sshfsVersion: string;
}

/** The CPU flags (x86 `flags`, arm64 `Features`) in /proc/cpuinfo name `aes`. */
export function cpuHasAes(cpuinfo: string): boolean {
  return /^(flags|Features)\s*:.*\baes\b/m.test(cpuinfo);
}

/** "SSHFS version 3.7.3" -> "3.7.3". */
export function sshfsVersionOf(output: string): string {
  return /SSHFS version (\d+\.\d+(?:\.\d+)?)/.exec(output)?.[1] ?? "";
}

/** max_conns came with sshfs 3.7.0. */
function hasMaxConns(version: string): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > 3 || (major === 3 && minor >= 7);
}

export interface SessionShape {
  /** ssh's Ciphers, preferred first; undefined leaves ssh's default. */
  readonly ciphers?: readonly string[];
  /** sshfs max_conns; undefined leaves sshfs's default (1). */
  readonly maxConns?: number;
}

/** The options win; otherwise the defaults this machine and login allow. */
export function sessionShape(
  tuning: { readonly ciphers?: readonly string[]; readonly maxConns?: number },
  login: "key" | "password",
  facts: HostFacts,
): SessionShape {
  const several = hasMaxConns(facts.sshfsVersion);
  if ((tuning.maxConns ?? 1) > 1 && !several) {
    const has = facts.sshfsVersion === "" ? "an sshfs of unknown version" : `sshfs ${facts.sshfsVersion}`;
    throw invalid(`max_conns needs sshfs 3.7 or later, and this host has ${has}: drop max_conns`);
  }
  const maxConns = tuning.maxConns ?? (login === "key" && several ? DEFAULT_MAX_CONNS : undefined);
  const ciphers = tuning.ciphers ?? (facts.aes ? AES_FIRST : undefined);
  return { ...(ciphers && { ciphers }), ...(maxConns !== undefined && { maxConns }) };
}

const known = new WeakMap<object, Promise<HostFacts>>();
/** `sshfs --version` answers at once; this only bounds a machine that is stuck. */
const VERSION_TIMEOUT_MS = 5000;

/** Read once per runner (the machine does not change under a running daemon); a failed read is tried again. */
export function readHostFacts(ctx: BackendContext): Promise<HostFacts> {
  let facts = known.get(ctx.runner);
  if (facts === undefined) {
    facts = (async () => {
      const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
      const deadline = Deadline.after(VERSION_TIMEOUT_MS);
      const said = await ctx.runner.run("sshfs", ["--version"], { deadline }).catch(() => undefined);
      if (said === undefined) known.delete(ctx.runner);
      return { aes: cpuHasAes(cpuinfo), sshfsVersion: sshfsVersionOf(`${said?.stdout}\n${said?.stderr}`) };
    })();
    known.set(ctx.runner, facts);
  }
  return facts;
}
