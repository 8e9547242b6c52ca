import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    config: {
      logger: { level: "info", successSampleRate: 1 },
      connections: [
        {
          id: "con_ga4",
          source: "web",
          destination: {
            type: "device",
            name: "Google Analytics 4",
            options: { measurementId: "G-XXXX" },
          },
        },
        { id: "con_other", source: "other", destination: { type: "device", name: "Other" } },
      ],
    },
  });
});
afterAll(() => s.cleanup());

test("GET /v1/config lists the source's device-mode destinations", async () => {
  const res = await fetch(`${s.url}/v1/config?writeKey=${encodeURIComponent(s.keys.browser)}`, {
    headers: { origin: "https://shop.example" },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("access-control-allow-origin")).toBe("https://shop.example");
  expect(res.headers.get("x-ratelimit-limit")).not.toBeNull();
  expect(await res.json()).toEqual({
    sourceId: "web",
    destinations: [
      {
        id: "con_ga4",
        type: "device",
        name: "Google Analytics 4",
        options: { measurementId: "G-XXXX" },
      },
    ],
  });
  const other = await fetch(`${s.url}/v1/config`, { headers: { "x-write-key": s.keys.other } });
  const body = (await other.json()) as { destinations: { id: string }[] };
  expect(body.destinations.map((d) => d.id)).toEqual(["con_other"]);
});

test("GET /v1/config without a valid key is 401", async () => {
  expect((await fetch(`${s.url}/v1/config`)).status).toBe(401);
  const bad = await fetch(`${s.url}/v1/config?writeKey=nope`);
  expect(bad.status).toBe(401);
  expect(await bad.json()).toEqual({ error: "missing or unknown write key" });
});

test("Segment's settings shape points analytics.js back at sluice", async () => {
  const res = await fetch(`${s.url}/v1/projects/${encodeURIComponent(s.keys.browser)}/settings`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { integrations: Record<string, unknown> };
  // analytics.js sends its events keyed with `apiKey`: the key as given in the path.
  expect(body.integrations["Segment.io"]).toMatchObject({
    apiKey: s.keys.browser,
    apiHost: `127.0.0.1:${s.port}/v1`,
    protocol: "http",
  });
  expect(body.integrations["Google Analytics 4"]).toEqual({ measurementId: "G-XXXX" });
  expect(body.integrations.Other).toBeUndefined();
});

test("an unknown key in the settings path is 401 and never logged", async () => {
  const secret = "wk_fake:never-log-this-secret";
  const res = await fetch(`${s.url}/v1/projects/${encodeURIComponent(secret)}/settings`);
  expect(res.status).toBe(401);
  expect(readFileSync(s.logFile, "utf8")).not.toContain("never-log-this-secret");
  expect(readFileSync(s.logFile, "utf8")).toContain("/v1/projects/:writeKey/settings");
});

test("a write key in a near-miss project path never reaches the log either", async () => {
  const secret = s.keys.browser.split(":")[1]!;
  const key = encodeURIComponent(s.keys.browser);
  for (const path of [
    `/v1/projects/${key}/settings/`,
    `/v1/projects/${key}`,
    `/v1/projects/${key}/other`,
    `/v1/projects/${key}/settings?x=1`,
  ]) {
    await fetch(`${s.url}${path}`);
  }
  // Successful requests are logged too (every one, with successSampleRate: 1).
  const log = readFileSync(s.logFile, "utf8");
  expect(log).not.toContain(secret);
  expect(log).not.toContain(encodeURIComponent(secret));
});
