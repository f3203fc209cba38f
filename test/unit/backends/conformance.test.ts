/**
 * The backend conformance suite (test/conformance/suite.ts) for sshfs, s3fs and nfs on the fake
 * host: helpers and mount -t nfs are records that change a fake mount table. Their control-plane
 * checks at mount talk to fakes on 127.0.0.1 (an S3 endpoint answering HeadBucket, a TCP port
 * standing in for NFS); preflight over ssh2 and the AWS SDK is covered by the real runs
 * (test/integration/backends/conformance.test.ts).
 */
import { type NfsSpec, nfsBackend } from "../../../src/backends/nfs/index.ts";
import { s3fsSubject, sshfsSubject } from "../../conformance/subjects.ts";
import { conformance, type Subject } from "../../conformance/suite.ts";
import { fakeS3Endpoint, fakeTcpPort } from "../../fakes/endpoints.ts";
import { FakeHost } from "../../fakes/host.ts";
import { fakeMachine } from "../../support/machine.ts";
import { strangerKeyLine } from "../../support/sshd.ts";

conformance("sshfs (fake host)", async () => {
  const host = new FakeHost();
  const user = "backup";
  host.faults.set(`${user}@down.example.com:/`, "fail");
  return sshfsSubject({
    machine: await fakeMachine(host),
    host: "nas.example.com",
    port: 2222,
    user,
    hostKey: strangerKeyLine(),
    dirs: ["/srv/a", "/srv/b"],
    privateKey:
      "-----BEGIN OPENSSH PRIVATE KEY-----\nfake-key-material-Conf0rmance\n-----END OPENSSH PRIVATE KEY-----\n",
    password: "pw-Conf0rmance",
    // The fake sshfs fails by echoing the password it was given.
    failing: { host: "down.example.com" },
    failingWithSecret: { host: "down.example.com", password: "pw-Conf0rmance" },
    preflight: false,
    mountTimeoutMs: 3000,
    close: async () => {},
  });
});

conformance("s3fs (fake host)", async () => {
  const host = new FakeHost();
  const s3 = await fakeS3Endpoint(["media-files", "other-bucket", "broken-bucket"]);
  host.servers.set("media-files", new Set(["vols/a", "vols/b"]));
  // HeadBucket passes, then s3fs fails its own way: it mounts, says why, and exits 0.
  host.faults.set("broken-bucket", {
    code: 0,
    said: "2026-11-23T12:25:04.412Z [CRT] s3fs.cpp:s3fs_check_service(3590): invalid credentials(host=x) - result of checking service.\n",
    mountFirst: true,
  });
  const machine = await fakeMachine(host);
  return s3fsSubject({
    machine,
    endpoint: `http://127.0.0.1:${s3.port}`,
    buckets: ["media-files", "other-bucket"],
    accessKeyId: "AKIAPROFILECONF0RM",
    failing: { bucket: "broken-bucket" },
    failingWithSecret: { bucket: "broken-bucket", credentials: "stranger" },
    preflight: false,
    mountTimeoutMs: 5000,
    close: () => s3.close(),
  });
});

conformance("nfs (fake host)", async (): Promise<Subject<NfsSpec>> => {
  const host = new FakeHost();
  const machine = await fakeMachine(host);
  const nfsd = await fakeTcpPort();
  const base = { server: "127.0.0.1", export: "/exports/data", nfs_opts: `port=${nfsd.port}` };
  host.servers.set("127.0.0.1:/exports/data", new Set(["a", "b"]));
  host.faults.set("127.0.0.1:/exports/nope", "fail");
  return {
    backend: nfsBackend,
    harness: machine.harness,
    volume: { ...base, path: "a" },
    sameConnection: { ...base, path: "b", ro: "true", create: "true" },
    otherConnections: {
      server: { ...base, server: "localhost" },
      export: { ...base, export: "/exports/other" },
      version: { ...base, vers: "4.2" },
      "mount options": { ...base, nfs_opts: `port=${nfsd.port},soft` },
      "read-only session": { o: `addr=127.0.0.1,ro,port=${nfsd.port}`, device: ":/exports/data" },
    },
    secrets: { values: [], volumes: [] },
    unknownOption: ["mountopts", "x"],
    dangerousOptions: [
      ["nfs_opts", "suid"],
      ["nfs_opts", "dev"],
      ["o", "addr=127.0.0.1,suid"],
      ["nfs_opts", "sec=krb5"],
      ["nfs_opts", "fsc"],
      ["nfs_opts", "soft,context=system_u:object_r:tmp_t:s0"],
    ],
    aliases: [
      {
        input: { type: "nfs", o: `addr=127.0.0.1,port=${nfsd.port}`, device: ":/exports/data", path: "a" },
        canonical: { ...base, path: "a" },
      },
      {
        input: { type: "nfs4", o: "addr=127.0.0.1,vers=4.1", device: ":/exports/data" },
        canonical: { server: "127.0.0.1", export: "/exports/data", vers: "4.1" },
      },
      { input: { share: "127.0.0.1:/exports/data/", nfs_opts: base.nfs_opts }, canonical: base },
    ],
    failing: { ...base, export: "/exports/nope" },
    preflight: { volume: { ...base, path: "a" }, directory: "a" },
    mountTimeoutMs: 3000,
    async close() {
      await nfsd.close();
      await machine.close();
    },
  };
});
// nfs runs for real only inside a UML guest (the host kernel has no nfsd): test/integration/backends/nfs.test.ts.
