import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { generateWriteKey } from "../../src/auth/keys.ts";
import { exitCode } from "../support/process.ts";
import { makeTestConfig, type SpawnedServer, spawnServer } from "../support/server.ts";

const PLAIN = "wk_plain:plaintext-secret-for-dev";
let made: ReturnType<typeof makeTestConfig>;
let server: SpawnedServer;
let lines: Record<string, unknown>[];
/** Every response of the run: status and X-Request-Id. */
const responses: { status: number; requestId: string | null; what: string }[] = [];

beforeAll(async () => {
  made = makeTestConfig();
  const config = JSON.parse(readFileSync(made.configFile, "utf8"));
  config.logger = { level: "debug", successSampleRate: 1 };
  config.sources.push({
    id: "dev",
    rateLimit: { eventsPerSecond: 0.001, burst: 1 },
    writeKeys: [{ id: "wk_plain", type: "server", key: PLAIN }],
  });
  writeFileSync(made.configFile, JSON.stringify(config));
  server = await spawnServer(made.configFile, { SLUICE_LOG_LEVEL: "debug" });
  await sendWithEveryAuthForm();
  server.proc.kill("SIGTERM");
  expect(await exitCode(server.proc)).toBe(0);
  lines = server
    .output()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}, 20_000);
afterAll(() => rmSync(made.dir, { recursive: true, force: true }));

const b64 = (s: string) => Buffer.from(s).toString("base64");
const wrong = [generateWriteKey("wk_server"), generateWriteKey("wk_nobody"), "legacy-plain-key-x"];

async function call(what: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`${server.url}${path}`, init);
  await res.arrayBuffer();
  responses.push({ status: res.status, requestId: res.headers.get("x-request-id"), what });
}

const post = (what: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  call(what, path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

const ev = (n: number) => ({ type: "track", event: "Logged", userId: "u", messageId: `log-${n}` });

async function sendWithEveryAuthForm() {
  const { browser, server: srv } = made.keys;
  let n = 0;
  for (const key of [srv, ...wrong]) {
    await post("basic", "/v1/track", ev(n++), { authorization: `Basic ${b64(`${key}:`)}` });
    await post("basic, no colon", "/v1/page", ev(n++), { authorization: `Basic ${b64(key)}` });
    await post("bearer", "/v1/identify", ev(n++), { authorization: `Bearer ${key}` });
    await post("x-write-key", "/api/s/track", ev(n++), { "x-write-key": key });
    await post("query writeKey", `/v1/batch?writeKey=${encodeURIComponent(key)}`, {
      batch: [ev(n++), { type: "track", writeKey: key }],
    });
    await post("query writekey", `/batch?writekey=${encodeURIComponent(key)}`, {
      batch: [ev(n++)],
    });
    await post("body", "/v1/track", { ...ev(n++), writeKey: key });
    await post("batch body", "/v1/batch", { batch: [ev(n++)], writeKey: key });
    await post(
      "jitsu",
      "/api/s/s2s/event",
      { ...ev(n++), writeKey: `${key.split(":")[0]}:***` },
      { "x-write-key": key },
    );
    await call("device config", `/v1/config?writeKey=${encodeURIComponent(key)}`);
    await call("segment settings", `/v1/projects/${encodeURIComponent(key)}/settings`);
    await call("rudderstack config", `/sourceConfig/?writeKey=${encodeURIComponent(key)}`, {
      headers: { authorization: `Basic ${b64(`${key}:`)}` },
    });
    // RudderStack's beacon puts the key in the query unencoded.
    await post("beacon", `/beacon/v1/batch?writeKey=${key}`, { batch: [ev(n++)] });
    await post("segment short path", "/v1/t", { ...ev(n++), writeKey: key });
    await call("not found", `/nowhere?writeKey=${encodeURIComponent(key)}`);
  }
  await post("browser", "/v1/track", ev(n++), {
    "x-write-key": browser,
    origin: "https://example.com",
  });
  await post("plaintext key", "/v1/track", ev(n++), { authorization: `Bearer ${PLAIN}` });
  await post("rate limited", "/v1/track", ev(n++), { authorization: `Bearer ${PLAIN}` });
}

test("no log line holds a write key, in any auth form, valid or not", () => {
  const secrets = [...Object.values(made.keys), PLAIN, ...wrong].flatMap((k) => [
    k,
    encodeURIComponent(k),
    b64(k),
    b64(`${k}:`),
    ...(k.includes(":") ? [k.slice(k.indexOf(":") + 1)] : []),
  ]);
  const text = server.output();
  for (const s of secrets) expect(text).not.toContain(s);
  // And the run did exercise both outcomes of each form.
  expect(responses.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(12);
  expect(responses.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(30);
  expect(responses.some((r) => r.status === 429)).toBe(true);
});

test("every response has a request id, and every line about a request carries it", () => {
  const ids = responses.map((r) => r.requestId);
  expect(ids.every((id) => typeof id === "string" && id.length > 0)).toBe(true);
  expect(new Set(ids).size).toBe(ids.length);
  const requestLines = lines.filter((l) => "route" in l || "status" in l || "keyId" in l);
  expect(requestLines.length).toBeGreaterThan(0);
  for (const l of requestLines) expect(typeof l.requestId).toBe("string");
});

test("one line per failed request with status and reason; sampled success lines", () => {
  const byId = new Map<unknown, Record<string, unknown>[]>();
  for (const l of lines) {
    if (l.msg === "request failed" || l.msg === "request") {
      byId.set(l.requestId, [...(byId.get(l.requestId) ?? []), l]);
    }
  }
  for (const r of responses) {
    const mine = byId.get(r.requestId) ?? [];
    expect(mine).toHaveLength(1);
    const line = mine[0]!;
    expect(line.status).toBe(r.status);
    if (r.status >= 400) {
      expect(line.msg).toBe("request failed");
      expect(typeof line.reason).toBe("string");
    } else {
      expect(line.msg).toBe("request");
      expect(typeof line.ms).toBe("number");
    }
  }
  const limited = lines.find((l) => l.msg === "rate limited");
  expect(limited).toMatchObject({ sourceId: "dev", keyId: "wk_plain" });
  // The route pattern, never the path (which holds the key here).
  const settings = lines.find((l) => String(l.route).includes("/settings"));
  expect(settings?.route).toBe("/v1/projects/:writeKey/settings");
  expect(lines.some((l) => "path" in l)).toBe(false);
});
