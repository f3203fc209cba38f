/**
 * Credentials profiles tied to their servers, against two real sshds: a volume naming
 * `-o credentials=P -o host=<other> -o host_key=<other's key>` must not send P's password to the
 * other server. A profile with known_hosts ignores host_key; one with allowed_hosts is refused for
 * any host it does not list, before anything is sent. The other sshd logs every authentication
 * attempt (LogLevel VERBOSE): none may reach it.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Options } from "../../../src/backends/backend.ts";
import { sshfsBackend } from "../../../src/backends/sshfs/index.ts";
import { Deadline } from "../../../src/deadline.ts";
import type { BackendContext } from "../../../src/host.ts";
import { failure } from "../../support/expect-error.ts";
import { type Machine, realMachine, targetAt } from "../../support/machine.ts";
import { tierCanRun } from "../../support/prereq.ts";
import { helpersFor, mountEntry } from "../../support/procs.ts";
import { writeProfile } from "../../support/profile.ts";
import { startSshd, type TestSshd } from "../../support/sshd.ts";

const extra = [
  ...(process.getuid?.() === 0 ? [] : ["root"]),
  ...(existsSync("/dev/fuse") ? [] : ["/dev/fuse"]),
];
const canRun = tierCanRun("sshfs profiles", ["sshd", "sshfs", "ssh-keygen"], extra);

/** What an sshd logs when a password (or anything else) was tried on it. */
const AUTH_ATTEMPT = /Accepted password|Failed password|Accepted publickey|Failed publickey|Postponed/;

describe.skipIf(!canRun)("credentials profiles pinned to their servers", () => {
  let legit: TestSshd;
  let other: TestSshd;
  let machine: Machine;
  let ctx: BackendContext;
  let logs: ReadonlyArray<Record<string, unknown>>;

  /** A volume that names the other server, its host key, and a profile meant for the legit one. */
  const onOther = (credentials: string): Options => ({
    host: other.host,
    port: String(other.port),
    user: other.user,
    host_key: other.hostKeyLine,
    credentials,
  });

  beforeAll(async () => {
    [legit, other] = await Promise.all([startSshd(), startSshd()]);
    machine = await realMachine("sshfs");
    ({ ctx, logs } = machine.harness);
    // Both profiles hold the test user's password, which the other sshd would accept too.
    await writeProfile(machine.secretsDir, "pinned-keys", {
      password: legit.password,
      known_hosts: `${legit.knownHostsLine}\n`,
    });
    await writeProfile(machine.secretsDir, "pinned-hosts", {
      password: legit.password,
      allowed_hosts: `# the legit server only\n${legit.host}:${legit.port}\n`,
    });
  });

  afterAll(async () => {
    await machine?.close();
    await Promise.all([legit?.stop(), other?.stop()]);
  });

  it("a profile with known_hosts ignores host_key: the other server's key is unknown, no password sent", async () => {
    const spec = sshfsBackend.parse(onOther("pinned-keys"));
    const before = logs.length;
    const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(10_000)));
    expect(err.kind).toBe("invalid");
    expect(err.message).toContain(`no known host key for 127.0.0.1:${other.port}`);
    const target = await machine.harness.newTarget();
    const mountErr = await failure(sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(10_000)));
    expect(mountErr.message).toContain(`no known host key for 127.0.0.1:${other.port}`);
    expect(await helpersFor("sshfs", target)).toEqual([]);
    expect(await mountEntry(target)).toBeUndefined();
    const warned = logs.slice(before).filter((l) => String(l.msg).startsWith("-o host_key ignored"));
    expect(warned.length).toBeGreaterThanOrEqual(1);
    expect(warned[0]).toMatchObject({ level: 40, profile: "pinned-keys", host: `127.0.0.1:${other.port}` });
    expect(await other.log()).not.toMatch(AUTH_ATTEMPT);
  });

  it("a profile with allowed_hosts is refused for any other host at create and mount: nothing reaches it", async () => {
    const spec = sshfsBackend.parse(onOther("pinned-hosts"));
    const refused = `credentials profile "pinned-hosts" may not be used for 127.0.0.1:${other.port}`;
    const logged = (await other.log()).length;
    const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(10_000)));
    expect(err.kind).toBe("invalid");
    expect(err.message).toContain(refused);
    expect(err.message).toContain(`lists only 127.0.0.1:${legit.port}`);
    const target = await machine.harness.newTarget();
    expect(
      (await failure(sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(10_000)))).message,
    ).toContain(refused);
    expect(await helpersFor("sshfs", target)).toEqual([]);
    const seen = (await other.log()).slice(logged);
    expect(seen).not.toMatch(AUTH_ATTEMPT);
    expect(seen).not.toContain("Connection from 127.0.0.1");
  });

  it("both profiles still work for the server they are meant for", async () => {
    for (const credentials of ["pinned-keys", "pinned-hosts"]) {
      const spec = sshfsBackend.parse({
        host: legit.host,
        port: String(legit.port),
        user: legit.user,
        host_key: legit.hostKeyLine,
        credentials,
      });
      expect(await sshfsBackend.preflight(spec, ctx, Deadline.after(10_000))).toBe(legit.home.slice(1));
      const target = await machine.harness.newTarget();
      await sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(20_000));
      expect((await mountEntry(target))?.fsType).toBe("fuse.sshfs");
    }
    expect(await legit.log()).toMatch(/Accepted password for volgate-test/);
    expect(await other.log()).not.toMatch(AUTH_ATTEMPT);
  });
});
