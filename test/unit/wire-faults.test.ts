/**
 * Requests dockerd never sends, over a real unix socket: the client's mistakes (a header that is
 * no media type, a body cut off by a hang-up) are answered and logged as the client's, not as
 * volgate's internal errors. Found by the fuzz fault (test/faults/fuzz.test.ts).
 */
import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Served, serve } from "../support/served.ts";

let s: Served;
beforeEach(async () => {
  s = await serve();
});
afterEach(async () => {
  await s.close();
});

/** Write `bytes` on a new connection; resolves with all it got back once the server closed it or `ms` passed. */
function exchange(socket: string, bytes: string, ms = 2000, hangUp = false): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(socket);
    let got = "";
    const done = () => {
      clearTimeout(timer);
      c.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    c.on("data", (d: Buffer) => {
      got += d.toString();
    });
    c.on("error", () => {});
    c.on("close", done);
    c.write(bytes, () => {
      if (hangUp) c.destroy();
    });
  });
}

const failures = () => s.logs.filter((l) => l.msg === "failed");
const until = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
};

describe("requests no dockerd sends", () => {
  it("a Content-Type that is no media type: 415 and an Err saying so, logged as the client's mistake", async () => {
    const body = '{"Name":"v"}';
    const text = await exchange(
      s.socket,
      `POST /VolumeDriver.Create HTTP/1.1\r\nHost: p\r\nContent-Type: a b\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      500,
    );
    expect(text).toMatch(/^HTTP\/1\.1 415 /);
    expect(text).toContain(
      '{"Err":"the Content-Type header is not a media type: send JSON (dockerd sends none)"}',
    );
    expect(failures()).toEqual([expect.objectContaining({ level: 40, kind: "invalid" })]);
  });

  it("a body too large is the client's mistake too (413, a warning)", async () => {
    const raw = JSON.stringify({ Name: "big", Opts: { x: "y".repeat(300 * 1024) } });
    const answer = await s.call("/VolumeDriver.Create", undefined, { raw });
    expect(answer.status).toBe(413);
    expect(failures()).toEqual([expect.objectContaining({ level: 40, kind: "invalid" })]);
  });

  it("a client that hangs up in the middle of its body is a warning, not an internal error", async () => {
    await exchange(
      s.socket,
      "POST /VolumeDriver.Create HTTP/1.1\r\nHost: p\r\nContent-Length: 100\r\n\r\n{",
      500,
      true,
    );
    await until(() => failures().length > 0);
    expect(failures()).toEqual([
      expect.objectContaining({
        level: 40,
        kind: "invalid",
        err: "the client hung up before the whole request arrived",
      }),
    ]);
  });
});
