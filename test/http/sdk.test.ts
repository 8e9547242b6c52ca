import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, parseConfig } from "../../src/config/load.ts";
import { parsePrometheus, sampleValue } from "../ops/prometheus.ts";
import { basic, startTestServer, type TestServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import { expectError, newId, storedWithId } from "./table.ts";

// SPEC 3's browser-SDK rows, as the SDKs send them (test/browser/sdk-*.test.ts drives
// the SDKs themselves in Chromium): Segment analytics.js 2.0's short paths and
// settings, RudderStack v3's /sourceConfig and beacon, Jitsu's p.js.

const ORIGIN = "https://shop.example";
const P_JS = join(import.meta.dir, "..", "..", "node_modules", "@jitsu", "js", "dist", "web");

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    web: { allowedOrigins: [ORIGIN] },
    config: {
      connections: [
        {
          id: "con_ga4",
          source: "web",
          destination: { type: "device", name: "GA4", options: { measurementId: "G-1" } },
        },
        { id: "con_other", source: "other", destination: { type: "device", name: "Other" } },
      ],
    },
  });
});
afterAll(() => s.cleanup());

const q = (key: string) => encodeURIComponent(key);

describe("Segment analytics.js 2.0", () => {
  test("a short-path post as analytics.js sends it is stored once, without the write key", async () => {
    const id = newId("ajs t");
    const body = JSON.stringify({
      type: "track",
      event: "Clicked",
      properties: { plan: "pro" },
      anonymousId: "anon-ajs",
      messageId: id,
      writeKey: s.keys.browser,
      sentAt: new Date().toISOString(),
      _metadata: { bundled: ["Segment.io"], unbundled: [] },
    });
    const headers = { "content-type": "text/plain", origin: ORIGIN, ...basic(s.keys.browser) };
    for (let i = 0; i < 2; i++) {
      const res = await s.post("/v1/t", body, headers);
      expect({ status: res.status, body: await res.json() }).toEqual({
        status: 200,
        body: { ok: true, success: true },
      });
      expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    }
    const stored = await storedWithId(s, id);
    expect(stored).toMatchObject([
      { type: "track", event: "Clicked", properties: { plan: "pro" } },
    ]);
    expect(JSON.stringify(stored)).not.toContain(s.keys.browser);
  });

  test("/v1/m (the SDK's metrics) is 200 and stores nothing, with or without a key", async () => {
    const id = newId("ajs m");
    const res = await s.post("/v1/m", JSON.stringify({ series: [{ messageId: id }] }), {
      "content-type": "text/plain",
    });
    expect({ status: res.status, body: await res.json() }).toEqual({
      status: 200,
      body: { ok: true, success: true },
    });
    expect(await storedWithId(s, id)).toHaveLength(0);
  });

  test("the preflight analytics.js makes (authorization, content-type) is allowed", async () => {
    for (const path of ["/v1/t", "/v1/b", "/v1/m"]) {
      const res = await fetch(`${s.url}${path}`, {
        method: "OPTIONS",
        headers: {
          origin: ORIGIN,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type",
        },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
      expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
    }
  });

  test("settings carry the key as given and this host's /v1 as apiHost", async () => {
    const res = await fetch(`${s.url}/v1/projects/${q(s.keys.browser)}/settings`, {
      headers: { origin: ORIGIN },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const body = (await res.json()) as { integrations: Record<string, unknown> };
    expect(body.integrations["Segment.io"]).toMatchObject({
      apiKey: s.keys.browser,
      apiHost: `127.0.0.1:${s.port}/v1`,
      protocol: "http",
    });
    expect(body.integrations.GA4).toEqual({ measurementId: "G-1" });
    expect(body.integrations.Other).toBeUndefined();
  });

  test("forwarded host and scheme are ignored unless the proxy is trusted", async () => {
    const res = await fetch(`${s.url}/v1/projects/${q(s.keys.browser)}/settings`, {
      headers: { "x-forwarded-host": "evil.example", "x-forwarded-proto": "https" },
    });
    const body = (await res.json()) as { integrations: Record<string, { apiHost: string }> };
    expect(body.integrations["Segment.io"]!.apiHost).toBe(`127.0.0.1:${s.port}/v1`);
  });

  test("/v1/b takes analytics.js' batch (key in Basic auth and body, sentAt once)", async () => {
    const ids = [newId("ajs b1"), newId("ajs b2")];
    const res = await s.post(
      "/v1/b",
      JSON.stringify({
        writeKey: s.keys.browser,
        sentAt: new Date().toISOString(),
        batch: [
          { type: "page", name: "Home", anonymousId: "a", messageId: ids[0] },
          { type: "identify", userId: "u1", traits: { email: "a@b.c" }, messageId: ids[1] },
        ],
      }),
      { "content-type": "text/plain", ...basic(s.keys.browser) },
    );
    expect(await res.json()).toMatchObject({ accepted: 2, rejected: [] });
    expect(await storedWithId(s, ids[0]!)).toMatchObject([{ type: "page", name: "Home" }]);
    expect(await storedWithId(s, ids[1]!)).toMatchObject([
      { type: "identify", traits: { email: "a@b.c" } },
    ]);
  });
});

describe("server.publicUrl", () => {
  test("sets apiHost and protocol, path prefix included, whatever the request says", async () => {
    const behind = await startTestServer({
      config: { server: { publicUrl: "https://collect.example.com/sluice/" } },
    });
    try {
      const res = await fetch(`${behind.url}/v1/projects/${q(behind.keys.browser)}/settings`);
      const body = (await res.json()) as {
        integrations: Record<string, unknown>;
        metrics: unknown;
      };
      expect(body.integrations["Segment.io"]).toMatchObject({
        apiKey: behind.keys.browser,
        apiHost: "collect.example.com/sluice/v1",
        protocol: "https",
      });
      expect(body.metrics).toMatchObject({ host: "collect.example.com/sluice/v1" });
    } finally {
      await behind.cleanup();
    }
  });

  test("a trusted proxy's X-Forwarded-Host/Proto are used when publicUrl is not set", async () => {
    const proxied = await startTestServer({ config: { server: { trustProxy: true } } });
    try {
      const res = await fetch(`${proxied.url}/v1/projects/${q(proxied.keys.browser)}/settings`, {
        headers: { "x-forwarded-host": "edge.example", "x-forwarded-proto": "https" },
      });
      const body = (await res.json()) as { integrations: Record<string, unknown> };
      expect(body.integrations["Segment.io"]).toMatchObject({
        apiHost: "edge.example/v1",
        protocol: "https",
      });
    } finally {
      await proxied.cleanup();
    }
  });

  test("a publicUrl that is not an http(s) URL is refused at start, the field named", () => {
    for (const publicUrl of ["collect.example.com", "ftp://x.example", "https://x.example/?a=1"]) {
      const raw = { server: { publicUrl }, sources: [] };
      let problems: { path: string }[] = [];
      try {
        parseConfig(raw, "/tmp/sluice.yaml", {});
      } catch (err) {
        if (err instanceof ConfigError) problems = err.problems;
      }
      expect(problems.map((p) => p.path)).toContain("server.publicUrl");
    }
  });
});

describe("RudderStack JS SDK v3", () => {
  /** The request the SDK makes at load, trailing slash and all. */
  const sourceConfigPath = (key: string) =>
    `/sourceConfig/?p=npm&v=3.34.1&build=modern&writeKey=${q(key)}&lockIntegrationsVersion=true&lockPluginsVersion=true`;

  test("GET /sourceConfig/ as the SDK asks (Basic auth and query) answers the source", async () => {
    const res = await fetch(`${s.url}${sourceConfigPath(s.keys.browser)}`, {
      headers: { ...basic(s.keys.browser), origin: ORIGIN },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(res.headers.get("x-ratelimit-limit")).not.toBeNull();
    const body = await res.json();
    expect(body).toEqual({
      source: {
        id: "web",
        name: "Website",
        enabled: true,
        workspaceId: "sluice",
        config: {},
        destinations: [
          {
            id: "con_ga4",
            name: "GA4",
            enabled: true,
            config: { measurementId: "G-1" },
            destinationDefinitionId: "GA4",
            destinationDefinition: { name: "GA4", displayName: "GA4" },
            shouldApplyDeviceModeTransformation: false,
            propagateEventsUntransformedOnError: false,
          },
        ],
      },
    });
    expect(JSON.stringify(body)).not.toContain(s.keys.browser);
  });

  test("the key alone in Basic auth, or alone in the query, is enough; no slash too", async () => {
    const byHeader = await fetch(`${s.url}/sourceConfig`, { headers: basic(s.keys.other) });
    expect(((await byHeader.json()) as { source: { id: string } }).source.id).toBe("other");
    const byQuery = await fetch(`${s.url}/sourceConfig?writeKey=${q(s.keys.server)}`);
    expect(((await byQuery.json()) as { source: { id: string } }).source.id).toBe("web");
  });

  test("a missing or unknown key is 401 with an error body", async () => {
    await expectError(await fetch(`${s.url}/sourceConfig/`), 401);
    await expectError(await fetch(`${s.url}${sourceConfigPath("wk_x:nope")}`), 401);
    await expectError(
      await fetch(`${s.url}/sourceConfig/?writeKey=x`, { headers: basic("wk_browser:wrong") }),
      401,
    );
  });

  test("the preflight of its GET (Authorization, AnonymousId headers) is allowed", async () => {
    const res = await fetch(`${s.url}/sourceConfig/`, {
      method: "OPTIONS",
      headers: {
        origin: ORIGIN,
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization,anonymousid",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-methods")).toContain("GET");
  });

  test("a beacon (text/plain, key unencoded in the query) is stored once", async () => {
    const id = newId("beacon");
    const body = JSON.stringify({
      batch: [
        {
          type: "track",
          event: "Beaconed",
          properties: { n: 1 },
          anonymousId: "anon-rs",
          userId: "",
          messageId: id,
          channel: "web",
        },
      ],
      sentAt: new Date().toISOString(),
    });
    for (let i = 0; i < 2; i++) {
      const res = await s.post(`/beacon/v1/batch?writeKey=${s.keys.browser}`, body, {
        "content-type": "text/plain;charset=UTF-8",
        origin: ORIGIN,
      });
      expect(res.status).toBe(200);
    }
    expect(await storedWithId(s, id)).toMatchObject([
      { type: "track", event: "Beaconed", properties: { n: 1 }, anonymousId: "anon-rs" },
    ]);
  });

  test("a beacon with a bad body is 400, logged as a warning and counted", async () => {
    const before = await beaconCount("400");
    const res = await s.post(`/beacon/v1/batch?writeKey=${s.keys.browser}`, "{not json", {
      "content-type": "text/plain",
    });
    await expectError(res, 400);
    const requestId = res.headers.get("x-request-id");
    const lines = readFileSync(s.logFile, "utf8")
      .split("\n")
      .filter((l) => l.includes(`"${requestId}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => String(l.msg).startsWith("beacon refused"))).toMatchObject({
      level: 40,
      status: 400,
      reason: "malformed JSON",
    });
    // Metrics are recorded just after the response is sent: wait for it.
    await waitFor(async () => (await beaconCount("400")) >= before + 1, { intervalMs: 10 });
    expect(await beaconCount("400")).toBe(before + 1);
  });
});

async function beaconCount(status: string): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  return sampleValue(parsePrometheus(text), "sluice_http_requests_total", {
    method: "POST",
    route: "/beacon/v1/batch",
    status,
  });
}

describe("Jitsu p.js", () => {
  const original = readFileSync(join(P_JS, "p.js.txt"), "utf8");

  test("is the @jitsu/js package's own build, served as cacheable JavaScript", async () => {
    const res = await fetch(`${s.url}/p.js`, { headers: { "accept-encoding": "identity" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("public, max-age=3600");
    expect(res.headers.get("etag")).toMatch(/^"[0-9a-f]{32}"$/);
    expect(res.headers.get("content-encoding")).toBeNull();
    expect(await res.text()).toBe(original);
  });

  test("is gzipped for a client that takes gzip, and 304 on a matching ETag", async () => {
    const res = await fetch(`${s.url}/p.js`, {
      headers: { "accept-encoding": "gzip, deflate, br" },
      decompress: false,
    });
    expect(res.headers.get("content-encoding")).toBe("gzip");
    const raw = new Uint8Array(await res.arrayBuffer());
    expect(raw.byteLength).toBeLessThan(original.length / 2);
    expect(new TextDecoder().decode(Bun.gunzipSync(raw))).toBe(original);
    const etag = res.headers.get("etag")!;
    const again = await fetch(`${s.url}/p.js`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
  });

  test("a page's <script> gets it without Origin or key", async () => {
    const res = await fetch(`${s.url}/p.js`, { headers: { "sec-fetch-dest": "script" } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("data-");
  });
});

describe("unknown paths", () => {
  for (const path of ["/v1/x", "/v1/mm", "/beacon/v1/track", "/sourceConfigs", "/p.json"]) {
    test(`${path} is 404 with an error body`, async () => {
      const get = await fetch(`${s.url}${path}`);
      await expectError(get, 404);
      const post = await s.post(path, { type: "track", event: "x" }, basic(s.keys.browser));
      await expectError(post, 404);
    });
  }
});
