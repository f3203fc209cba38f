/**
 * The sshfs backend without a server, through its Backend object: option parsing and its
 * refusals, the connection key, the sshfs command line mount starts, and mount() through a
 * fake runner and mount table. known_hosts matching and the remote directory over SFTP have
 * their own tests (sshfs/).
 */
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { Options } from "../../../src/backends/backend.ts";
import { type SshfsSpec, sshfsBackend } from "../../../src/backends/sshfs/index.ts";
import { type HostFacts, readHostFacts } from "../../../src/backends/sshfs/session.ts";
import { Deadline } from "../../../src/deadline.ts";
import { VolgateError } from "../../../src/errors.ts";
import { FakeHost, type Fault } from "../../fakes/host.ts";
import { captureLog } from "../../fakes/log.ts";
import { KEY, OTHER, RSA } from "../../fixtures/host-keys.ts";
import { failure, refusal } from "../../support/expect-error.ts";
import { targetAt } from "../../support/machine.ts";
import { writeProfile } from "../../support/profile.ts";

/** This machine's CPU does not decide what the tests see: each case says what the host offers. */
vi.mock("../../../src/backends/sshfs/session.ts", async (original) => ({
  ...(await original<typeof import("../../../src/backends/sshfs/session.ts")>()),
  readHostFacts: vi.fn(),
}));
const offering = (facts: HostFacts) => vi.mocked(readHostFacts).mockResolvedValue(facts);
const MODERN: HostFacts = { aes: true, sshfsVersion: "3.7.3" };
offering(MODERN);

/** The Ciphers item when AES-GCM comes first. */
const AES_FIRST =
  "Ciphers=aes128-gcm@openssh.com\\,aes256-gcm@openssh.com\\,chacha20-poly1305@openssh.com\\,aes128-ctr\\,aes192-ctr\\,aes256-ctr";

const base: Options = { host: "files.example.com", user: "backup" };
const parse = (o: Options) => sshfsBackend.parse(o);
const parseError = (o: Options) => refusal(() => parse(o), `parse(${JSON.stringify(o)})`);

