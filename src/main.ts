#!/usr/bin/env node
/**
 * Composition root: config -> logger -> state -> app -> listen -> reconcile -> signals.
 * Listening comes before any remount: dockerd disables a managed plugin that
 * is not answering within ~10 s of start.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { buildApp } from "./app.ts";
import { createRegistry } from "./backends/index.ts";
import { createRunner } from "./command.ts";
import { type Config, helpText, loadConfig } from "./config.ts";
import { Connections } from "./connections.ts";
import { Driver } from "./driver.ts";
import { messageOf } from "./errors.ts";
import type { BackendContext } from "./host.ts";
import { planListen } from "./listen.ts";
import { createLogger } from "./logger.ts";
import { systemMountTable } from "./mountinfo.ts";
import { findCheckDirs, reconcile } from "./reconcile.ts";
import { StateStore } from "./state.ts";
import { within } from "./time.ts";

/** dockerd waits 10 s after SIGTERM before SIGKILL: finish well inside that. */
const SHUTDOWN_GRACE_MS = 8000;
/** How often mounts in use are probed for Status (a probe is one statfs per connection). */
const HEALTH_INTERVAL_MS = 30_000;

async function prepareDirs(config: Config): Promise<string> {
  await mkdir(join(config.root, "conns"), { recursive: true, mode: 0o700 });
  await mkdir(join(config.root, "volumes"), { recursive: true, mode: 0o755 });
  const workDir = join(config.stateDir, "work");
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  return workDir;
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
  const ctx: BackendContext = {
    runner: createRunner(workDir),
    mounts: systemMountTable(),
    log,
    secretsDir: config.secretsDir,
    workDir,
    verifyHostKeys: config.verifyHostKeys,
  };
  const state = await StateStore.load(config.stateDir, log);
  const connections = new Connections(config.root, ctx);
  const driver = new Driver(state, connections, createRegistry(), ctx, config);
  const checkDirs = await findCheckDirs(workDir); // before listening: a new Create's are not leftovers
  const plan = await planListen(config, process.env);
  const app = buildApp(driver, log, plan.https);
  await app.ready();
  await plan.start(app.server);
  log.info(
    {
      address: plan.address,
      root: config.root,
      volumes: state.volumes.size,
      ms: Math.round(performance.now() - started),
    },
    "listening",
  );

  const reconciling = reconcile(
    { driver, state, connections, ctx, root: config.root, mountTimeoutMs: config.mountTimeoutMs },
    checkDirs,
  )
    .then((report) => log.info(report, "reconciled mounts after start"))
    .catch((err) => log.error({ err: messageOf(err) }, "reconcile failed"));

  const health = setInterval(() => void connections.checkHealth(), HEALTH_INTERVAL_MS);
  health.unref();

  const stop = async (signal: string) => {
    log.info({ signal }, "stopping");
    const force = setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS);
    force.unref();
    await within(reconciling, 1000);
    // Requests in flight finish; keep-alive connections (dockerd keeps them) are closed once idle.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
    await app.close();
    clearInterval(sweep);
    await state.save();
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
