/**
 * Keeping the node's copy (copy.ts) following a shared catalog. Each (re)connect: publish this
 * node's volumes if it was not using this catalog before, read everything (deletions made while
 * away included), bring the copy in line, then follow a watch from that revision until it breaks
 * or a health probe fails; then retry, and say in the status since when the catalog is unreachable.
 * A stretch that ends after it was in sync is retried at once while the status stays ok: with a
 * cluster, the member the watch was on going away is not an outage (the calls fail over), nor is
 * the election of a new leader.
 */
import type { Logger } from "../logger.ts";
import { sleep } from "../time.ts";
import type { CatalogStatus } from "./catalog.ts";
import type { CatalogCopy } from "./copy.ts";
import { keys } from "./definition.ts";
import type { KV, WatchEvent } from "./kv.ts";
import type { Markers } from "./markers.ts";

const HEALTH_MS = 5000;
const RETRY_MS = [500, 1000, 2000, 5000] as const;
/**
 * Failed reconnects after an in-sync stretch ended that leave the status ok: the first, made at
 * once, may fall in the election of a new etcd leader (~1.5 s, nothing answers), the next does not.
 */
const FORGIVEN_RECONNECTS = 1;

export class CopySync {
  private state: CatalogStatus["state"] = "connecting";
  private since = new Date().toISOString();
  private lastError: string | undefined;
  private stopped = false;
  /** How many times the copy came in sync, and when it last did; when the last in-sync stretch ended. */
  private syncs = 0;
  private syncedAt = 0;
  private brokeAt: string | undefined;
  private breakWatch: ((err: Error) => void) | undefined;
  private readonly k: ReturnType<typeof keys>;
  /**
   * Changes to the copy, one after the other: each is worked out from the copy as the one before
   * left it (the store applies a change only once it is durable, so a delete computed while the
   * put before it was still being written found nothing to delete).
   */
  private applying: Promise<unknown> = Promise.resolve();
  private readonly first = Promise.withResolvers<void>();
  /** Resolves when the copy first comes in sync. */
  readonly firstSync = this.first.promise;

  constructor(
    private readonly kv: KV,
    private readonly options: { readonly where: string; readonly prefix: string; readonly log: Logger },
    private readonly copy: CatalogCopy,
    private readonly markers: Markers,
    /** After the copy changed (a resync, a watched change). */
    private readonly changed: () => void = () => {},
  ) {
    this.k = keys(options.prefix);
  }

  status(): CatalogStatus {
    return {
      where: this.options.where,
      state: this.state,
      ...(this.state !== "ok" && { since: this.since }),
      ...(this.lastError !== undefined && { lastError: this.lastError }),
    };
  }

  start(): void {
    void this.run();
  }

  /** Stop following; the loop ends at its next step (closing the client fails what is in flight). */
  stop(): void {
    this.stopped = true;
    this.breakWatch?.(new Error("stopping"));
  }

  /** A call failed: follow anew from a full read (the status says unreachable if that fails too). */
  failed(err: Error): void {
    this.breakWatch?.(err);
  }

  leaseLost(): void {
    void this.markers.resync().catch((err: Error) => this.failed(err));
  }

  private async run(): Promise<void> {
    let failures = 0;
    let forgiven = 0;
    let quickBreaks = 0;
    while (!this.stopped) {
      const before = this.syncs;
      try {
        await this.followOnce();
      } catch (err) {
        if (this.stopped) return;
        if (this.syncs > before) {
          this.brokeAt = new Date().toISOString();
          failures = 0;
          forgiven = FORGIVEN_RECONNECTS;
          // At once; but stretches that keep breaking right after they began back off, so nothing spins.
          quickBreaks = Date.now() - this.syncedAt < RETRY_MS[0] ? quickBreaks + 1 : 0;
          if (quickBreaks <= 1) continue;
          failures = quickBreaks - 2;
        } else if (forgiven > 0) forgiven--;
        else this.markUnreachable(err as Error);
      }
      await sleep(RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)] ?? 5000);
    }
  }

  private markUnreachable(err: Error): void {
    if (this.state === "ok") {
      this.since = this.brokeAt ?? new Date().toISOString();
      this.options.log.error({ catalog: this.options.where, err: err.message }, "volume catalog unreachable");
    }
    this.state = "unreachable";
    this.lastError = err.message;
  }

  /** One connected stretch: publish, resync, watch; resolves never, rejects when it ends. */
  private async followOnce(): Promise<void> {
    let read = await this.kv.list(this.k.volumes);
    // What it published is in the catalog now: read again.
    if (await this.copy.publishOnce(read.cluster)) read = await this.kv.list(this.k.volumes);
    const { revision, entries } = read;
    const volumes = await this.inTurn(() => this.copy.resync(entries, revision));
    const stretch = new AbortController();
    let fail: (err: Error) => void = () => {};
    const ended = new Promise<never>((_, reject) => {
      fail = reject;
    });
    ended.catch(() => {}); // it may end before anyone waits on it
    this.breakWatch = (err) => {
      stretch.abort();
      fail(err);
    };
    try {
      const stopWatch = await this.kv.watch(
        this.k.volumes,
        revision,
        (events, rev) => this.onEvents(events, rev),
        (err) => this.breakWatch?.(err),
      );
      try {
        await this.markers.resync();
        if (this.state !== "ok") {
          this.options.log.info({ catalog: this.options.where, volumes }, "volume catalog in sync");
        }
        this.state = "ok";
        this.lastError = undefined;
        this.brokeAt = undefined;
        this.syncs++;
        this.syncedAt = Date.now();
        this.first.resolve();
        this.changed();
        await Promise.race([ended, this.probe(stretch.signal)]);
      } finally {
        await stopWatch().catch(() => {});
      }
    } finally {
      this.breakWatch = undefined;
      stretch.abort();
    }
  }

  private onEvents(events: readonly WatchEvent[], revision: number): void {
    // The copy could not follow: resync from a full read.
    void this.inTurn(() => this.copy.follow(events, revision)).then(this.changed, (err: Error) =>
      this.failed(err),
    );
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.applying.then(work);
    this.applying = turn.catch(() => {});
    return turn;
  }

  /** A watch on a silent server can stay quiet forever: probe it; a failure ends this stretch. */
  private async probe(signal: AbortSignal): Promise<never> {
    for (;;) {
      await sleep(HEALTH_MS);
      if (signal.aborted) throw new Error("the watch ended");
      await this.kv.list(`${this.options.prefix}health`);
    }
  }
}
