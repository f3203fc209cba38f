/**
 * One set of cases every backend must pass, run with a fake machine (test/unit/conformance.test.ts)
 * and for real (test/integration/backends/conformance.test.ts), in the spirit of unstorage's driver suite.
 * A subject brings the backend, options for a few volumes, the secrets it holds, and a harness
 * (the context the backend runs in, plus what it takes to see and kill its helpers).
 *
 * The contract, as Connections and Driver rely on it:
 * - parse is pure: the same options (in any order) give the same spec, key and description;
 *   unknown and dangerous options are refused with the allow-list; aliases mean their canonical form.
 * - connectionKey is equal exactly when two volumes can share a session; no key, description, argv,
 *   thrown message, log line or leftover work file carries a secret.
 * - mount leaves one live nosuid,nodev mount or nothing: a failed mount leaves no mount and no helper,
 *   and unmountPath after it is a no-op. Connections mounts only where nothing is live, so a mount
 *   on a live target must leave that mount alone (refused, naming the target, or a no-op).
 * - a dead helper shows as stale, and unmountPath cleans it so the connection can mount again.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend, Options, Spec } from "../../src/backends/backend.ts";
import { Deadline } from "../../src/deadline.ts";
import { VolgateError } from "../../src/errors.ts";
import type { BackendContext } from "../../src/host.ts";
import type { MountEntry } from "../../src/mountinfo.ts";
import { unmountPath } from "../../src/mountops.ts";
import { failure, refusal } from "../support/expect-error.ts";
import { targetAt } from "../support/machine.ts";
import { eventually } from "../support/procs.ts";

export interface RecordedCall {
  readonly file: string;
  readonly args: readonly string[];
}

/** Where the backend runs, and how a test sees into it. */
export interface Harness {
  readonly ctx: BackendContext;
  /** Every line the backend logged through ctx.log, parsed. */
  readonly logs: ReadonlyArray<Record<string, unknown>>;
  /** Every command the backend ran or started through ctx.runner, in order. */
  readonly calls: readonly RecordedCall[];
  /** Every command line on the machine now (real runs), beyond the recorded calls. */
  processCommandLines(): Promise<string[]>;
  /** Every mount in the harness's own directories (targets, work dir), stacked ones included. */
  mounts(): Promise<MountEntry[]>;
  /** A new empty directory to mount at. */
  newTarget(): Promise<string>;
  /** Kill the helper serving `target` (SIGKILL, for real); without a helper, make the mount dead. */
  killHelper(target: string): Promise<void>;
  /** Helper processes still running for `target`. */
  helpersAt(target: string): Promise<number>;
}

