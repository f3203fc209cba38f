/**
 * S3 clients kept across calls, one per endpoint, region, path style and access key: a client
 * keeps its connections alive, so the next Create or Mount skips the TCP (and TLS) handshake and
 * the SDK's setup. The secret key is never part of an entry's name: an entry remembers a salted
 * digest of it, and a rotated secret builds a new client. Bounded: the least recently used goes
 * when full. A client is destroyed only once no call holds it; each call brings its own deadline.
 */
import { createHmac, randomBytes } from "node:crypto";

/** What a client is built from: where it talks to, and as whom. */
export interface ClientIdentity {
  readonly endpoint: string;
  readonly region: string;
  readonly pathStyle: boolean;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

interface Entry<C> {
  readonly client: C;
  readonly secretDigest: string;
  holders: number;
  retired: boolean;
}

/** A client on loan: call release() when done with it. */
export interface Lease<C> {
  readonly client: C;
  release(): void;
}

export class ClientCache<C extends { destroy(): void }> {
  /** In use order: the first is the least recently used. */
  private readonly entries = new Map<string, Entry<C>>();
  /** Per process: a digest in memory says nothing about the secret outside it. */
  private readonly salt = randomBytes(16);

  constructor(
    private readonly build: (identity: ClientIdentity) => C,
    private readonly max = 16,
  ) {}

  /** The names entries go by (no secret in them), least recently used first. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  lease(identity: ClientIdentity): Lease<C> {
    const name = JSON.stringify([
      identity.endpoint,
      identity.region,
      identity.pathStyle,
      identity.accessKeyId,
    ]);
    const secretDigest = createHmac("sha256", this.salt).update(identity.secretAccessKey).digest("base64");
    let entry = this.entries.get(name);
    this.entries.delete(name);
    if (entry !== undefined && entry.secretDigest !== secretDigest) {
      this.retire(entry);
      entry = undefined;
    }
    entry ??= { client: this.build(identity), secretDigest, holders: 0, retired: false };
    this.entries.set(name, entry);
    for (const [oldest, old] of this.entries) {
      if (this.entries.size <= this.max) break;
      this.entries.delete(oldest);
      this.retire(old);
    }
    entry.holders++;
    const held = entry;
    let released = false;
    return {
      client: held.client,
      release: () => {
        if (released) return;
        released = true;
        held.holders--;
        if (held.retired && held.holders === 0) held.client.destroy();
      },
    };
  }

  /** Out of the cache: destroyed now if idle, else when its last holder lets go. */
  private retire(entry: Entry<C>): void {
    entry.retired = true;
    if (entry.holders === 0) entry.client.destroy();
  }
}
