/**
 * Configuration: VOLGATE_* environment variables, validated at start by convict.
 * The code carries its own defaults because `docker plugin upgrade` keeps old
 * settings but never adds new env defaults.
 */
import { hostname } from "node:os";
import convict from "convict";
import { schema } from "./settings.ts";

export interface Config {
  readonly socket: string;
  readonly root: string;
  readonly stateDir: string;
  readonly secretsDir: string;
  readonly logLevel: string;
  readonly logFormat: "json" | "pretty" | "auto";
  readonly mountTimeoutMs: number;
  readonly preflightTimeoutMs: number;
  readonly healthIntervalMs: number;
  readonly connectionGraceMs: number;
  readonly allowInlineSecrets: boolean;
  readonly verifyHostKeys: boolean;
  /** "" for the unix socket, or tcp://HOST:PORT. */
  readonly listen: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly tlsCa: string;
  readonly insecureTcp: boolean;
  /** "local", or an etcd:// / etcds:// URL. */
  readonly catalog: string;
  /** A credentials profile for the catalog, or "". */
  readonly catalogCredentials: string;
  readonly nodeName: string;
}

/** Load and validate the configuration from `env`; throws an Error listing every bad value. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const c = convict(schema, { env, args: [] });
  try {
    c.validate({ allowed: "strict" });
  } catch (err) {
    // Name the variable the operator set, not convict's key for it.
    let message = (err as Error).message;
    for (const [key, entry] of Object.entries(schema)) {
      message = message.replace(new RegExp(`^${key}:`, "gm"), `${entry.env}:`);
    }
    throw new Error(message);
  }
  return Object.freeze({
    socket: c.get("socket"),
    root: c.get("root"),
    stateDir: c.get("stateDir"),
    secretsDir: c.get("secretsDir"),
    logLevel: c.get("logLevel"),
    logFormat: c.get("logFormat") as Config["logFormat"],
    mountTimeoutMs: c.get("mountTimeout") * 1000,
    preflightTimeoutMs: c.get("preflightTimeout") * 1000,
    healthIntervalMs: c.get("healthInterval") * 1000,
    connectionGraceMs: c.get("connectionGrace") * 1000,
    allowInlineSecrets: c.get("allowInlineSecrets") === true,
    verifyHostKeys: c.get("verifyHostKeys") === true,
    listen: c.get("listen"),
    tlsCert: c.get("tlsCert"),
    tlsKey: c.get("tlsKey"),
    tlsCa: c.get("tlsCa"),
    insecureTcp: c.get("insecureTcp") === true,
    catalog: c.get("catalog"),
    catalogCredentials: c.get("catalogCredentials"),
    nodeName: c.get("nodeName") || hostname(),
  });
}

/** The text of `volgate --help`: every setting, its variable and its default. */
export function helpText(): string {
  const lines = ["Usage: volgate [--help]", "", "Settings (environment variables):"];
  for (const entry of Object.values(schema)) {
    lines.push(`  ${entry.env}  (default: ${String(entry.default)})`, `      ${entry.doc}`);
  }
  return lines.join("\n");
}
