import { hashAdminToken } from "../../src/admin/token.ts";
import { startTestServer, type TestServer, type TestServerOptions } from "../support/server.ts";

/** An admin token the test config carries (id `adm_test`). */
export const ADMIN_TOKEN = "adm_test:0123456789abcdef0123456789abcdef";
export const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** A test server whose config has one admin token (ADMIN_TOKEN), unless `tokens: false`. */
export function startAdminServer(
  opts: TestServerOptions & { tokens?: boolean } = {},
): Promise<TestServer> {
  const admin =
    opts.tokens === false
      ? {}
      : { tokens: [{ id: "adm_test", hash: hashAdminToken(ADMIN_TOKEN) }] };
  return startTestServer({ ...opts, config: { admin, ...opts.config } });
}

/** GET an admin API path with the admin token (or the given headers). */
export function adminGet(
  server: TestServer,
  path: string,
  headers: Record<string, string> = ADMIN,
): Promise<Response> {
  return fetch(`${server.url}${path}`, { headers });
}

/** One parsed Server-Sent Events frame. */
export interface SseFrame {
  id?: string;
  event: string;
  data: string;
}

/** A live stream being read: frames so far, and a wait for one that matches. */
export interface SseReader {
  response: Response;
  frames: SseFrame[];
  /** The `attempt` frames' data, parsed. */
  attempts(): Record<string, unknown>[];
  waitFor(pred: (f: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame>;
  close(): void;
}

/** Opens an SSE stream with fetch and parses its frames as they arrive. */
export async function openSse(url: string, headers: Record<string, string> = ADMIN) {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const frames: SseFrame[] = [];
  const waiters = new Set<() => void>();
  if (response.ok && response.body) {
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const frame: SseFrame = { event: "message", data: "" };
            for (const line of block.split("\n")) {
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "id") frame.id = value;
              else if (field === "event") frame.event = value;
              else if (field === "data") frame.data += frame.data ? `\n${value}` : value;
            }
            if (frame.data !== "" || frame.id !== undefined) frames.push(frame);
          }
          for (const w of waiters) w();
        }
      } catch {}
    })();
  }
  const reader: SseReader = {
    response,
    frames,
    attempts: () => frames.filter((f) => f.event === "attempt").map((f) => JSON.parse(f.data)),
    async waitFor(pred, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = frames.find(pred);
        if (found) return found;
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(`no matching frame; got:\n${frames.map((f) => f.data).join("\n")}`);
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, Math.min(left, 100));
          function done() {
            clearTimeout(t);
            waiters.delete(done);
            resolve();
          }
          waiters.add(done);
        });
      }
    },
    close: () => controller.abort(),
  };
  return reader;
}

/** A frame whose attempt has these fields. */
export function attemptWith(fields: Record<string, unknown>) {
  return (f: SseFrame) => {
    if (f.event !== "attempt") return false;
    const a = JSON.parse(f.data) as Record<string, unknown>;
    return Object.entries(fields).every(([k, v]) => a[k] === v);
  };
}
