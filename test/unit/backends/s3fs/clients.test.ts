/** The S3 client cache (src/backends/s3fs/clients.ts) with stand-in clients that record their fate. */
import { describe, expect, it } from "vitest";
import { ClientCache, type ClientIdentity } from "../../../../src/backends/s3fs/clients.ts";

class StandIn {
  destroyed = false;
  constructor(readonly identity: ClientIdentity) {}
  destroy(): void {
    if (this.destroyed) throw new Error("destroyed twice");
    this.destroyed = true;
  }
}

const id = (o: Partial<ClientIdentity> = {}): ClientIdentity => ({
  endpoint: "https://s3.eu-west-1.amazonaws.com",
  region: "eu-west-1",
  pathStyle: false,
  accessKeyId: "AKIAONE",
  secretAccessKey: "secret-one-Zq9",
  ...o,
});

function cache(max?: number) {
  const built: StandIn[] = [];
  const clients = new ClientCache((identity) => {
    const c = new StandIn(identity);
    built.push(c);
    return c;
  }, max);
  /** Lease and release at once: a call that is over. */
  const use = (identity: ClientIdentity) => {
    const lease = clients.lease(identity);
    lease.release();
    return lease.client;
  };
  return { clients, built, use };
}

describe("ClientCache", () => {
  it("gives the same client for the same endpoint, region, path style and keys", () => {
    const { built, use } = cache();
    expect(use(id())).toBe(use(id()));
    expect(built).toHaveLength(1);
  });

  it("gives another client for another endpoint, region, path style or access key", () => {
    const { built, use } = cache();
    const first = use(id());
    for (const other of [
      id({ endpoint: "http://127.0.0.1:9000" }),
      id({ region: "us-east-1" }),
      id({ pathStyle: true }),
      id({ accessKeyId: "AKIATWO" }),
    ]) {
      expect(use(other)).not.toBe(first);
    }
    expect(built).toHaveLength(5);
    expect(built.some((c) => c.destroyed)).toBe(false);
  });

  it("builds a new client when the secret changes (a rotated profile), and destroys the old one", () => {
    const { built, use } = cache();
    const old = use(id());
    const rotated = use(id({ secretAccessKey: "secret-two-Xk2" }));
    expect(rotated).not.toBe(old);
    expect(rotated.identity.secretAccessKey).toBe("secret-two-Xk2");
    expect(old.destroyed).toBe(true);
    expect(use(id({ secretAccessKey: "secret-two-Xk2" }))).toBe(rotated);
    expect(built).toHaveLength(2);
  });

  it("never names an entry by its secret", () => {
    const { clients, use } = cache();
    use(id());
    use(id({ accessKeyId: "AKIATWO", secretAccessKey: "another-secret-77" }));
    const names = clients.names().join("\n");
    expect(names).toContain("AKIAONE");
    expect(names).not.toContain("secret-one-Zq9");
    expect(names).not.toContain("another-secret-77");
  });

  it("is bounded: the least recently used client goes, destroyed", () => {
    const { clients, built, use } = cache(2);
    const a = use(id({ accessKeyId: "A" }));
    use(id({ accessKeyId: "B" }));
    use(id({ accessKeyId: "A" })); // A is now the most recent
    use(id({ accessKeyId: "C" }));
    expect(clients.names()).toHaveLength(2);
    expect(built.map((c) => [c.identity.accessKeyId, c.destroyed])).toEqual([
      ["A", false],
      ["B", true],
      ["C", false],
    ]);
    expect(use(id({ accessKeyId: "A" }))).toBe(a);
  });

  it("destroys a replaced client only once its last call let go of it", () => {
    const { clients, use } = cache(1);
    const held = clients.lease(id());
    const again = clients.lease(id());
    use(id({ accessKeyId: "OTHER" })); // evicts the held one
    expect(held.client.destroyed).toBe(false);
    held.release();
    held.release(); // a second release changes nothing
    expect(held.client.destroyed).toBe(false);
    again.release();
    expect(held.client.destroyed).toBe(true);
  });
});
