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

  it("a request that is not HTTP gets an Err in the plugin's media type, then the connection closes", async () => {
    const cases: Array<[string, RegExp, string]> = [
      [
        "FOO / HTTP/1.1\r\nHost: p\r\n\r\n",
        /^HTTP\/1\.1 400 /,
        "malformed HTTP request (HPE_INVALID_METHOD)",
      ],
      [
        `POST / HTTP/1.1\r\nX: ${"h".repeat(20_000)}\r\n\r\n`,
        /^HTTP\/1\.1 431 /,
        "the request headers are too large",
      ],
      [
        "POST /VolumeDriver.Get HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        /^HTTP\/1\.1 400 /,
        "malformed HTTP request (HPE_UNEXPECTED_CONTENT_LENGTH)",
      ],
    ];
    // A chunked body that breaks the framing of a request already routed: Node answers it (a bare
    // 400) before the error reaches us, and a second answer would corrupt the client's connection.
    for (const path of ["/VolumeDriver.Get", "/VolumeDriver.Create"]) {
      const text = await exchange(
        s.socket,
        `POST ${path} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
      );
      expect(text.match(/HTTP\/1\.1 /g), text).toHaveLength(1);
      expect(text).toMatch(/^HTTP\/1\.1 400 /);
    }
    for (const [bytes, status, err] of cases) {
      const text = await exchange(s.socket, bytes);
      expect(text, bytes.slice(0, 40)).toMatch(status);
      expect(text).toContain("Content-Type: application/vnd.docker.plugins.v1.2+json; charset=utf-8");
      expect(text).toContain("Connection: close");
      expect(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4))).toEqual({ Err: err });
    }
  });

  it("what a request's path and Name put in a log line or an Err is cut and has no control characters", async () => {
    const name = `n\n${"x".repeat(150_000)}`;
    await s.call("/VolumeDriver.Create", { Name: name, Opts: {} });
    await s.call("/VolumeDriver.Get", { Name: { deep: ["a"] } });
    await s.call("/VolumeDriver.Remove", { Name: "no\nsuch" });
    await s.call("/VolumeDriver.List", { Name: "y".repeat(200_000) });
    const unknown = await s.call(`/${"p".repeat(8000)}`, {});
    await until(() => s.logs.length >= 4);
    const lines = s.logs.filter((l) => l.msg === "failed" || l.msg === "ok");
    expect(lines.map((l) => [l.op, l.volume])).toEqual([
      ["/VolumeDriver.Create", `n?${"x".repeat(98)}... (150002 characters)`],
      ["/VolumeDriver.Get", "(object)"],
      ["Remove", "no?such"],
      ["List", `${"y".repeat(100)}... (200000 characters)`],
    ]);
    expect(unknown.json).toEqual({ Err: `unknown endpoint POST /${"p".repeat(99)}... (8001 characters)` });
  });
});
