/**
 * A private OpenSSH server for the sshfs integration tier: 127.0.0.1 only, a free port,
 * its own ed25519 host key, config and log in a temp dir, killed in stop() and on exit.
 *
 * Logins go to a dedicated system user, `volgate-test`, created once on first use
 * (useradd + chpasswd, idempotent) with a home directory and the known password
 * TEST_PASSWORD. Nothing else on the machine changes; `userdel -r volgate-test` undoes it.
 * Password auth goes through /etc/shadow (UsePAM no: no PAM delay on a wrong password).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, killOnExit, stopChild } from "./peer.ts";

export { freePort } from "./peer.ts";
export { writeProfile } from "./profile.ts";

const exec = promisify(execFile);

export const TEST_USER = "volgate-test";
/** Not a secret: a throwaway account that only this loopback sshd accepts. */
export const TEST_PASSWORD = "vg-test-Pw-7f3c2a";

export interface TestSshd {
  readonly host: "127.0.0.1";
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** Client key pair (ed25519) authorized for `user`. */
  readonly privateKeyPath: string;
  /** The server's public host key, `ssh-ed25519 AAAA...`. */
  readonly hostKeyLine: string;
  /** A known_hosts line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`. */
  readonly knownHostsLine: string;
  readonly dir: string;
  readonly logFile: string;
  log(): Promise<string>;
  /** SIGSTOP the server and every session it forked: a host that froze (connections stay open, nothing answers). */
  freeze(): Promise<void>;
  /** SIGCONT what freeze stopped. */
  thaw(): Promise<void>;
  /** SIGKILL the server and every session (frozen or not): the host is gone, its port refuses. */
  down(): Promise<void>;
  /** Start the server again after down(): same port, host key, keys and config. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

/** `pid` and every process below it, from /proc/PID/stat's parent field. */
async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (stat !== "") parents.set(Number(entry), ppid);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

async function signalTree(pid: number | undefined, signal: NodeJS.Signals): Promise<void> {
  if (pid === undefined) return;
  for (const p of await processTree(pid)) {
    try {
      process.kill(p, signal);
    } catch {
      // gone meanwhile
    }
  }
}

/** The login user every test sshd accepts (a guest's sshd too: it sees the host's /etc). */
export async function ensureTestUser(): Promise<{ uid: number; gid: number; home: string }> {
  const lookup = async () => {
    const { stdout } = await exec("getent", ["passwd", TEST_USER]).catch(() => ({ stdout: "" }));
    const fields = stdout.trim().split(":");
    if (fields.length < 7) return undefined;
    return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] ?? "" };
  };
  let found = await lookup();
  if (found === undefined) {
    // Another test file may be creating it at the same moment: only the lookup decides.
    await exec("useradd", [
      "--create-home",
      "--shell",
      "/bin/sh",
      "--comment",
      "volgate tests",
      TEST_USER,
    ]).catch(() => undefined);
    found = await lookup();
    if (found === undefined) throw new Error(`useradd ${TEST_USER} did not create the user`);
  }
  // Always (re)set the password: idempotent, and repairs a user made by an older run.
  await new Promise<void>((resolve, reject) => {
    const child = execFile("/usr/sbin/chpasswd", (err) => (err ? reject(err) : resolve()));
    child.stdin?.end(`${TEST_USER}:${TEST_PASSWORD}\n`);
  });
  await mkdir(found.home, { recursive: true });
  return found;
}

/** Resolves once something on host:port sends an SSH banner. */
async function waitForBanner(port: number, child: ChildProcess, log: string, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port });
      const done = (v: boolean) => {
        socket.destroy();
        resolve(v);
      };
      socket.setTimeout(1000, () => done(false));
      socket.once("data", (d) => done(d.toString().startsWith("SSH-")));
      socket.once("error", () => done(false));
    });
    if (ok) return;
    if (child.exitCode !== null || Date.now() > until) {
      const text = await readFile(log, "utf8").catch(() => "");
      throw new Error(`test sshd did not start on 127.0.0.1:${port}: ${text.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSshd(): Promise<TestSshd> {
  const account = await ensureTestUser();
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege separation dir
  const dir = await mkdtemp(join(tmpdir(), "volgate-sshd-"));
  // sshd reads authorized_keys as the user: the directory must be traversable.
  await chmod(dir, 0o755);
  const hostKey = join(dir, "host_ed25519");
  const clientKey = join(dir, "client_ed25519");
  await exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "volgate-test-host", "-f", hostKey]);
  await exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "volgate-test-client", "-f", clientKey]);
  const authorized = join(dir, "authorized_keys");
  await writeFile(authorized, await readFile(`${clientKey}.pub`, "utf8"), { mode: 0o644 });
  await chmod(authorized, 0o644);

  const port = await freePort();
  const config = join(dir, "sshd_config");
  const logFile = join(dir, "sshd.log");
  await writeFile(
    config,
    [
      "ListenAddress 127.0.0.1",
      `Port ${port}`,
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${authorized}`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication yes",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin no",
      `AllowUsers ${TEST_USER}`,
      "UseDNS no",
      "LogLevel VERBOSE",
      "MaxStartups 100",
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  const launch = async () => {
    const c = spawn("/usr/sbin/sshd", ["-D", "-f", config, "-E", logFile], { stdio: "ignore" });
    killOnExit(c);
    try {
      await waitForBanner(port, c, logFile);
    } catch (err) {
      c.kill("SIGKILL");
      throw err;
    }
    return c;
  };
  let child: ChildProcess;
  try {
    child = await launch();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const hostKeyLine = (await readFile(`${hostKey}.pub`, "utf8")).trim().split(" ").slice(0, 2).join(" ");
  return {
    host: "127.0.0.1",
    port,
    user: TEST_USER,
    password: TEST_PASSWORD,
    ...account,
    privateKeyPath: clientKey,
    hostKeyLine,
    knownHostsLine: `[127.0.0.1]:${port} ${hostKeyLine}`,
    dir,
    logFile,
    log: () => readFile(logFile, "utf8").catch(() => ""),
    freeze: () => signalTree(child.pid, "SIGSTOP"),
    thaw: () => signalTree(child.pid, "SIGCONT"),
    async down() {
      const c = child;
      const exited = new Promise((r) =>
        c.exitCode === null && c.signalCode === null ? c.once("exit", r) : r(null),
      );
      await signalTree(child.pid, "SIGKILL");
      await exited;
    },
    async up() {
      child = await launch();
    },
    async stop() {
      await signalTree(child.pid, "SIGCONT");
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A well-formed ed25519 public key line that belongs to no server. */
export function strangerKeyLine(): string {
  const der = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" });
  const raw = der.subarray(der.length - 32);
  const type = Buffer.from("ssh-ed25519");
  const blob = Buffer.alloc(4 + type.length + 4 + raw.length);
  blob.writeUInt32BE(type.length, 0);
  type.copy(blob, 4);
  blob.writeUInt32BE(raw.length, 4 + type.length);
  raw.copy(blob, 8 + type.length);
  return `ssh-ed25519 ${blob.toString("base64")}`;
}

/** The -o options of an sshfs volume on this test sshd. */
export function sshfsOptions(sshd: TestSshd, path: string, credentials: string): Record<string, string> {
  return { backend: "sshfs", host: "127.0.0.1", port: String(sshd.port), user: sshd.user, path, credentials };
}
