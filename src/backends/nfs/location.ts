/**
 * Where an nfs volume lives: the server, the export and the NFS version, from every option that
 * names a part of them (server=, export=, vers=, and the aliases type=, device=, share= and the
 * local driver's o=), which must all agree; and the path values they carry, strictly checked.
 */
import { invalid, shown } from "../../errors.ts";
import type { Options } from "../backend.ts";
import { parseHost } from "../options.ts";
import { type MountItem, mountItems } from "./mount-options.ts";

export type NfsVersion = "3" | "4" | "4.0" | "4.1" | "4.2";

const VERSIONS: readonly NfsVersion[] = ["3", "4", "4.0", "4.1", "4.2"];

/** Characters refused in server paths: they would be ambiguous in a mount source or in mountinfo. */
const BAD_PATH_CHARS = /[\s,\\\p{Cc}]/u;

/** mount.nfs resolves strict DNS names; the name is compared (and keyed) in lower case. */
const parseServer = (value: string, from: string) => parseHost(value, from, "dns").toLowerCase();

export function pathSegments(value: string, from: string): string[] {
  if (BAD_PATH_CHARS.test(value)) {
    throw invalid(
      `${from}="${shown(value)}" must not contain spaces, commas, backslashes or control characters`,
    );
  }
  const segments = value.split("/").filter((s) => s !== "");
  if (segments.some((s) => s === "." || s === "..")) {
    throw invalid(`${from}="${shown(value)}" must not contain . or .. components`);
  }
  return segments;
}

function parseExport(value: string, from: string): string {
  if (!value.startsWith("/")) {
    throw invalid(`${from}="${shown(value)}" must be an absolute path on the server, like /exports/app`);
  }
  return `/${pathSegments(value, from).join("/")}`;
}

function parseVers(value: string, from: string): NfsVersion {
  const found = VERSIONS.find((v) => v === value);
  if (found === undefined)
    throw invalid(`${from}="${shown(value)}" is not an NFS version: use ${VERSIONS.join(", ")}`);
  return found;
}

function parseType(value: string | undefined): "nfs" | "nfs4" | undefined {
  if (value === undefined || value === "nfs" || value === "nfs4") return value;
  throw invalid(`type="${shown(value)}" is not NFS: backend nfs takes type=nfs or type=nfs4`);
}

/** `host:/path` (share) or `[host]:/path`, `:/path` (device). */
function splitRemote(value: string, from: string, hostRequired: boolean): { host?: string; path: string } {
  const m = /^(\[[^\]]*\]|[^:[\]/]*):(\/.*)$/.exec(value);
  if (m === null || (hostRequired && m[1] === "")) {
    const form = hostRequired ? "HOST:/export" : "[HOST]:/export";
    throw invalid(`${from}="${shown(value)}" must look like ${form}`);
  }
  const host = m[1] ?? "";
  return {
    ...(host !== "" && { host: parseServer(host, `${from} host`) }),
    path: parseExport(m[2] ?? "", from),
  };
}

/** One value from several places (server=, o=addr=, share=): all given must agree. */
class OneOf<T> {
  private value: T | undefined;
  private from = "";
  constructor(private readonly what: string) {}
  set(value: T | undefined, from: string): void {
    if (value === undefined) return;
    if (this.value !== undefined && this.value !== value) {
      throw invalid(
        `conflicting ${this.what}: ${this.from} says ${shown(String(this.value))}, ${from} says ${shown(String(value))}`,
      );
    }
    this.value = value;
    this.from = from;
  }
  get(): T | undefined {
    return this.value;
  }
}

/** Where the volume lives, from every option that names a part of it: all given must agree. */
export class Location {
  readonly server = new OneOf<string>("NFS servers");
  readonly exportPath = new OneOf<string>("exports");
  readonly vers = new OneOf<NfsVersion>("NFS versions");
  private readonly type: "nfs" | "nfs4" | undefined;

  /** server=, export=, vers=, type=, then the device= and share= aliases; o= follows (readLocalO). */
  constructor(opts: Options) {
    if (opts.server !== undefined) this.server.set(parseServer(opts.server, "server"), "server");
    if (opts.export !== undefined) this.exportPath.set(parseExport(opts.export, "export"), "export");
    if (opts.vers !== undefined) this.vers.set(parseVers(opts.vers, "vers"), "vers");
    this.type = parseType(opts.type);
    for (const from of ["device", "share"] as const) {
      const value = opts[from];
      if (value === undefined) continue;
      const { host, path } = splitRemote(value, from, from === "share");
      this.server.set(host, from);
      this.exportPath.set(path, from);
    }
  }

  /** Once every option had its say: server and export are needed, the version defaults to 4. */
  settle(): { server: string; export: string; vers: NfsVersion } {
    const server = this.server.get();
    if (server === undefined) {
      throw invalid(
        "backend nfs needs option server (the NFS server's host name or address), or share=HOST:/export, or o=addr=HOST with device=:/export",
      );
    }
    const exp = this.exportPath.get();
    if (exp === undefined) {
      throw invalid("backend nfs needs option export (the exported path on the server, like /exports/app)");
    }
    const vers = this.vers.get();
    if (this.type === "nfs4" && vers === "3") throw invalid("type=nfs4 conflicts with NFS version 3");
    return { server, export: exp, vers: vers ?? "4" };
  }
}

/** The local driver's o=: addr is the server, nfsvers/vers the version, ro/rw the session's mode. */
export function readLocalO(o: string, at: Location): { readOnly: boolean; items: MountItem[] } {
  const items: MountItem[] = [];
  let sessionMode: "ro" | "rw" | undefined;
  for (const { item } of mountItems(o, "o")) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (key === "addr" && eq > 0) at.server.set(parseServer(value, "o addr"), "o addr");
    else if ((key === "nfsvers" || key === "vers") && eq > 0)
      at.vers.set(parseVers(value, `o ${key}`), `o ${key}`);
    else if (item === "ro" || item === "rw") {
      if (sessionMode !== undefined && sessionMode !== item)
        throw invalid(`o gives both ro and rw: pick one`);
      sessionMode = item;
    } else items.push({ from: "o", item });
  }
  return { readOnly: sessionMode === "ro", items };
}
