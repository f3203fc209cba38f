/**
 * The backend conformance suite (test/conformance/suite.ts) for sshfs, s3fs and nfs on the fake
 * host: helpers and mount -t nfs are records that change a fake mount table. Their control-plane
 * checks at mount talk to fakes on 127.0.0.1 (an S3 endpoint answering HeadBucket, a TCP port
 * standing in for NFS); preflight over ssh2 and the AWS SDK is covered by the real runs
 * (test/integration/backends/conformance.test.ts).
 */
import { nfsSubject, s3fsSubject, sshfsSubject } from "../../conformance/subjects.ts";
import { conformance } from "../../conformance/suite.ts";
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

conformance("nfs (fake host)", async () => {
  const host = new FakeHost();
  const nfsd = await fakeTcpPort();
  host.servers.set("127.0.0.1:/exports/data", new Set(["a", "b"]));
  host.faults.set("127.0.0.1:/exports/nope", "fail");
  return nfsSubject({
    machine: await fakeMachine(host),
    server: "127.0.0.1",
    port: nfsd.port,
    export: "/exports/data",
    failing: { export: "/exports/nope" },
    preflight: true,
    mountTimeoutMs: 3000,
    close: () => nfsd.close(),
  });
});
// nfs runs for real only inside a UML guest (the host kernel has no nfsd): test/integration/backends/nfs.test.ts.
