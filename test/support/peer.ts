/**
 * Test peers (sshd, s3rver, ...) run as child processes on 127.0.0.1: a free port to give them,
 * and a stop that asks politely, then kills. Every peer is killed when the test process exits.
 */
import type { ChildProcess } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";

/** A port nobody listens on right now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kill `child` when this process exits, whatever happens to the test. */
export function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const c of running) c.kill("SIGKILL");
  });
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
  if (alive(child)) child.kill("SIGKILL");
}

/** TCP servers on 127.0.0.1 that accept and never say a word: peers that hang. `close` ends them all. */
export function silentServers(): { open(): Promise<number>; close(): void } {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  return {
    async open() {
      const server = createServer((s) => sockets.push(s));
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const address = server.address();
      return typeof address === "object" && address !== null ? address.port : 0;
    },
    close() {
      for (const s of sockets) s.destroy();
      for (const s of servers) s.close();
    },
  };
}
