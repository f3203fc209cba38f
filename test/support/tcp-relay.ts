/**
 * A TCP relay on 127.0.0.1 in front of one local port, which a test can cut (every connection
 * dropped, new ones refused, as when a server goes away) and heal, on the same port: one client's
 * view of an outage while every other client still reaches the server.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { freePort } from "./peer.ts";

export interface TcpRelay {
  readonly port: number;
  cut(): Promise<void>;
  heal(): Promise<void>;
}

export async function tcpRelay(target: number): Promise<TcpRelay> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((inbound) => {
        const outbound = connect({ host: "127.0.0.1", port: target });
        inbound.pipe(outbound);
        outbound.pipe(inbound);
        for (const socket of [inbound, outbound]) {
          sockets.add(socket);
          socket.on("error", () => socket.destroy());
          socket.on("close", () => {
            sockets.delete(socket);
            inbound.destroy();
            outbound.destroy();
          });
        }
      });
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => resolve());
      server = s;
    });
  await listen();
  return {
    port,
    async cut() {
      const s = server;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()));
    },
    heal: listen,
  };
}
