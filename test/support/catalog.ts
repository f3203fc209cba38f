/**
 * volgate daemons sharing a catalog on a real etcd (test/support/etcd.ts): the VOLGATE_CATALOG URL
 * for its members (or a relay in front of them), a credentials profile holding what etcd asks for
 * (ca.pem, cert.pem, key.pem, username, password), one daemon per node name, and Docker's calls.
 */
import { readFile } from "node:fs/promises";
import { Etcd3 } from "etcd3";
import { type Answer, call } from "./client.ts";
import type { TestEtcd } from "./etcd.ts";
import { writeProfile } from "./profile.ts";
import { sshfsOptions, type TestSshd } from "./sshd.ts";
import { startVolgate, type Volgate } from "./volgate.ts";

/** `etcd://127.0.0.1:P1,127.0.0.1:P2/volgate/` (etcds:// with TLS) for these client URLs. */
export function catalogUrl(etcd: TestEtcd, endpoints = etcd.endpoints, prefix = "/volgate/"): string {
  const members = endpoints.map((e) => new URL(e).host).join(",");
  return `${etcd.tls ? "etcds" : "etcd"}://${members}${prefix}`;
}

/** The catalog credentials profile `name` in `secretsDir`: the client certificate and the volgate user. */
export async function writeCatalogProfile(etcd: TestEtcd, secretsDir: string, name = "etcd"): Promise<void> {
  const tls = etcd.tls && {
    "ca.pem": await readFile(etcd.tls.ca, "utf8"),
    "cert.pem": await readFile(etcd.tls.cert, "utf8"),
    "key.pem": await readFile(etcd.tls.key, "utf8"),
  };
  const auth = etcd.auth && { username: etcd.auth.volgate.username, password: etcd.auth.volgate.password };
  await writeProfile(secretsDir, name, { ...tls, ...auth });
}

export interface NodeOptions {
  /** VOLGATE_CATALOG; default catalogUrl(etcd). */
  readonly url?: string;
  /** Write the sshd's password profile `pw` (default true). */
  readonly sshProfile?: boolean;
  readonly env?: Readonly<Record<string, string>>;
}

/** A daemon named `node` on `etcd`, with the catalog profile (when etcd needs one) and the sshd's `pw`. */
export async function catalogNode(
  etcd: TestEtcd,
  sshd: TestSshd,
  node: string,
  options: NodeOptions = {},
): Promise<Volgate> {
  const needsProfile = etcd.tls !== undefined || etcd.auth !== undefined;
  return startVolgate({
    prepare: async ({ secretsDir }) => {
      if (needsProfile) await writeCatalogProfile(etcd, secretsDir);
      if (options.sshProfile !== false) await writeSshProfile(sshd, secretsDir);
    },
    env: {
      VOLGATE_CATALOG: options.url ?? catalogUrl(etcd),
      VOLGATE_NODE_NAME: node,
      ...(needsProfile && { VOLGATE_CATALOG_CREDENTIALS: "etcd" }),
      ...options.env,
    },
  });
}

export function writeSshProfile(sshd: TestSshd, secretsDir: string, name = "pw"): Promise<string> {
  return writeProfile(secretsDir, name, { password: sshd.password, known_hosts: `${sshd.knownHostsLine}\n` });
}

/** Docker's calls to one daemon. */
export const driver = (v: Volgate) => ({
  call: (path: string, body: unknown): Promise<Answer> => call(v.socket, `/VolumeDriver.${path}`, body),
  create: (name: string, opts: Record<string, string>) =>
    call(v.socket, "/VolumeDriver.Create", { Name: name, Opts: opts }),
  names: async (): Promise<string[]> =>
    ((await call(v.socket, "/VolumeDriver.List", {})).json.Volumes as Array<{ Name: string }>)
      .map((x) => x.Name)
      .sort(),
  // biome-ignore lint/suspicious/noExplicitAny: the wire's Status is free-form
  status: async (name: string): Promise<any> =>
    (await call(v.socket, "/VolumeDriver.Get", { Name: name })).json.Volume?.Status,
  catalog: async (name: string): Promise<string> =>
    String((await call(v.socket, "/VolumeDriver.Get", { Name: name })).json.Volume?.Status?.catalog),
});

/** The sshd volume options (password profile `pw`) for `path`. */
export const sshVolume = (sshd: TestSshd, path: string, credentials = "pw") =>
  sshfsOptions(sshd, path, credentials);

/** Milliseconds until `check` holds, polling every 5 ms; throws after `ms`, with `explain()` if given. */
export async function until(
  check: () => Promise<boolean>,
  ms: number,
  what: string,
  explain?: () => Promise<string>,
): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > ms)
      throw new Error(`${what}: not within ${ms} ms${explain ? `: ${await explain()}` : ""}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Math.round(performance.now() - started);
}

/** A definition as the catalog stores it (what another node's Create would have put). */
export function seededDefinition(i: number, project = "p") {
  return {
    backend: "sshfs",
    options: {
      backend: "sshfs",
      host: "127.0.0.1",
      port: "1",
      user: "app",
      // Paths of a real deployment's length: 10,000 of them are more than one 4 MiB gRPC message.
      path: `/srv/projects/${project}/${"department-of-long-directory-names/".repeat(8)}${i}`,
      credentials: "pw",
    },
    createdAt: new Date(1_700_000_000_000 + i).toISOString(),
    subdir: `srv/projects/${project}/${i}`,
  };
}

/** Put `count` definitions `<prefix>volumes/<name(i)>` straight into etcd, 100 a transaction. */
export async function seedCatalog(
  etcd: TestEtcd,
  count: number,
  name: (i: number) => string,
  prefix = "/volgate/",
): Promise<number> {
  const client = new Etcd3(etcd.clientOptions({ deadlineMs: 20_000 }));
  const started = performance.now();
  try {
    for (let from = 0; from < count; from += 100) {
      const puts = [];
      for (let i = from; i < Math.min(count, from + 100); i++) {
        const value = JSON.stringify(seededDefinition(i));
        puts.push({
          request_put: { key: Buffer.from(`${prefix}volumes/${name(i)}`), value: Buffer.from(value) },
        });
      }
      await client.kv.txn({ success: puts });
    }
  } finally {
    client.close();
  }
  return Math.round(performance.now() - started);
}
