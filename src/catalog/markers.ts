/**
 * In-use markers: while this node holds mounts of a volume, `<prefix>inuse/<name>/<node>` exists,
 * tied to the node's lease, so a Remove on another node is refused and names this one. What should
 * exist follows from this node's own state (the volumes it counts mounts of, and the Mounts under
 * way); what does exist is brought in line whenever the catalog is reachable, and after a lost lease.
 */
import { notFound } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { keys } from "./definition.ts";
import type { KV } from "./kv.ts";

export class Markers {
  /** Volumes a Mount is bringing up: wanted before their count says so. */
  private readonly pending = new Set<string>();
  private readonly k: ReturnType<typeof keys>;

  constructor(
    private readonly kv: KV,
    private readonly options: {
      readonly prefix: string;
      readonly node: string;
      readonly where: string;
      readonly log: Logger;
    },
    private readonly mounted: () => Iterable<string>,
  ) {
    this.k = keys(options.prefix);
  }

  /** Mark `name` in use; throws `not_found` if its definition is gone from the catalog. */
  async add(name: string, reachable: boolean): Promise<void> {
    this.pending.add(name);
    if (reachable) await this.put(name);
  }

  async remove(name: string, reachable: boolean): Promise<void> {
    this.pending.delete(name);
    if (reachable) await this.kv.txn([], [{ delete: this.k.marker(name, this.options.node) }]);
  }

  /** After a (re)connect or a lost lease: put every marker wanted, delete this node's others. */
  async resync(): Promise<void> {
    const { entries } = await this.kv.list(this.k.allInUse);
    const mine = new Set<string>();
    for (const e of entries) {
      const [volume, node] = e.key.slice(this.k.allInUse.length).split("/");
      if (volume !== undefined && node === this.options.node) mine.add(volume);
    }
    const wanted = new Set([...this.pending, ...this.mounted()]);
    for (const name of wanted) {
      await this.put(name).catch((err: Error) =>
        this.options.log.error(
          { volume: name, err: err.message },
          "cannot mark a mounted volume in use in the catalog",
        ),
      );
    }
    for (const name of mine) {
      if (!wanted.has(name)) await this.kv.txn([], [{ delete: this.k.marker(name, this.options.node) }]);
    }
  }

  /** The marker, only while the definition exists; the guard bump makes a racing Remove fail. */
  private async put(name: string): Promise<void> {
    const marker = JSON.stringify({ since: new Date().toISOString() });
    const { ok } = await this.kv.txn(
      [{ key: this.k.volume(name), target: "version", is: ">", value: 0 }],
      [
        { put: this.k.marker(name, this.options.node), value: marker, leased: true },
        { put: this.k.guard(name), value: this.options.node },
      ],
    );
    if (!ok) {
      this.pending.delete(name);
      throw notFound(
        `volume ${name} was removed from the catalog ${this.options.where} (on another node): it cannot be mounted`,
      );
    }
  }
}
