import { afterEach, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { makeTestConfig, type SpawnedServer, spawnServer } from "../support/server.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { caughtUp, until } from "./support.ts";

// Issue 14: SIGHUP reloads the connections too (the delivery chain used to keep the
// start-up config): added ones start, removed ones stop, changed ones restart, and
// the log says what changed.

let server: SpawnedServer | undefined;
const receivers: Receiver[] = [];
let dir: string | undefined;
afterEach(async () => {
  server?.proc.kill("SIGTERM");
  await server?.proc.exited;
  for (const r of receivers.splice(0)) r.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  server = undefined;
  dir = undefined;
});

const hook = (id: string, url: string, extra: Record<string, unknown> = {}) => ({
  id,
  source: "web",
  destination: { type: "webhook", url, maxWaitMs: 10 },
  ...extra,
});

test("SIGHUP adds, removes and re-points connections, and logs what changed", async () => {
  const [gone, kept, moved, added, fn] = Array.from({ length: 5 }, () => startReceiver());
  receivers.push(gone!, kept!, moved!, added!, fn!);
  const made = makeTestConfig({
    files: { "fn/tag.js": "export default (e, ctx) => { e.tag = ctx.connection.options.tag; };" },
  });
  dir = made.dir;
  const write = (connections: unknown[], options = { tag: "one" }) =>
    writeFileSync(
      made.configFile,
      JSON.stringify({
        ...made.config,
        functions: [{ id: "tag", file: "./fn/tag.js" }],
        connections: [...connections, hook("con_fn", fn!.url, { functions: ["tag"], options })],
      }),
    );
  write([hook("con_gone", gone!.url), hook("con_kept", kept!.url), hook("con_moved", moved!.url)]);
  server = await spawnServer(made.configFile);
  const post = (messageId: string) =>
    fetch(`${server!.url}/v1/track`, {
      method: "POST",
      headers: { "x-write-key": made.keys.server },
      body: JSON.stringify({ event: "e", userId: "u", messageId }),
    });
  expect((await post("before")).status).toBe(200);
  for (const r of [gone, kept, moved, fn]) await r!.waitFor(1);
  // Confirmed (offsets saved), so a restarted connection does not send "before" again.
  for (const id of ["con_gone", "con_kept", "con_moved", "con_fn"]) await caughtUp(server.url, id);

  write(
    [hook("con_kept", kept!.url), hook("con_moved", added!.url), hook("con_added", added!.url)],
    { tag: "two" },
  );
  server.proc.kill("SIGHUP");
  const reloaded = await until(
    () =>
      server!
        .output()
        .split("\n")
        .find((l) => l.includes('"msg":"config reloaded"')),
    10_000,
    "the reload line",
  );
  const line = JSON.parse(reloaded);
  expect(line.changes).toEqual(
    expect.arrayContaining([
      "connection con_moved: destination.url changed",
      "connection con_added added (webhook)",
      "connection con_gone removed",
    ]),
  );
  expect(line.changes.join(" ")).not.toContain(added!.url); // names, never values
  // A connection's function options reload too: it gets a new function host.
  expect(line.restartNeeded).toEqual([]);
  expect(line.changes).toEqual(
    expect.arrayContaining([
      "connection con_fn: options changed",
      "connection con_fn: function host restarted",
    ]),
  );
  // Calls go to the old host until the new one has loaded its functions.
  await until(
    () =>
      server!
        .output()
        .split("\n")
        .filter((l) => l.includes('"connectionId":"con_fn"') && l.includes("function host ready"))
        .length >= 2,
    20_000,
    "the new function host",
  );

  expect((await post("after")).status).toBe(200);
  await kept!.waitFor(2);
  // con_added starts at the oldest event; con_moved goes on from its offset.
  await until(() => added!.delivered().length >= 3, 10_000, "the new receiver");
  await fn!.waitFor(2);
  const ids = (r: Receiver) => r.delivered().map((e) => e.messageId);
  expect(ids(kept!)).toEqual(["before", "after"]);
  expect(ids(gone!)).toEqual(["before"]);
  expect(ids(moved!)).toEqual(["before"]);
  expect(ids(added!).sort()).toEqual(["after", "after", "before"]);
  // The functions ran with their new options once reloaded, never with none.
  expect(fn!.delivered().map((e) => e.tag)).toEqual(["one", "two"]);
}, 60_000);