describe("parse", () => {
  it("types a minimal volume with the documented defaults", () => {
    expect(parse(base)).toEqual({
      host: "files.example.com",
      port: 22,
      user: "backup",
      path: "",
      readOnly: false,
      common: { create: false, allowOther: true },
      tuning: { reconnect: true, serverAliveInterval: 15, serverAliveCountMax: 3, compression: false },
    });
  });

  it("takes every allowed option", () => {
    const spec = parse({
      ...base,
      port: "2222",
      path: "/srv/data",
      credentials: "nas",
      host_key: KEY,
      ro: "",
      create: "true",
      uid: "1000",
      gid: "1000",
      umask: "022",
      allow_other: "false",
      reconnect: "no",
      ServerAliveInterval: "30",
      ServerAliveCountMax: "5",
      compression: "yes",
      cache: "no",
      max_conns: "4",
      ciphers: "chacha20-poly1305@openssh.com, aes256-gcm@openssh.com",
    });
    expect(spec).toEqual({
      host: "files.example.com",
      port: 2222,
      user: "backup",
      path: "/srv/data",
      hostKeys: [KEY],
      readOnly: true,
      common: {
        credentials: "nas",
        create: true,
        uid: 1000,
        gid: 1000,
        umask: "0022",
        allowOther: false,
      },
      tuning: {
        reconnect: false,
        serverAliveInterval: 30,
        serverAliveCountMax: 5,
        compression: true,
        cache: false,
        maxConns: 4,
        ciphers: ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"],
      },
    });
  });

  it("accepts the inline password into the spec; the backend declares it a secret option", () => {
    expect(parse({ ...base, password: "s3cret-pw" }).password).toBe("s3cret-pw");
    expect(sshfsBackend.secretOptions).toEqual(["password"]);
    expect(sshfsBackend.name).toBe("sshfs");
  });

  it("reads sshcmd=user@host:path like vieux/sshfs", () => {
    expect(parse({ sshcmd: "backup@nas.lan:/srv/data" })).toMatchObject({
      user: "backup",
      host: "nas.lan",
      path: "/srv/data",
    });
    expect(parse({ sshcmd: "backup@nas.lan:" })).toMatchObject({ host: "nas.lan", path: "" });
    expect(parse({ sshcmd: "backup@nas.lan:rel/dir", port: "2200" })).toMatchObject({
      path: "rel/dir",
      port: 2200,
    });
    expect(parse({ sshcmd: "backup@[fd00::5]:/x" })).toMatchObject({ host: "fd00::5", path: "/x" });
    expect(parse({ sshcmd: "backup@10.1.2.3:/x" })).toMatchObject({ host: "10.1.2.3" });
  });

  it("refuses sshcmd together with host, user or path", () => {
    expect(parseError({ sshcmd: "a@b:/c", host: "b" }).message).toBe(
      "sshcmd cannot be combined with host: use either sshcmd=user@host:path or host=, user=, path=",
    );
    expect(parseError({ sshcmd: "a@b:/c", user: "a", path: "/c" }).message).toMatch(
      /combined with user, path/,
    );
  });

  it("says which of host and user is missing", () => {
    expect(parseError({ user: "a" }).message).toBe(
      "backend sshfs needs option host (or sshcmd=user@host:path)",
    );
    expect(parseError({ host: "h" }).message).toBe(
      "backend sshfs needs option user (or sshcmd=user@host:path)",
    );
    expect(parseError({}).message).toBe(
      "backend sshfs needs option host and user (or sshcmd=user@host:path)",
    );
  });

  it.each([
    ["ssh_command", "/bin/sh -c id", /"ssh_command" is refused: it runs a command on this host/],
    ["ProxyCommand", "nc evil 22", /"ProxyCommand" is refused: it runs a command/],
    ["proxycommand", "nc evil 22", /"proxycommand" is refused: it runs a command/],
    ["ProxyJump", "evil", /refused: it runs a command/],
    ["LocalCommand", "id", /refused: it runs a command/],
    ["sftp_server", "/bin/sh", /refused: it runs a command/],
    ["-F", "/tmp/cfg", /"-F" is refused: command-line flags cannot be passed/],
    ["-oProxyCommand", "x", /command-line flags cannot be passed/],
    ["F", "/tmp/cfg", /refused: it reads or writes files on this host/],
    ["IdentityFile", "/etc/shadow", /refused: it reads or writes files/],
    ["UserKnownHostsFile", "/dev/null", /refused: it reads or writes files/],
    ["uidfile", "/etc/passwd", /refused: it reads or writes files/],
    ["StrictHostKeyChecking", "no", /refused: volgate sets it itself/],
    ["password_stdin", "", /refused: volgate sets it itself/],
    ["directport", "2049", /refused: volgate sets it itself/],
  ])("refuses %s", (key, value, why) => {
    const err = parseError({ ...base, [key]: value });
    expect(err.message).toMatch(why);
    expect(err.message).toContain("allowed: ");
  });

  it("refuses unknown options, listing what is allowed", () => {
    expect(parseError({ ...base, follow_symlinks: "" }).message).toBe(
      'option "follow_symlinks" not allowed for backend sshfs; allowed: ServerAliveCountMax, ServerAliveInterval, allow_other, cache, ciphers, compression, create, credentials, gid, host, host_key, max_conns, password, path, port, reconnect, ro, sshcmd, uid, umask, user',
    );
    expect(parseError({ ...base, serveraliveinterval: "5" }).message).toMatch(
      /"serveraliveinterval" not allowed/,
    );
  });

  it.each([
    "-oProxyCommand=x",
    "-host",
    "host-",
    "a..b",
    ".example.com",
    "host name",
    "h,ProxyCommand=x",
    "evil;rm",
    "h/x",
    "h:22",
    "[-oX]",
    "[h.example.com]",
    "[fe80::1%eth0]",
    "999.1.1.1",
    "1.2.3",
    `${"a".repeat(64)}.com`,
    `${"abcdefghi.".repeat(26)}com`,
    "",
  ])("refuses host=%j", (host) => {
    expect(parseError({ ...base, host }).message).toMatch(
      host === "" ? /needs option host/ : /is not a host name, IPv4 address or \[IPv6\] address/,
    );
  });

  it.each([
    ["nas", "nas"],
    ["nas-01.example.com", "nas-01.example.com"],
    ["my_service", "my_service"],
    ["192.168.1.20", "192.168.1.20"],
    ["::1", "::1"],
    ["[::1]", "::1"],
    ["[2001:db8::7]", "2001:db8::7"],
  ])("accepts host=%j", (host, parsed) => {
    expect(parse({ ...base, host }).host).toBe(parsed);
  });

  it.each(["-oProxyCommand=x", "a b", "root@x", "a,b", "a:b", "ünïcode", "x".repeat(65)])(
    "refuses user=%j",
    (user) => {
      expect(parseError({ ...base, user }).message).toMatch(/is not a valid user name/);
    },
  );

  it.each(["/srv/a,b", "/srv/a\nb", "/srv/a\0b", "/srv/a\rb", "/x,ProxyCommand=nc evil 22"])(
    "refuses path=%j",
    (path) => {
      expect(parseError({ ...base, path }).message).toMatch(/must not contain commas, newlines or NUL/);
    },
  );

  it.each([
    ["[-oProxyCommand=x]:/p", /must look like user@host:path/],
    ["-oX@h:/p", /sshcmd user="-oX" is not a valid user name/],
    ["u@-oProxyCommand=x:/p", /sshcmd host="-oProxyCommand=x" is not a host name/],
    ["u@[-oX]:/p", /sshcmd host="\[-oX\]" is not a host name/],
    ["u@h,ProxyCommand=x:/p", /sshcmd host="h,ProxyCommand=x" is not a host name/],
    ["u@h:/p,ProxyCommand=x", /must not contain commas/],
    ["u@h", /must look like user@host:path/],
    ["h:/p", /must look like user@host:path/],
    ["@h:/p", /not a valid user name/],
    ["u@:/p", /not a host name/],
  ])("refuses sshcmd=%j", (sshcmd, why) => {
    expect(parseError({ sshcmd }).message).toMatch(why);
  });

  it.each([
    ["port", "22,ProxyCommand=x"],
    ["port", "0"],
    ["port", "65536"],
    ["ServerAliveInterval", "15,ProxyCommand=x"],
    ["ServerAliveInterval", "-1"],
    ["ServerAliveCountMax", "0"],
    ["max_conns", "0"],
    ["max_conns", "17"],
    ["max_conns", "2,ssh_command=x"],
    ["ciphers", "aes128-ctr,ProxyCommand=x"],
    ["ciphers", "aes128-ctr\\,ProxyCommand=x"],
    ["ciphers", "3des-cbc"],
    ["ciphers", "none"],
    ["ciphers", ""],
    ["ciphers", "aes128-ctr,aes128-ctr"],
    ["compression", "yes,ProxyCommand=x"],
    ["reconnect", "sometimes"],
    ["cache", "yes,ssh_command=sh"],
    ["umask", "022,allow_root"],
    ["uid", "0,suid"],
    ["allow_other", "1,dev"],
    ["credentials", "../etc"],
  ])("refuses %s=%j (typed values cannot smuggle options)", (key, value) => {
    expect(() => parse({ ...base, [key]: value })).toThrow(VolgateError);
  });

  it("reads host_key from a key line, or from ssh-keyscan output", () => {
    expect(parse({ ...base, host_key: `${KEY} root@nas` }).hostKeys).toEqual([KEY]);
    const keyscan = `# nas:22 SSH-2.0-OpenSSH_9.2p1 Debian-2\nnas ${RSA}\n# nas:22 SSH-2.0-OpenSSH_9.2p1\n[nas]:2222 ${KEY}\n`;
    expect(parse({ ...base, host_key: keyscan }).hostKeys).toEqual([RSA, KEY]);
  });

  it.each([
    "AAAAC3NzaC1lZDI1NTE5AAAAIApI3zhKSSdDTrfQyVFS8hiXDIrC48Re4ZEKO+mlqGds",
    "ssh-ed25519 not-base64!!",
    `ssh-rsa ${KEY.split(" ")[1]}`,
    "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
    "a b ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApI3zhKSSdDTrfQyVFS8hiXDIrC48Re4ZEKO+mlqGds",
    "# only a comment",
  ])("refuses host_key=%j", (hostKey) => {
    expect(parseError({ ...base, host_key: hostKey }).message).toMatch(
      /host_key (must be a public host key line|is empty)/,
    );
  });
});

