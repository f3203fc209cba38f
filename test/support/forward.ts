/**
 * Host 127.0.0.1 ports made reachable at the same 127.0.0.1:PORT inside a lab node's netns, for
 * what runs in that netns (a managed plugin with host networking: its "host" is the node).
 * A unix socket bridges the two loopbacks: this process listens on it and connects to the host
 * port; relay.mjs, in the node netns, listens on the port and connects to the socket.
 */
import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { killOnExit, stopChild } from "./peer.ts";

const RELAY = join(dirname(fileURLToPath(import.meta.url)), "relay.mjs");

export interface Forward {
  stop(): Promise<void>;
}

/** Bridge a unix socket at `path` to the host's 127.0.0.1:`port`. */
function unixToHost(path: string, port: number, sockets: Set<Socket>): Promise<Server> {
  const server = createServer((inbound) => {
    const outbound = connect({ host: "127.0.0.1", port });
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      const end = () => {
        inbound.destroy();
        outbound.destroy();
        sockets.delete(s);
      };
      s.on("error", end);
      s.on("close", end);
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve(server));
  });
}

/** Expose each host 127.0.0.1 `port` as 127.0.0.1:`port` inside `netns`; sockets go in `dir`. */
export async function forwardInto(netns: string, dir: string, ports: readonly number[]): Promise<Forward> {
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  const paths = ports.map((p) => join(dir, `fwd-${p}.sock`));
  const closeAll = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await Promise.all(paths.map((p) => rm(p, { force: true })));
  };
  for (const [i, port] of ports.entries()) servers.push(await unixToHost(paths[i] ?? "", port, sockets));

  const pairs = ports.map((p, i) => `${p}=${paths[i]}`);
  const relay = spawn("nsenter", [`--net=/run/netns/${netns}`, "--", process.execPath, RELAY, ...pairs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  killOnExit(relay);
  let output = "";
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`relay in ${netns} not ready after 10 s: ${output}`)),
      10_000,
    );
    const check = (d: Buffer) => {
      output += d.toString();
      if (output.includes("ready\n")) {
        clearTimeout(timer);
        resolve();
      }
    };
    relay.stdout.on("data", check);
    relay.stderr.on("data", check);
    relay.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`relay in ${netns} exited (${code}): ${output}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    await stopChild(relay);
    await closeAll();
    throw err;
  }
  return {
    async stop() {
      await stopChild(relay);
      await closeAll();
    },
  };
}
