/** pino logger: JSON lines to stdout, pretty on a terminal, secrets redacted by path. */
import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger };

const REDACT = [
  "opts.password",
  "opts.secret_access_key",
  "opts.access_key_id",
  "*.password",
  "*.secret_access_key",
  "req.headers.authorization",
];

export function createLogger(
  level: string,
  format: "json" | "pretty" | "auto",
  destination?: DestinationStream,
): Logger {
  const options = { level, base: { name: "volgate" }, redact: { paths: REDACT, censor: "***" } };
  if (destination) return pino(options, destination);
  const pretty = format === "pretty" || (format === "auto" && process.stdout.isTTY === true);
  if (!pretty) return pino(options);
  return pino({ ...options, transport: { target: "pino-pretty", options: { colorize: true } } });
}
