import { afterEach, describe, expect, test } from "bun:test";
import type { TestServer } from "../support/server.ts";
import { ADMIN, adminGet, startAdminServer } from "./support.ts";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

const track = (messageId: string) => ({ type: "track", event: "E", userId: "u", messageId });

describe("GET /admin/api/sources", () => {
  test("sources with key ids and types (no secrets) and this minute's counts", async () => {
    // Burst 5: one token is left for the last batch, so it is read and refused for its
    // size (a batch meeting an empty bucket is refused unread, counted as one event).
    server = await startAdminServer({ web: { rateLimit: { eventsPerSecond: 0.01, burst: 5 } } });
    const key = { "x-write-key": server.keys.server };
    await server.post("/v1/batch", { batch: [track("a"), track("b"), track("a")] }, key);
    await server.post("/v1/track", { type: "track", userId: "u" }, key);
    expect((await server.post("/v1/batch", { batch: [track("c"), track("d")] }, key)).status).toBe(
      429,
    );
    const res = await adminGet(server, "/admin/api/sources");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain("sha256:");
    const { sources } = JSON.parse(text) as {
      sources: { id: string; keys: unknown[]; minutes: Record<string, number | string>[] }[];
    };
    expect(sources.map((s) => s.id)).toEqual(["web", "other"]);
    expect(sources[0]!.keys).toEqual([
      { id: "wk_browser", type: "browser" },
      { id: "wk_server", type: "server" },
    ]);
    const minutes = sources[0]!.minutes;
    expect(minutes).toHaveLength(60);
    expect(Date.parse(minutes[59]!.minute as string)).toBeLessThanOrEqual(Date.now());
    expect(Date.now() - Date.parse(minutes[59]!.minute as string)).toBeLessThan(60_000);
    // The requests may straddle a minute's turn: count the last two.
    const sum = (k: string) => (minutes[58]![k] as number) + (minutes[59]![k] as number);
    expect(["accepted", "duplicate", "rejected", "rateLimited"].map(sum)).toEqual([2, 1, 1, 2]);
    expect(sources[1]!.minutes.every((m) => m.accepted === 0)).toBe(true);
  });
});

describe("/admin/api/connections", () => {
  const withConnection = () =>
    startAdminServer({
      config: {
        connections: [
          {
            id: "con_file",
            source: "web",
            destination: { type: "file", path: "./out/web.ndjson", maxWaitMs: 50 },
          },
          { id: "con_device", source: "web", destination: { type: "device", name: "GA" } },
        ],
      },
    });

  test("each server-side connection's state, lag and dead letters", async () => {
    server = await withConnection();
    await server.post("/v1/track", track("x"), { "x-write-key": server.keys.server });
    const res = await adminGet(server, "/admin/api/connections");
    expect(res.status).toBe(200);
    const { connections } = (await res.json()) as { connections: Record<string, unknown>[] };
    expect(connections).toHaveLength(1);
    expect(connections[0]).toMatchObject({
      id: "con_file",
      source: "web",
      destination: { type: "file" },
      state: "running",
      deadLetters: 0,
      lastError: null,
      actions: { pause: true, resume: false, redrive: true, replay: true },
    });
    const lag = connections[0]!.lag as { events: number; seconds: number };
    expect(lag.events).toBeGreaterThanOrEqual(0);
  });

  test("actions: 404 for an unknown id, 400 naming a bad field", async () => {
    server = await withConnection();
    const post = (path: string, body?: string) =>
      fetch(`${server!.url}/admin/api/connections/${path}`, {
        method: "POST",
        headers: ADMIN,
        body,
      });
    // pause, resume and redrive themselves: test/delivery/admin.test.ts.
    for (const action of ["pause", "resume", "redrive"]) {
      expect((await post(`nope/${action}`)).status).toBe(404);
    }
    const replay = await post("con_file/replay", JSON.stringify({ from: "2024-01-01T00:00:00Z" }));
    expect(replay.status).toBe(200); // what it does: test/delivery/replay.test.ts
    expect((await post("nope/replay", JSON.stringify({ from: "2024-01-01" }))).status).toBe(404);
    const cases: [string | undefined, string][] = [
      [undefined, "body"],
      ["{oops", "body"],
      ["[]", "body"],
      ["{}", "from"],
      ['{"from":"yesterday"}', "from"],
      ['{"from":"2024-01-02","to":"soon"}', "to"],
      ['{"from":"2024-01-02","to":"2024-01-01"}', "to"],
    ];
    for (const [body, parameter] of cases) {
      const res = await post("con_file/replay", body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(((await res.json()) as { parameter: string }).parameter).toBe(parameter);
    }
  });
});
