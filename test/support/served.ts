/** A fake-host volgate listening on a real unix socket, with the invariant check of SANITY.md. */
import { join } from "node:path";
import { expect } from "vitest";
import { readState } from "../../src/state/load.ts";
import { totalMounts } from "../../src/state/records.ts";
import { makeWorld, type World, type WorldOptions } from "../fakes/world.ts";
import { type Answer, type CallOptions, call } from "./client.ts";

export interface Served extends World {
  readonly socket: string;
  call(path: string, body?: unknown, options?: CallOptions): Promise<Answer>;
  /** State file, Status and the mount table agree. */
  checkInvariants(): Promise<void>;
}

export async function serve(options: WorldOptions = {}): Promise<Served> {
  const world = await makeWorld(options);
  const socket = join(world.dir, "volgate.sock");
  await world.app.listen({ path: socket });
  return {
    ...world,
    socket,
    call: (path, body, callOptions) => call(socket, path, body, callOptions),
    async checkInvariants() {
      const diskVolumes = await readState(world.stateDir);
      const known = [...world.state.values()];
      expect([...diskVolumes.keys()].sort()).toEqual(known.map((r) => r.name).sort());
      for (const record of known) {
        expect(diskVolumes.get(record.name)?.mounts).toEqual(record.mounts);
        const mounted = world.host.table.has(world.driver.mountpoint(record.name));
        expect(mounted, `volume ${record.name} mounted`).toBe(totalMounts(record) > 0);
        const status = world.driver.get(record.name).Status;
        expect(status?.mounted).toBe(totalMounts(record) > 0);
        expect(status?.mounts).toBe(totalMounts(record));
      }
      const connMounts = [...world.host.table.keys()].filter((p) => p.startsWith(join(world.root, "conns")));
      const needed = new Set(
        known
          .filter((r) => totalMounts(r) > 0)
          .map((r) => world.connections.dirOf(world.driver.resolver.resolve(r).key)),
      );
      expect(connMounts.sort()).toEqual([...needed].sort());
    },
  };
}

export const create = (
  name: string,
  opts: Record<string, string> | null = { backend: "fake", server: "srv" },
) => ({
  Name: name,
  Opts: opts,
});
