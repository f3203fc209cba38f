/** SANITY.md group B (Create) and C (Get/List/Path), over the real socket with the fake backend. */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { create, type Served, serve } from "../support/served.ts";

let s: Served;
beforeEach(async () => {
  s = await serve();
});
afterEach(async () => {
  await s.checkInvariants();
  await s.close();
});

const preflights = () => s.logs.filter((l) => l.op === "Create").length;

describe("create", () => {
  it("creates a volume that Get and List then show", async () => {
    expect((await s.call("/VolumeDriver.Create", create("v1"))).status).toBe(200);
    const got = (await s.call("/VolumeDriver.Get", { Name: "v1" })).json.Volume;
    expect(got.Name).toBe("v1");
    expect(got.Mountpoint).toBe(join(s.root, "volumes", "v1"));
    expect(got.Status).toMatchObject({ backend: "fake", target: "srv:/data", mounted: false, mounts: 0 });
    expect(
      (await s.call("/VolumeDriver.List", {})).json.Volumes.map((v: { Name: string }) => v.Name),
    ).toEqual(["v1"]);
  });

  it("is idempotent: 10 sequential and 10 parallel creates give one volume", async () => {
    for (let i = 0; i < 10; i++) expect((await s.call("/VolumeDriver.Create", create("v"))).status).toBe(200);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => s.call("/VolumeDriver.Create", create("p"))),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect([...s.state.values()].map((r) => r.name).sort()).toEqual(["p", "v"]);
    expect(preflights()).toBe(20);
    expect(s.host.calls).toEqual([]); // create never mounts anything
  });

  it("refuses the same name with other options", async () => {
    await s.call("/VolumeDriver.Create", create("v"));
    const answer = await s.call(
      "/VolumeDriver.Create",
      create("v", { backend: "fake", server: "srv", share: "other" }),
    );
    expect(answer.status).toBe(500);
    expect(answer.json.Err).toMatch(/already exists with other options/);
  });

  it.each([
    [{ server: "srv" }, /no backend given: pass -o backend=<fake>/],
    [{ backend: "nfs9", server: "srv" }, /unknown backend "nfs9": use one of fake/],
    [
      { backend: "fake", server: "srv", ssh_command: "x" },
      /"ssh_command" not allowed for backend fake; allowed: .*server/,
    ],
    [{ backend: "fake", server: "srv", ProxyCommand: "nc x" }, /"ProxyCommand" not allowed/],
    [{ backend: "fake", server: "srv", "-F": "/etc/passwd" }, /"-F" not allowed/],
    [{ backend: "fake" }, /needs option server/],
    [{ backend: "fake", server: "srv", share: "missing" }, /share missing does not exist on srv/],
    [{ backend: "fake", server: "srv", ro: "maybe" }, /ro="maybe" is not a boolean/],
    [{ backend: "fake", server: "srv", credentials: "../etc" }, /not a profile name/],
  ])("rejects bad options %j with a clear error", async (opts, message) => {
    const answer = await s.call("/VolumeDriver.Create", create("bad", opts));
    expect(answer.status).toBe(500);
    expect(answer.json.Err).toMatch(message);
    expect(s.state.size).toBe(0);
  });

  it.each(["", ".", "..", "../x", "a/b", "-x", "a\0b", "a\nb", "x".repeat(256), ".hidden"])(
    "rejects the bad name %j",
    async (name) => {
      const answer = await s.call("/VolumeDriver.Create", create(name));
      expect(answer.status).toBe(500);
      expect(answer.json.Err).toMatch(/volume Name|invalid volume name/);
      expect(s.state.size).toBe(0);
    },
  );

  it("accepts a 255-character name", async () => {
    const name = `a${"b".repeat(254)}`;
    expect((await s.call("/VolumeDriver.Create", create(name))).status).toBe(200);
    expect(s.state.get(name) !== undefined).toBe(true);
  });

  it("refuses inline secrets unless the operator allows them", async () => {
    const answer = await s.call(
      "/VolumeDriver.Create",
      create("sec", { backend: "fake", server: "srv", password: "hunter22" }),
    );
    expect(answer.status).toBe(500);
    expect(answer.json.Err).toMatch(/inline secrets \(password\) are disabled.*credentials=<profile>/);
    expect(answer.text).not.toContain("hunter22");
  });

  it("keeps an allowed inline secret out of Status, logs, argv and the state file", async () => {
    await s.close();
    s = await serve({ allowInlineSecrets: true });
    const secret = "hunter22-s3cr3t";
    await s.call("/VolumeDriver.Create", create("sec", { backend: "fake", server: "srv", password: secret }));
    const mounted = await s.call("/VolumeDriver.Mount", { Name: "sec", ID: "a" });
    expect(mounted.status).toBe(200);
    expect(s.host.callsOf("fakefs")[0]?.stdin).toBe(secret); // reaches the helper through stdin only
    const everything = [
      JSON.stringify((await s.call("/VolumeDriver.Get", { Name: "sec" })).json),
      JSON.stringify(s.logs),
      JSON.stringify(s.host.calls.map((c) => c.args)),
      await readFile(join(s.stateDir, "state.journal"), "utf8"),
      await readFile(join(s.stateDir, "state.json"), "utf8").catch(() => ""),
    ].join("\n");
    expect(everything).not.toContain(secret);
    for (const f of await readdir(s.stateDir, { withFileTypes: true })) {
      if (f.isFile()) expect((await stat(join(s.stateDir, f.name))).mode & 0o777).toBe(0o600);
    }
    expect(await readFile(join(s.stateDir, "secrets.json"), "utf8")).toContain(secret);
    await s.call("/VolumeDriver.Unmount", { Name: "sec", ID: "a" });
  });

  it("redacts a password echoed by a failing helper and keeps no reference", async () => {
    await s.close();
    s = await serve({ allowInlineSecrets: true });
    s.host.faults.set("srv", "fail");
    await s.call(
      "/VolumeDriver.Create",
      create("f", { backend: "fake", server: "srv", password: "p4ssw0rd!" }),
    );
    const answer = await s.call("/VolumeDriver.Mount", { Name: "f", ID: "a" });
    expect(answer.status).toBe(500);
    expect(answer.json.Err).toMatch(/fakefs mount failed: .*\*\*\*/);
    expect(answer.text + JSON.stringify(s.logs)).not.toContain("p4ssw0rd!");
    expect(s.state.get("f")?.mounts).toEqual({});
    expect((await s.call("/VolumeDriver.Get", { Name: "f" })).json.Volume.Status).toMatchObject({
      health: "down",
      lastError: expect.stringMatching(/fakefs mount failed/),
    });
  });
});