describe("connectionKey and describe", () => {
  const key = (o: Options) => sshfsBackend.connectionKey(parse({ ...base, ...o }));

  it("ignores the path and ro, which belong to the volume", () => {
    expect(key({ path: "/a" })).toBe(key({ path: "/b", ro: "true" }));
    expect(key({ path: "/a", create: "true" })).toBe(key({}));
    expect(sshfsBackend.connectionKey(parse({ sshcmd: "backup@files.example.com:/x" }))).toBe(key({}));
  });

  it.each<Options>([
    { host: "other.example.com" },
    { port: "2222" },
    { user: "other" },
    { credentials: "p1" },
    { host_key: KEY },
    { password: "x-secret-1" },
    { uid: "1000" },
    { gid: "1000" },
    { umask: "077" },
    { allow_other: "false" },
    { reconnect: "false" },
    { ServerAliveInterval: "5" },
    { ServerAliveCountMax: "9" },
    { compression: "yes" },
    { cache: "no" },
    { max_conns: "2" },
    { max_conns: "4" },
    { ciphers: "aes128-gcm@openssh.com" },
  ])("changes with %j", (o) => {
    expect(key(o)).not.toBe(key({}));
  });

  it("never carries a password, only whether one was given inline", () => {
    const k = key({ password: "hunter2-very-secret" });
    expect(k).not.toContain("hunter2");
    expect(k).toBe(key({ password: "another-secret" }));
  });

  it("describes the endpoint without secrets", () => {
    expect(sshfsBackend.describe(parse({ ...base, path: "/srv", password: "pw-123456" }))).toBe(
      "backup@files.example.com:22:/srv",
    );
    expect(sshfsBackend.describe(parse({ sshcmd: "u@[::1]:", port: "2222" }))).toBe("u@[::1]:2222:~");
  });
});

