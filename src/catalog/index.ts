/**
 * The catalog this node uses, from VOLGATE_CATALOG: the local one, or a shared etcd catalog whose
 * client (and gRPC) is imported only now, after the socket listens. Credentials come from a
 * profile (VOLGATE_CATALOG_CREDENTIALS): username and password, ca.pem, cert.pem and key.pem.
 */
import { readFile } from "node:fs/promises";
import { openProfile, profileFile, readSecret } from "../credentials.ts";
import { invalid } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Catalog } from "./catalog.ts";
import type { Copy } from "./copy.ts";
import type { EtcdEndpoint } from "./etcd-client.ts";
import type { SharedCatalog } from "./shared.ts";
import { parseCatalogUrl } from "./url.ts";

export interface CatalogSettings {
  readonly catalog: string;
  readonly catalogCredentials: string;
  readonly nodeName: string;
  readonly secretsDir: string;
}

/** What the catalog's endpoint needs from the credentials profile, all optional. */
async function endpointOf(
  settings: CatalogSettings,
  hosts: readonly string[],
  tls: boolean,
): Promise<EtcdEndpoint> {
  if (settings.catalogCredentials === "") {
    if (tls)
      throw invalid(
        "VOLGATE_CATALOG uses etcds:// (TLS): set VOLGATE_CATALOG_CREDENTIALS to a profile holding ca.pem",
      );
    return { hosts };
  }
  const profile = await openProfile(settings.secretsDir, settings.catalogCredentials);
  const read = async (file: "ca.pem" | "cert.pem" | "key.pem") => {
    const path = await profileFile(profile, file);
    return path === undefined ? undefined : readFile(path);
  };
  const [username, password, ca, cert, key] = await Promise.all([
    readSecret(profile, "username"),
    readSecret(profile, "password"),
    read("ca.pem"),
    read("cert.pem"),
    read("key.pem"),
  ]);
  if ((username === undefined) !== (password === undefined)) {
    throw invalid(
      `catalog credentials profile "${profile.name}" needs both username and password, or neither`,
    );
  }
  if (tls && ca === undefined)
    throw invalid(`catalog credentials profile "${profile.name}" lacks ca.pem, which etcds:// needs`);
  if ((cert === undefined) !== (key === undefined)) {
    throw invalid(
      `catalog credentials profile "${profile.name}" needs both cert.pem and key.pem, or neither`,
    );
  }
  return {
    hosts,
    ...(username !== undefined && password !== undefined && { auth: { username, password } }),
    ...(tls && ca && { tls: { ca, ...(cert && { cert }), ...(key && { key }) } }),
  };
}

/** The shared catalog, not started: start() once the copy may be written (after listening). */
export async function openCatalog(
  settings: CatalogSettings,
  copy: Copy,
  log: Logger,
): Promise<(Catalog & { start(): void }) | undefined> {
  const url = parseCatalogUrl(settings.catalog);
  if (!url) return undefined;
  const endpoint = await endpointOf(settings, url.hosts, url.tls);
  const [{ etcdKV }, { SharedCatalog }] = await Promise.all([import("./etcd-kv.ts"), import("./shared.ts")]);
  const shared: SharedCatalog = new SharedCatalog(
    etcdKV(endpoint),
    { where: url.where, prefix: url.prefix, node: settings.nodeName, secretsDir: settings.secretsDir, log },
    copy,
  );
  return shared;
}
