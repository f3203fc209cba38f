/**
 * The sshfs backend. A connection mounts the remote root (`user@host:/`) once per
 * session-shaping key; each volume is a directory inside it. Credentials come from a
 * profile (private_key or password) or, when the operator allows it, an inline password;
 * the password reaches sshfs only through stdin. Host keys are verified by default
 * against host_key, the profile's known_hosts, or <secretsDir>/known_hosts. Ciphers and the
 * number of SSH connections follow the options or this machine's defaults (session.ts).
 */
import { join } from "node:path";
import { redact, VolgateError } from "../../errors.ts";
import { unmountPath } from "../../mountops.ts";
import type { Backend } from "../backend.ts";
import { hostForUrl } from "../options.ts";
import { checkTargetFree, waitForMount } from "../supervise.ts";
import { buildSshfsArgv } from "./argv.ts";
import { knownHostsFile, resolveLogin } from "./login.ts";
import { describeSshfs, parseSshfs, type SshfsSpec, sshfsConnectionKey } from "./options.ts";
import { readHostFacts, sessionShape } from "./session.ts";

export type { SshfsSpec } from "./options.ts";

/** Add what to do to the ssh text sshfs printed. */
function withHint(err: unknown): unknown {
  if (!(err instanceof VolgateError)) return err;
  const hint = /Host key verification failed/.test(err.message)
    ? "the server's host key does not match host_key/known_hosts (it changed, or the server is not the one you expect)"
    : /Permission denied/.test(err.message)
      ? "authentication was refused: check the credentials profile"
      : undefined;
  return hint ? new VolgateError(err.kind, `${err.message}: ${hint}`, { cause: err }) : err;
}

export const sshfsBackend: Backend<SshfsSpec> = {
  name: "sshfs",
  secretOptions: ["password"],
  parse: parseSshfs,
  connectionKey: sshfsConnectionKey,
  describe: describeSshfs,

  async preflight(spec, ctx, deadline) {
    const login = await resolveLogin(spec, ctx);
    // ssh2 is loaded on first use: a daemon that never creates an sshfs volume does not pay its memory.
    const { sshPreflight } = await import("./preflight.ts");
    const real = await sshPreflight(
      {
        host: spec.host,
        port: spec.port,
        user: spec.user,
        auth: login.auth.kind === "key" ? { privateKey: login.auth.key } : { password: login.auth.password },
        authSource: login.authSource,
        hostKeys: ctx.verifyHostKeys
          ? { keys: login.known.keys, source: login.known.source }
          : { source: "none" },
      },
      { path: spec.path, create: spec.common.create },
      deadline,
      ctx.log,
    );
    return real.replace(/^\/+/, "");
  },

  async mount(spec, { dir: target, id }, ctx, deadline) {
    const what = `sshfs mount of ${spec.user}@${hostForUrl(spec.host)}:${spec.port}`;
    await checkTargetFree(ctx, target, what);
    const login = await resolveLogin(spec, ctx);
    if (!ctx.verifyHostKeys) {
      ctx.log.warn({ remote: describeSshfs(spec) }, "sshfs mount without host key verification");
    }
    const session = sessionShape(spec.tuning, login.auth.kind, await readHostFacts(ctx));
    const argv = buildSshfsArgv({
      spec,
      target,
      auth: login.auth.kind === "key" ? { kind: "key", identityFile: login.auth.path } : { kind: "password" },
      session,
      ...(ctx.verifyHostKeys && { knownHostsFile: await knownHostsFile(spec, login, ctx, id) }),
      verifyHostKeys: ctx.verifyHostKeys,
    });
    const raw = ctx.runner.start("sshfs", argv, {
      ...(login.auth.kind === "password" && { stdin: `${login.auth.password}\n` }),
      logFile: join(ctx.workDir, `sshfs-${id}.log`),
    });
    // What ssh prints reaches Err and logs: never with the password, whatever it echoes.
    const password = login.auth.kind === "password" ? [login.auth.password] : [];
    const helper = { ...raw, output: () => redact(raw.output(), password) };
    try {
      await waitForMount(ctx, target, deadline, what, helper);
    } catch (err) {
      helper.kill();
      await unmountPath(ctx, target).catch(() => {});
      throw withHint(err);
    }
    ctx.log.info(
      { remote: describeSshfs(spec), target, pid: helper.pid, ...session },
      "sshfs connection mounted",
    );
  },
};
