/**
 * A private image registry for the managed-plugin tier: Debian's `docker-registry serve CONFIG`
 * (distribution 2.x) on 127.0.0.1:<free port>, no auth, storage and log in a temp dir, killed in
 * stop() and on exit. The packaged /etc/docker/registry/config.yml (":5000" with htpasswd auth)
 * is never read. dockerd treats 127.0.0.0/8 registries as insecure-allowed, so plain HTTP works
 * for `docker plugin push` / `docker plugin install 127.0.0.1:PORT/name:tag`.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, killOnExit, stopChild } from "./peer.ts";
import { which } from "./prereq.ts";

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the prefix of plugin and image references. */
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly logFile: string;
  log(): Promise<string>;
  /** GET a registry API path (`/v2/NAME/tags/list`, `/v2/NAME/manifests/TAG`) as parsed JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: registry API documents
  api(path: string): Promise<any>;
  stop(): Promise<void>;
}

export function registryBinary(): string | undefined {
  if (existsSync("/usr/bin/docker-registry")) return "/usr/bin/docker-registry";
  return which("docker-registry");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Plugins are pushed with schema 2 manifests: ask for those, not the schema 1 fallback. */
const MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";

function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, method: "GET", headers: { Accept: MANIFEST_V2 }, timeout: 10_000 },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => {
          body += d.toString();
        });
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`GET ${path}: ${res.statusCode} ${body}`));
          else resolve(JSON.parse(body));
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`GET ${path}: no answer`)));
    req.on("error", reject);
    req.end();
  });
}

/** The registry's API base answers 200 once it serves. */
function apiAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/v2/", method: "GET", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

export async function startRegistry(options: { readyTimeoutMs?: number } = {}): Promise<TestRegistry> {
  const binary = registryBinary();
  if (binary === undefined) throw new Error("docker-registry not found: apt-get install docker-registry");
  const dir = await mkdtemp(join(tmpdir(), "volgate-registry-"));
  const storage = join(dir, "storage");
  await mkdir(storage, { recursive: true });
  const port = await freePort();
  const config = join(dir, "config.yml");
  const logFile = join(dir, "registry.log");
  await writeFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: info",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${storage}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "",
    ].join("\n"),
  );
  const log = await open(logFile, "a");
  const child = spawn(binary, ["serve", config], {
    stdio: ["ignore", log.fd, log.fd],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  await log.close();
  killOnExit(child);
  const readLog = () => readFile(logFile, "utf8").catch(() => "");
  const until = Date.now() + (options.readyTimeoutMs ?? 15_000);
  while (!(await apiAnswers(port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > until) {
      child.kill("SIGKILL");
      const text = (await readLog()).trim().split("\n").slice(-20).join("\n");
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not serve on 127.0.0.1:${port}:\n${text}`);
    }
    await sleep(50);
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    logFile,
    log: readLog,
    api: (path) => getJson(port, path),
    async stop() {
      await stopChild(child, 5000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
