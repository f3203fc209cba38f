/**
 * What a well-formed answer of the plugin socket is, whatever was asked: the plugin media type,
 * a JSON object, and either the endpoint's success shape (200) or a 4xx/5xx with a non-empty Err
 * that is classified (an "internal error" for a bad request is a bug). HEAD answers have no body;
 * the one answer Node gives itself (to a request whose chunked body breaks the framing) has none either.
 */
import type { FuzzRequest } from "./fuzz.ts";
import type { RawAnswer } from "./http.ts";

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The success shape of each endpoint. */
const SUCCESS: Readonly<Record<string, (b: Record<string, unknown>) => boolean>> = {
  "/Plugin.Activate": (b) => Array.isArray(b.Implements),
  "/VolumeDriver.Create": (b) => Object.keys(b).length === 0,
  "/VolumeDriver.Remove": (b) => Object.keys(b).length === 0,
  "/VolumeDriver.Unmount": (b) => Object.keys(b).length === 0,
  "/VolumeDriver.Mount": (b) => typeof b.Mountpoint === "string",
  "/VolumeDriver.Path": (b) => typeof b.Mountpoint === "string",
  "/VolumeDriver.Get": (b) => isObject(b.Volume) && typeof b.Volume.Name === "string",
  "/VolumeDriver.List": (b) => Array.isArray(b.Volumes),
  "/VolumeDriver.Capabilities": (b) => isObject(b.Capabilities),
};

/** Why `answer` is not a well-formed answer to `req`; undefined when it is. */
export function wellFormed(req: FuzzRequest, answer: RawAnswer | Error): string | undefined {
  if (answer instanceof Error) return `no answer (${answer.message})`;
  // Node's parser answers a routed request whose chunked body breaks the framing: a bare 400, no Err.
  if (req.kind === "broken-chunked") return answer.status === 400 ? undefined : `status ${answer.status}`;
  const type = answer.headers["content-type"] ?? "";
  if (!type.startsWith("application/vnd.docker.plugins.v1.2+json"))
    return `${answer.status} as ${JSON.stringify(type)}`;
  if (req.method === "HEAD") return answer.body === "" ? undefined : "a body in a HEAD answer";
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    return `${answer.status} not JSON: ${answer.body.slice(0, 60)}`;
  }
  if (!isObject(body)) return `${answer.status} not an object: ${answer.body.slice(0, 60)}`;
  if (answer.status === 200) {
    const endpoint = (req.head.split(" ")[1] ?? "").split("?")[0] ?? "";
    const ok = SUCCESS[endpoint];
    if (ok === undefined || !ok(body)) return `200 for ${endpoint}: ${answer.body.slice(0, 80)}`;
    return undefined;
  }
  if (answer.status < 400 || answer.status > 599) return `status ${answer.status}`;
  if (typeof body.Err !== "string" || body.Err === "") return `${answer.status} without an Err`;
  if (body.Err.startsWith("internal error")) return `${answer.status} ${body.Err.slice(0, 100)}`;
  return undefined;
}
