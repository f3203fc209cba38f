/**
 * The backend conformance suite (test/conformance/suite.ts) for real: sshfs against the test sshd
 * and s3fs against s3rver, with the real runner, real FUSE mounts, the real mount table and
 * real helper processes (the dead-helper case SIGKILLs one). Needs root and /dev/fuse.
 *
 * nfs runs for real only inside a UML guest (the host kernel has no nfsd and no NFS client):
 * its cases are in test/integration/backends/nfs.test.ts.
 */
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { s3fsSubject, sshfsSubject } from "../../conformance/subjects.ts";
import { conformance } from "../../conformance/suite.ts";
import { realMachine } from "../../support/machine.ts";
import { tierCanRun } from "../../support/prereq.ts";
import { startS3 } from "../../support/s3.ts";
import { startSshd, strangerKeyLine } from "../../support/sshd.ts";

const needs = [
  ...(process.getuid?.() === 0 ? [] : ["root"]),
  ...(existsSync("/dev/fuse") ? [] : ["/dev/fuse"]),
];

conformance(
  "sshfs (real sshd)",
  async () => {
    const sshd = await startSshd();
    const remote = join(sshd.home, `conformance-${process.pid}-${Date.now()}`);
    for (const dir of [remote, join(remote, "a"), join(remote, "b")]) {
      await mkdir(dir, { recursive: true });
      await chown(dir, sshd.uid, sshd.gid);
    }
    return sshfsSubject({
      machine: await realMachine("sshfs"),
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      hostKey: sshd.hostKeyLine,
      dirs: [join(remote, "a"), join(remote, "b")],
      privateKey: await readFile(sshd.privateKeyPath, "utf8"),
      password: sshd.password,
      // sshfs starts and ssh refuses: a host key that is not the server's, a wrong password.
      failing: { host_key: strangerKeyLine() },
      failingWithSecret: { credentials: "badpw" },
      preflight: true,
      mountTimeoutMs: 20_000,
      async close() {
        await sshd.stop();
        await rm(remote, { recursive: true, force: true });
      },
    });
  },
  { skip: !tierCanRun("sshfs conformance", ["sshd", "sshfs", "ssh-keygen"], needs) },
);

conformance(
  "s3fs (s3rver)",
  async () => {
    const buckets = ["volgate-conformance", "volgate-conformance-2"] as const;
    const s3 = await startS3(buckets);
    const sdk = new S3Client({
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    for (const key of ["vols/a/keep.txt", "vols/b/keep.txt"]) {
      await sdk.send(new PutObjectCommand({ Bucket: buckets[0], Key: key, Body: "kept" }));
    }
    sdk.destroy();
    // s3rver checks the access key id and never the secret: the subject's own secrets sign for it.
    return s3fsSubject({
      machine: await realMachine("s3fs"),
      endpoint: s3.endpoint,
      buckets,
      accessKeyId: s3.accessKeyId,
      // HeadBucket refuses before s3fs starts: s3rver would let s3fs through exactly when HeadBucket passes.
      failing: { bucket: "no-such-bucket" },
      failingWithSecret: { credentials: "stranger" },
      preflight: true,
      mountTimeoutMs: 20_000,
      close: () => s3.stop(),
    });
  },
  { skip: !tierCanRun("s3fs conformance", ["s3fs"], needs) },
);
