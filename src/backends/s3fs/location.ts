/**
 * Where an s3fs volume's data is: the bucket (S3's naming rules), the directory inside it, the
 * endpoint (`scheme://host[:port]`, normalized so equal endpoints give equal keys) and the region,
 * and whether the endpoint can only be addressed path-style.
 */
import { isIPv6 } from "node:net";
import { invalid, shown } from "../../errors.ts";
import { hostForUrl, isHostName } from "../options.ts";

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const REGION_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const ENDPOINT_RE = /^(https?):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?\/?$/i;
const MAX_PREFIX = 1000;

/** A host name, IPv4 address, or IPv6 address in brackets; returns it lower case, without brackets. */
function parseEndpointHost(raw: string): string | undefined {
  if (raw.startsWith("[")) {
    const bare = raw.slice(1, -1);
    return isIPv6(bare) ? bare.toLowerCase() : undefined;
  }
  return isHostName(raw) ? raw.toLowerCase() : undefined;
}

/** S3 bucket naming rules (the DNS-compatible ones every S3 implementation accepts). */
export function parseBucket(value: string): string {
  if (value.includes("/")) {
    throw invalid(
      `bucket="${shown(value)}" contains "/": give the bucket name alone and the directory inside it as -o prefix=...`,
    );
  }
  const ok =
    BUCKET_RE.test(value) &&
    !value.includes("..") &&
    !/^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/.test(value) &&
    !/^(xn--|sthree-)/.test(value) &&
    !/(-s3alias|--ol-s3)$/.test(value);
  if (!ok) {
    throw invalid(
      `bucket="${shown(value)}" is not a valid S3 bucket name: use 3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit`,
    );
  }
  return value;
}

const isControl = (ch: string) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f;

/** `a/b/c`: leading and trailing slashes dropped; no empty, `.` or `..` parts, no control characters. */
export function parsePrefix(value: string): string {
  const trimmed = value.replace(/^\/+/, "").replace(/\/+$/, "");
  if (trimmed === "") return "";
  const parts = trimmed.split("/");
  if (
    [...trimmed].some(isControl) ||
    Buffer.byteLength(trimmed) > MAX_PREFIX ||
    parts.some((p) => p === "" || p === "." || p === "..")
  ) {
    throw invalid(
      `prefix="${shown(value)}" is not a usable directory in a bucket: use parts like a/b/c, without "..", ".", empty parts or control characters, at most ${MAX_PREFIX} bytes`,
    );
  }
  return trimmed;
}

/** `http(s)://host[:port]` and nothing else; returns it normalized. */
export function parseEndpoint(value: string): string {
  const m = ENDPOINT_RE.exec(value);
  const scheme = m?.[1]?.toLowerCase();
  const rawHost = m?.[2];
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  const host = rawHost === undefined ? undefined : parseEndpointHost(rawHost);
  if (scheme === undefined || host === undefined || (port !== undefined && (port < 1 || port > 65535))) {
    throw invalid(
      `endpoint="${shown(value)}" must be a URL like https://s3.example.com or http://127.0.0.1:9000: scheme, host and port only (no path, user, query, spaces or quotes)`,
    );
  }
  const defaultPort = scheme === "https" ? 443 : 80;
  return `${scheme}://${hostForUrl(host)}${port === undefined || port === defaultPort ? "" : `:${port}`}`;
}

export function parseRegion(value: string): string {
  if (!REGION_RE.test(value)) {
    throw invalid(
      `region="${shown(value)}" is not a region name: use lower-case letters, digits, - and _, like us-east-1`,
    );
  }
  return value;
}

/** The host part of a normalized endpoint, without brackets. */
function endpointHost(endpoint: string): string {
  const host = new URL(endpoint).hostname;
  return host.startsWith("[") ? host.slice(1, -1) : host;
}

/** Host (without brackets) and port of a normalized endpoint, the scheme's default port if none. */
export function endpointAddress(endpoint: string): { host: string; port: number } {
  const url = new URL(endpoint);
  return { host: endpointHost(endpoint), port: Number(url.port) || (url.protocol === "https:" ? 443 : 80) };
}

/** Virtual-hosted buckets need a DNS name: an IP literal or localhost can only be addressed path-style. */
export function pathStyleByDefault(endpoint: string): boolean {
  const host = endpointHost(endpoint);
  return host === "localhost" || /^[0-9.]+$/.test(host) || host.includes(":");
}
