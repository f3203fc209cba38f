/**
 * The s3fs backend without a server: option parsing and its refusals (dangerous s3fs
 * options, smuggled commas, odd endpoints and buckets), the connection key, the s3fs argv,
 * what s3fs says when it fails, and startS3fs through a fake runner and mount table
 * (including s3fs's "mounted, then gone" lie).
 */
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Options } from "../../../src/backends/backend.ts";
import { resolveAccess, type S3Access } from "../../../src/backends/s3fs/access.ts";
import { buildS3fsArgv } from "../../../src/backends/s3fs/argv.ts";
import { s3fsBackend } from "../../../src/backends/s3fs/index.ts";
import type { S3fsSpec } from "../../../src/backends/s3fs/options.ts";
import { s3fsSaid, startS3fs } from "../../../src/backends/s3fs/start.ts";
import { Deadline } from "../../../src/deadline.ts";
import { VolgateError } from "../../../src/errors.ts";
import type { BackendContext } from "../../../src/host.ts";
import { fakeS3Endpoint } from "../../fakes/endpoints.ts";
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

  it("never lets any option value add an s3fs option (property)", () => {
    const names = ["endpoint", "region", "multipart_size", "storage_class", "sse", "uid", "umask", "bucket"];
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.string(), fc.string(), (name, before, after) => {
        const value = `${before},passwd_file=/etc/shadow${after}`;
        let spec: S3fsSpec | undefined;
        try {
          spec = parse({ ...base, [name]: value });
        } catch (err) {
          return err instanceof VolgateError && err.kind === "invalid";
        }
        const argv = buildS3fsArgv({ spec, target: "/t", passwdFile: "/work/p" });
        return argv[4]?.split(",").filter((o) => o.startsWith("passwd_file=")).length === 1;
      }),
    );
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

