/**
 * Docker's volume plugin wire format: PascalCase exactly as on the wire, and
 * the validation of request bodies. dockerd sends no Content-Type and may
 * retry with an empty body; everything is checked here before the driver.
 */
import { invalid, shown } from "./errors.ts";

export const ENDPOINTS = [
  "/Plugin.Activate",
  "/VolumeDriver.Create",
  "/VolumeDriver.Remove",
  "/VolumeDriver.Mount",
  "/VolumeDriver.Path",
  "/VolumeDriver.Unmount",
  "/VolumeDriver.Get",
  "/VolumeDriver.List",
  "/VolumeDriver.Capabilities",
] as const;

export type Body = Record<string, unknown>;

/** Parse a raw body; an empty one (a drained retry) is `{}` and fails later on its missing Name. */
export function parseBody(text: string): Body {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid("request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("request body must be a JSON object");
  }
  return value as Body;
}

/** Docker's own limits: names are at most 255 characters, mount IDs are 64 hex digits. */
const MAX_NAME = 255;
const MAX_ID = 256;

export function nameOf(body: Body): string {
  const name = body.Name;
  if (typeof name !== "string" || name === "") {
    throw invalid("request has no volume Name (an empty body is a retried request): try again");
  }
  if (name.length > MAX_NAME) throw invalid(`invalid volume name: longer than ${MAX_NAME} characters`);
  return name;
}

export function idOf(body: Body): string {
  const id = body.ID;
  if (typeof id !== "string") throw invalid("request has no mount ID");
  if (id.length > MAX_ID) throw invalid(`mount ID is longer than ${MAX_ID} characters`);
  return id;
}

/** `Opts` may be null or absent (anonymous volumes); every value must be a string. */
export function optionsOf(body: Body): Record<string, string> {
  const opts = body.Opts;
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object" || Array.isArray(opts)) throw invalid("Opts must be an object of strings");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (typeof v !== "string") throw invalid(`option ${shown(k)} must be a string`);
    out[k] = v;
  }
  return out;
}
