/**
 * Fuzzed plugin requests from a seeded generator (the same seed gives the same 100,000 requests):
 * methods, paths, headers and bodies dockerd would never send — broken and deep JSON, wrong
 * types, huge and unicode values, empty and oversize bodies, chunked bodies — and, with a small
 * share, requests that are not even HTTP. Names never hit the volumes the test keeps (`spared`);
 * addresses in options are 127.0.0.1 on ports nobody serves, so no preflight reaches anything.
 */
import { ENDPOINTS } from "../../../src/protocol.ts";

export interface FuzzRequest {
  readonly kind: string;
  readonly method: string;
  readonly head: string;
  readonly body: Buffer;
}

/** mulberry32: small, fast, and the same sequence for the same seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const METHODS = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
const WEIRD = [
  "\u0000",
  "\u202e",
  "é",
  "𝔘",
  "\ud800",
  "../../etc",
  "/",
  "\n",
  "%00",
  " ",
  "\\",
  '"',
  "'$(id)'",
];
const KEYS = [
  "backend",
  "host",
  "port",
  "user",
  "path",
  "credentials",
  "password",
  "bucket",
  "endpoint",
  "server",
  "export",
  "share",
  "o",
  "device",
  "type",
  "ro",
  "nfs_opts",
  "host_key",
  "__proto__",
  "constructor",
  "allow_other",
  "sshcmd",
  "uid",
  "umask",
];
const VALUES = [
  "sshfs",
  "s3fs",
  "nfs",
  "local",
  "",
  "127.0.0.1",
  "127.0.0.1:1",
  "[::1]",
  "-oProxyCommand=id",
  "http://127.0.0.1:1",
  "http://u:p@127.0.0.1:1/",
  "1",
  "0",
  "65536",
  "true",
  "yes",
  "/",
  "/exports/x",
  "127.0.0.1:/x",
  "addr=127.0.0.1,port=1",
  "nfsvers=4,port=1",
  "suid",
  "../..",
  "a,b=c",
];

export function generator(seed: number, spared: readonly string[]) {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const chance = (p: number) => rnd() < p;

  const text = (max = 40): string => {
    const n = int(max);
    let s = "";
    for (let i = 0; i < n; i++) s += chance(0.15) ? pick(WEIRD) : String.fromCharCode(32 + int(95));
    return s;
  };
  const name = (): string => {
    const n = chance(0.05) ? "x".repeat(200 + int(200)) : chance(0.3) ? text(20) : `fz-${int(50)}`;
    return spared.includes(n) ? `${n}-not` : n;
  };
  const value = (depth = 0): unknown => {
    switch (int(depth > 2 ? 5 : 8)) {
      case 0:
        return int(2 ** 31) * (chance(0.5) ? -1 : 1);
      case 1:
        return chance(0.5);
      case 2:
        return null;
      case 3:
        return text(chance(0.02) ? 100_000 : 30);
      case 4:
        return pick(VALUES);
      case 5:
        return Array.from({ length: int(4) }, () => value(depth + 1));
      default:
        return Object.fromEntries(Array.from({ length: int(4) }, () => [pick(KEYS), value(depth + 1)]));
    }
  };
  const opts = (): unknown =>
    chance(0.8)
      ? Object.fromEntries(
          Array.from({ length: int(6) }, () => [pick(KEYS), chance(0.8) ? pick(VALUES) : value(1)]),
        )
      : value();
  const object = (): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    if (chance(0.85)) o.Name = chance(0.85) ? name() : value();
    if (chance(0.5)) o.Opts = opts();
    if (chance(0.5)) o.ID = chance(0.8) ? (chance(0.05) ? "i".repeat(300) : text(64)) : value();
    if (chance(0.1)) o[pick(KEYS)] = value();
    return o;
  };
  /** A body and what kind it is. */
  const body = (): [string, Buffer] => {
    const json = JSON.stringify(object());
    switch (int(12)) {
      case 0:
        return ["empty", Buffer.alloc(0)];
      case 1:
        return ["broken-json", Buffer.from(json.slice(0, int(json.length)))];
      case 2:
        return ["not-json", Buffer.from(text(200))];
      case 3:
        return ["deep-json", Buffer.from(`${"[".repeat(5000 + int(20000))}${"]".repeat(int(3))}`)];
      case 4:
        return chance(0.15)
          ? ["oversize", Buffer.alloc(256 * 1024 + 1 + int(64 * 1024), 0x61)]
          : ["empty-object", Buffer.from("{}")];
      case 5:
        return ["wrong-type", Buffer.from(JSON.stringify(value()))];
      case 6:
        return [
          "bad-utf8",
          Buffer.concat([Buffer.from('{"Name":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]),
        ];
      case 7: {
        const huge = pick(["x", "a:", "a://", "a@", "%", " ", "é"]).repeat(1000 + int(20_000));
        const opts = { [pick(KEYS)]: huge, ...(chance(0.7) && { backend: pick(["sshfs", "s3fs", "nfs"]) }) };
        return [
          "huge-value",
          Buffer.from(JSON.stringify({ Name: chance(0.2) ? huge : name(), Opts: opts, ID: huge })),
        ];
      }
      default:
        return ["json", Buffer.from(`${json}${chance(0.5) ? "\n" : ""}`)];
    }
  };
  /** Percent-encoded UTF-8 (lone surrogates become U+FFFD, as they would on the wire). */
  const encoded = (s: string) =>
    [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
  const path = (): string => {
    const endpoint = pick(ENDPOINTS);
    switch (int(10)) {
      case 0:
        return `${endpoint}?${encoded(text(20))}`;
      case 1:
        return `/${encoded(text(30))}`;
      case 2:
        return `/${"a".repeat(1000 + int(6000))}`;
      case 3:
        return pick([
          "/",
          "/VolumeDriver.",
          "//VolumeDriver.Get",
          "/../VolumeDriver.Get",
          "/volumedriver.get",
          `${endpoint}/`,
        ]);
      default:
        return endpoint;
    }
  };

  /** A request that is not HTTP, or breaks its framing: on a connection of its own. */
  const broken = (): FuzzRequest => {
    const heads = [
      `FOO ${path()} HTTP/1.1\r\nHost: p\r\n\r\n`,
      `POST ${path()} HTTP/9.9\r\n\r\n`,
      `${text(80)}\r\n\r\n`,
      `POST /VolumeDriver.Get HTTP/1.1\r\nContent-Length: -1\r\n\r\n`,
      `POST /VolumeDriver.Get HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n`,
      `POST /VolumeDriver.Get HTTP/1.1\r\nX: ${"h".repeat(20_000 + int(60_000))}\r\n\r\n`,
    ];
    if (chance(0.2)) {
      // A body that breaks the framing of a request already routed (Node answers that one itself).
      const head = `POST ${pick(ENDPOINTS)} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`;
      return { kind: "broken-chunked", method: "POST", head, body: Buffer.alloc(0) };
    }
    return { kind: "not-http", method: "POST", head: pick(heads), body: Buffer.alloc(0) };
  };

  return (): FuzzRequest => {
    if (chance(0.01)) return broken();
    const method = chance(0.8) ? "POST" : pick(METHODS);
    const [kind, bytes] = body();
    const accept = chance(0.9) ? "Accept: application/vnd.docker.plugins.v1.2+json\r\n" : "";
    const type = chance(0.2)
      ? `Content-Type: ${pick(["application/json", "text/plain", "multipart/form-data", text(20)])}\r\n`
      : "";
    if (chance(0.05) && bytes.length > 0 && bytes.length < 64 * 1024) {
      const chunked = Buffer.concat([
        Buffer.from(`${bytes.length.toString(16)}\r\n`),
        bytes,
        Buffer.from("\r\n0\r\n\r\n"),
      ]);
      const head = `${method} ${path()} HTTP/1.1\r\nHost: plugin\r\n${accept}${type}Transfer-Encoding: chunked\r\n\r\n`;
      return { kind: `${kind}-chunked`, method, head, body: chunked };
    }
    const head = `${method} ${path()} HTTP/1.1\r\nHost: plugin\r\n${accept}${type}Content-Length: ${bytes.length}\r\n\r\n`;
    return { kind, method, head, body: bytes };
  };
}
