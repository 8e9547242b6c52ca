import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";

// biome-ignore lint/suspicious/noExplicitAny: the parsed document is walked freely
type Json = Record<string, any>;

let s: TestServer;
let doc: Json;
beforeAll(async () => {
  s = await startTestServer();
  const res = await fetch(`${s.url}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("application/json");
  doc = (await res.json()) as Json;
});
afterAll(() => s.cleanup());

/** Every endpoint of SPEC 3. */
const INGEST = [
  "/api/s/{type}",
  "/api/s/s2s/{type}",
  ...["track", "identify", "page", "screen", "group", "alias"].map((t) => `/v1/${t}`),
  "/v1/batch",
  "/batch",
  ...["t", "i", "p", "s", "g", "a"].map((t) => `/v1/${t}`),
  "/v1/b",
  "/beacon/v1/batch",
];
const EXPECTED: [string, string][] = [
  ...INGEST.flatMap((p): [string, string][] => [
    ["post", p],
    ["options", p],
  ]),
  ["post", "/api/funcs/{conId}"],
  ["options", "/api/funcs/{conId}"],
  ["get", "/v1/config"],
  ["get", "/v1/projects/{writeKey}/settings"],
  ["post", "/v1/m"],
  ["options", "/v1/m"],
  ["get", "/sourceConfig"],
  ["get", "/p.js"],
  ["get", "/health"],
  ["get", "/ready"],
  ["get", "/metrics"],
  ["get", "/openapi.json"],
];
const OPEN = ["/health", "/ready", "/metrics", "/openapi.json", "/p.js"];

test("lists every public endpoint, and documents each route the app serves", () => {
  expect(doc.openapi).toBe("3.1.0");
  expect(doc.info.version).toBe("0.1.0");
  for (const [method, path] of EXPECTED) {
    expect({ path, method, op: Boolean(doc.paths[path]?.[method]) }).toEqual({
      path,
      method,
      op: true,
    });
  }
  for (const [path, ops] of Object.entries(doc.paths as Json)) {
    for (const [method, op] of Object.entries(ops as Json)) {
      // A route missing from the operation table would be marked x-undocumented.
      expect({ method, path, undocumented: op["x-undocumented"] ?? false }).toEqual({
        method,
        path,
        undocumented: false,
      });
      expect(Object.keys(op.responses).every((c) => /^[1-5]\d\d$/.test(c))).toBe(true);
      for (const param of path.matchAll(/\{(\w+)\}/g)) {
        expect(op.parameters?.some((p: Json) => p.name === param[1] && p.in === "path")).toBe(true);
      }
    }
  }
});

test("every route the app registers is in the document, documented from its declaration", () => {
  const routes = s.routes();
  expect(routes.length).toBeGreaterThan(25);
  const posts = routes.filter((r) => r.method === "POST").map((r) => r.path);
  const expected = routes.flatMap((r): [string, string][] =>
    r.method === "OPTIONS" && r.path === "/*"
      ? posts.map((p): [string, string] => ["options", p])
      : [[r.method.toLowerCase(), r.path]],
  );
  for (const [method, pattern] of expected) {
    const path = pattern.replace(/:(\w+)/g, "{$1}");
    const op = doc.paths[path]?.[method];
    expect({ method, path, listed: Boolean(op) }).toEqual({ method, path, listed: true });
    expect({ method, path, undocumented: op["x-undocumented"] ?? false }).toEqual({
      method,
      path,
      undocumented: false,
    });
    expect(typeof op.summary).toBe("string");
    // Every success (or redirect) answer is described, with its body's schema unless it has none.
    const ok = Object.entries(op.responses as Json).filter(([code]) => /^[23]/.test(code));
    expect(ok.length).toBeGreaterThan(0);
    for (const [code, answer] of ok) {
      expect({ path, code, described: typeof answer.description === "string" }).toEqual({
        path,
        code,
        described: true,
      });
    }
  }
  // And nothing else: the document lists exactly the routes served.
  const listed = Object.entries(doc.paths as Json).flatMap(([p, ops]) =>
    Object.keys(ops as Json).map((m) => `${m} ${p}`),
  );
  expect(listed.sort()).toEqual(
    expected.map(([m, p]) => `${m} ${p.replace(/:(\w+)/g, "{$1}")}`).sort(),
  );
});

test("a write-key route lists the key schemes, 401, 429 and the rate-limit headers by itself", () => {
  for (const [path, method] of [
    ["/v1/batch", "post"],
    ["/v1/config", "get"],
    ["/api/funcs/{conId}", "post"],
  ] as const) {
    const op = doc.paths[path][method];
    expect(op.responses["401"].content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/Error",
    });
    expect(op.responses["429"].headers["Retry-After"]).toBeDefined();
    expect(op.responses["200"].headers["X-RateLimit-Remaining"]).toBeDefined();
  }
  // A 503 of the error mapper says when to retry; /ready's (a probe) does not.
  expect(doc.paths["/v1/batch"].post.responses["503"].headers["Retry-After"]).toBeDefined();
  expect(doc.paths["/ready"].get.responses["503"].headers["Retry-After"]).toBeUndefined();
  // The key in the path: no scheme to send it by.
  expect(doc.paths["/v1/projects/{writeKey}/settings"].get.security).toEqual([]);
  expect(
    doc.paths["/health"].get.responses["200"].headers["X-RateLimit-Remaining"],
  ).toBeUndefined();
});

test("auth schemes: basic, bearer, X-Write-Key header and writeKey query", () => {
  expect(doc.components.securitySchemes).toMatchObject({
    basicAuth: { type: "http", scheme: "basic" },
    bearerAuth: { type: "http", scheme: "bearer" },
    writeKeyHeader: { type: "apiKey", in: "header", name: "X-Write-Key" },
    writeKeyQuery: { type: "apiKey", in: "query", name: "writeKey" },
  });
  const any = ["basicAuth", "bearerAuth", "writeKeyHeader", "writeKeyQuery"].map((n) => ({
    [n]: [],
  }));
  for (const p of [...INGEST, "/api/funcs/{conId}", "/v1/config", "/sourceConfig"]) {
    const op = doc.paths[p].post ?? doc.paths[p].get;
    expect(op.security).toEqual(any);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["200", "401", "429"]));
  }
  for (const p of OPEN) expect(doc.paths[p].get.security).toEqual([]);
});

test("status codes of the ingest endpoints, bodies from the TypeBox schemas", () => {
  const track = doc.paths["/v1/track"].post;
  expect(Object.keys(track.responses).sort()).toEqual(
    ["200", "400", "401", "403", "413", "415", "429", "500", "503"].sort(),
  );
  expect(track.requestBody.content["application/json"].schema.properties.event).toMatchObject({
    type: "string",
    maxLength: 256,
  });
  expect(doc.paths["/api/s/{type}"].post.responses["404"]).toBeDefined();
  const batch = doc.paths["/v1/batch"].post;
  expect(batch.requestBody.content["application/json"].schema).toEqual({
    $ref: "#/components/schemas/BatchBody",
  });
  expect(doc.components.schemas.BatchResult.required).toEqual(
    expect.arrayContaining(["received", "accepted", "duplicates", "rejected"]),
  );
  expect(doc.components.schemas.AnalyticsEvent.oneOf).toHaveLength(6);
  expect(doc.paths["/v1/track"].options.responses["204"]).toBeDefined();
});

test("every $ref resolves", () => {
  const refs: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k === "$ref") refs.push(x as string);
        else walk(x);
      }
    }
  };
  walk(doc);
  expect(refs.length).toBeGreaterThan(20);
  for (const ref of new Set(refs)) {
    const target = ref
      .replace(/^#\//, "")
      .split("/")
      .reduce<Json | undefined>((node, part) => node?.[part], doc);
    expect({ ref, found: target !== undefined }).toEqual({ ref, found: true });
  }
});
