/**
 * The s3fs backend without a server, through its Backend object: option parsing and its
 * refusals (dangerous s3fs options, smuggled commas, odd endpoints and buckets), the connection
 * key, and mount through a fake runner and mount table: the s3fs command line, what s3fs says
 * when it fails, and s3fs's "mounted, then gone" lie.
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path, { basename, join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Options } from "../../../src/backends/backend.ts";
import { createRegistry } from "../../../src/backends/index.ts";
import { s3fsBackend } from "../../../src/backends/s3fs/index.ts";
import { Deadline } from "../../../src/deadline.ts";
import { VolgateError } from "../../../src/errors.ts";
import { removeSecretFiles } from "../../../src/restore.ts";
import { type FakeEndpoint, fakeS3Endpoint } from "../../fakes/endpoints.ts";
import { type FakeHelper, FakeHost, type Fault } from "../../fakes/host.ts";
import { captureLog } from "../../fakes/log.ts";
import { failure, refusal } from "../../support/expect-error.ts";
import { targetAt } from "../../support/machine.ts";
import { writeProfile } from "../../support/profile.ts";

const base: Options = { bucket: "media-files", prefix: "vols/app1", credentials: "s3" };
const parse = (o: Options) => s3fsBackend.parse(o);
const parseError = (o: Options) => refusal(() => parse(o), `parse(${JSON.stringify(o)})`);

describe("parse", () => {
  it("types a minimal volume: AWS endpoint for the default region, virtual-hosted style", () => {
    expect(parse(base)).toEqual({
      bucket: "media-files",
      prefix: "vols/app1",
      endpoint: "https://s3.us-east-1.amazonaws.com",
      region: "us-east-1",
      pathStyle: false,
      sse: false,
      readOnly: false,
      common: { credentials: "s3", create: false, allowOther: true },
      tuning: {},
    });
  });

  it("takes every allowed option", () => {
    const spec = parse({
      ...base,
      prefix: "/team/data/",
      endpoint: "HTTPS://Minio.Example.com:9000/",
      region: "eu-west-3",
      path_style: "true",
      sse: "AES256",
      ro: "",
      create: "true",
      uid: "1000",
      gid: "1001",
      umask: "027",
      allow_other: "false",
      multipart_size: "64",
      parallel_count: "8",
      max_stat_cache_size: "5000",
      stat_cache_expire: "60",
      enable_noobj_cache: "",
      storage_class: "STANDARD_IA",
      norenameapi: "true",
      nocopyapi: "false",
      retries: "3",
      default_acl: "bucket-owner-full-control",
    });
    expect(spec).toEqual({
      bucket: "media-files",
      prefix: "team/data",
      endpoint: "https://minio.example.com:9000",
      region: "eu-west-3",
      pathStyle: true,
      sse: true,
      readOnly: true,
      common: {
        credentials: "s3",
        create: true,
        uid: 1000,
        gid: 1001,
        umask: "0027",
        allowOther: false,
      },
      tuning: {
        default_acl: "bucket-owner-full-control",
        enable_noobj_cache: true,
        max_stat_cache_size: 5000,
        multipart_size: 64,
        norenameapi: true,
        parallel_count: 8,
        retries: 3,
        stat_cache_expire: 60,
        storage_class: "standard_ia",
      },
    });
  });

  it("defaults path_style on for IP and localhost endpoints, which have no bucket subdomains", () => {
    expect(parse({ ...base, endpoint: "http://127.0.0.1:9000" }).pathStyle).toBe(true);
    expect(parse({ ...base, endpoint: "http://[::1]:9000" }).pathStyle).toBe(true);
    expect(parse({ ...base, endpoint: "http://localhost:9000" }).pathStyle).toBe(true);
    expect(parse({ ...base, endpoint: "http://127.0.0.1:9000", path_style: "false" }).pathStyle).toBe(false);
    expect(parse({ ...base, endpoint: "https://s3.example.com" }).pathStyle).toBe(false);
  });

  it("normalizes endpoints so equal endpoints give equal keys", () => {
    expect(parse({ ...base, endpoint: "https://S3.Example.COM:443" }).endpoint).toBe(
      "https://s3.example.com",
    );
    expect(parse({ ...base, endpoint: "http://s3.example.com:80/" }).endpoint).toBe("http://s3.example.com");
    expect(parse({ ...base, endpoint: "http://[::1]:9000" }).endpoint).toBe("http://[::1]:9000");
    expect(parse({ ...base, region: "ap-south-1" }).endpoint).toBe("https://s3.ap-south-1.amazonaws.com");
  });

  it("a missing or empty prefix is the whole bucket", () => {
    expect(parse({ bucket: "b-1", credentials: "s3" }).prefix).toBe("");
    expect(parse({ bucket: "b-1", credentials: "s3", prefix: "/" }).prefix).toBe("");
  });

  it("needs a bucket and credentials", () => {
    expect(parseError({ prefix: "x", credentials: "s3" }).message).toMatch(/needs option bucket/);
    expect(parseError({ bucket: "b-1" }).message).toMatch(/needs credentials: pass -o credentials=PROFILE/);
  });

  it("takes inline keys only as a pair, and never together with a profile", () => {
    const spec = parse({ bucket: "b-1", access_key_id: "AKIAEXAMPLE", secret_access_key: "s3cr3t/Key+x" });
    expect(spec.accessKeyId).toBe("AKIAEXAMPLE");
    expect(spec.secretAccessKey).toBe("s3cr3t/Key+x");
    expect(parseError({ bucket: "b-1", access_key_id: "AKIAEXAMPLE" }).message).toMatch(/go together/);
    expect(
      parseError({ ...base, access_key_id: "AKIAEXAMPLE", secret_access_key: "s3cr3t/Key+x" }).message,
    ).toMatch(/either credentials=PROFILE or access_key_id/);
  });

  it("refuses inline keys s3fs's passwd file cannot hold, without echoing them", () => {
    for (const secret of ["has:colon-secret", "has space-secret", "#comment-secret", "new\nline-secret"]) {
      const err = parseError({ bucket: "b-1", access_key_id: "AKIAEXAMPLE", secret_access_key: secret });
      expect(err.message).toMatch(/secret_access_key must be 1-512 printable characters/);
      expect(err.message).not.toContain(secret);
    }
  });

  it("reports the secret options to the driver", () => {
    expect(s3fsBackend.secretOptions).toEqual(["access_key_id", "secret_access_key"]);
    const allowed = parseError({ ...base, nonempty: "" })
      .message.split("allowed: ")[1]
      ?.split(", ");
    expect(allowed).toEqual(expect.arrayContaining(["bucket", "prefix", "endpoint", "credentials"]));
  });
});

describe("refused and unknown options", () => {
  const dangerous: Record<string, RegExp> = {
    credlib: /load a library/,
    credlib_opts: /load a library/,
    passwd_file: /read or write files/,
    use_cache: /read or write files/,
    tmpdir: /read or write files/,
    ahbe_conf: /read or write files/,
    mime: /read or write files/,
    logfile: /read or write files/,
    load_sse_c: /read or write files/,
    ssl_client_cert: /read or write files/,
    use_sse: /key file/,
    no_check_certificate: /weakens TLS/,
    ssl_verify_hostname: /weakens TLS/,
    cipher_suites: /weakens TLS/,
    curldbg: /log request details/,
    dbglevel: /log request details/,
    profile: /passes credentials itself/,
    iam_role: /passes credentials itself/,
    ecs: /passes credentials itself/,
    url: /sets it itself/,
    host: /sets it itself/,
    servicepath: /sets it itself/,
    use_path_request_style: /sets it itself/,
    suid: /nosuid,nodev/,
    dev: /nosuid,nodev/,
  };

  for (const [name, why] of Object.entries(dangerous)) {
    it(`refuses ${name} by name, saying why and what is allowed`, () => {
      const err = parseError({ ...base, [name]: name === "ssl_verify_hostname" ? "0" : "/tmp/x" });
      expect(err.message).toContain(`option "${name}" is refused`);
      expect(err.message).toMatch(why);
      expect(err.message).toContain("allowed: access_key_id, allow_other, bucket,");
    });
  }

  it("refuses them whatever their case, and anything that looks like a flag", () => {
    expect(parseError({ ...base, PASSWD_FILE: "/x" }).message).toMatch(/refused/);
    expect(parseError({ ...base, "-f": "" }).message).toMatch(/command-line flags cannot be passed/);
  });

  it("refuses unknown options through the allow-list", () => {
    const err = parseError({ ...base, nonempty: "", fake_diskfree: "1" });
    expect(err.message).toMatch(
      /options "nonempty", "fake_diskfree" not allowed for backend s3fs; allowed: /,
    );
  });

  it("refuses bad tuning values", () => {
    expect(parseError({ ...base, multipart_size: "4" }).message).toMatch(/from 5 to 5120/);
    expect(parseError({ ...base, parallel_count: "8,use_cache=/tmp" }).message).toMatch(/whole number/);
    expect(parseError({ ...base, storage_class: "glacier,passwd_file=/etc/x" }).message).toMatch(
      /storage_class.*must be one of standard, standard_ia/,
    );
    expect(parseError({ ...base, enable_noobj_cache: "1,curldbg" }).message).toMatch(/not a boolean/);
    expect(parseError({ ...base, sse: "kmsid:abc" }).message).toMatch(/sse="kmsid:abc" is not supported/);
    expect(parseError({ ...base, nomultipart: "", multipart_size: "64" }).message).toMatch(
      /nomultipart cannot be combined/,
    );
  });
});

describe("values that would smuggle options", () => {
  it("refuses endpoints that are not scheme://host[:port]", () => {
    for (const endpoint of [
      "http://127.0.0.1:9000,passwd_file=/etc/shadow",
      "http://s3 .example.com",
      'http://"s3.example.com"',
      "http://s3.example.com/'",
      "http://s3.example.com/path",
      "http://user:pw@s3.example.com",
      "http://s3.example.com?x=1",
      "http://s3.example.com#frag",
      "ftp://s3.example.com",
      "s3.example.com",
      "http://-s3.example.com",
      "http://s3.example.com:0",
      "http://s3.example.com:65536",
      "http://[zz::1]:9000",
      "http://999.1.1.1",
      " http://s3.example.com",
      "http://s3.example.com\n",
    ]) {
      const err = parseError({ ...base, endpoint });
      expect(err.message).toMatch(/must be a URL like https:\/\/s3\.example\.com/);
    }
  });

  it("refuses bucket names S3 does not allow, with a hint for bucket/prefix", () => {
    expect(parseError({ ...base, bucket: "media/vols" }).message).toMatch(/contains "\/".*-o prefix=/);
    for (const bucket of [
      "ab",
      "A-Bucket",
      "my_bucket",
      "-bucket",
      "bucket-",
      "my..bucket",
      "192.168.1.1",
      "xn--bucket",
      "bucket-s3alias",
      "b,use_cache=tmp",
      "bucket name",
      "a".repeat(64),
    ]) {
      expect(parseError({ ...base, bucket }).message).toMatch(/is not a valid S3 bucket name/);
    }
    expect(parse({ ...base, bucket: "my.bucket-01" }).bucket).toBe("my.bucket-01");
  });

  it("refuses prefixes that climb out or hide control characters", () => {
    for (const prefix of ["../etc", "a/../../b", "a//b", "./a", "a/./b", "a\nb", "a\0b", "x".repeat(1001)]) {
      expect(parseError({ ...base, prefix }).message).toMatch(/is not a usable directory in a bucket/);
    }
    expect(parseError({ ...base, prefix: "a\nb" }).message).toContain('prefix="a?b"');
    expect(parse({ ...base, prefix: "a,b/c d" }).prefix).toBe("a,b/c d");
  });

  it("refuses regions that are not region names", () => {
    for (const region of ["us-east-1,passwd_file=/x", "US East", "-x", "eu west"]) {
      expect(parseError({ ...base, region }).message).toMatch(/is not a region name/);
    }
  });
});

describe("connectionKey and describe", () => {
  const key = (o: Options) => s3fsBackend.connectionKey(parse(o));

  it("ignores the volume's own choices: prefix, ro, create", () => {
    expect(key({ ...base, prefix: "other", ro: "true", create: "true" })).toBe(key(base));
  });

  it("separates everything that shapes the session", () => {
    const variants: Options[] = [
      { ...base, bucket: "other-bucket" },
      { ...base, endpoint: "https://minio.example.com" },
      { ...base, region: "eu-west-1", endpoint: "https://s3.us-east-1.amazonaws.com" },
      { ...base, path_style: "true" },
      { ...base, credentials: "other" },
      { ...base, uid: "1000" },
      { ...base, gid: "1000" },
      { ...base, umask: "022" },
      { ...base, allow_other: "false" },
      { ...base, sse: "true" },
      { ...base, multipart_size: "64" },
      { ...base, norenameapi: "" },
    ];
    const keys = new Set([key(base), ...variants.map(key)]);
    expect(keys.size).toBe(variants.length + 1);
  });

  it("names an inline identity by a hash of the access key id, never by a secret", () => {
    const inline = { bucket: "b-1", access_key_id: "AKIAINLINE1", secret_access_key: "very-secret-1" };
    const k = key(inline);
    expect(k).not.toContain("AKIAINLINE1");
    expect(k).not.toContain("very-secret-1");
    expect(k).toMatch(/"identity":"inline:[0-9a-f]{64}"/);
    expect(key({ ...inline, secret_access_key: "very-secret-2" })).toBe(k);
    expect(key({ ...inline, access_key_id: "AKIAINLINE2" })).not.toBe(k);
    expect(key(base)).toContain('"identity":"profile:s3"');
  });

  it("describes the data as s3://bucket/prefix @ endpoint", () => {
    expect(s3fsBackend.describe(parse({ ...base, endpoint: "http://127.0.0.1:9000" }))).toBe(
      "s3://media-files/vols/app1 @ http://127.0.0.1:9000",
    );
    expect(
      s3fsBackend.describe(parse({ bucket: "b-1", access_key_id: "AK1x", secret_access_key: "SECRETx" })),
    ).toBe("s3://b-1/ @ https://s3.us-east-1.amazonaws.com");
  });
});

/**
 * Mounts on the fake host, with a fake S3 endpoint on 127.0.0.1 answering mount's HeadBucket:
 * "media-files" and "b-1" exist there. Without a fault, s3fs mounts and the bucket shows the
 * volume's directory; a fault makes it say something and exit (after mounting for a moment when
 * `mountFirst`, as s3fs does).
 */
