/** What the etcd peer does as its administrator: readiness probes, and the users and roles of password auth. */
import { request as httpRequest } from "node:http";
import { request } from "node:https";
import { type Etcd3, Range } from "etcd3";

export interface EtcdUser {
  readonly username: string;
  readonly password: string;
}

export interface EtcdAuth {
  readonly root: EtcdUser;
  /** May read and write keys under `prefix` only. */
  readonly volgate: EtcdUser;
  readonly prefix: string;
}

/** root (with the root role, which `auth enable` requires), and a volgate user limited to `prefix`. */
export async function enableAuth(admin: Etcd3, auth: EtcdAuth): Promise<void> {
  try {
    await admin.role("root").create();
    await admin.user(auth.root.username).create(auth.root.password);
    await admin.user(auth.root.username).addRole("root");
    const role = await admin.role("volgate").create();
    await role.grant({ permission: "Readwrite", range: Range.prefix(auth.prefix) });
    await admin.user(auth.volgate.username).create(auth.volgate.password);
    await admin.user(auth.volgate.username).addRole("volgate");
    await admin.auth.authEnable();
  } finally {
    admin.close();
  }
}

/** GET /health: true once the member has a leader and answers a quorum read. */
export function healthy(
  endpoint: string,
  pem?: { rootCertificate: Buffer; certChain: Buffer; privateKey: Buffer },
) {
  return new Promise<boolean>((resolve) => {
    const url = new URL("/health", endpoint);
    const tls = pem && { ca: pem.rootCertificate, cert: pem.certChain, key: pem.privateKey };
    const send = url.protocol === "https:" ? request : httpRequest;
    const req = send(url, { timeout: 2000, ...tls }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => {
        body += d.toString();
      });
      res.on("end", () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}
