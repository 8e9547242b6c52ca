import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startTestServer, type TestServer } from "../support/server.ts";

// SPEC 8: a connection with a server-side destination runs its functions over each
// stored event before delivering what they made of it.

const FILES = {
  "fn/tag.js": `export default (e, ctx) => { e.tagged = ctx.connection.id; e.sourceType = ctx.source.type; };`,
  "fn/filter.js": `export default (e) => (e.event === "drop me" ? "drop" : undefined);`,
  // RetryError from the helper module; it is also a global, as in Jitsu.
  "fn/flaky.js": `import { RetryError } from "sluice/functions";
  export default (e, ctx) => {
    if (ctx.retries === 0) throw new RetryError("not yet");
    e.retries = ctx.retries;
  };`,
};

const fileCon = (id: string, functions: string[]) => ({
  id,
  source: "web",
  destination: { type: "file", path: `./out/${id}.ndjson`, maxWaitMs: 10, retryBaseMs: 20 },
  functions,
});

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    files: FILES,
    config: {
      functionRuntime: { workers: 1 },
      functions: [
        { id: "tag", file: "./fn/tag.js" },
        { id: "filter", file: "./fn/filter.js" },
        { id: "flaky", file: "./fn/flaky.js" },
      ],
      connections: [fileCon("c_tag", ["filter", "tag"]), fileCon("c_flaky", ["flaky"])],
    },
  });
  for (const event of ["keep me", "drop me", "keep me too"]) {
    const res = await s.post(
      "/v1/track",
      { event, userId: "u" },
      { "x-write-key": s.keys.browser },
    );
    expect(res.status).toBe(200);
  }
});
afterAll(() => s.cleanup());

async function lines(id: string, n: number): Promise<Record<string, unknown>[]> {
  const file = join(s.dir, "out", `${id}.ndjson`);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, "utf8").trim() : "";
    const got = text ? text.split("\n").map((l) => JSON.parse(l)) : [];
    if (got.length >= n || Date.now() > deadline) return got;
    await Bun.sleep(25);
  }
}

test("delivered events are what the chain made of them; dropped ones are not delivered", async () => {
  // The event after the dropped one arrives: the dropped one was processed before it.
  const out = await lines("c_tag", 2);
  expect(out.map((e) => e.event)).toEqual(["keep me", "keep me too"]);
  expect(out[0]).toMatchObject({ tagged: "c_tag", sourceType: "browser" });
});

test("a function throwing RetryError gets the event again later, with ctx.retries counted", async () => {
  const out = await lines("c_flaky", 3);
  expect(out.map((e) => [e.event, e.retries])).toEqual([
    ["keep me", 1],
    ["drop me", 1],
    ["keep me too", 1],
  ]);
});