describe("mount through a fake runner", () => {
  let root: string;
  let secretsDir: string;
  let s3: FakeEndpoint;
  const { log, lines: logs } = captureLog("info");
  const endpoint = () => `http://127.0.0.1:${s3.port}`;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "volgate-s3fs-unit-"));
    secretsDir = join(root, "secrets");
    await writeProfile(secretsDir, "s3", {
      access_key_id: "AKIAPROFILE\n",
      secret_access_key: "profile/Secret+1\n",
    });
    await writeProfile(secretsDir, "half", { access_key_id: "AKIAPROFILE\n" });
    await writeProfile(secretsDir, "colon", { access_key_id: "AKIA", secret_access_key: "bad:secret-x" });
    s3 = await fakeS3Endpoint(["media-files", "b-1"]);
  });
  afterAll(async () => {
    await s3.close();
    await rm(root, { recursive: true, force: true });
  });

  /** A fake host; `mount(o)` mounts `o` (on the fake endpoint) at a new target in the temp dir. */
  function fakeMachine(fault?: Fault, workDir?: string) {
    const host = new FakeHost();
    const ctx = host.context({ log, secretsDir, workDir: workDir ?? root });
    let target = "";
    return {
      host,
      started: host.helpers,
      live: host.table,
      target: () => target,
      async mount(o: Options, deadline = Deadline.after(2000)) {
        const spec = parse({ endpoint: endpoint(), ...o });
        if (fault === undefined)
          host.servers.set(spec.bucket, new Set(spec.prefix === "" ? [] : [spec.prefix]));
        else host.faults.set(spec.bucket, fault);
        target = await mkdtemp(join(root, "t-"));
        await s3fsBackend.mount(spec, targetAt(target), ctx, deadline);
        return { target, helper: host.helpers[0] };
      },
    };
  }

  /** The passwd file a started s3fs was told to read. */
  const passwdOf = (s: FakeHelper | undefined) =>
    s?.args[4]
      ?.split(",")
      .find((o) => o.startsWith("passwd_file="))
      ?.slice(12) ?? "";

  it("keeps one S3 client per endpoint and key: checks on the next Create or Mount reuse its connection", async () => {
    const own = await fakeS3Endpoint(["media-files"]);
    try {
      const host = new FakeHost();
      const ctx = host.context({ log, secretsDir, workDir: root });
      const spec = parse({ ...base, prefix: "", endpoint: `http://127.0.0.1:${own.port}` });
      for (let i = 0; i < 3; i++)
        expect(await s3fsBackend.preflight(spec, ctx, Deadline.after(2000))).toBe("");
      expect(own.seen.filter((l) => l.startsWith("HEAD /media-files"))).toHaveLength(3);
      expect(own.connections()).toBe(1);
    } finally {
      await own.close();
    }
  });

  describe("the s3fs command line", () => {
    it("mounts the bucket root in the foreground, with our passwd file and nosuid,nodev", async () => {
      const { target, helper } = await fakeMachine().mount(base);
      expect(helper?.args).toEqual([
        "-f",
        "media-files",
        target,
        "-o",
        `url=${endpoint()},endpoint=us-east-1,use_path_request_style,passwd_file=${root}/s3fs-${basename(target)}.passwd,nosuid,nodev,allow_other`,
      ]);
    });

    it("passes ownership, umask (also for the mount root), sse and tuning", async () => {
      const { target, helper } = await fakeMachine().mount({
        ...base,
        path_style: "false",
        region: "eu-central-1",
        uid: "1000",
        gid: "1000",
        umask: "022",
        allow_other: "false",
        sse: "true",
        storage_class: "standard_ia",
        norenameapi: "yes",
        nomultipart: "no",
        stat_cache_expire: "30",
      });
      expect(helper?.args[4]?.split(",")).toEqual([
        `url=${endpoint()}`,
        "endpoint=eu-central-1",
        `passwd_file=${root}/s3fs-${basename(target)}.passwd`,
        "nosuid",
        "nodev",
        "uid=1000",
        "gid=1000",
        "umask=0022",
        "mp_umask=0022",
        "use_sse",
        "norenameapi",
        "stat_cache_expire=30",
        "storage_class=standard_ia",
      ]);
    });

    it("never carries a key, even an inline one", async () => {
      const { helper } = await fakeMachine().mount({
        bucket: "b-1",
        access_key_id: "AKIAINLINE9",
        secret_access_key: "inline-secret-9",
      });
      const argv = helper?.args.join(" ");
      expect(argv).toMatch(/^-f b-1 /);
      expect(argv).not.toContain("AKIAINLINE9");
      expect(argv).not.toContain("inline-secret-9");
    });

    it("refuses a passwd file path the option parser would split", async () => {
      const relative = join(root, "w-relative");
      for (const workDir of [join(root, "w,a"), join(root, "w b"), relative]) await mkdir(workDir);
      for (const workDir of [join(root, "w,a"), join(root, "w b"), path.relative(process.cwd(), relative)]) {
        const m = fakeMachine(undefined, workDir);
        await expect(m.mount(base)).rejects.toThrow(/cannot be passed to s3fs/);
        expect(m.started).toEqual([]);
      }
    });

    it("never lets any option value add an s3fs option (property)", async () => {
      const names = [
        "endpoint",
        "region",
        "multipart_size",
        "storage_class",
        "sse",
        "uid",
        "umask",
        "bucket",
      ];
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...names), fc.string(), fc.string(), async (name, before, after) => {
          const o = { ...base, [name]: `${before},passwd_file=/etc/shadow${after}` };
          try {
            parse(o);
          } catch (err) {
            return err instanceof VolgateError && err.kind === "invalid";
          }
          // Accepted: whatever mount starts has our passwd file, and no other.
          const m = fakeMachine();
          await m.mount(o).catch(() => {});
          return m.started.every(
            (s) => s.args[4]?.split(",").filter((x) => x.startsWith("passwd_file=")).length === 1,
          );
        }),
      );
    });
  });

  describe("what s3fs says when it fails", () => {
    it("keeps s3fs's complaint and drops timestamps, source locations and [INF] lines", async () => {
      const said = [
        "2026-11-23T12:25:04.365Z [INF] s3fs version 1.90(unknown) : s3fs -f -o url=http://127.0.0.1:1 bkt /t",
        "2026-11-23T12:25:04.366Z [INF] s3fs.cpp:s3fs_init(3382): init v1.90(commit:unknown) with GnuTLS(gcrypt)",
        "2026-11-23T12:25:04.411Z [CRT] s3fs.cpp:s3fs_check_service(3575): Failed to connect by sigv4, so retry to connect by signature version 2.",
        "2026-11-23T12:25:04.412Z [CRT] s3fs.cpp:s3fs_check_service(3590): invalid credentials(host=http://127.0.0.1:1) - result of checking service.",
        "",
      ].join("\n");
      const what = () => `s3fs mount of s3://media-files/vols/app1 @ ${endpoint()}`;
      expect((await failure(fakeMachine({ code: 0, said }).mount(base))).message).toBe(
        `${what()} failed: invalid credentials(host=http://127.0.0.1:1) - result of checking service.: the access key was refused: check credentials profile "s3"`,
      );
      const notEmpty = { code: 1, said: "s3fs: MOUNTPOINT directory /t is not empty.\n" };
      expect((await failure(fakeMachine(notEmpty).mount(base))).message).toBe(
        `${what()} failed: s3fs: MOUNTPOINT directory /t is not empty.`,
      );
    });
  });

  it("reads the profile's keys and says which file is missing", async () => {
    const { helper } = await fakeMachine().mount(base);
    expect(helper?.read.get(passwdOf(helper))?.text).toBe("AKIAPROFILE:profile/Secret+1\n");
    const half = await failure(fakeMachine().mount({ ...base, credentials: "half" }));
    expect(half.message).toMatch(/credentials profile "half" .* lacks secret_access_key/);
    const colon = await failure(fakeMachine().mount({ ...base, credentials: "colon" }));
    expect(colon.message).toMatch(/secret_access_key of credentials profile "colon" must be/);
    expect(colon.message).not.toContain("bad:secret-x");
  });

  it("starts s3fs with a 0600 passwd file it deletes once the mount is proven", async () => {
    const before = logs.length;
    const { target, helper: s } = await fakeMachine().mount(base);
    const mounted = logs.slice(before).find((l) => l.msg === "s3fs connection mounted");
    expect(mounted?.pid).toBe(s?.pid);
    expect(mounted?.target).toBe(target);
    expect(s?.args.slice(0, 3)).toEqual(["-f", "media-files", target]);
    expect(s?.args.join(" ")).not.toContain("profile/Secret+1");
    expect(s?.options.stdin).toBeUndefined();
    expect(s?.options.logFile).toBe(`${root}/s3fs-${basename(target)}.log`);
    const passwd = passwdOf(s);
    expect(s?.read.get(passwd)).toEqual({ text: "AKIAPROFILE:profile/Secret+1\n", mode: 0o600 });
    expect(passwd).toBe(`${root}/s3fs-${basename(target)}.passwd`);
    await expect(stat(passwd)).rejects.toThrow(/ENOENT/);
    expect(s?.killed).toBe(false);
  });

  it("sees through s3fs mounting and then exiting 0: quotes it, kills, unmounts, deletes the passwd file", async () => {
    const m = fakeMachine({
      code: 0,
      said: "2026-11-23T12:25:04.412Z [CRT] s3fs.cpp:s3fs_check_service(3590): invalid credentials(host=http://127.0.0.1:9000) - result of checking service.\n",
      mountFirst: true,
    });
    const err = await failure(m.mount(base));
    expect(err.kind).toBe("backend");
    expect(err.message).toBe(
      `s3fs mount of s3://media-files/vols/app1 @ ${endpoint()} failed: invalid credentials(host=http://127.0.0.1:9000) - result of checking service.: the access key was refused: check credentials profile "s3"`,
    );
    expect(m.live.has(m.target())).toBe(false);
    expect(m.started[0]?.killed).toBe(true);
    await expect(stat(passwdOf(m.started[0]))).rejects.toThrow(/ENOENT/);
  });

  it("reports an s3fs that exits before mounting, with a hint", async () => {
    const m = fakeMachine({
      code: 0,
      said: "2026-11-23T12:25:04.365Z [CRT] s3fs.cpp:s3fs_check_service(3593): bucket or key not found(host=http://127.0.0.1:9000) - result of checking service.\n",
    });
    const err = await failure(m.mount(base));
    expect(err.message).toMatch(/failed: bucket or key not found\(host=http:\/\/127\.0\.0\.1:9000\)/);
    expect(err.message).toContain(`bucket media-files does not exist at ${endpoint()}`);
  });

  it("mount asks S3 first: an unreachable endpoint fails before s3fs starts", async () => {
    const m = fakeMachine();
    const err = await failure(m.mount({ ...base, endpoint: "http://127.0.0.1:1" }, Deadline.after(3000)));
    expect(err.message).toBe(
      "cannot reach S3 endpoint http://127.0.0.1:1: connection refused (is the S3 server running there, on that port?)",
    );
    expect(m.started).toHaveLength(0);
    expect(logs.some((l) => l.level === 40 && String(l.msg).includes("plain http"))).toBe(true);
  });

  it("declares its passwd files secret: the sweep before listening removes them, and nothing else", async () => {
    const m = fakeMachine();
    const { helper } = await m.mount(base);
    // The name s3fs was really given, and another connection's: both secret.
    const workDir = await mkdtemp(join(root, "work-"));
    const files = [
      basename(passwdOf(helper)),
      "s3fs-0123abcd.passwd",
      "s3fs-0123abcd.log",
      "sshfs-1.known_hosts",
    ];
    for (const f of files) await writeFile(join(workDir, f), "x");
    await mkdir(join(workDir, "nfs-check-x1"));
    const removed = await removeSecretFiles(workDir, createRegistry().values());
    expect(removed.sort()).toEqual(files.slice(0, 2).sort());
    expect((await readdir(workDir)).sort()).toEqual([
      "nfs-check-x1",
      "s3fs-0123abcd.log",
      "sshfs-1.known_hosts",
    ]);
  });

  it("a profile's allowed_hosts pins its endpoints: any other is refused at create and mount, before any request", async () => {
    const keys = { access_key_id: "AKIAPINNED\n", secret_access_key: "pinned-Secret-1\n" };
    await writeProfile(secretsDir, "pinned", { ...keys, allowed_hosts: "s3.example.com\n" });
    await writeProfile(secretsDir, "here", {
      ...keys,
      allowed_hosts: `s3.example.com\n127.0.0.1:${s3.port}\n`,
    });
    const seen = s3.seen.length;
    const m = fakeMachine();
    const spec = parse({ ...base, credentials: "pinned", endpoint: endpoint() });
    const host = new FakeHost();
    const ctx = host.context({ log, secretsDir, workDir: root });
    const refused = `credentials profile "pinned" may not be used for 127.0.0.1:${s3.port}: its allowed_hosts (${join(secretsDir, "pinned", "allowed_hosts")}) lists only s3.example.com`;
    expect((await failure(s3fsBackend.preflight(spec, ctx, Deadline.after(2000)))).message).toMatch(refused);
    expect((await failure(m.mount({ ...base, credentials: "pinned" }))).message).toMatch(refused);
    expect(s3.seen.length).toBe(seen);
    expect(m.started).toEqual([]);
    // The default port counts: https://s3.example.com is s3.example.com:443.
    const aws = parse({ ...base, credentials: "pinned", endpoint: "https://s3.example.com" });
    await writeProfile(secretsDir, "pinned", { ...keys, allowed_hosts: "s3.example.com:80\n" });
    expect((await failure(s3fsBackend.preflight(aws, ctx, Deadline.after(2000)))).message).toMatch(
      /may not be used for s3\.example\.com:443/,
    );
    const { helper } = await fakeMachine().mount({ ...base, credentials: "here" });
    expect(helper?.read.get(passwdOf(helper))?.text).toBe("AKIAPINNED:pinned-Secret-1\n");
  });

  it("writes no passwd file when the s3fs command line cannot be built", async () => {
    const workDir = join(root, "work,dir");
    await mkdir(workDir);
    const m = fakeMachine(undefined, workDir);
    const err = await failure(m.mount(base));
    expect(err.message).toMatch(/cannot be passed to s3fs/);
    expect(await readdir(workDir)).toEqual([]);
    expect(m.started).toEqual([]);
  });
});