export interface Subject<S extends Spec = Spec> {
  readonly backend: Backend<S>;
  readonly harness: Harness;
  /** A volume that mounts. */
  readonly volume: Options;
  /** Another volume on the same session as `volume` (another directory, ro, ...). */
  readonly sameConnection: Options;
  /** Volumes that must not share `volume`'s session, each named by what differs. */
  readonly otherConnections: Readonly<Record<string, Options>>;
  readonly secrets: {
    /** Every secret the subject's volumes and credentials profiles hold. */
    readonly values: readonly string[];
    /** Volumes that mount using those secrets: inline secret options and profile secrets. */
    readonly volumes: readonly Options[];
    /** A volume using a secret whose mount fails. */
    readonly failing?: Options;
  };
  readonly unknownOption: readonly [string, string];
  /** Options that would run commands, read files or weaken the mount, each [name, value]. */
  readonly dangerousOptions: ReadonlyArray<readonly [string, string]>;
  /** Alias forms and the canonical options they stand for. */
  readonly aliases: ReadonlyArray<{ readonly input: Options; readonly canonical: Options }>;
  /** A volume whose mount fails. */
  readonly failing: Options;
  /** Where the control plane is real: a volume to preflight and the directory it resolves to. */
  readonly preflight?: { readonly volume: Options; readonly directory: string };
  readonly mountTimeoutMs: number;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Each secret found in `text`, for a readable failure. */
const secretsIn = (text: string, secrets: readonly string[]) => secrets.filter((s) => text.includes(s));

export interface SuiteOptions {
  /** The tier cannot run here (see tierCanRun): the cases are registered, skipped. */
  readonly skip?: boolean;
}

export function conformance<S extends Spec>(
  name: string,
  makeSubject: () => Promise<Subject<S>>,
  { skip = false }: SuiteOptions = {},
): void {
  describe.skipIf(skip)(`backend conformance: ${name}`, () => {
    let s: Subject<S>;
    let b: Backend<S>;
    let h: Harness;
    const parse = (o: Options) => b.parse(o);
    const key = (o: Options) => b.connectionKey(parse(o));
    const deadline = () => Deadline.after(s.mountTimeoutMs);
    const mountedAt = async (target: string) => (await h.mounts()).filter((e) => e.mountPoint === target);
    /** Mount `o` at a new target and check it is one live nosuid,nodev mount. */
    const mountNew = async (o: Options) => {
      const target = await h.newTarget();
      await b.mount(parse(o), targetAt(target), h.ctx, deadline());
      await expectMounted(target);
      return target;
    };
    const expectMounted = async (target: string) => {
      expect(await h.ctx.mounts.probe(target)).toBe("live");
      const entries = await mountedAt(target);
      expect(entries).toHaveLength(1);
      expect(entries[0]?.options.split(",")).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
      expect(await h.helpersAt(target)).toBeLessThanOrEqual(1);
    };
    /** Nothing at `target`: no mount, no helper, an empty directory. */
    const expectNothingAt = async (target: string) => {
      expect(await h.ctx.mounts.probe(target)).toBe("absent");
      expect(await mountedAt(target)).toEqual([]);
      expect(await eventually(async () => (await h.helpersAt(target)) === 0, 5000)).toBe(true);
      expect(await readdir(target)).toEqual([]);
    };
    /** Mount `volume` again at a target that was cleaned, check it, and clean it again. */
    const remountAndClean = async (target: string) => {
      await b.mount(parse(s.volume), targetAt(target), h.ctx, deadline());
      await expectMounted(target);
      await unmountPath(h.ctx, target);
      await expectNothingAt(target);
    };
    /** argv, process command lines, log lines and work files: none may hold a secret. */
    const expectNoSecretsAnywhere = async () => {
      const secrets = s.secrets.values;
      const argv = [...h.calls.map((c) => [c.file, ...c.args].join(" ")), ...(await h.processCommandLines())];
      expect(argv.filter((line) => secretsIn(line, secrets).length > 0)).toEqual([]);
      const logs = h.logs.map((l) => JSON.stringify(l));
      expect(logs.filter((line) => secretsIn(line, secrets).length > 0)).toEqual([]);
      // Helper output (*.log) is the helper's own words; every file volgate writes is checked.
      for (const file of await readdir(h.ctx.workDir, { recursive: true })) {
        if (file.endsWith(".log")) continue;
        const text = await readFile(join(h.ctx.workDir, file), "utf8").catch(() => "");
        expect(secretsIn(text, secrets), `work file ${file}`).toEqual([]);
      }
    };

    beforeAll(async () => {
      s = await makeSubject();
      b = s.backend;
      h = s.harness;
    });
    afterAll(async () => {
      await s?.close();
    });

    describe("options", () => {
      /** What the refusal of an unknown option lists as allowed. */
      const allowedOptions = () => {
        const [option, value] = s.unknownOption;
        const { message } = refusal(() => parse({ ...s.volume, [option]: value }));
        return message.slice(message.indexOf("allowed: ") + "allowed: ".length).split(", ");
      };

      it("allows every option its volumes use, and its secret options among them", () => {
        const allowed = allowedOptions();
        const used = [s.volume, s.sameConnection, ...Object.values(s.otherConnections), ...s.secrets.volumes];
        for (const o of used) for (const k of Object.keys(o)) expect(allowed).toContain(k);
        for (const k of b.secretOptions) expect(allowed).toContain(k);
      });

      it("refuses an unknown option, naming it and listing every allowed option", () => {
        const [option, value] = s.unknownOption;
        const err = refusal(() => parse({ ...s.volume, [option]: value }));
        expect(err.message).toContain(`"${option}"`);
        const allowed = allowedOptions();
        expect(allowed).toEqual([...new Set(allowed)].sort());
        // The list is true: every option on it passes the allow-list (its value may still be refused).
        for (const k of allowed) {
          const said = (() => {
            try {
              parse({ ...s.volume, [k]: "x" });
              return "";
            } catch (err) {
              return (err as Error).message;
            }
          })();
          expect(said, k).not.toMatch(/not allowed for backend/);
        }
      });

      it("refuses dangerous options, naming them and what is allowed", () => {
        expect(s.dangerousOptions.length).toBeGreaterThan(0);
        for (const [option, value] of s.dangerousOptions) {
          const err = refusal(() => parse({ ...s.volume, [option]: value }));
          expect(err.message, option).toContain(option);
          expect(err.message, option).toMatch(/allowed/);
        }
        expect(h.calls).toEqual([]);
      });

      it("reads each alias as the canonical options: same spec, same connection", (t) => {
        if (s.aliases.length === 0) t.skip();
        for (const { input, canonical } of s.aliases) {
          expect(input).not.toEqual(canonical);
          expect(parse(input), JSON.stringify(input)).toEqual(parse(canonical));
          expect(key(input)).toBe(key(canonical));
        }
      });

      it("parses purely: same options in any order, same result; input untouched; nothing run or logged", () => {
        const calls = h.calls.length;
        const logs = h.logs.length;
        for (const o of [s.volume, s.sameConnection, ...s.secrets.volumes]) {
          const frozen = Object.freeze({ ...o });
          const first = parse(frozen);
          const reordered = parse(Object.fromEntries(Object.entries(o).reverse()));
          expect(reordered).toEqual(first);
          expect(parse(frozen)).toEqual(first);
          expect(frozen).toEqual(o);
          expect(b.connectionKey(reordered)).toBe(b.connectionKey(first));
          expect(b.describe(reordered)).toBe(b.describe(first));
        }
        const [option, value] = s.unknownOption;
        const bad = { ...s.volume, [option]: value };
        expect(refusal(() => parse(bad)).message).toBe(refusal(() => parse(bad)).message);
        expect(h.calls.length).toBe(calls);
        expect(h.logs.length).toBe(logs);
      });
    });

    describe("connection keys and descriptions", () => {
      it("shares a connection between two volumes on one session", () => {
        expect(parse(s.sameConnection)).not.toEqual(parse(s.volume));
        expect(key(s.sameConnection)).toBe(key(s.volume));
      });

      it("separates volumes whose identity, endpoint or session options differ", () => {
        const others = Object.entries(s.otherConnections);
        expect(others.length).toBeGreaterThan(0);
        const keys = new Map([["volume", key(s.volume)]]);
        for (const [what, o] of others) {
          const k = key(o);
          expect(
            [...keys].filter(([, other]) => other === k).map(([n]) => n),
            what,
          ).toEqual([]);
          keys.set(what, k);
        }
      });

      it("never puts a secret in a connection key or a description", (t) => {
        if (s.secrets.values.length === 0) t.skip();
        for (const o of [s.volume, ...s.secrets.volumes]) {
          const spec = parse(o);
          expect(secretsIn(b.connectionKey(spec), s.secrets.values)).toEqual([]);
          expect(b.describe(spec)).not.toBe("");
          expect(secretsIn(b.describe(spec), s.secrets.values)).toEqual([]);
        }
      });
    });

    describe("secrets", () => {
      it("keeps secrets out of argv, command lines, logs and work files while mounted", async (t) => {
        if (s.secrets.volumes.length === 0) t.skip();
        const targets: string[] = [];
        for (const o of s.secrets.volumes) targets.push(await mountNew(o));
        await expectNoSecretsAnywhere();
        for (const target of targets) {
          await unmountPath(h.ctx, target);
          await expectNothingAt(target);
        }
        await expectNoSecretsAnywhere();
      });

      it("keeps secrets out of the errors of a failed mount, and out of refusals", async (t) => {
        const failing = s.secrets.failing;
        if (failing === undefined) return t.skip();
        const target = await h.newTarget();
        const err = await failure(b.mount(parse(failing), targetAt(target), h.ctx, deadline()));
        expect(secretsIn(err.message, s.secrets.values)).toEqual([]);
        await expectNothingAt(target);
        for (const o of s.secrets.volumes) {
          const [option, value] = s.unknownOption;
          const refused = refusal(() => parse({ ...o, [option]: value }));
          expect(secretsIn(refused.message, s.secrets.values)).toEqual([]);
        }
        await expectNoSecretsAnywhere();
      });

      it("preflight resolves the volume's directory, mounts nothing, and its errors carry no secret", async (t) => {
        const preflight = s.preflight;
        if (preflight === undefined) return t.skip();
        const before = (await h.mounts()).length;
        expect(await b.preflight(parse(preflight.volume), h.ctx, deadline())).toBe(preflight.directory);
        expect((await h.mounts()).length).toBe(before);
        if (s.secrets.failing !== undefined) {
          const err = await failure(b.preflight(parse(s.secrets.failing), h.ctx, deadline()));
          expect(secretsIn(err.message, s.secrets.values)).toEqual([]);
        }
        await expectNoSecretsAnywhere();
      });
    });

    describe("mount and unmount", () => {
      it("mounts one live nosuid,nodev connection; unmount is idempotent; the target mounts again", async () => {
        const target = await mountNew(s.volume);
        await unmountPath(h.ctx, target);
        await expectNothingAt(target);
        await unmountPath(h.ctx, target);
        await expectNothingAt(target);
        await remountAndClean(target);
      });

      it("a mount on a live target leaves that mount alone: refused or a no-op", async () => {
        const target = await mountNew(s.volume);
        const second = await b.mount(parse(s.volume), targetAt(target), h.ctx, deadline()).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (second !== undefined) {
          expect(second).toBeInstanceOf(VolgateError);
          expect((second as VolgateError).message).toContain(target);
        }
        await sleep(100); // a second helper would have mounted (or died) by now
        await expectMounted(target);
        await unmountPath(h.ctx, target);
        await expectNothingAt(target);
      });

      it("leaves nothing after a failed mount, and unmountPath after it succeeds", async () => {
        const target = await h.newTarget();
        const err = await failure(b.mount(parse(s.failing), targetAt(target), h.ctx, deadline()));
        expect(["backend", "invalid", "timeout"]).toContain(err.kind);
        await expectNothingAt(target);
        await unmountPath(h.ctx, target);
        await expectNothingAt(target);
      });

      it("sees a dead helper as stale; unmountPath cleans it and the connection mounts again", async () => {
        const target = await mountNew(s.volume);
        await h.killHelper(target);
        expect(await eventually(async () => (await h.ctx.mounts.probe(target)) === "stale")).toBe(true);
        await unmountPath(h.ctx, target);
        await expectNothingAt(target);
        await remountAndClean(target);
      });
    });
  });
}
