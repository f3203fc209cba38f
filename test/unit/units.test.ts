/** Unit tests of the small pure pieces: config, mountinfo, protocol, names, redaction, locks. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseCatalogUrl } from "../../src/catalog/url.ts";
import type { CommandRunner } from "../../src/command.ts";
import { helpText, loadConfig } from "../../src/config.ts";
import { redact } from "../../src/errors.ts";
import { KeyedLock } from "../../src/lock.ts";
import { findInMountInfo, parseMountInfo, systemMountTable } from "../../src/mountinfo.ts";

import { isValidName } from "../../src/names.ts";
import { optionsOf, parseBody } from "../../src/protocol.ts";
import { sourceIn } from "../../src/volumes.ts";

describe("config", () => {
  it("has working defaults", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      socket: "/run/docker/plugins/volgate.sock",
      root: "/mnt/volgate",
      mountTimeoutMs: 20_000,
      allowInlineSecrets: false,
      verifyHostKeys: true,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("reads VOLGATE_* variables", () => {
    const c = loadConfig({
      VOLGATE_ROOT: "/srv/vg",
      VOLGATE_MOUNT_TIMEOUT: "5",
      VOLGATE_ALLOW_INLINE_SECRETS: "true",
    });
    expect(c).toMatchObject({ root: "/srv/vg", mountTimeoutMs: 5000, allowInlineSecrets: true });
    expect(loadConfig({ VOLGATE_VERIFY_HOST_KEYS: "false", VOLGATE_INSECURE_TCP: "false" })).toMatchObject({
      verifyHostKeys: false,
      insecureTcp: false,
    });
  });

  it.each([
    [{ VOLGATE_MOUNT_TIMEOUT: "40" }, /VOLGATE_MOUNT_TIMEOUT.*from 1 to 28/],
    [{ VOLGATE_ROOT: "relative/dir" }, /VOLGATE_ROOT.*absolute path/],
    [{ VOLGATE_LOG_LEVEL: "loud" }, /VOLGATE_LOG_LEVEL/],
    [{ VOLGATE_INSECURE_TCP: "0" }, /VOLGATE_INSECURE_TCP: must be true or false/],
    [{ VOLGATE_ALLOW_INLINE_SECRETS: "no" }, /VOLGATE_ALLOW_INLINE_SECRETS: must be true or false/],
    [{ VOLGATE_VERIFY_HOST_KEYS: "off" }, /VOLGATE_VERIFY_HOST_KEYS: must be true or false/],
    [{ VOLGATE_INSECURE_TCP: "" }, /VOLGATE_INSECURE_TCP: must be true or false/],
    [{ VOLGATE_ALLOW_INLINE_SECRETS: "1" }, /VOLGATE_ALLOW_INLINE_SECRETS: must be true or false/],
  ])("rejects %j with a clear message", (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it("documents every variable in --help", () => {
    for (const v of [
      "VOLGATE_SOCKET",
      "VOLGATE_ROOT",
      "VOLGATE_STATE_DIR",
      "VOLGATE_SECRETS_DIR",
      "VOLGATE_MOUNT_TIMEOUT",
    ]) {
      expect(helpText()).toContain(v);
    }
  });
});

describe("mountinfo", () => {
  it("parses fields, optional tags and octal escapes", () => {
    const text = [
      "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
      "40 22 0:50 / /mnt/volgate/conns/ab rw,nosuid,nodev,relatime shared:7 - fuse.sshfs u@h:/ rw,user_id=0",
      "",
    ].join("\n");
    expect(parseMountInfo(text)).toEqual([
      {
        mountPoint: "/mnt/with space",
        fsType: "ext3",
        source: "/dev/root",
        options: "rw,noatime",
        root: "/mnt1",
        dev: "98:0",
      },
      {
        mountPoint: "/mnt/volgate/conns/ab",
        fsType: "fuse.sshfs",
        source: "u@h:/",
        options: "rw,nosuid,nodev,relatime",
        root: "/",
        dev: "0:50",
      },
    ]);
  });

  it("finds the topmost mount at a path by text search, escapes included", () => {
    const text = [
      "36 35 98:0 / /mnt/with\\040space rw - ext3 /dev/root rw",
      "37 36 0:51 /mnt/x /mnt/with\\040space/sub rw - tmpfs t rw",
      "40 22 0:50 /mnt/x /mnt/x rw - fuse.sshfs a rw",
      "41 40 0:52 / /mnt/x rw - fuse.sshfs b rw",
      "",
    ].join("\n");
    expect(findInMountInfo(text, "/mnt/with space")?.dev).toBe("98:0");
    expect(findInMountInfo(text, "/mnt/x")).toMatchObject({ source: "b", dev: "0:52" });
    expect(findInMountInfo(text, "/mnt")).toBeUndefined();
    expect(findInMountInfo(text, "/mnt/with space/sub")?.root).toBe("/mnt/x");
  });
});

describe("liveness probes", () => {
  it("a killed probe still in the kernel keeps its path stale, with no second child until it is gone", async () => {
    const dir = await mkdtemp(join(tmpdir(), "volgate-probe-"));
    const info = join(dir, "mountinfo");
    await writeFile(info, "40 22 0:50 / /mnt/hung rw - fuse.sshfs u@h:/ rw\n");
    // Each probe child hangs until killed at its deadline, and is not gone until the test says so.
    const gone: Array<() => void> = [];
    const runner: CommandRunner = {
      run: (file, _args, { deadline, onGone }) => {
        if (onGone) gone.push(onGone);
        return new Promise((_resolve, reject) => deadline.onEnd(() => reject(deadline.error(file))));
      },
      start: () => {
        throw new Error("not used");
      },
    };
    try {
      const table = systemMountTable(runner, info);
      expect(await table.probe("/mnt/hung")).toBe("stale");
      expect(gone).toHaveLength(1);
      const started = Date.now();
      expect(await table.probe("/mnt/hung")).toBe("stale");
      expect(Date.now() - started).toBeLessThan(100);
      expect(gone).toHaveLength(1);
      gone[0]?.();
      expect(await table.probe("/mnt/hung")).toBe("stale");
      expect(gone).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("catalog URL", () => {
  it("parses members and prefix, and refuses userinfo without echoing it", () => {
    expect(parseCatalogUrl("etcds://a:2379,[fd00::1]:2379/swarm")).toEqual({
      tls: true,
      hosts: ["https://a:2379", "https://[fd00::1]:2379"],
      prefix: "/swarm/",
      where: "etcds://a:2379,[fd00::1]:2379/swarm/",
    });
    expect(() => parseCatalogUrl("etcd://root:s3cr3t@etcd:2379")).toThrow(
      /"\*\*\*@etcd:2379" is not HOST:PORT/,
    );
    expect(() => parseCatalogUrl("etcd://root:s3cr3t@etcd:2379")).not.toThrow(/s3cr3t/);
  });
});

describe("protocol", () => {
  it("treats an empty or whitespace body as {}", () => {
    expect(parseBody("")).toEqual({});
    expect(parseBody("\n")).toEqual({});
  });

  it("keeps string options and refuses others", () => {
    expect(optionsOf({ Opts: { a: "1" } })).toEqual({ a: "1" });
    expect(() => optionsOf({ Opts: { a: true } })).toThrow(/option a must be a string/);
  });
});

describe("names", () => {
  it("validates names like dockerd should", () => {
    expect(isValidName("a.b_c-1")).toBe(true);
    for (const bad of ["", ".", "..", "-x", "a/b", "a b", "x".repeat(256)])
      expect(isValidName(bad)).toBe(false);
  });
});

describe("redaction and paths", () => {
  it("scrubs every occurrence of every secret", () => {
    expect(redact("pw=hunter2 again hunter2", ["hunter2"])).toBe("pw=*** again ***");
  });

  it("keeps volume directories inside their connection", () => {
    expect(sourceIn("/r/conns/a", "srv/data")).toBe("/r/conns/a/srv/data");
    expect(sourceIn("/r/conns/a", "")).toBe("/r/conns/a");
    expect(() => sourceIn("/r/conns/a", "../b")).toThrow(/escapes/);
    expect(() => sourceIn("/r/conns/a", "/etc")).toThrow(/escapes/);
  });
});

describe("KeyedLock", () => {
  it("serializes one key and runs different keys in parallel", async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const slow = (tag: string, ms: number) => async () => {
      order.push(`${tag}+`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`${tag}-`);
    };
    await Promise.all([
      lock.run("a", slow("a1", 30)),
      lock.run("a", slow("a2", 1)),
      lock.run("b", slow("b1", 1)),
    ]);
    expect(order.indexOf("a2+")).toBeGreaterThan(order.indexOf("a1-"));
    expect(order.indexOf("b1-")).toBeLessThan(order.indexOf("a1-"));
  });

  it("keeps going after a failure", async () => {
    const lock = new KeyedLock();
    await expect(lock.run("a", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await lock.run("a", async () => 7)).toBe(7);
  });
});