describe("the sshfs command line, as mount starts it on the fake host", () => {
  let root: string;
  let secretsDir: string;
  let work: string;
  const { log } = captureLog("info");
  const target = targetAt("/mnt/volgate/conns/abc");
  const withKey = { credentials: "nas", host_key: KEY };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "volgate-sshfs-argv-"));
    secretsDir = join(root, "secrets");
    work = join(root, "work");
    await mkdir(work);
    await writeProfile(secretsDir, "nas", { private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n" });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Mount `o` (over `base`) on a new fake host, and return the sshfs it started. */
  async function started(o: Options, verifyHostKeys = true, dirs = { secretsDir, workDir: work }) {
    const host = new FakeHost();
    const ctx = host.context({ log, ...dirs, verifyHostKeys });
    await sshfsBackend.mount(parse({ ...base, ...o }), target, ctx, Deadline.after(2000));
    const [helper] = host.helpers;
    if (helper === undefined) throw new Error("mount started no sshfs");
    return helper;
  }

  /** The remote root in the foreground, no ssh config file, then the -o list. */
  const head = ["-f", "backup@files.example.com:/", "/mnt/volgate/conns/abc", "-F", "/dev/null", "-o"];
  /**
   * The -o items before Port= with the default options and verified host keys, on a host with AES
   * and sshfs 3.7: four connections for a key login, one for a password.
   */
  const sessionOptions = (login: "key" | "password") => [
    "nosuid",
    "nodev",
    "allow_other",
    "idmap=user",
    "reconnect",
    ...(login === "key" ? ["max_conns=4"] : []),
    "ServerAliveInterval=15",
    "ServerAliveCountMax=3",
    AES_FIRST,
    "StrictHostKeyChecking=yes",
    `UserKnownHostsFile=${work}/sshfs-abc.known_hosts`,
    "GlobalKnownHostsFile=/dev/null",
    "CheckHostIP=no",
    "UpdateHostKeys=no",
  ];

  it("mounts the remote root with a key, strict host keys and nosuid,nodev", async () => {
    expect((await started(withKey)).args).toEqual([
      ...head,
      [
        ...sessionOptions("key"),
        "Port=22",
        `IdentityFile=${secretsDir}/nas/private_key`,
        "IdentitiesOnly=yes",
        "PreferredAuthentications=publickey",
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
        "BatchMode=yes",
        "ConnectTimeout=10",
      ].join(","),
    ]);
  });

  it("asks for the password on stdin, escaping the comma FUSE would split on", async () => {
    const helper = await started({ port: "2222", password: "pw-inline-secret", host_key: KEY });
    expect(helper.args.slice(0, 6)).toEqual(head);
    expect(helper.args[6]).toBe(
      [
        ...sessionOptions("password"),
        "Port=2222",
        "password_stdin",
        "PubkeyAuthentication=no",
        "PreferredAuthentications=password\\,keyboard-interactive",
        "NumberOfPasswordPrompts=1",
        "ConnectTimeout=10",
      ].join(","),
    );
    expect(helper.stdin).toBe("pw-inline-secret\n");
    expect(helper.args.join(" ")).not.toContain("pw-inline-secret");
  });

  it("turns off host key checking only when the operator did", async () => {
    const o = (await started(withKey, false)).args[6]?.split(",") ?? [];
    expect(o).toContain("StrictHostKeyChecking=no");
    expect(o).toContain("UserKnownHostsFile=/dev/null");
    expect(o).not.toContain("StrictHostKeyChecking=yes");
  });

  it("maps tuning and session options", async () => {
    const helper = await started({
      ...withKey,
      uid: "1000",
      gid: "100",
      umask: "027",
      allow_other: "false",
      reconnect: "false",
      compression: "yes",
      cache: "no",
      max_conns: "4",
      ciphers: "aes128-ctr",
      ServerAliveInterval: "0",
    });
    const o = helper.args[6];
    expect(o).toMatch(
      /^nosuid,nodev,uid=1000,gid=100,umask=0027,idmap=user,dir_cache=no,max_conns=4,ServerAliveInterval=0,ServerAliveCountMax=3,Compression=yes,Ciphers=aes128-ctr,StrictHostKeyChecking=yes,/,
    );
    expect(o).not.toMatch(/reconnect|allow_other/);
  });

  describe("the data path: ciphers and connections", () => {
    /** The -o items, split where FUSE splits them: on commas not escaped. */
    const items = async (o: Options) => (await started(o)).args[6]?.split(/(?<!\\),/) ?? [];
    const ciphersOf = (list: string[]) => list.find((i) => i.startsWith("Ciphers="));
    const connsOf = (list: string[]) => list.find((i) => i.startsWith("max_conns="));
    beforeEach(() => {
      offering(MODERN);
    });

    it("prefers AES-GCM when the CPU has AES, keeping chacha20-poly1305 and the rest of ssh's default set", async () => {
      expect(ciphersOf(await items(withKey))).toBe(AES_FIRST);
      offering({ ...MODERN, aes: false });
      expect(ciphersOf(await items(withKey))).toBeUndefined(); // ssh's own order: chacha20-poly1305 first
    });

    it("opens four SSH connections for a key login and one for a password (sshfs sends it to one only)", async () => {
      expect(connsOf(await items(withKey))).toBe("max_conns=4");
      expect(connsOf(await items({ password: "pw-inline-1", host_key: KEY }))).toBeUndefined();
    });

    it("keeps one connection where sshfs has no max_conns (before 3.7), and says so when asked for more", async () => {
      offering({ aes: true, sshfsVersion: "3.6.0" });
      expect(connsOf(await items(withKey))).toBeUndefined();
      expect(connsOf(await items({ ...withKey, max_conns: "1" }))).toBe("max_conns=1");
      await expect(started({ ...withKey, max_conns: "2" })).rejects.toThrow(
        "max_conns needs sshfs 3.7 or later, and this host has sshfs 3.6.0: drop max_conns",
      );
    });

    it("lets the volume choose both", async () => {
      const chosen = await items({
        ...withKey,
        ciphers: "chacha20-poly1305@openssh.com,aes128-ctr",
        max_conns: "2",
      });
      expect(ciphersOf(chosen)).toBe("Ciphers=chacha20-poly1305@openssh.com\\,aes128-ctr");
      expect(connsOf(chosen)).toBe("max_conns=2");
      offering({ ...MODERN, aes: false });
      expect(ciphersOf(await items({ ...withKey, ciphers: "aes256-gcm@openssh.com" }))).toBe(
        "Ciphers=aes256-gcm@openssh.com",
      );
      expect(connsOf(await items({ ...withKey, max_conns: "1" }))).toBe("max_conns=1");
    });
  });

  it("brackets IPv6 hosts", async () => {
    expect((await started({ ...withKey, host: "fd00::5" })).args[1]).toBe("backup@[fd00::5]:/");
  });

  it("refuses file paths sshfs would split", async () => {
    const comma = join(root, "se,crets");
    await writeProfile(comma, "pw", { password: "pw-123456\n", known_hosts: `files.example.com ${KEY}\n` });
    const spaced = join(root, "se crets");
    await writeProfile(spaced, "nas", { private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n" });
    await expect(started({ credentials: "pw" }, true, { secretsDir: comma, workDir: work })).rejects.toThrow(
      /comma, space or quote/,
    );
    await expect(started(withKey, true, { secretsDir: spaced, workDir: work })).rejects.toThrow(/comma/);
  });

  it("always has nosuid,nodev first and never a password, whatever the options", async () => {
    const tuning = fc.record(
      {
        reconnect: fc.constantFrom("true", "false"),
        compression: fc.constantFrom("yes", "no"),
        cache: fc.constantFrom("yes", "no"),
        max_conns: fc.integer({ min: 1, max: 16 }).map(String),
        ServerAliveInterval: fc.integer({ min: 0, max: 3600 }).map(String),
        uid: fc.integer({ min: 0, max: 65535 }).map(String),
        allow_other: fc.constantFrom("true", "false"),
        port: fc.integer({ min: 1, max: 65535 }).map(String),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(tuning, fc.string({ minLength: 4 }), fc.boolean(), async (o, password, useKey) => {
        const key = useKey || Number(o.max_conns ?? "1") > 1;
        const mounting = started({ ...o, password, host_key: KEY, ...(key && { credentials: "nas" }) });
        if (!key && /[\n\r\0]/.test(password)) {
          // sshfs reads the password as one line of stdin: such a password is refused before anything starts.
          await expect(mounting).rejects.toThrow(/newline or NUL/);
          return;
        }
        const { args } = await mounting;
        expect(args[6]?.startsWith("nosuid,nodev")).toBe(true);
        expect(args.filter((a) => a.includes(password))).toEqual([]);
      }),
    );
  }, 60_000);
});

describe("mount through a fake runner", () => {
  let root: string;
  let secretsDir: string;
  const { log, lines: logs } = captureLog("info");

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "volgate-sshfs-unit-"));
    secretsDir = join(root, "secrets");
    await writeProfile(secretsDir, "key", { private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n" });
    await writeProfile(secretsDir, "pw", {
      password: "profile-pw-123\n",
      known_hosts: `[nas]:2222 ${KEY}\n`,
    });
    await writeProfile(secretsDir, "empty", {});
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Without a fault sshfs mounts its target; a fault makes it print and exit, or hang. */
  function fakeMachine(fault?: Fault) {
    const host = new FakeHost();
    if (fault !== undefined) host.faults.set("u@nas:/", fault);
    const ctx = (verifyHostKeys = true) => host.context({ log, secretsDir, workDir: root, verifyHostKeys });
    return { ctx, started: host.helpers, live: host.table };
  }

  const spec = (o: Options): SshfsSpec => parse({ host: "nas", port: "2222", user: "u", ...o });

  it("starts sshfs with the profile key and a 0600 known_hosts written from host_key", async () => {
    const m = fakeMachine();
    await sshfsBackend.mount(
      spec({ credentials: "key", host_key: KEY }),
      targetAt("/t/key"),
      m.ctx(),
      Deadline.after(2000),
    );
    const s = m.started[0];
    expect(s?.file).toBe("sshfs");
    expect(s?.options.stdin).toBeUndefined();
    expect(s?.options.logFile).toBe(`${root}/sshfs-key.log`);
    const o = s?.args[6]?.split(",") ?? [];
    expect(o).toContain(`IdentityFile=${join(secretsDir, "key", "private_key")}`);
    const kh = o.find((x) => x.startsWith("UserKnownHostsFile="))?.slice("UserKnownHostsFile=".length) ?? "";
    expect(kh).toBe(`${root}/sshfs-key.known_hosts`);
    expect(await readFile(kh, "utf8")).toBe(`[nas]:2222 ${KEY}\n`);
    expect((await stat(kh)).mode & 0o777).toBe(0o600);
    expect(m.live.has("/t/key")).toBe(true);
  });

  it("sends the profile password on stdin only, and uses the profile's known_hosts as is", async () => {
    const m = fakeMachine();
    await sshfsBackend.mount(spec({ credentials: "pw" }), targetAt("/t/pw"), m.ctx(), Deadline.after(2000));
    const s = m.started[0];
    expect(s?.options.stdin).toBe("profile-pw-123\n");
    expect(s?.args.join(" ")).not.toContain("profile-pw-123");
    expect(s?.args[6]).toContain(`UserKnownHostsFile=${join(secretsDir, "pw", "known_hosts")},`);
    expect(s?.args[6]).toContain("password_stdin");
  });

  it("uses an inline password when no profile is given", async () => {
    const m = fakeMachine();
    await sshfsBackend.mount(
      spec({ password: "inline-pw-77", host_key: KEY }),
      targetAt("/t/inline"),
      m.ctx(),
      Deadline.after(2000),
    );
    expect(m.started[0]?.options.stdin).toBe("inline-pw-77\n");
    expect(m.started[0]?.args.join(" ")).not.toContain("inline-pw-77");
  });

  it("reports ssh's words and a hint when sshfs exits, and leaves nothing mounted", async () => {
    const m = fakeMachine({
      code: 1,
      said: "Host key for [nas]:2222 has changed.\nHost key verification failed.\nread: Connection reset by peer\n",
    });
    const err = await failure(
      sshfsBackend.mount(
        spec({ credentials: "key", host_key: OTHER }),
        targetAt("/t/bad"),
        m.ctx(),
        Deadline.after(2000),
      ),
    );
    expect(err.kind).toBe("backend");
    expect(err.message).toBe(
      "sshfs mount of u@nas:2222 failed: Host key for [nas]:2222 has changed.; Host key verification failed.; read: Connection reset by peer: the server's host key does not match host_key/known_hosts (it changed, or the server is not the one you expect)",
    );
    expect(m.live.size).toBe(0);
  });

  it("kills a helper that does not mount by the deadline", async () => {
    const m = fakeMachine("hang");
    const started = Date.now();
    const err = await failure(
      sshfsBackend.mount(
        spec({ credentials: "key", host_key: KEY }),
        targetAt("/t/hang"),
        m.ctx(),
        Deadline.after(300),
      ),
    );
    expect(err.kind).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(1500);
    expect(m.started[0]?.killed).toBe(true);
  });

  it("refuses to mount with no known host key, before starting anything", async () => {
    const m = fakeMachine();
    const err = await failure(
      sshfsBackend.mount(spec({ credentials: "key" }), targetAt("/t/nokey"), m.ctx(), Deadline.after(2000)),
    );
    expect(err.kind).toBe("invalid");
    expect(err.message).toBe(
      'no known host key for nas:2222: pass -o host_key="$(ssh-keyscan -t ed25519 -p 2222 nas 2>/dev/null)" after checking its fingerprint, or add known_hosts to the credentials profile',
    );
    expect(m.started).toEqual([]);
  });

  it("mounts without checking host keys only when the operator turned that off, with a warning", async () => {
    const m = fakeMachine();
    const before = logs.length;
    await sshfsBackend.mount(
      spec({ credentials: "key" }),
      targetAt("/t/nocheck"),
      m.ctx(false),
      Deadline.after(2000),
    );
    expect(m.started[0]?.args[6]).toContain("StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null");
    expect(logs.slice(before).some((l) => l.level === 40)).toBe(true);
  });

  it("preflight refuses a private key it cannot use, before any connection", async () => {
    const m = fakeMachine();
    const err = await failure(
      sshfsBackend.preflight(spec({ credentials: "key", host_key: KEY }), m.ctx(), Deadline.after(2000)),
    );
    expect(err.kind).toBe("invalid");
    expect(err.message).toBe(
      'cannot use the private_key of credentials profile "key": Cannot parse privateKey: Unsupported key format (volgate needs an unencrypted private key)',
    );
  });

  it("says what credential is missing", async () => {
    const m = fakeMachine();
    await expect(
      sshfsBackend.mount(spec({ host_key: KEY }), targetAt("/t/x"), m.ctx(), Deadline.after(2000)),
    ).rejects.toThrow(/no credentials for u@nas: pass -o credentials=PROFILE/);
    await expect(
      sshfsBackend.mount(
        spec({ credentials: "empty", host_key: KEY }),
        targetAt("/t/x"),
        m.ctx(),
        Deadline.after(2000),
      ),
    ).rejects.toThrow(/credentials profile "empty" .* has neither a private_key nor a password file/);
    await expect(
      sshfsBackend.mount(
        spec({ credentials: "nope", host_key: KEY }),
        targetAt("/t/x"),
        m.ctx(),
        Deadline.after(2000),
      ),
    ).rejects.toThrow(/credentials profile "nope" not found/);
    await expect(
      sshfsBackend.mount(
        spec({ credentials: "pw", max_conns: "4" }),
        targetAt("/t/x"),
        m.ctx(),
        Deadline.after(2000),
      ),
    ).rejects.toThrow(/max_conns above 1 needs key authentication/);
    await expect(
      sshfsBackend.mount(
        spec({ password: "inline-pw-77", host_key: KEY, max_conns: "2" }),
        targetAt("/t/x"),
        m.ctx(),
        Deadline.after(2000),
      ),
    ).rejects.toThrow(/max_conns above 1 needs key authentication/);
    expect(m.started).toEqual([]);
  });
});
