import { afterEach, describe, expect, test } from "bun:test";
import { authorizeAdmin } from "../../src/admin/http/guard.ts";
import { hashAdminToken } from "../../src/admin/token.ts";
import type { SluiceConfig } from "../../src/config/schema.ts";
import { SluiceError } from "../../src/errors.ts";
import { ERROR_STATUS } from "../../src/http/errors.ts";
import type { TestServer } from "../support/server.ts";
import { ADMIN, ADMIN_TOKEN, startAdminServer } from "./support.ts";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

/** Every admin API route, with a request that is valid once authorized. */
const ROUTES: { method: string; path: string; body?: string }[] = [
  { method: "GET", path: "/admin/api/me" },
  { method: "GET", path: "/admin/api/live" },
  { method: "POST", path: "/admin/api/live/ticket" },
  { method: "GET", path: "/admin/api/sources" },
  { method: "GET", path: "/admin/api/connections" },
  { method: "POST", path: "/admin/api/connections/x/pause" },
  { method: "POST", path: "/admin/api/connections/x/resume" },
  { method: "POST", path: "/admin/api/connections/x/redrive" },
  { method: "POST", path: "/admin/api/connections/x/replay", body: '{"from":"2024-01-01"}' },
];

const call = (s: TestServer, r: (typeof ROUTES)[number], headers: Record<string, string>) =>
  fetch(`${s.url}${r.path}`, { method: r.method, headers, body: r.body });

describe("admin token", () => {
  test("every route: no token or a wrong one is 401 with nothing else", async () => {
    server = await startAdminServer();
    const wrong: Record<string, string>[] = [
      {},
      { authorization: "Bearer adm_test:wrong" },
      { authorization: `Basic ${btoa(`${ADMIN_TOKEN}:`)}` },
      { authorization: `Bearer ${server.keys.server}` },
    ];
    for (const r of ROUTES) {
      for (const headers of wrong) {
        const res = await call(server, r, headers);
        expect({ route: r.path, status: res.status }).toEqual({ route: r.path, status: 401 });
        expect(await res.json()).toEqual({ error: "missing or wrong admin token" });
      }
    }
  });

  test("401 comes before any parameter check", async () => {
    server = await startAdminServer();
    const res = await fetch(`${server.url}/admin/api/live?status=bogus`);
    expect(res.status).toBe(401);
    const replay = await fetch(`${server.url}/admin/api/connections/x/replay`, {
      method: "POST",
      body: "{broken",
    });
    expect(replay.status).toBe(401);
  });

  test("the right token is let in, on loopback and beyond", async () => {
    server = await startAdminServer();
    const res = await fetch(`${server.url}/admin/api/me`, { headers: ADMIN });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ via: "token", tokenId: "adm_test" });
    // With a token configured, a forwarded request (a reverse proxy) is fine too.
    const proxied = await fetch(`${server.url}/admin/api/me`, {
      headers: { ...ADMIN, "x-forwarded-for": "203.0.113.9", host: "sluice.example.com" },
    });
    expect(proxied.status).toBe(200);
  });

  test("admin answers carry no CORS headers; cross-origin browser requests are refused", async () => {
    server = await startAdminServer();
    const own = await fetch(`${server.url}/admin/api/me`, {
      headers: { ...ADMIN, origin: server.url },
    });
    expect(own.status).toBe(200);
    expect(own.headers.get("access-control-allow-origin")).toBeNull();
    const foreign: Record<string, string>[] = [
      { origin: "https://evil.example" },
      { "sec-fetch-site": "cross-site" },
      { origin: "http://127.0.0.1:1" },
    ];
    for (const headers of foreign) {
      const res = await fetch(`${server.url}/admin/api/me`, { headers: { ...ADMIN, ...headers } });
      expect(res.status).toBe(403);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    }
  });
});

describe("no admin token configured", () => {
  test("loopback requests are let in", async () => {
    server = await startAdminServer({ tokens: false });
    const res = await fetch(`${server.url}/admin/api/me`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ via: "loopback", tokenId: null });
    const sources = await fetch(`${server.url}/admin/api/sources`);
    expect(sources.status).toBe(200);
  });

  test("a proxied request, or a Host that is not loopback (DNS rebinding), is refused", async () => {
    server = await startAdminServer({ tokens: false });
    const proxied: Record<string, string>[] = [
      { "x-forwarded-for": "203.0.113.9" },
      { forwarded: "for=203.0.113.9" },
      { host: "attacker.example" },
    ];
    for (const headers of proxied) {
      const res = await fetch(`${server.url}/admin/api/me`, { headers });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toContain(
        "sluice admin token create",
      );
    }
  });

  test("a request from another machine is refused", () => {
    const config = { admin: { tokens: [] } } as unknown as SluiceConfig;
    const request = new Request("http://10.0.0.2:8080/admin/api/me", {
      headers: { host: "localhost:8080" },
    });
    const from = (address: string) =>
      ({ requestIP: () => ({ address, family: "IPv4", port: 1 }) }) as never;
    expect(authorizeAdmin(request, from("127.0.0.1"), config, {}).via).toBe("loopback");
    expect(authorizeAdmin(request, from("::ffff:127.0.0.1"), config, {}).via).toBe("loopback");
    for (const address of ["10.0.0.5", "192.168.1.20", "::ffff:10.0.0.5", "fe80::1"]) {
      let error: unknown;
      try {
        authorizeAdmin(request, from(address), config, {});
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(SluiceError);
      expect(ERROR_STATUS[(error as SluiceError).code]).toBe(403);
    }
    const tokens = { admin: { tokens: [{ id: "a", hash: hashAdminToken("a:s") }] } };
    const withToken = new Request("http://10.0.0.2/admin/api/me", {
      headers: { authorization: "Bearer a:s" },
    });
    const access = authorizeAdmin(withToken, from("10.0.0.5"), tokens as never, {});
    expect(access).toEqual({ via: "token", tokenId: "a" });
  });
});
