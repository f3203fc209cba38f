#!/usr/bin/env node
/**
 * Composition root: config -> logger -> state -> app -> listen -> restore -> signals.
 * Listening comes before any remount: dockerd disables a managed plugin that
 * is not answering within ~10 s of start.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { buildApp } from "./app.ts";
import { createRegistry } from "./backends/index.ts";
import { type Catalog, pendingCatalog } from "./catalog/catalog.ts";
import { openCatalog } from "./catalog/index.ts";
import { parseCatalogUrl } from "./catalog/url.ts";
import { createRunner } from "./command.ts";
import { type Config, helpText, loadConfig } from "./config.ts";
import { Connections } from "./connections.ts";
import { Driver } from "./driver.ts";
import { messageOf } from "./errors.ts";
import { capHelperLogs } from "./helper-logs.ts";
import type { BackendContext } from "./host.ts";
import { planListen } from "./listen.ts";
import { createLogger, type Logger } from "./logger.ts";
import { systemMountTable } from "./mountinfo.ts";
import { findCheckDirs, removeSecretFiles, restore } from "./restore.ts";
import { StateStore } from "./state/store.ts";
import { within } from "./time.ts";

/** dockerd waits 10 s after SIGTERM before SIGKILL: finish well inside that. */
const SHUTDOWN_GRACE_MS = 8000;

async function prepareDirs(config: Config): Promise<string> {
  await mkdir(join(config.root, "conns"), { recursive: true, mode: 0o700 });
  await mkdir(join(config.root, "volumes"), { recursive: true, mode: 0o755 });
  const workDir = join(config.stateDir, "work");
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  return workDir;
}

/** Load the shared catalog's client (gRPC is slow to load), start following it, and use it from now on. */
async function startCatalog(
  config: Config,
  state: StateStore,
  driver: Driver,
  log: Logger,
  where: string,
): Promise<Catalog> {
  let catalog: Catalog;
  try {
    const shared = await openCatalog(config, state, log);
    if (!shared) throw new Error(`${where} is no shared catalog`);
    shared.start();
    catalog = shared;
  } catch (err) {
    log.error({ catalog: where, err: messageOf(err) }, "cannot use the volume catalog");
    catalog = pendingCatalog(where, messageOf(err));
  }
  driver.useCatalog(catalog);
  return catalog;
}

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log(helpText());
    return;
  }
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    console.error(`volgate: bad configuration: ${messageOf(err)}\nRun volgate --help for every setting.`);
    process.exit(2);
  }
  const started = performance.now();
  const log = createLogger(config.logLevel, config.logFormat);
  const workDir = await prepareDirs(config);
  capHelperLogs(workDir, log);
  const runner = createRunner(workDir);
  const ctx: BackendContext = {
    runner,
    mounts: systemMountTable(runner),
    log,
    secretsDir: config.secretsDir,
    workDir,
    verifyHostKeys: config.verifyHostKeys,
  };
  const state = await StateStore.load(config.stateDir, log);
  const connections = new Connections(config.root, ctx, config.connectionGraceMs);
  const backends = createRegistry();
  const driver = new Driver(state, connections, backends, ctx, config);
  const sharedCatalog = parseCatalogUrl(config.catalog);
  // Never a volume only here because the shared catalog was not loaded yet: until it is, Create waits for it.
  const loaded = Promise.withResolvers<Catalog>();
  if (sharedCatalog) driver.useCatalog(pendingCatalog(sharedCatalog.where, undefined, loaded.promise));
  const checkDirs = await findCheckDirs(workDir); // before listening: a new Create's are not leftovers
  const secrets = await removeSecretFiles(workDir, backends.values()); // no secret at rest after a crash
  if (secrets.length > 0) log.warn({ files: secrets }, "removed secret files a crash left in the work dir");
  const plan = await planListen(config, process.env);
  const stopping = new AbortController();
  const app = buildApp(driver, log, { ...(plan.https && { https: plan.https }), stopping: stopping.signal });
  await app.ready();
  await plan.start(app.server);
  log.info(
    {
      address: plan.address,
      root: config.root,
      volumes: state.size,
      ms: Math.round(performance.now() - started),
    },
    "listening",
  );

  const catalog = sharedCatalog ? startCatalog(config, state, driver, log, sharedCatalog.where) : undefined;
  void catalog?.then(loaded.resolve);
  const deps = { driver, connections, ctx, mountTimeoutMs: config.mountTimeoutMs, signal: stopping.signal };
  void restore(deps, checkDirs)
    .then((report) => log.info(report, "reconciled mounts after start"))
    .catch((err) => log.error({ err: messageOf(err) }, "reconcile failed"));

  const health = setInterval(() => void connections.checkHealth(), config.healthIntervalMs);
  health.unref();

  // Every change is durable when it is answered, so stopping has nothing to save: it aborts what is in
  // flight (a Mount on a hung backend rolls back now), lets the answers go out, and exits.
  const stop = async (signal: string) => {
    log.info({ signal }, "stopping");
    const force = setTimeout(() => {
      log.warn("requests still running at the shutdown deadline: exiting anyway");
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    stopping.abort();
    clearInterval(health);
    // Keep-alive connections (dockerd keeps them) are closed once idle.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
    await app.close();
    clearInterval(sweep);
    await within(connections.closeIdle(), 3000);
    await within(Promise.all([state.close(), catalog?.then((c) => c?.close())]), 1000);
    log.info("stopped");
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

main().catch((err) => {
  console.error(`volgate: ${messageOf(err)}`);
  process.exit(1);
});
