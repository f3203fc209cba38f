/**
 * Real etcd 3.4 (Debian etcd-server) for the catalog tiers, without systemd: one member or a
 * 3-member cluster on 127.0.0.1 free ports, data and logs in one temp dir. Optionally TLS (a
 * throwaway CA, a server certificate for 127.0.0.1; clients must present the client certificate)
 * and password auth (root, and a `volgate` user whose role may read and write one prefix only).
 * Members can crash (SIGKILL), stop, freeze (SIGSTOP: the kernel still accepts TCP, nobody
 * answers: TESTBED.md's silent server) and start again on their data. stop() leaves nothing.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3, type IOptions } from "etcd3";
import { type DockerResult, run, tail } from "./dockerd.ts";
import { type EtcdAuth, type EtcdUser, enableAuth, healthy } from "./etcd-admin.ts";
import { freePort, killOnExit } from "./peer.ts";
import { which } from "./prereq.ts";
import { makePki } from "./tls.ts";

export type { EtcdAuth, EtcdUser } from "./etcd-admin.ts";

/** Client-side TLS files: the CA that signed the server, and the client's certificate and key. */
export interface EtcdTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface EtcdOptions {
  readonly members?: 1 | 3;
  readonly tls?: boolean;
  /** Password auth; the volgate user's prefix defaults to "/volgate/". */
  readonly auth?: boolean | { readonly prefix: string };
  readonly readyTimeoutMs?: number;
}

export interface EtcdMember {
  readonly name: string;
  /** Client URL, e.g. https://127.0.0.1:40123. */
  readonly endpoint: string;
  readonly logFile: string;
  pid(): number | undefined;
  /** SIGKILL, resolves once it is gone: a crash. */
  kill(): Promise<void>;
  /** SIGTERM, resolves once it is gone: a clean shutdown. */
  stop(): Promise<void>;
  /** SIGSTOP: connections are accepted, nothing is answered. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Start again on its data dir; resolves once this member reports healthy (needs a quorum). */
  start(): Promise<void>;
}

