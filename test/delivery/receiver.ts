import { waitFor } from "../support/wait.ts";
/** A real local HTTP receiver for webhook deliveries, answering with scripted statuses. */
export interface ReceivedBatch {
  status: number;
  events: Record<string, unknown>[];
  /** `Idempotency-Key` of the request. */
  key: string | null;
  /** `X-Sluice-Delivery` of the request. */
  delivery: string | null;
  /** The raw body, as a signature covers it. */
  body: string;
  headers: Headers;
  /** When it arrived, by the receiver's clock (`now`). */
  at: number;
}

export interface Receiver {
  url: string;
  /** Every batch received, with the status it was answered with. */
  batches: ReceivedBatch[];
  /** Events of batches answered 2xx, in arrival order. */
  delivered(): Record<string, unknown>[];
  /**
   * Events as a receiver that drops a repeated Idempotency-Key keeps them: each 2xx
   * batch once per key.
   */
  accepted(): Record<string, unknown>[];
  /** Keys answered 2xx more than once (a receiver deduplicating by key drops the repeats). */
  repeatedKeys(): string[];
  /** Statuses to answer with, in order; then `fail()`'s answer, else 200. */
  script: number[];
  /** Asked on each request once the script ran out: a status to fail with, or undefined for 200. */
  fail: () => number | undefined;
  headers: Headers[];
  /** The Retry-After header of 429 answers. */
  retryAfter: string;
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  stop(): void;
}

/** The body of a refusal: what a real receiver says, which sluice logs trimmed. */
export const REFUSAL = JSON.stringify({ error: "field 'event' is not allowed here" });

export function startReceiver(script: number[] = [], now: () => number = Date.now): Receiver {
  const r: Receiver = {
    url: "",
    batches: [],
    script,
    fail: () => undefined,
    headers: [],
    retryAfter: "0",
    delivered: () => r.batches.filter((b) => b.status < 300).flatMap((b) => b.events),
    accepted() {
      const seen = new Set<string | null>();
      const out: Record<string, unknown>[] = [];
      for (const b of r.batches) {
        if (b.status >= 300 || seen.has(b.key)) continue;
        seen.add(b.key);
        out.push(...b.events);
      }
      return out;
    },
    repeatedKeys() {
      const counts = new Map<string | null, number>();
      for (const b of r.batches) {
        if (b.status < 300) counts.set(b.key, (counts.get(b.key) ?? 0) + 1);
      }
      return [...counts].filter(([, n]) => n > 1).map(([k]) => String(k));
    },
    async waitFor(count, timeoutMs = 10_000) {
      await waitFor(() => r.delivered().length >= count, {
        timeoutMs,
        what: () => `${count} events (the receiver got ${r.delivered().length})`,
      });
    },
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = await req.text();
      const events = JSON.parse(body) as Record<string, unknown>[];
      const status = r.script.shift() ?? r.fail() ?? 200;
      r.batches.push({
        status,
        events,
        key: req.headers.get("idempotency-key"),
        delivery: req.headers.get("x-sluice-delivery"),
        body,
        headers: req.headers,
        at: now(),
      });
      r.headers.push(req.headers);
      return new Response(status < 300 ? "ok" : status < 500 ? REFUSAL : "unavailable", {
        status,
        headers: status === 429 ? { "retry-after": r.retryAfter } : {},
      });
    },
  });
  r.url = `http://127.0.0.1:${server.port}/hook`;
  return r;
}
