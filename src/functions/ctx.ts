import type { FetchInit } from "./fetch.ts";
import type { LogCapture, LogMethods } from "./logs.ts";
import type { CallMeta, ConnectionSpec, StoreOp } from "./protocol.ts";
import { checkEntrySize } from "./store-quota.ts";
import { parseTtl } from "./ttl.ts";

/** Sends one store operation to the server, which owns the store. */
export type StoreTransport = (
  op: StoreOp,
  key: string,
  value?: string,
  ttl?: number | null,
) => Promise<string | number | undefined>;

/** ctx.store as user code sees it: values are anything JSON can carry. */
export interface FunctionStoreApi {
  get(key: string): Promise<unknown>;
  set(
    key: string,
    value: unknown,
    ttl?: number | string | { ttl?: number | string },
  ): Promise<void>;
  del(key: string): Promise<void>;
  ttl(key: string): Promise<number>;
}

/** The second argument of a function (SPEC 7). */
export interface FunctionContext {
  log: LogMethods;
  fetch: (input: string | URL | Request, init?: FetchInit) => Promise<Response>;
  store: FunctionStoreApi;
  props: Readonly<Record<string, string>>;
  headers: Record<string, string>;
  source: { id: string; name: string; type: "browser" | "s2s" };
  connection: { id: string; options: Readonly<Record<string, unknown>> };
  destination: { id: string; type: string };
  receivedAt: Date;
  retries: number;
}

/** ctx.store over a transport; validates keys, values and ttls before anything is sent. */
export function storeApi(send: StoreTransport): FunctionStoreApi {
  const checkKey = (key: unknown) => {
    if (typeof key !== "string" || key === "") {
      throw new TypeError("store key must be a non-empty string");
    }
  };
  return {
    async get(key) {
      checkKey(key);
      const json = await send("get", key);
      return typeof json === "string" ? JSON.parse(json) : undefined;
    },
    async set(key, value, ttl) {
      checkKey(key);
      const json = JSON.stringify(value);
      if (json === undefined) throw new TypeError("store value must be JSON (not undefined)");
      // Refused here already, so an oversized value never crosses to the server.
      checkEntrySize(key, json);
      const given = typeof ttl === "object" && ttl !== null ? ttl.ttl : ttl;
      await send("set", key, json, parseTtl(given));
    },
    async del(key) {
      checkKey(key);
      await send("del", key);
    },
    async ttl(key) {
      checkKey(key);
      return (await send("ttl", key)) as number;
    },
  };
}

/** Deep-freezes config values handed to every call, so no call can change them for the next. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Builds the ctx one function of a chain gets; only `log` differs between functions. */
export function buildContext(opts: {
  connection: ConnectionSpec;
  meta: CallMeta;
  capture: LogCapture;
  functionId: string;
  timeoutMs: number;
  store: FunctionStoreApi;
  fetch: FunctionContext["fetch"];
}): FunctionContext {
  const { connection, meta } = opts;
  return {
    log: opts.capture.methods(opts.functionId),
    fetch: opts.fetch,
    store: opts.store,
    props: connection.env,
    headers: { ...meta.headers },
    source: { ...connection.source, type: meta.sourceType },
    connection: { id: connection.id, options: connection.options },
    destination: { ...connection.destination },
    receivedAt: new Date(meta.receivedAt),
    retries: meta.retries,
  };
}
