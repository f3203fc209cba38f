/** A whole volgate on a fake host: temp dirs, state, connections, driver, app. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/app.ts";
import { Connections } from "../../src/connections.ts";
import { Driver } from "../../src/driver.ts";
import type { BackendContext } from "../../src/host.ts";
import { type ReconcileReport, reconcile } from "../../src/reconcile.ts";
import { StateStore } from "../../src/state.ts";
import { fakeBackend } from "./backend.ts";
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
  close(): Promise<void>;
}

export interface WorldOptions {
  readonly dir?: string;
  readonly host?: FakeHost;
  readonly allowInlineSecrets?: boolean;
  readonly mountTimeoutMs?: number;
}

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
  const connections = new Connections(root, ctx);
  const registry = new Map([["fake", fakeBackend(host) as never]]);
  const driver = new Driver(state, connections, registry, ctx, {
    root,
    mountTimeoutMs: options.mountTimeoutMs ?? 2000,
    preflightTimeoutMs: 2000,
    allowInlineSecrets: options.allowInlineSecrets ?? false,
  });
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
    async close() {
      await app.close();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Run the after-start reconcile on a world, as main.ts does. */
export function reconcileWorld(w: World, checkDirs: readonly string[] = []): Promise<ReconcileReport> {
  const deps = { driver: w.driver, state: w.state, connections: w.connections, ctx: w.ctx, root: w.root };
  return reconcile({ ...deps, mountTimeoutMs: 2000 }, checkDirs);
}
