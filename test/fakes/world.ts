/** A whole volgate on a fake host: temp dirs, state, connections, driver, app. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/app.ts";
import type { Backend, Registry } from "../../src/backends/index.ts";
import type { KV } from "../../src/catalog/kv.ts";
import { SharedCatalog } from "../../src/catalog/shared.ts";
import { Connections } from "../../src/connections.ts";
import { Driver } from "../../src/driver.ts";
import type { BackendContext } from "../../src/host.ts";
import type { Logger } from "../../src/logger.ts";
import { type RestoreReport, restore } from "../../src/restore.ts";
import { StateStore } from "../../src/state/store.ts";
import { fakeBackend } from "./backend.ts";
import type { FakeEtcd } from "./etcd.ts";
import { FakeHost } from "./host.ts";
import { captureLog } from "./log.ts";

export interface World {
  readonly dir: string;
  readonly root: string;
  readonly stateDir: string;
  readonly host: FakeHost;
  readonly state: StateStore;
  readonly driver: Driver;
  readonly connections: Connections;
  readonly ctx: BackendContext;
  readonly app: FastifyInstance;
  /** Every log line, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  readonly catalog?: SharedCatalog;
  close(): Promise<void>;
}

function sharedCatalog(
  options: NonNullable<WorldOptions["catalog"]>,
  state: StateStore,
  log: Logger,
  secretsDir: string,
) {
  const { etcd, node } = options;
  const kv = options.wrap ?? etcd.client(node);
  return new SharedCatalog(
    kv,
    { where: options.where ?? FAKE_CATALOG, prefix: "/volgate/", node, secretsDir, log },
    state,
  );
}

export interface WorldOptions {
  readonly dir?: string;
  readonly host?: FakeHost;
  readonly allowInlineSecrets?: boolean;
  readonly mountTimeoutMs?: number;
  /** How long connections stay warm after their last volume (default 0: unmounted at once). */
  readonly connectionGraceMs?: number;
  /** Real backends served besides the fake one (their options are parsed for real; nothing mounts). */
  readonly backends?: Registry;
  /** Share volume definitions through this (fake) etcd, as node `node`. */
  readonly catalog?: {
    readonly etcd: FakeEtcd;
    readonly node: string;
    readonly wrap?: KV;
    /** The catalog URL as this node names it (default FAKE_CATALOG). */
    readonly where?: string;
  };
}

export const FAKE_CATALOG = "etcd://fake:2379/volgate/";

export async function makeWorld(options: WorldOptions = {}): Promise<World> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "volgate-test-")));
  const root = join(dir, "root");
  const stateDir = join(dir, "state");
  const host = options.host ?? new FakeHost();
  if (!options.host) host.servers.set("srv", new Set(["data", "other", "ro"]));
  const { log, lines: logs } = captureLog();
  const ctx: BackendContext = host.context({
    log,
    secretsDir: join(dir, "secrets"),
    workDir: join(stateDir, "work"),
  });
  const state = await StateStore.load(stateDir, log);
  const connections = new Connections(root, ctx, options.connectionGraceMs ?? 0);
  const registry: Registry = new Map([...(options.backends ?? []), ["fake", fakeBackend(host) as Backend]]);
  const driver = new Driver(state, connections, registry, ctx, {
    root,
    mountTimeoutMs: options.mountTimeoutMs ?? 2000,
    preflightTimeoutMs: 2000,
    allowInlineSecrets: options.allowInlineSecrets ?? false,
  });
  const shared = options.catalog && sharedCatalog(options.catalog, state, log, ctx.secretsDir);
  if (shared) {
    driver.useCatalog(shared);
    shared.start();
  }
  const app = buildApp(driver, log);
  return {
    dir,
    root,
    stateDir,
    host,
    state,
    driver,
    connections,
    ctx,
    app,
    logs,
    ...(shared && { catalog: shared }),
    async close() {
      await app.close();
      await shared?.close();
      await state.close();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Run the after-start restore on a world, as main.ts does. */
export function reconcileWorld(w: World, checkDirs: readonly string[] = []): Promise<RestoreReport> {
  return restore(
    { driver: w.driver, connections: w.connections, ctx: w.ctx, mountTimeoutMs: 2000 },
    checkDirs,
  );
}
