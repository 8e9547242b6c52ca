import { expect } from "bun:test";
import { EVENT_TYPES, type EventType } from "../../src/events/schema.ts";
import { basic, storedEvents, type TestServer } from "../support/server.ts";

/** One row of SPEC 3's endpoint table: where to POST and what the stored event becomes. */
export interface Endpoint {
  path: string;
  kind: "single" | "batch";
  /** The type the path forces on the event; undefined: the payload's type is kept. */
  pathType?: EventType;
  /** Server-to-server route: a browser key is refused. */
  serverOnly: boolean;
}

const JITSU: [EventType, string][] = EVENT_TYPES.map((t) => [t, t[0]!]);

function jitsuRows(prefix: string, serverOnly: boolean): Endpoint[] {
  return [
    ...JITSU.flatMap(([type, letter]): Endpoint[] => [
      { path: `${prefix}/${type}`, kind: "single", pathType: type, serverOnly },
      { path: `${prefix}/${letter}`, kind: "single", pathType: type, serverOnly },
    ]),
    { path: `${prefix}/event`, kind: "single", serverOnly },
    { path: `${prefix}/e`, kind: "single", serverOnly },
  ];
}

/** Every event-accepting POST route; the auth, limit and CORS tests run over all of them. */
export const ENDPOINTS: Endpoint[] = [
  ...jitsuRows("/api/s", false),
  ...jitsuRows("/api/s/s2s", true),
  ...EVENT_TYPES.map(
    (t): Endpoint => ({ path: `/v1/${t}`, kind: "single", pathType: t, serverOnly: false }),
  ),
  { path: "/v1/batch", kind: "batch", serverOnly: false },
  { path: "/batch", kind: "batch", serverOnly: false },
  // Segment analytics.js 2.0's short paths, and RudderStack's sendBeacon transport.
  ...EVENT_TYPES.map(
    (t): Endpoint => ({ path: `/v1/${t[0]}`, kind: "single", pathType: t, serverOnly: false }),
  ),
  { path: "/v1/b", kind: "batch", serverOnly: false },
  { path: "/beacon/v1/batch", kind: "batch", serverOnly: false },
];

/**
 * The `type` the payload declares on `ep`: never the path's own type, so a test sees
 * whether the path overrode it.
 */
export function payloadType(ep: Endpoint): EventType {
  return ep.pathType === "screen" ? "group" : "screen";
}

/** The type a stored event from `ep` must have. */
export function storedType(ep: Endpoint): EventType {
  return ep.pathType ?? payloadType(ep);
}

/** One event that is valid as any of the six types. */
export function sampleEvent(
  messageId: string,
  type: EventType = "track",
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    type,
    messageId,
    userId: "user-1",
    anonymousId: "anon-1",
    event: "Signed Up",
    groupId: "group-1",
    previousId: "prev-1",
    name: "Home",
    properties: { plan: "pro" },
    ...extra,
  };
}

/** The request body `ep` expects, carrying `event` (wrapped in `{batch:[…]}` for a batch). */
export function bodyFor(ep: Endpoint, event: Record<string, unknown>): Record<string, unknown> {
  return ep.kind === "batch" ? { batch: [event] } : event;
}

/** The key a test should use on `ep` when the key type does not matter. */
export function keyFor(s: TestServer, ep: Endpoint): string {
  return ep.serverOnly ? s.keys.server : s.keys.browser;
}

/** A request before it is sent: where it goes, its headers, its JSON body. */
export interface Outgoing {
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** One of SPEC 3's places a write key may come from. */
export interface AuthForm {
  name: string;
  apply(key: string, req: Outgoing): Outgoing;
}

const withQuery = (path: string, name: string, key: string) =>
  `${path}${path.includes("?") ? "&" : "?"}${name}=${encodeURIComponent(key)}`;

export const AUTH_FORMS: AuthForm[] = [
  {
    name: "Authorization: Basic base64(key:)",
    apply: (key, r) => ({ ...r, headers: { ...r.headers, ...basic(key) } }),
  },
  {
    name: "Authorization: Basic base64(key) without the colon",
    apply: (key, r) => ({
      ...r,
      headers: { ...r.headers, authorization: `Basic ${Buffer.from(key).toString("base64")}` },
    }),
  },
  {
    name: "Authorization: Bearer key",
    apply: (key, r) => ({ ...r, headers: { ...r.headers, authorization: `Bearer ${key}` } }),
  },
  {
    name: "X-Write-Key",
    apply: (key, r) => ({ ...r, headers: { ...r.headers, "x-write-key": key } }),
  },
  {
    name: "query writeKey",
    apply: (key, r) => ({ ...r, path: withQuery(r.path, "writeKey", key) }),
  },
  {
    name: "query writekey",
    apply: (key, r) => ({ ...r, path: withQuery(r.path, "writekey", key) }),
  },
  {
    name: "body writeKey",
    apply: (key, r) => ({ ...r, body: { ...r.body, writeKey: key } }),
  },
];

/**
 * Sends `event` to `ep` (wrapped as `ep` expects) with `key` presented the way `form` says
 * (X-Write-Key by default; no key when `key` is undefined). `body` adds top-level fields.
 */
export function send(
  s: TestServer,
  ep: Endpoint,
  event: Record<string, unknown>,
  opts: {
    key?: string;
    form?: AuthForm;
    headers?: Record<string, string>;
    body?: Record<string, unknown>;
  } = {},
): Promise<Response> {
  let req: Outgoing = {
    path: ep.path,
    headers: opts.headers ?? {},
    body: { ...bodyFor(ep, event), ...opts.body },
  };
  if (opts.key !== undefined) req = (opts.form ?? AUTH_FORMS[3]!).apply(opts.key, req);
  return s.post(req.path, req.body, req.headers);
}

/** The body of a batch answer (SPEC 3). */
export interface BatchAnswer {
  success: boolean;
  ok: boolean;
  received: number;
  accepted: number;
  duplicates: number;
  rejected: { index: number; messageId?: string; error: string }[];
  error?: string;
}

/** Reads `res` as a batch answer. */
export async function batchAnswer(res: Response): Promise<BatchAnswer> {
  return (await res.json()) as BatchAnswer;
}

/** Asserts `res` is the exact success answer of `ep` for a request carrying one new event. */
export async function expectAccepted(res: Response, ep: Endpoint): Promise<void> {
  const body = await res.json();
  expect({ status: res.status, body }).toEqual({
    status: 200,
    body:
      ep.kind === "batch"
        ? { success: true, ok: true, received: 1, accepted: 1, duplicates: 0, rejected: [] }
        : { ok: true, success: true },
  });
}

/** Asserts `res` has `status` and SPEC 3's error body `{"error": string}`; returns the body. */
export async function expectError(
  res: Response,
  status: number,
): Promise<Record<string, unknown> & { error: string }> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get("content-type") ?? "").toContain("application/json");
  const body = JSON.parse(text);
  expect(typeof body.error).toBe("string");
  expect(body.error.length).toBeGreaterThan(0);
  return body;
}

/** The stored events with `messageId`, read back from the event log. */
export async function storedWithId(
  s: TestServer,
  messageId: string,
): Promise<Record<string, unknown>[]> {
  return (await storedEvents(s.dataDir)).filter((e) => e.messageId === messageId);
}

let counter = 0;
/** A fresh messageId for one test, readable in a failure message. */
export function newId(label: string): string {
  counter++;
  return `${label.replace(/[^A-Za-z0-9]+/g, "-").slice(0, 60)}-${counter}-${crypto.randomUUID().slice(0, 8)}`;
}