describe("buildS3fsArgv", () => {
  it("mounts the bucket root in the foreground, with our passwd file and nosuid,nodev", () => {
    const spec = parse({ ...base, endpoint: "http://127.0.0.1:9000" });
    expect(
      buildS3fsArgv({ spec, target: "/mnt/volgate/conns/abc", passwdFile: "/state/work/s3fs-1.passwd" }),
    ).toEqual([
      "-f",
      "media-files",
      "/mnt/volgate/conns/abc",
      "-o",
      "url=http://127.0.0.1:9000,endpoint=us-east-1,use_path_request_style,passwd_file=/state/work/s3fs-1.passwd,nosuid,nodev,allow_other",
    ]);
  });

  it("passes ownership, umask (also for the mount root), sse and tuning", () => {
    const spec = parse({
      ...base,
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
    const o = buildS3fsArgv({ spec, target: "/t", passwdFile: "/w/p" })[4]?.split(",") ?? [];
    expect(o).toEqual([
      "url=https://s3.eu-central-1.amazonaws.com",
      "endpoint=eu-central-1",
      "passwd_file=/w/p",
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

  it("never carries a key, even an inline one", () => {
    const spec = parse({ bucket: "b-1", access_key_id: "AKIAINLINE9", secret_access_key: "inline-secret-9" });
    const argv = buildS3fsArgv({ spec, target: "/t", passwdFile: "/w/p" }).join(" ");
    expect(argv).not.toContain("AKIAINLINE9");
    expect(argv).not.toContain("inline-secret-9");
  });

  it("refuses a passwd file path the option parser would split", () => {
    const spec = parse(base);
    for (const passwdFile of ["/w/a,b", "/w/a b", "relative"]) {
      expect(() => buildS3fsArgv({ spec, target: "/t", passwdFile })).toThrow(/cannot be passed to s3fs/);
    }
  });
});

describe("s3fsSaid", () => {
  it("keeps s3fs's complaint and drops timestamps, source locations and [INF] lines", () => {
    const log = [
      "2026-11-23T12:25:04.365Z [INF] s3fs version 1.90(unknown) : s3fs -f -o url=http://127.0.0.1:1 bkt /t",
      "2026-11-23T12:25:04.366Z [INF] s3fs.cpp:s3fs_init(3382): init v1.90(commit:unknown) with GnuTLS(gcrypt)",
      "2026-11-23T12:25:04.411Z [CRT] s3fs.cpp:s3fs_check_service(3575): Failed to connect by sigv4, so retry to connect by signature version 2.",
      "2026-11-23T12:25:04.412Z [CRT] s3fs.cpp:s3fs_check_service(3590): invalid credentials(host=http://127.0.0.1:1) - result of checking service.",
      "",
    ].join("\n");
    expect(s3fsSaid(log)).toBe("invalid credentials(host=http://127.0.0.1:1) - result of checking service.");
    expect(s3fsSaid("s3fs: MOUNTPOINT directory /t is not empty.\n")).toBe(
      "s3fs: MOUNTPOINT directory /t is not empty.",
    );
  });
});

describe("startS3fs and mount through a fake runner", () => {
  let root: string;
  let secretsDir: string;
  const { log, lines: logs } = captureLog("info");

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "volgate-s3fs-unit-"));
    secretsDir = join(root, "secrets");
    await writeProfile(secretsDir, "s3", {
      access_key_id: "AKIAPROFILE\n",
      secret_access_key: "profile/Secret+1\n",
    });
    await writeProfile(secretsDir, "half", { access_key_id: "AKIAPROFILE\n" });
    await writeProfile(secretsDir, "colon", { access_key_id: "AKIA", secret_access_key: "bad:secret-x" });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /**
   * "mount": the target goes live (the test makes the volume's directory in it).
   * "lie": the target goes live, the directory does not answer, and s3fs exits 0 with `said`.
   * "exit": s3fs exits 0 with `said` before anything is mounted.
   */
  function fakeMachine(behaviour: "mount" | "lie" | "exit", said = "") {
    const host = new FakeHost();
    const faults: Record<typeof behaviour, Fault | undefined> = {
      mount: undefined,
      lie: { code: 0, said, mountFirst: true },
      exit: { code: 0, said },
    };
    const fault = faults[behaviour];
    if (fault !== undefined) host.faults.set("media-files", fault);
    const ctx = host.context({ log, secretsDir, workDir: root });
    return { ctx, started: host.helpers, live: host.table };
  }

  /** The passwd file a started s3fs was told to read. */
  const passwdOf = (s: FakeHelper | undefined) =>
    s?.args[4]
      ?.split(",")
      .find((o) => o.startsWith("passwd_file="))
      ?.slice(12) ?? "";

  const access = (spec: S3fsSpec, ctx: BackendContext): Promise<S3Access> => resolveAccess(spec, ctx);

  it("reads the profile's keys and says which file is missing", async () => {
    const m = fakeMachine("mount");
    const a = await access(parse(base), m.ctx);
    expect(a).toMatchObject({
      accessKeyId: "AKIAPROFILE",
      secretAccessKey: "profile/Secret+1",
      keySource: 'credentials profile "s3"',
    });
    const half = await failure(access(parse({ ...base, credentials: "half" }), m.ctx));
    expect(half.message).toMatch(/credentials profile "half" .* lacks secret_access_key/);
    const colon = await failure(access(parse({ ...base, credentials: "colon" }), m.ctx));
    expect(colon.message).toMatch(/secret_access_key of credentials profile "colon" must be/);
    expect(colon.message).not.toContain("bad:secret-x");
  });

  it("starts s3fs with a 0600 passwd file it deletes once the mount is proven", async () => {
    const m = fakeMachine("mount");
    const spec = parse({ ...base, endpoint: "http://127.0.0.1:9000" });
    const target = join(root, "t-ok");
    await mkdir(join(target, spec.prefix), { recursive: true });
    const helper = await startS3fs(
      spec,
      await access(spec, m.ctx),
      targetAt(target),
      m.ctx,
      Deadline.after(2000),
    );
    const s = m.started[0];
    expect(helper.pid).toBe(s?.pid);
    expect(s?.args.slice(0, 3)).toEqual(["-f", "media-files", target]);
    expect(s?.args.join(" ")).not.toContain("profile/Secret+1");
    expect(s?.options.stdin).toBeUndefined();
    expect(s?.options.logFile).toBe(`${root}/s3fs-t-ok.log`);
    const passwd = passwdOf(s);
    expect(s?.read.get(passwd)).toEqual({ text: "AKIAPROFILE:profile/Secret+1\n", mode: 0o600 });
    expect(passwd).toBe(`${root}/s3fs-t-ok.passwd`);
    await expect(stat(passwd)).rejects.toThrow(/ENOENT/);
    expect(s?.killed).toBe(false);
  });

  it("sees through s3fs mounting and then exiting 0: quotes it, kills, unmounts, deletes the passwd file", async () => {
    const m = fakeMachine(
      "lie",
      "2026-11-23T12:25:04.412Z [CRT] s3fs.cpp:s3fs_check_service(3590): invalid credentials(host=http://127.0.0.1:9000) - result of checking service.\n",
    );
    const spec = parse({ ...base, endpoint: "http://127.0.0.1:9000" });
    const target = join(root, "t-lie");
    await mkdir(target, { recursive: true });
    const err = await failure(
      startS3fs(spec, await access(spec, m.ctx), targetAt(target), m.ctx, Deadline.after(2000)),
    );
    expect(err.kind).toBe("backend");
    expect(err.message).toBe(
      's3fs mount of s3://media-files/vols/app1 @ http://127.0.0.1:9000 failed: invalid credentials(host=http://127.0.0.1:9000) - result of checking service.: the access key was refused: check credentials profile "s3"',
    );
    expect(m.live.has(target)).toBe(false);
    expect(m.started[0]?.killed).toBe(true);
    await expect(stat(passwdOf(m.started[0]))).rejects.toThrow(/ENOENT/);
  });

  it("reports an s3fs that exits before mounting, with a hint", async () => {
    const m = fakeMachine(
      "exit",
      "2026-11-23T12:25:04.365Z [CRT] s3fs.cpp:s3fs_check_service(3593): bucket or key not found(host=http://127.0.0.1:9000) - result of checking service.\n",
    );
    const spec = parse({ ...base, endpoint: "http://127.0.0.1:9000" });
    const err = await failure(
      startS3fs(spec, await access(spec, m.ctx), targetAt(join(root, "t-x")), m.ctx, Deadline.after(2000)),
    );
    expect(err.message).toMatch(/failed: bucket or key not found\(host=http:\/\/127\.0\.0\.1:9000\)/);
    expect(err.message).toMatch(/bucket media-files does not exist at http:\/\/127\.0\.0\.1:9000/);
  });

  it("mount asks S3 first: an unreachable endpoint fails before s3fs starts", async () => {
    const m = fakeMachine("mount");
    const spec = parse({ ...base, endpoint: "http://127.0.0.1:1" });
    const err = await failure(
      s3fsBackend.mount(spec, targetAt(join(root, "t-unreach")), m.ctx, Deadline.after(3000)),
    );
    expect(err.message).toBe(
      "cannot reach S3 endpoint http://127.0.0.1:1: connection refused (is the S3 server running there, on that port?)",
    );
    expect(m.started).toHaveLength(0);
    expect(logs.some((l) => l.level === 40 && String(l.msg).includes("plain http"))).toBe(true);
  });

  it("writes no passwd file when the s3fs command line cannot be built", async () => {
    const s3 = await fakeS3Endpoint(["media-files"]);
    try {
      const workDir = join(root, "work,dir");
      await mkdir(workDir);
      const host = new FakeHost();
      const ctx = host.context({ log, secretsDir, workDir });
      const spec = parse({ ...base, endpoint: `http://127.0.0.1:${s3.port}` });
      const err = await failure(
        s3fsBackend.mount(spec, targetAt(join(root, "t-comma")), ctx, Deadline.after(2000)),
      );
      expect(err.message).toMatch(/cannot be passed to s3fs/);
      expect(await readdir(workDir)).toEqual([]);
      expect(host.helpers).toEqual([]);
    } finally {
      await s3.close();
    }
  });
});
