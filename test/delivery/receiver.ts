/** A real local HTTP receiver for webhook deliveries, answering with scripted statuses. */
export interface Receiver {
  url: string;
  /** Every batch received, with the status it was answered with. */
  batches: { status: number; events: Record<string, unknown>[] }[];
  /** Events of batches answered 2xx, in arrival order. */
  delivered(): Record<string, unknown>[];
  /** Statuses to answer with, in order; 200 once they run out. */
  script: number[];
  headers: Headers[];
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  stop(): void;
}

export function startReceiver(script: number[] = []): Receiver {
  const r: Receiver = {
    url: "",
    batches: [],
    script,
    headers: [],
    delivered: () => r.batches.filter((b) => b.status < 300).flatMap((b) => b.events),
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (r.delivered().length < count) {
        if (Date.now() > deadline) {
          throw new Error(`receiver got ${r.delivered().length} of ${count} events`);
        }
        await Bun.sleep(20);
      }
    },
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const events = (await req.json()) as Record<string, unknown>[];
      const status = r.script.shift() ?? 200;
      r.batches.push({ status, events });
      r.headers.push(req.headers);
      return new Response(status < 300 ? "ok" : "no", {
        status,
        headers: status === 429 ? { "retry-after": "0" } : {},
      });
    },
  });
  r.url = `http://127.0.0.1:${server.port}/hook`;
  return r;
}
