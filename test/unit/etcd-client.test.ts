/** The etcd client's bound on every call: what a call that never answers, or answers late, turns into. */
import { describe, expect, it } from "vitest";
import { bounded, CALL_TIMEOUT_MS } from "../../src/catalog/etcd-client.ts";

const later = <T>(ms: number, settle: (resolve: (v: T) => void, reject: (e: Error) => void) => void) =>
  new Promise<T>((resolve, reject) => setTimeout(() => settle(resolve, reject), ms));

describe("bounded etcd calls", () => {
  it("gives up a little after the call deadline, and a later failure of that call goes nowhere", async () => {
    const started = performance.now();
    const late = later<never>(CALL_TIMEOUT_MS + 400, (_, reject) =>
      reject(new Error("14 UNAVAILABLE: late")),
    );
    await expect(bounded(late)).rejects.toThrow(/no answer within 2 s/);
    expect(performance.now() - started).toBeLessThan(CALL_TIMEOUT_MS + 400);
    await new Promise((r) => setTimeout(r, 300)); // the late failure: vitest would report it if unhandled
  });

  it("answers what the call answers, and says what gRPC means in a line", async () => {
    expect(await bounded(Promise.resolve(7))).toBe(7);
    const refused = new Error(
      "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: ",
    );
    await expect(bounded(Promise.reject(refused))).rejects.toThrow(
      /^connect ECONNREFUSED 127\.0\.0\.1:2379$/,
    );
    const deadline = new Error("4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s,LB pick: 0.001s");
    await expect(bounded(Promise.reject(deadline))).rejects.toThrow(/^no answer within 2 s$/);
    const denied = new Error("7 PERMISSION_DENIED: etcdserver: permission denied");
    await expect(bounded(Promise.reject(denied))).rejects.toThrow(
      /^7 PERMISSION_DENIED: etcdserver: permission denied$/,
    );
  });
});