export interface TestEtcd {
  readonly dir: string;
  readonly endpoints: readonly string[];
  readonly members: readonly EtcdMember[];
  readonly tls: EtcdTls | undefined;
  readonly auth: EtcdAuth | undefined;
  /**
   * etcd3 options for these endpoints (or `hosts`), with TLS and `user`'s password (default: the
   * volgate user when auth is on). Every call gets `deadlineMs` unless the caller sets one.
   */
  clientOptions(options?: { user?: EtcdUser; hosts?: readonly string[]; deadlineMs?: number }): IOptions;
  /** etcdctl (v3) against these endpoints as root; credentials go through the environment, not argv. */
  etcdctl(args: readonly string[]): Promise<DockerResult>;
  /** Kill members until no quorum is left (2 of 3); returns the killed ones. */
  loseQuorum(): Promise<EtcdMember[]>;
  /** Stop every member (frozen ones too) and delete the temp dir. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gone = (c: ChildProcess | undefined) => c === undefined || c.exitCode !== null || c.signalCode !== null;
const secret = () => randomBytes(12).toString("hex");

/** gRPC call options with an absolute deadline `ms` from now: etcd3's retries of the call share it. */
export const deadline = (ms: number) => ({ deadline: new Date(Date.now() + ms) });

async function waitGone(child: ChildProcess | undefined, ms: number): Promise<boolean> {
  if (gone(child)) return true;
  await Promise.race([new Promise((r) => child?.once("exit", r)), sleep(ms)]);
  return gone(child);
}

interface Spec {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
}

export async function startEtcd(options: EtcdOptions = {}): Promise<TestEtcd> {
  const binary = which("etcd");
  if (binary === undefined) throw new Error("etcd not found: apt-get install etcd-server (see .ci/setup)");
  const dir = await mkdtemp(join(tmpdir(), "volgate-etcd-"));
  const scheme = options.tls ? "https" : "http";
  const ports = new Set<number>();
  while (ports.size < 2 * (options.members ?? 1)) ports.add(await freePort());
  const free = [...ports];
  const specs: Spec[] = [];
  for (let i = 0; i < free.length; i += 2) {
    specs.push({ name: `m${i / 2 + 1}`, clientPort: free[i] ?? 0, peerPort: free[i + 1] ?? 0 });
  }
  const cluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(",");
  const token = `volgate-test-${randomBytes(4).toString("hex")}`;
  const pki = options.tls ? await makePki(join(dir, "tls")) : undefined;
  const tls = pki && { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
  const pem = tls && {
    rootCertificate: await readFile(tls.ca),
    certChain: await readFile(tls.cert),
    privateKey: await readFile(tls.key),
  };
  const readyMs = options.readyTimeoutMs ?? 20_000;

  const memberArgs = (s: Spec) => {
    const client = `${scheme}://127.0.0.1:${s.clientPort}`;
    const peer = `http://127.0.0.1:${s.peerPort}`;
    const args = [
      ...["--name", s.name, "--data-dir", join(dir, s.name)],
      ...["--listen-client-urls", client, "--advertise-client-urls", client],
      ...["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer],
      ...["--initial-cluster", cluster, "--initial-cluster-token", token, "--initial-cluster-state", "new"],
      ...["--logger", "zap", "--log-outputs", "stderr"],
    ];
    if (pki) {
      args.push("--cert-file", pki.serverCert, "--key-file", pki.serverKey);
      args.push("--trusted-ca-file", pki.ca, "--client-cert-auth");
    }
    return args;
  };

  const members = specs.map((s) => {
    let child: ChildProcess | undefined;
    const endpoint = `${scheme}://127.0.0.1:${s.clientPort}`;
    const logFile = join(dir, `${s.name}.log`);
    const signal = async (sig: "SIGTERM" | "SIGKILL") => {
      const c = child;
      if (gone(c)) return;
      c?.kill("SIGCONT"); // a frozen process would never act on SIGTERM
      c?.kill(sig);
      if (!(await waitGone(c, 5000))) {
        c?.kill("SIGKILL");
        await waitGone(c, 5000);
      }
    };
    const member = {
      name: s.name,
      endpoint,
      logFile,
      pid: () => (gone(child) ? undefined : child?.pid),
      kill: () => signal("SIGKILL"),
      stop: () => signal("SIGTERM"),
      pause: () => void child?.kill("SIGSTOP"),
      resume: () => void child?.kill("SIGCONT"),
      launch: async () => {
        if (!gone(child)) throw new Error(`etcd member ${s.name} is already running`);
        await mkdir(join(dir, s.name), { recursive: true, mode: 0o700 });
        const log = await open(logFile, "a");
        child = spawn(binary, memberArgs(s), { stdio: ["ignore", log.fd, log.fd] });
        await log.close();
        killOnExit(child);
      },
      start: async () => {
        await member.launch();
        await waitHealthy(member);
      },
    };
    return member;
  });

  const waitHealthy = async (m: (typeof members)[number]) => {
    const until = Date.now() + readyMs;
    while (!(await healthy(m.endpoint, pem))) {
      if (m.pid() === undefined || Date.now() > until) {
        const why = m.pid() === undefined ? "exited" : `was not healthy within ${readyMs} ms`;
        throw new Error(
          `etcd member ${m.name} (${m.endpoint}) ${why}; ${m.logFile}:\n${await tail(m.logFile)}`,
        );
      }
      await sleep(100);
    }
  };

  const endpoints = members.map((m) => m.endpoint);
  let auth: EtcdAuth | undefined;
  const clientOptions: TestEtcd["clientOptions"] = (o = {}) => {
    const user = o.user ?? auth?.volgate;
    const ms = o.deadlineMs ?? 3000;
    return {
      hosts: [...(o.hosts ?? endpoints)],
      ...(pem && { credentials: pem }),
      ...(user && { auth: { ...user, callOptions: () => deadline(ms) } }),
      defaultCallOptions: (context) => (context.isStream ? {} : deadline(ms)),
    };
  };
  const stopAll = async () => {
    await Promise.all(members.map((m) => m.kill())); // the data goes too: no need to wait for a clean shutdown
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await Promise.all(members.map((m) => m.launch()));
    await Promise.all(members.map(waitHealthy));
    if (options.auth) {
      const prefix = typeof options.auth === "object" ? options.auth.prefix : "/volgate/";
      const wanted = {
        root: { username: "root", password: secret() },
        volgate: { username: "volgate", password: secret() },
        prefix,
      };
      await enableAuth(new Etcd3({ ...clientOptions(), auth: undefined }), wanted);
      auth = wanted;
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  return {
    dir,
    endpoints,
    members,
    tls,
    auth,
    clientOptions,
    etcdctl: (args) =>
      run("etcdctl", args, {
        timeoutMs: 20_000,
        env: {
          PATH: process.env.PATH,
          ETCDCTL_API: "3",
          ETCDCTL_ENDPOINTS: endpoints.join(","),
          ETCDCTL_DIAL_TIMEOUT: "2s",
          ETCDCTL_COMMAND_TIMEOUT: "5s",
          ...(tls && { ETCDCTL_CACERT: tls.ca, ETCDCTL_CERT: tls.cert, ETCDCTL_KEY: tls.key }),
          ...(auth && { ETCDCTL_USER: `${auth.root.username}:${auth.root.password}` }),
        },
      }),
    async loseQuorum() {
      if (members.length < 3) throw new Error("loseQuorum needs a 3-member cluster");
      const killed = members.slice(1);
      await Promise.all(killed.map((m) => m.kill()));
      return killed;
    },
    stop: stopAll,
  };
}
