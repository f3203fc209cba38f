/**
 * The etcd peer the catalog tiers build on (test/support/etcd.ts), proven with the etcd3 client
 * volgate uses: TLS with client certificates, password auth limited to volgate's prefix, a
 * 3-member cluster that survives a crashed or frozen member, and one that has lost its quorum.
 * Every call carries a deadline (clientOptions sets one; TESTBED.md: without one a call to a
 * silent server hangs 45 s and more).
 */
import { existsSync } from "node:fs";
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
} from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deadline, startEtcd, type TestEtcd } from "../support/etcd.ts";
import { tierCanRun } from "../support/prereq.ts";

const canRun = tierCanRun("integration (etcd)", ["etcd", "etcdctl", "openssl"]);

/** How long `promise` took to reject, and with what. */
async function rejection(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await promise;
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  throw new Error("expected the call to fail, and it succeeded");
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!canRun)("etcd peer: one member, TLS and password auth", () => {
  let etcd: TestEtcd;
  const clients: Etcd3[] = [];
  const client = (options: Parameters<TestEtcd["clientOptions"]>[0] = {}) => {
    const c = new Etcd3(etcd.clientOptions(options));
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    etcd = await startEtcd({ tls: true, auth: { prefix: "/volgate/" } });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await etcd?.stop();
  });

  it("serves the volgate user over TLS, and etcdctl as root reads the same key", async () => {
    expect(etcd.endpoints[0]).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const volgate = client();
    await volgate.put("/volgate/volumes/v1").value('{"backend":"sshfs"}');
    expect(await volgate.get("/volgate/volumes/v1").string()).toBe('{"backend":"sshfs"}');
    const read = await etcd.etcdctl(["get", "/volgate/volumes/v1", "--print-value-only"]);
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.trim()).toBe('{"backend":"sshfs"}');
    expect(read.stdout + read.stderr).not.toContain(etcd.auth?.root.password ?? "no auth");
  });

  it("refuses the volgate user any key outside its prefix, which root may use", async () => {
    const volgate = client();
    const write = await rejection(volgate.put("/other/x").value("1").exec());
    expect(write.error).toBeInstanceOf(EtcdPermissionDeniedError);
    const root = client({ user: etcd.auth?.root });
    await root.put("/other/x").value("root's");
    expect(await root.get("/other/x").string()).toBe("root's");
    const read = await rejection(volgate.get("/other/x").string());
    expect(read.error).toBeInstanceOf(EtcdPermissionDeniedError);
    // A key that merely starts like the prefix is outside it too.
    const lookalike = await rejection(volgate.put("/volgate-other/x").value("1").exec());
    expect(lookalike.error).toBeInstanceOf(EtcdPermissionDeniedError);
  });

  it("refuses a wrong password, and a client without a certificate", async () => {
    const username = etcd.auth?.volgate.username ?? "volgate";
    const wrong = client({ user: { username, password: "not-the-password" } });
    expect((await rejection(wrong.get("/volgate/volumes/v1").string())).error).toBeInstanceOf(
      EtcdAuthenticationFailedError,
    );
    const options = etcd.clientOptions({ deadlineMs: 1000 });
    const noCert = new Etcd3({
      ...options,
      credentials: { rootCertificate: options.credentials?.rootCertificate ?? Buffer.alloc(0) },
    });
    clients.push(noCert);
    // TESTBED.md: a missing client certificate shows as Unavailable, not as an auth error.
    expect((await rejection(noCert.get("/volgate/volumes/v1").string())).error).toBeInstanceOf(
      GRPCUnavailableError,
    );
  });
});

describe.skipIf(!canRun)("etcd peer: plain single member", () => {
  it("answers without TLS or auth, and stop() leaves no process and no temp dir", async () => {
    const etcd = await startEtcd();
    const pid = etcd.members[0]?.pid();
    const c = new Etcd3(etcd.clientOptions());
    try {
      expect(etcd.endpoints[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(etcd.auth).toBeUndefined();
      await c.put("k").value("v");
      expect(await c.get("k").string()).toBe("v");
    } finally {
      c.close();
      await etcd.stop();
    }
    expect(pid !== undefined && isAlive(pid)).toBe(false);
    expect(existsSync(etcd.dir)).toBe(false);
  });
});

describe.skipIf(!canRun)("etcd peer: three members", () => {
  let etcd: TestEtcd;
  const clients: Etcd3[] = [];
  const client = (options: Parameters<TestEtcd["clientOptions"]>[0] = {}) => {
    const c = new Etcd3(etcd.clientOptions(options));
    clients.push(c);
    return c;
  };
  const member = (i: number) => {
    const m = etcd.members[i];
    if (m === undefined) throw new Error(`no member ${i}`);
    return m;
  };

  beforeAll(async () => {
    etcd = await startEtcd({ members: 3, tls: true, auth: true });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await etcd?.stop();
  });

  it("keeps serving with one member killed, and the restarted member catches up", async () => {
    const all = client();
    await all.put("/volgate/before").value("1");
    await member(0).kill();
    expect(member(0).pid()).toBeUndefined();
    await all.put("/volgate/while-down").value("2");
    expect(await all.get("/volgate/before").string()).toBe("1");
    await member(0).start();
    const restarted = client({ hosts: [member(0).endpoint] });
    // A linearizable read on the restarted member waits until it has applied the log.
    expect(await restarted.get("/volgate/while-down").string()).toBe("2");
  });

  it("a frozen member times out at the deadline while the others serve", async () => {
    const frozen = client({ hosts: [member(1).endpoint] });
    expect(await frozen.get("/volgate/before").string()).toBe("1");
    member(1).pause();
    try {
      const call = await rejection(frozen.get("/volgate/before").options(deadline(1000)).string());
      expect(call.error).toBeInstanceOf(GRPCDeadlineExceededError);
      expect(call.ms).toBeLessThan(2500);
      const others = client({ hosts: [member(0).endpoint, member(2).endpoint] });
      await others.put("/volgate/frozen").value("3");
      expect(await others.get("/volgate/frozen").string()).toBe("3");
    } finally {
      member(1).resume();
    }
  });

  it("without a quorum a write fails at its deadline; serializable reads still answer", async () => {
    const survivor = client({ hosts: [member(0).endpoint] });
    const reader = client({ hosts: [member(0).endpoint] });
    // Log in while the cluster is whole: password login is itself a raft proposal.
    expect(await survivor.get("/volgate/before").string()).toBe("1");
    expect(await reader.get("/volgate/before").string()).toBe("1");
    const killed = await etcd.loseQuorum();
    expect(killed.map((m) => m.name)).toEqual([member(1).name, member(2).name]);
    const write = await rejection(
      survivor.put("/volgate/no-quorum").value("x").options(deadline(1500)).exec(),
    );
    expect(write.error).toBeInstanceOf(GRPCDeadlineExceededError);
    expect(write.ms).toBeGreaterThanOrEqual(1400);
    expect(write.ms).toBeLessThan(3000);
    expect(await reader.get("/volgate/frozen").serializable(true).string()).toBe("3");
    await Promise.all(killed.map((m) => m.start()));
    const after = client();
    await after.put("/volgate/quorum-back").value("4");
    expect(await after.get("/volgate/quorum-back").string()).toBe("4");
  });
});
