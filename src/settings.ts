/**
 * The settings volgate knows: each one's VOLGATE_* variable, default, check and documentation
 * (what `volgate --help` prints). Checked by convict at start; config.ts turns them into Config.
 */
import { isAbsolute } from "node:path";
import convict from "convict";
import { parseCatalogUrl } from "./catalog/url.ts";

function absolutePath(value: unknown): void {
  if (typeof value !== "string" || !isAbsolute(value) || value.length < 2) {
    throw new Error("must be an absolute path other than /");
  }
}

/**
 * `true` or `false` and nothing else: convict's Boolean reads "0", "no", "off" and "" as true, so
 * VOLGATE_INSECURE_TCP=0 would have meant plain TCP. A named format, so convict does not coerce.
 */
convict.addFormat({
  name: "strict-boolean",
  validate(value: unknown) {
    if (value !== true && value !== false) throw new Error("must be true or false");
  },
  coerce: (value: string) => (value === "true" ? true : value === "false" ? false : value),
});

function seconds(min: number, max: number) {
  return (value: unknown): void => {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      throw new Error(`must be a whole number of seconds from ${min} to ${max}`);
    }
  };
}

const PROFILE_OR_EMPTY = /^(|[A-Za-z0-9][A-Za-z0-9_.-]{0,254})$/;
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export const schema = {
  socket: {
    doc: "Unix socket Docker connects to (legacy discovery reads /run/docker/plugins/<name>.sock)",
    format: absolutePath,
    default: "/run/docker/plugins/volgate.sock",
    env: "VOLGATE_SOCKET",
  },
  root: {
    doc: "Mount root: conns/ holds backend mounts, volumes/ the volume mountpoints (the managed plugin's propagatedMount)",
    format: absolutePath,
    default: "/mnt/volgate",
    env: "VOLGATE_ROOT",
  },
  stateDir: {
    doc: "Where volume state is kept (outside the plugin rootfs so upgrades keep it)",
    format: absolutePath,
    default: "/var/lib/volgate",
    env: "VOLGATE_STATE_DIR",
  },
  secretsDir: {
    doc: "Credentials profiles: <dir>/<profile>/{password,private_key,known_hosts,access_key_id,secret_access_key}",
    format: absolutePath,
    default: "/etc/volgate/credentials",
    env: "VOLGATE_SECRETS_DIR",
  },
  logLevel: {
    doc: "Log level",
    format: ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
    default: "info",
    env: "VOLGATE_LOG_LEVEL",
  },
  logFormat: {
    doc: "json (one object a line), pretty (for people), auto (pretty on a terminal)",
    format: ["json", "pretty", "auto"],
    default: "auto",
    env: "VOLGATE_LOG_FORMAT",
  },
  mountTimeout: {
    doc: "Seconds a backend mount may take before its helper is killed and the mount rolled back (dockerd gives up at 30)",
    format: seconds(1, 28),
    default: 20,
    env: "VOLGATE_MOUNT_TIMEOUT",
  },
  preflightTimeout: {
    doc: "Seconds the create-time check of a backend (login, host key, remote dir) may take",
    format: seconds(1, 60),
    default: 15,
    env: "VOLGATE_PREFLIGHT_TIMEOUT",
  },
  healthInterval: {
    doc: "Seconds between health probes of the connections in use (Status shows a helper that died or a server that stopped answering)",
    format: seconds(1, 3600),
    default: 30,
    env: "VOLGATE_HEALTH_INTERVAL",
  },
  connectionGrace: {
    doc: "Seconds a backend connection stays mounted after its last volume is unmounted, so the next container mounts in milliseconds (0: unmount at once)",
    format: seconds(0, 3600),
    default: 60,
    env: "VOLGATE_CONNECTION_GRACE",
  },
  allowInlineSecrets: {
    doc: "Accept secrets as -o options (dockerd stores -o values in plaintext: prefer credentials profiles)",
    format: "strict-boolean",
    default: false,
    env: "VOLGATE_ALLOW_INLINE_SECRETS",
  },
  verifyHostKeys: {
    doc: "Verify SSH host keys (turning this off allows man-in-the-middle attacks)",
    format: "strict-boolean",
    default: true,
    env: "VOLGATE_VERIFY_HOST_KEYS",
  },
  listen: {
    doc: "Listen on tcp://HOST:PORT instead of the unix socket (needs the TLS files, or VOLGATE_INSECURE_TCP=true)",
    format: (value: unknown) => {
      if (value !== "" && !/^tcp:\/\/[A-Za-z0-9.:[\]-]+:[0-9]{1,5}$/.test(String(value))) {
        throw new Error("must be empty or tcp://HOST:PORT");
      }
    },
    default: "",
    env: "VOLGATE_LISTEN",
  },
  tlsCert: {
    doc: "TLS server certificate (PEM) for tcp listening",
    format: String,
    default: "",
    env: "VOLGATE_TLS_CERT",
  },
  tlsKey: {
    doc: "TLS server key (PEM) for tcp listening",
    format: String,
    default: "",
    env: "VOLGATE_TLS_KEY",
  },
  tlsCa: {
    doc: "CA (PEM) that signed Docker's client certificate: clients without one are refused",
    format: String,
    default: "",
    env: "VOLGATE_TLS_CA",
  },
  insecureTcp: {
    doc: "Allow tcp listening without TLS (anyone who reaches the port can mount volumes)",
    format: "strict-boolean",
    default: false,
    env: "VOLGATE_INSECURE_TCP",
  },
  catalog: {
    doc: "Where volume definitions live: local (this node's state dir), or etcd://HOST:PORT[,HOST:PORT...][/prefix] shared by every node (etcds:// for TLS)",
    format: (value: unknown) => void parseCatalogUrl(String(value)),
    default: "local",
    env: "VOLGATE_CATALOG",
  },
  catalogCredentials: {
    doc: "Credentials profile for the catalog: username and password, ca.pem, cert.pem and key.pem (each optional)",
    format: (value: unknown) => {
      if (!PROFILE_OR_EMPTY.test(String(value)))
        throw new Error("must be a profile name (letters, digits, _ . -)");
    },
    default: "",
    env: "VOLGATE_CATALOG_CREDENTIALS",
  },
  nodeName: {
    doc: "This node's name in the catalog (in-use markers, messages); empty means the host name",
    format: (value: unknown) => {
      if (value !== "" && !NODE_NAME.test(String(value)))
        throw new Error("must be 1-63 letters, digits, _ . -");
    },
    default: "",
    env: "VOLGATE_NODE_NAME",
  },
};