describe("get, list, path", () => {
  it("Get of an unknown volume is an error", async () => {
    const answer = await s.call("/VolumeDriver.Get", { Name: "nope" });
    expect(answer.status).toBe(500);
    expect(answer.json.Err).toBe("no such volume: nope");
  });

  it("an empty List is {Volumes: []}", async () => {
    expect((await s.call("/VolumeDriver.List", {})).text).toBe('{"Volumes":[]}');
  });

  it("Path of an unmounted volume answers without error", async () => {
    await s.call("/VolumeDriver.Create", create("v"));
    const answer = await s.call("/VolumeDriver.Path", { Name: "v" });
    expect(answer.json).toEqual({ Mountpoint: join(s.root, "volumes", "v") });
  });

  it("Get, List and Capabilities stay fast while a Mount hangs", async () => {
    s.host.servers.set("slow", new Set(["data"]));
    s.host.faults.set("slow", "hang");
    await s.call("/VolumeDriver.Create", create("hung", { backend: "fake", server: "slow" }));
    await s.call("/VolumeDriver.Create", create("ok"));
    const hanging = s.call("/VolumeDriver.Mount", { Name: "hung", ID: "a" });
    const started = performance.now();
    expect((await s.call("/VolumeDriver.Get", { Name: "hung" })).status).toBe(200);
    expect((await s.call("/VolumeDriver.List", {})).json.Volumes).toHaveLength(2);
    expect((await s.call("/VolumeDriver.Mount", { Name: "ok", ID: "b" })).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1000);
    const failed = await hanging;
    expect(failed.status).toBe(500);
    expect(failed.json.Err).toBe("fakefs timed out after 2s");
    await s.call("/VolumeDriver.Unmount", { Name: "ok", ID: "b" });
  });

  it("Get answers for a volume whose stored options no longer parse", async () => {
    await s.call("/VolumeDriver.Create", create("old"));
    const record = s.state.get("old");
    if (!record) throw new Error("volume missing");
    await s.state.put({ ...record, options: { ...record.options, dropped_option: "1" } });
    const answer = await s.call("/VolumeDriver.Get", { Name: "old" });
    expect(answer.status).toBe(200);
    expect(answer.json.Volume.Status).toMatchObject({
      health: "invalid",
      lastError: expect.stringMatching(/dropped_option/),
    });
    await s.state.put(record);
  });
});
