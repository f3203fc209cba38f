// Runs inside a swarm-lab node's netns (started by forward.ts):
//   node relay.mjs PORT=SOCKET [PORT=SOCKET...]
// listens on the node's 127.0.0.1:PORT and joins every connection to SOCKET, a unix socket whose
// other end (forward.ts, in the host netns) connects to the host's 127.0.0.1:PORT. No route or
// address joins the two namespaces. Prints "ready" once every port listens.
import { connect, createServer } from "node:net";

const pairs = process.argv.slice(2).map((arg) => arg.split("="));
let waiting = pairs.length;
for (const [port, path] of pairs) {
  const server = createServer((inbound) => {
    const outbound = connect({ path });
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const end = () => {
      inbound.destroy();
      outbound.destroy();
    };
    for (const s of [inbound, outbound]) {
      s.on("error", end);
      s.on("close", end);
    }
  });
  server.listen(Number(port), "127.0.0.1", () => {
    waiting -= 1;
    if (waiting === 0) process.stdout.write("ready\n");
  });
}
process.on("SIGTERM", () => process.exit(0));
