/**
 * VOLGATE_CATALOG: `local`, or `etcd://h:p[,h:p...][/prefix]` (`etcds://` for TLS). Pure, so the
 * configuration is checked at start without loading the etcd client.
 */
import { shown } from "../errors.ts";

export interface CatalogUrl {
  readonly tls: boolean;
  /** `http(s)://h:p` for each member. */
  readonly hosts: readonly string[];
  /** Key prefix, `/volgate/` unless the URL names another; always starts and ends with `/`. */
  readonly prefix: string;
  /** The URL as one canonical string, for messages and as the copy's identity. */
  readonly where: string;
}

const MEMBER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$/;
const PREFIX = /^(?:\/[A-Za-z0-9._-]+)+\/?$/;

/** Undefined for `local`; throws a message saying what the value should look like. */
export function parseCatalogUrl(value: string): CatalogUrl | undefined {
  if (value === "local") return undefined;
  const m = /^(etcds?):\/\/([^/]+)(\/.*)?$/.exec(value);
  const members = m?.[2]?.split(",") ?? [];
  const path = m?.[3] ?? "/volgate/";
  const bad = members.find((h) => !MEMBER.test(h) || Number(h.slice(h.lastIndexOf(":") + 1)) > 65535);
  if (!m || members.length === 0 || bad !== undefined || !PREFIX.test(path)) {
    throw new Error(
      `must be local, or etcd://HOST:PORT[,HOST:PORT...][/prefix] (etcds:// for TLS)${bad ? `: "${shown(bad)}" is not HOST:PORT` : ""}`,
    );
  }
  const tls = m[1] === "etcds";
  const prefix = path.endsWith("/") ? path : `${path}/`;
  const hosts = members.map((h) => `${tls ? "https" : "http"}://${h}`);
  return { tls, hosts, prefix, where: `${m[1]}://${members.join(",")}${prefix}` };
}
