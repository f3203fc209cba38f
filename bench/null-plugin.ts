/**
 * The floor for any Node server on this socket: an in-memory VolumeDriver on node:http, answering
 * Get, Path, List and Capabilities with the same JSON volgate answers for the same volumes. Run
 * by the benchmark as `node bench/null-plugin.ts SOCKET COUNT`; prints "ready" once listening.
 */
import { unlinkSync } from "node:fs";
import { createServer } from "node:http";

const [socket = "", countText = "10000"] = process.argv.slice(2);
const count = Number(countText);
const volumes = new Map<string, { Name: string; Mountpoint: string; CreatedAt: string }>();
for (let i = 0; i < count; i++) {
  const Name = `bench-volume-${i}`;
  volumes.set(Name, {
    Name,
    Mountpoint: `/mnt/volgate/volumes/${Name}`,
    CreatedAt: new Date(1_700_000_000_000 + i).toISOString(),
  });
}
const list = JSON.stringify({ Volumes: [...volumes.values()] });

function answer(url: string | undefined, body: { Name?: string }): [number, string] {
  const v = body.Name === undefined ? undefined : volumes.get(body.Name);
  switch (url) {
    case "/VolumeDriver.Capabilities":
      return [200, JSON.stringify({ Capabilities: { Scope: "global" } })];
    case "/VolumeDriver.List":
      return [200, list];
    case "/VolumeDriver.Path":
      return v ? [200, JSON.stringify({ Mountpoint: v.Mountpoint })] : [500, '{"Err":"no such volume"}'];
    case "/VolumeDriver.Get": {
      if (!v) return [500, '{"Err":"no such volume"}'];
      const i = v.Name.slice("bench-volume-".length);
      const Status = {
        backend: "sshfs",
        mounted: false,
        mounts: 0,
        target: `app@127.0.0.1:2222:/srv/data/${i}`,
        health: "unmounted",
      };
      return [200, JSON.stringify({ Volume: { ...v, Status } })];
    }
    default:
      return [404, '{"Err":"unknown endpoint"}'];
  }
}

try {
  unlinkSync(socket);
} catch {}
createServer((req, res) => {
  let text = "";
  req.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  req.on("end", () => {
    const [status, out] = answer(req.url, text.trim() === "" ? {} : JSON.parse(text));
    res.writeHead(status, {
      "content-type": "application/vnd.docker.plugins.v1.2+json; charset=utf-8",
      "content-length": Buffer.byteLength(out),
    });
    res.end(out);
  });
}).listen(socket, () => console.log("ready"));
