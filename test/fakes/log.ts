/** A real pino logger whose lines tests read back, parsed, through a sink stream (pino's own test style). */
import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../src/logger.ts";

export interface CapturedLog {
  readonly log: Logger;
  /** Every line written so far, parsed. */
  readonly lines: Array<Record<string, unknown>>;
}

export function captureLog(level = "debug"): CapturedLog {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n")) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createLogger(level, "json", sink), lines };
}
