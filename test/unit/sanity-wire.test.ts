/** SANITY.md group A: the wire, over a real unix socket, requests shaped like dockerd's. */
import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ENDPOINTS } from "../../src/protocol.ts";
import { create, type Served, serve } from "../support/served.ts";

let s: Served;
beforeEach(async () => {
  s = await serve();
});
afterEach(async () => {
  await s.checkInvariants();
  await s.close();
});

describe("wire", () => {
  it("answers every endpoint with 200 and a JSON object, never 415", async () => {
    await s.call("/VolumeDriver.Create", create("w1"));
    const bodies: Record<string, unknown> = {
      "/Plugin.Activate": undefined,
      "/VolumeDriver.Create": create("w1"),
      "/VolumeDriver.Mount": { Name: "w1", ID: "c1" },
      "/VolumeDriver.Path": { Name: "w1" },
      "/VolumeDriver.Unmount": { Name: "w1", ID: "c1" },
      "/VolumeDriver.Get": { Name: "w1" },
      "/VolumeDriver.List": {},
      "/VolumeDriver.Capabilities": undefined,
      "/VolumeDriver.Remove": { Name: "w1" },
    };
    expect(Object.keys(bodies).sort()).toEqual([...ENDPOINTS].sort());
    for (const url of Object.keys(bodies)) {
      const answer = await s.call(url, bodies[url]);
      expect(answer.status, `${url}: ${answer.text}`).toBe(200);
      expect(typeof answer.json).toBe("object");
      expect(answer.json).not.toHaveProperty("Err");
    }
  });

  it("activates as a VolumeDriver with an empty body", async () => {
    const answer = await s.call("/Plugin.Activate");
    expect(answer.json).toEqual({ Implements: ["VolumeDriver"] });
  });

  it("reports global scope", async () => {
    expect((await s.call("/VolumeDriver.Capabilities")).json).toEqual({ Capabilities: { Scope: "global" } });
  });

  it("answers Create with {} (an empty body is EOF in dockerd)", async () => {
    const answer = await s.call("/VolumeDriver.Create", create("w2"));
    expect(answer.text).toBe("{}");
  });

  it.each([
    ["malformed JSON", "{not json", /not valid JSON/],
    ["an empty body (a drained retry)", "", /no volume Name/],
    ["a JSON array", "[1]\n", /must be a JSON object/],
    ["a non-string Name", '{"Name": 5}\n', /no volume Name/],
    [
      "a non-string option",
      '{"Name":"x","Opts":{"backend":"fake","server":1}}\n',
      /option server must be a string/,
    ],
    ["Opts as a string", '{"Name":"x","Opts":"a=b"}\n', /Opts must be an object/],
  ])("rejects %s with 500 + Err and changes nothing", async (_what, raw, message) => {
    const answer = await s.call("/VolumeDriver.Create", undefined, { raw });
    expect(answer.status).toBe(500);
    expect(answer.json.Err).toMatch(message);
    expect(s.state.size).toBe(0);
  });

  it.each([null, undefined])("accepts Opts %s for an error about the missing backend", async (opts) => {
    const answer = await s.call(
      "/VolumeDriver.Create",
      opts === null ? { Name: "a", Opts: null } : { Name: "a" },
    );
    expect(answer.status).toBe(500);
    expect(answer.json.Err).toMatch(/no backend given: pass -o backend=/);
  });

  it("gives CreatedAt as RFC 3339", async () => {
    await s.call("/VolumeDriver.Create", create("w3"));
    const { Volume } = (await s.call("/VolumeDriver.Get", { Name: "w3" })).json;
    expect(Volume.CreatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const { Volumes } = (await s.call("/VolumeDriver.List", {})).json;
    expect(Volumes[0].CreatedAt).toBe(Volume.CreatedAt);
  });

  it("answers an unknown route with 404 + Err", async () => {
    const answer = await s.call("/VolumeDriver.Nope", {});
    expect(answer.status).toBe(404);
    expect(answer.json.Err).toMatch(/unknown endpoint/);
  });

  it("answers a wrong method with 405 + Err", async () => {
    const answer = await s.call("/VolumeDriver.List", undefined, { method: "GET" });
    expect(answer.status).toBe(405);
    expect(answer.json.Err).toMatch(/use POST/);
  });

  it("answers an oversize body with 413 + Err", async () => {
    const raw = JSON.stringify({ Name: "big", Opts: { x: "y".repeat(300 * 1024) } });
    const answer = await s.call("/VolumeDriver.Create", undefined, { raw });
    expect(answer.status).toBe(413);
    expect(answer.json.Err).toMatch(/too large/);
  });

  it("reads a query's body that arrives in pieces (one chunk is read without a copy)", async () => {
    await s.call("/VolumeDriver.Create", create("pieces"));
    const body = JSON.stringify({ Name: "pieces" });
    const text = await new Promise<string>((resolve, reject) => {
      const c = connect(s.socket);
      let got = "";
      c.on("data", (d) => {
        got += d;
      });
      c.on("end", () => resolve(got));
      c.on("error", reject);
      c.write(
        `POST /VolumeDriver.Get HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`,
      );
      c.write(body.slice(0, 5));
      setTimeout(() => c.write(body.slice(5, 9)), 20);
      setTimeout(() => c.end(body.slice(9)), 40);
    });
    expect(text).toMatch(/^HTTP\/1.1 200/);
    expect(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)).Volume.Name).toBe("pieces");
  });

  it("answers Capabilities fast", async () => {
    const started = performance.now();
    for (let i = 0; i < 100; i++) await s.call("/VolumeDriver.Capabilities");
    // Generous bound: this guards against I/O sneaking in, the benchmark measures the real latency.
    expect((performance.now() - started) / 100).toBeLessThan(20);
  });
});
