/** A backend for tests, driven by FakeHost: `-o server=S -o share=DIR [-o password=P]`. */
import type { Backend, Spec } from "../../src/backends/backend.ts";
import {
  COMMON_OPTIONS,
  checkAllowed,
  fuseSessionOptions,
  parseCommon,
  parseReadOnly,
} from "../../src/backends/options.ts";
import { backendError, invalid, redact } from "../../src/errors.ts";
import type { FakeHost } from "./host.ts";

interface FakeSpec extends Spec {
  readonly server: string;
  readonly share: string;
  readonly password?: string;
  readonly session: string;
}

export function fakeBackend(host: FakeHost): Backend<FakeSpec> {
  const options = ["server", "share", "password", ...COMMON_OPTIONS];
  return {
    name: "fake",
    secretOptions: ["password"],
    parse(opts) {
      checkAllowed("fake", opts, options);
      const common = parseCommon(opts);
      if (!opts.server) throw invalid("backend fake needs option server (the server name)");
      return {
        server: opts.server,
        share: opts.share ?? "data",
        ...(opts.password !== undefined && { password: opts.password }),
        readOnly: parseReadOnly(opts),
        session: fuseSessionOptions(common).join(","),
      };
    },
    connectionKey: (s) => `fake|${s.server}|${s.session}`,
    describe: (s) => `${s.server}:/${s.share}`,
    async preflight(spec) {
      const dirs = host.servers.get(spec.server);
      if (!dirs) throw backendError(`cannot reach fake server ${spec.server}`);
      if (!dirs.has(spec.share)) throw invalid(`share ${spec.share} does not exist on ${spec.server}`);
      return spec.share;
    },
    async probe(spec) {
      if (host.unanswering.has(spec.server)) throw backendError(`fake server ${spec.server} does not answer`);
    },
    async mount(spec, { dir: target }, ctx, deadline) {
      const result = await ctx.runner.run("fakefs", ["-o", spec.session, spec.server, target], {
        deadline,
        ...(spec.password !== undefined && { stdin: spec.password }),
      });
      if (result.code !== 0) {
        throw backendError(`fakefs mount failed: ${redact(result.stderr.trim(), [spec.password ?? ""])}`);
      }
    },
  };
}
